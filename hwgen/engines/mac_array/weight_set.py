"""Allowed weight values of a MAC array (docs/architecture.md §4.1, power-aware weight sets).

A weight set S restricts the values a layer's weights may take, after Fang, Zhang and Huang
(2025) and PowerPruning (DAC 2023): fewer, cheaper values lower the switching activity of the
multipliers and accumulators. In hardware, a weight travels as its index into the *codebook* (S
sorted ascending) in ``ceil(log2 |S|)`` bits, and a constant table at the weight port decodes it
as it is loaded into a PE. The RTL, the golden model and the energy model all read that table
from :attr:`MacArrayConfig.codebook`, which calls :func:`codebook` here once.

Named sets, for ``weight_bits``-bit two's complement weights:

``all``
    every value; weights travel as plain ``weight_bits``-bit numbers (no table).
``pow2``
    0 and the signed powers of two: ±1, ±2, ..., ±2^(weight_bits-2) and -2^(weight_bits-1)
    (a multiplier by such a weight is a shift).
``low_hamming_<k>``
    0 and every value whose magnitude has at most ``k`` one bits (``pow2`` = ``low_hamming_1``):
    a shift-and-add multiplier needs at most ``k`` partial products.

An explicit set is a list of distinct integers in the weight range that contains 0 (pruned
weights and N:M padding are 0) and at least one other value.
"""

from __future__ import annotations

import math
import re

import numpy as np

from hwgen.config import format_value, invalid
from hwgen.fixedpoint import signed_range

__all__ = ["PRESETS_HELP", "codebook", "code_bits", "describe", "encode", "decode", "project"]

_LOW_HAMMING_RE = re.compile(r"low_hamming_(\d+)\Z")

#: What ``weight_set`` accepts, as error messages say it.
PRESETS_HELP = ('"all", "pow2", "low_hamming_<k>" (1 <= k < weight_bits) or a list of distinct '
                'integers in the weight range that contains 0 and one other value')


def describe(spec) -> str:
    """``spec`` as a config file writes it: ``"pow2"`` or ``[-2, 0, 1]``
    (:func:`hwgen.config.format_value`)."""
    return format_value(spec)


def _magnitude_popcount(values: np.ndarray) -> np.ndarray:
    return np.array([bin(abs(int(v))).count("1") for v in values], dtype=np.int64)


def codebook(spec, weight_bits: int) -> tuple[int, ...] | None:
    """The sorted allowed values of weight set ``spec``, or None for ``"all"``.

    Raises
    ------
    ConfigError
        ``weight_set = <spec>: expected ...`` for an unknown name, a value out of range, a
        duplicate, a missing 0 or a set of fewer than 2 values.
    """
    lo, hi = signed_range(weight_bits)
    if isinstance(spec, str):
        if spec == "all":
            return None
        every = np.arange(lo, hi + 1, dtype=np.int64)
        if spec == "pow2":
            limit = 1
        else:
            match = _LOW_HAMMING_RE.match(spec)
            if not match:
                raise invalid("weight_set", spec, PRESETS_HELP)
            # k < weight_bits <= 16 has two digits at most; a longer k is refused before int()
            # (Python converts no more than 4300 digits).
            limit = int(match[1]) if len(match[1]) <= 2 else 0
            if not 1 <= limit < weight_bits:
                raise invalid("weight_set", spec,
                              f"low_hamming_<k> with 1 <= k < weight_bits = {weight_bits}")
        return tuple(int(v) for v in every[_magnitude_popcount(every) <= limit])
    if not isinstance(spec, (list, tuple)) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in spec):
        raise invalid("weight_set", spec, PRESETS_HELP)
    outside = next((v for v in spec if not lo <= v <= hi), None)
    if outside is not None:
        raise invalid("weight_set", spec, f"values in the {weight_bits}-bit weight range "
                                          f"{lo}..{hi} ({format_value(outside)} is not)")
    seen = set()
    for v in spec:
        if v in seen:
            raise invalid("weight_set", spec, f"distinct values ({v} is listed twice)")
        seen.add(v)
    if 0 not in seen:
        raise invalid("weight_set", spec,
                      "a set containing 0 (pruned weights and N:M padding are 0)")
    if len(seen) < 2:
        raise invalid("weight_set", spec, "at least 2 values (0 and one other)")
    return tuple(sorted(spec))


def code_bits(values: tuple[int, ...]) -> int:
    """Width of a codebook index: ceil(log2 |S|)."""
    return max(1, math.ceil(math.log2(len(values))))


def encode(weights, values: tuple[int, ...]) -> np.ndarray:
    """Codebook indices of ``weights``; ValueError naming the first weight not in the set."""
    weights = np.asarray(weights, dtype=np.int64)
    table = np.asarray(values, dtype=np.int64)
    codes = np.searchsorted(table, weights)
    inside = (codes < len(table)) & (table[np.minimum(codes, len(table) - 1)] == weights)
    if not inside.all():
        where = tuple(int(i) for i in np.argwhere(~inside)[0])
        raise ValueError(f"weight {int(weights[where])} at {where} is not in the weight set "
                         f"{format_value(values)}")
    return codes.astype(np.int64)


def decode(codes, values: tuple[int, ...]) -> np.ndarray:
    """Weights of codebook indices (the constant table the RTL holds)."""
    return np.asarray(values, dtype=np.int64)[np.asarray(codes, dtype=np.int64)]


def project(weights, values) -> np.ndarray:
    """Each weight replaced by the nearest allowed value; a tie goes to the value nearer 0.

    ``values`` need not be sorted. Zero stays zero whenever 0 is allowed, so projecting keeps an
    N:M pattern intact.
    """
    weights = np.asarray(weights, dtype=np.int64)
    table = np.asarray(sorted(values), dtype=np.int64)
    upper = np.clip(np.searchsorted(table, weights), 0, len(table) - 1)
    lower = np.clip(upper - 1, 0, len(table) - 1)
    lo_v, hi_v = table[lower], table[upper]
    lo_d, hi_d = np.abs(weights - lo_v), np.abs(weights - hi_v)
    pick_hi = (hi_d < lo_d) | ((hi_d == lo_d) & (np.abs(hi_v) < np.abs(lo_v)))
    return np.where(pick_hi, hi_v, lo_v)
