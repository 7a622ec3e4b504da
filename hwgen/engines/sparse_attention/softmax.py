"""Integer softmax of the sparse attention engine: the shared table, constants and recipe.

The RTL, the HLS C++ and the golden model use the *same* table and constants computed here
(docs/architecture.md §3). Per query row over the exact scores ``s_j`` of its selected keys:

1. ``m = max_j s_j`` and ``z_j = m - s_j >= 0`` (unsigned, ``cfg.z_bits``).
2. Base-2 exponent in fixed point with ``F = exp_frac_bits`` fraction bits::

       e_j = (z_j * C_mult) >> C_shift          # ~ z_j * log2(e) * logit_scale * 2**F

   ``C_mult`` has exactly :data:`EXP_MULT_BITS` = 16 significant bits (``2**15 <= C_mult <
   2**16``) and ``C_shift >= 5`` for every valid config (:func:`exp_multiplier`). Precision:
   ``C_mult / 2**C_shift`` is within a relative ``2**-16`` of the real factor, and the shift
   floors, so ``e_j`` lies in ``(x(1 - 2**-16) - 1, x(1 + 2**-16)]`` with ``x`` the exact real
   exponent in units of ``2**-F``. Only ``e_j < (exp_bits + 1) * 2**F <= 25 * 2**10`` matters (a
   larger one gives exp 0), so the multiplier error is below 0.4 LSB there.
3. ``ei = e_j >> F``, ``ef = e_j & (2**F - 1)``; ``exp_j = EXP_LUT[ef] >> ei`` and ``exp_j = 0``
   when ``ei > exp_bits`` (the hardware may saturate ``ei`` at ``exp_bits + 1``: the table holds at
   most ``2**exp_bits``, so that shift gives 0 too). ``EXP_LUT[f] = floor(2**exp_bits *
   2**(-f / 2**F) + 1/2)`` (:func:`exp_lut`), so ``EXP_LUT[0] = 2**exp_bits`` and every entry
   is at least ``2**(exp_bits-1)``. The row maximum gives ``exp = 2**exp_bits``.
4. ``sum = sum_j exp_j`` with ``2**exp_bits <= sum <= n * 2**exp_bits`` for n selected keys.
5. One reciprocal per row, ``rr = floor(2**RS / sum)`` with ``RS = cfg.row_recip_shift =
   prob_bits + exp_bits + sel_bits + 1`` (``sel_bits = ceil(log2(max_selected))``), then
   ``p_j = (exp_j * rr) >> (RS - prob_bits)``: unsigned, ``prob_bits`` fraction bits,
   ``p_j <= 2**prob_bits``. Widths: ``rr`` has ``prob_bits + sel_bits + 2`` bits (it equals
   ``2**(prob_bits + sel_bits + 1)`` when ``sum = 2**exp_bits``), ``p`` has ``prob_bits + 1``.

Guarantees (the tests check them): with ``P = exp_j * 2**prob_bits / sum`` the exact share,
``P - 1 < p_j <= P``; a row sums to ``2**prob_bits - n <= sum_j p_j <= 2**prob_bits``; a row with
one key gives ``p = 2**prob_bits`` exactly; a row of n equal scores gives
``p_j = floor(2**prob_bits / n)`` for every key.

The table and ``C_mult`` are computed in 60-digit decimal arithmetic (``decimal`` exp, ln and
sqrt are correctly rounded), so they do not depend on the platform's floating-point library.
"""

from __future__ import annotations

import decimal
import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .config import SparseAttentionConfig

__all__ = [
    "EXP_MULT_BITS",
    "SoftmaxRow",
    "exp_lut",
    "exp_multiplier",
    "exp_values",
    "exponents",
    "logit_scale",
    "probabilities",
    "row_reciprocal",
    "softmax_row",
]

#: Significant bits of C_mult: ``2**(EXP_MULT_BITS-1) <= C_mult < 2**EXP_MULT_BITS``.
EXP_MULT_BITS = 16

_CONTEXT = decimal.Context(prec=60)


def logit_scale(head_dim: int, in_frac_bits: int) -> float:
    """Real value of one unit of an exact score: ``2**(-2*in_frac_bits) / sqrt(head_dim)``."""
    return 2.0 ** (-2 * in_frac_bits) / math.sqrt(head_dim)


@functools.cache
def exp_multiplier(head_dim: int, in_frac_bits: int, exp_frac_bits: int) -> tuple[int, int]:
    """(C_mult, C_shift) with ``C_mult / 2**C_shift ~ log2(e) * logit_scale * 2**exp_frac_bits``.

    ``C_shift`` is chosen so the real product ``X * 2**C_shift`` lies in ``[2**15, 2**16)``;
    ``C_mult = floor(X * 2**C_shift + 1/2)``, and a result of ``2**16`` becomes ``2**15`` with
    ``C_shift - 1`` (the same value). The relative error is at most ``2**-16``.
    """
    with decimal.localcontext(_CONTEXT):
        two = decimal.Decimal(2)
        x = two ** (exp_frac_bits - 2 * in_frac_bits) / (two.ln() * decimal.Decimal(head_dim)
                                                         .sqrt())
        shift = EXP_MULT_BITS - 1 - math.floor(math.log2(float(x)))
        # Correct a float misjudgement of floor(log2 x) right at a power of two.
        while x * two ** shift >= 1 << EXP_MULT_BITS:
            shift -= 1
        while x * two ** shift < 1 << (EXP_MULT_BITS - 1):
            shift += 1
        mult = int((x * two ** shift + decimal.Decimal("0.5"))
                   .to_integral_value(rounding=decimal.ROUND_FLOOR))
    if mult == 1 << EXP_MULT_BITS:
        mult, shift = mult >> 1, shift - 1
    return mult, shift


@functools.cache
def exp_lut(exp_frac_bits: int, exp_bits: int) -> np.ndarray:
    """``EXP_LUT[f] = floor(2**exp_bits * 2**(-f / 2**exp_frac_bits) + 1/2)`` for
    ``f < 2**exp_frac_bits``.

    Read-only int64 array; the same object is returned for the same arguments, and it is the
    array the RTL memory initialization and the HLS table are built from. Entries are
    non-increasing from ``2**exp_bits`` and at least ``2**(exp_bits-1)``; strictly
    decreasing when ``exp_bits >= exp_frac_bits + 2`` (steps then exceed one LSB).
    """
    n = 1 << exp_frac_bits
    with decimal.localcontext(_CONTEXT):
        ln2 = decimal.Decimal(2).ln()
        half = decimal.Decimal("0.5")
        table = [int(((decimal.Decimal(exp_bits * n - f) / n * ln2).exp() + half)
                     .to_integral_value(rounding=decimal.ROUND_FLOOR)) for f in range(n)]
    lut = np.array(table, dtype=np.int64)
    lut.flags.writeable = False
    return lut


def exponents(z, cfg: SparseAttentionConfig) -> np.ndarray:
    """Step 2: ``e = (z * C_mult) >> C_shift`` for ``z >= 0`` (int64)."""
    z = np.asarray(z, dtype=np.int64)
    if z.size and z.min() < 0:
        raise ValueError("z must be non-negative (row max minus score)")
    return (z * np.int64(cfg.exp_mult)) >> np.int64(cfg.exp_shift)


def exp_values(e, cfg: SparseAttentionConfig) -> np.ndarray:
    """Step 3: ``EXP_LUT[e & (2**F - 1)] >> (e >> F)``, 0 once ``e >> F`` exceeds exp_bits."""
    e = np.asarray(e, dtype=np.int64)
    frac = cfg.exp_frac_bits
    ei = np.minimum(e >> frac, cfg.exp_bits + 1)
    return cfg.exp_lut[e & ((1 << frac) - 1)] >> ei


def row_reciprocal(total: int, cfg: SparseAttentionConfig) -> int:
    """Step 5: ``rr = floor(2**RS / total)`` (one integer division per row, total >= 1)."""
    total = int(total)
    if total < 1:
        raise ValueError(f"row sum must be positive, got {total}")
    return (1 << cfg.row_recip_shift) // total


def probabilities(exps, rr: int, cfg: SparseAttentionConfig) -> np.ndarray:
    """Step 5: ``p = (exp * rr) >> (RS - prob_bits)`` (int64)."""
    shift = cfg.row_recip_shift - cfg.prob_bits
    return (np.asarray(exps, dtype=np.int64) * np.int64(rr)) >> np.int64(shift)


@dataclass(frozen=True, eq=False)
class SoftmaxRow:
    """Every step of one row's softmax (arrays in the order of the given scores)."""

    row_max: int              # m
    z: np.ndarray             # m - s_j
    exponents: np.ndarray     # e_j, exp_frac_bits fraction bits
    exps: np.ndarray          # exp_j, exp_bits fraction bits
    total: int                # sum_j exp_j
    recip: int                # rr
    probs: np.ndarray         # p_j, prob_bits fraction bits


def softmax_row(scores, cfg: SparseAttentionConfig) -> SoftmaxRow:
    """The integer softmax of one row of exact scores (at least one score)."""
    scores = np.asarray(scores, dtype=np.int64)
    if scores.ndim != 1 or scores.size == 0:
        raise ValueError(f"scores of shape {scores.shape}: expected a non-empty row")
    row_max = int(scores.max())
    z = row_max - scores
    e = exponents(z, cfg)
    exps = exp_values(e, cfg)
    total = int(exps.sum())
    rr = row_reciprocal(total, cfg)
    return SoftmaxRow(row_max=row_max, z=z, exponents=e, exps=exps, total=total, recip=rr,
                      probs=probabilities(exps, rr, cfg))
