"""Bit-exact numpy model of the MAC array, written from docs/architecture.md §4.1 (never from the
RTL).

Numbers
-------
Weights are ``weight_bits``-bit two's complement; activations are ``act_bits`` bits, signed or
unsigned per ``act_signed``. PE row ``r`` owns reduction inputs ``r*M .. r*M+M-1`` (M = 1 when dense)
and, per column ``c``, N weights ``w[r, c, j]`` at positions ``idx[r, c, j]`` inside the group. A
PE forms the exact sum of its N products, adds the partial sum arriving from the row above (0 for
row 0) and applies the overflow rule at ``acc_bits``::

    psum[r, c] = overflow(psum[r-1, c] + sum_j w[r, c, j] * a[r*M + idx[r, c, j]], acc_bits)
    y[c]       = psum[R-1, c]

so with ``saturate`` the clamp happens after every PE row, in row order, exactly as in hardware.

With a weight set (``cfg.codebook``, see :mod:`.weight_set`) every weight must be a member of the
set; weights travel as codebook indices, which do not change any product. Nor does the PE
kind (``cfg.pe``: a multiplier, or with ``pow2`` weights a shift and a negation): the product is
``w * a`` either way, exact.

Cycle model
-----------
A tile is R weight beats followed by B activation beats (the last one flagged ``last``). Each PE
holds two weight sets: the active one it multiplies with and the next tile's, which the weight
beats write; a PE switches to the next set exactly when that tile's first activation row reaches
it. Weight beat r of a tile overwrites PE row r's next set, so it waits until the tile before has
been switched to in the whole row, and a tile's first row waits until all R of its beats are in.

With every input valid and every output ready, counting cycles from the first weight beat: tile
0's beats transfer at cycles 0 .. R-1 and its rows from cycle L_0 = R on, one per cycle. If tile
i's first row transfers at L_i, tile i+1's beat r transfers at L_i + C + 1 + r (the cycle after
the step that switches PE (r, C-1) to tile i's weights) and its first row at
L_{i+1} = max(L_i + B_i, L_i + C + 1 + R): a tile of at least R + C + 1 rows
(``cfg.hide_rows``) hides the next tile's load, and the rows of consecutive tiles stream without a
gap. Each row spends one cycle in the input register and ``cfg.latency`` = R + C - 1 + P in the
skewed array (P = ``cfg.pe_stages``: each PE registers its multipliers' operands, the products,
with N > 1 their sum, then the partial sum) and the deskew registers, so the result of a row
transferring at cycle a transfers at a + 1 + latency.
See :func:`cycle_model`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hwgen.fixedpoint import overflow, signed_range, unsigned_range

from .config import MacArrayConfig
from .weight_set import encode

__all__ = [
    "NMPatternError", "Tile", "MacArrayTrace", "CycleModel", "operand_ranges", "compress_nm",
    "expand_nm", "dense_tile", "run", "cycle_model",
]


class NMPatternError(ValueError):
    """A dense weight matrix has more than N nonzeros in some group of M reduction inputs."""


@dataclass(frozen=True)
class Tile:
    """One weight tile and the activation rows streamed through it.

    values, indices : int64 arrays of shape (R, C, N)
        Nonzero weights and their positions (0..M-1, strictly increasing along N) in each group.
    acts : int64 array of shape (B, K), K = R * M
        Activation rows, one per beat.
    """

    values: np.ndarray
    indices: np.ndarray
    acts: np.ndarray


@dataclass(frozen=True)
class MacArrayTrace:
    """Every intermediate value of one tile.

    products : (B, R, C) exact sum of the N products in PE (r, c) for row b
    psums : (B, R, C) partial sum leaving PE (r, c) after the overflow rule
    y : (B, C) the result beats (``psums[:, -1, :]``)
    """

    products: np.ndarray
    psums: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class CycleModel:
    """Analytic transfer cycles of tiles streamed back to back with every input valid and every
    output ready, counted from the first weight beat (cycle 0)."""

    weight_cycles: tuple[int, ...]   # R per tile, in order
    act_cycles: tuple[int, ...]      # one per activation row, in order
    result_cycles: tuple[int, ...]   # one per activation row, in order
    latency: int                     # cycles from an activation transfer to its result transfer

    @property
    def load(self) -> int:
        """Cycles before the first activation row (tile 0's weight beats)."""
        return self.act_cycles[0]

    @property
    def stream(self) -> int:
        """First to last activation transfer, inclusive."""
        return self.act_cycles[-1] - self.act_cycles[0] + 1

    @property
    def total(self) -> int:
        """First weight transfer to last result transfer, inclusive."""
        return self.result_cycles[-1] + 1

    @property
    def gaps(self) -> int:
        """Cycles between the first and the last activation row that take no row: 0 when the
        tiles stream back to back."""
        return self.stream - len(self.act_cycles)


def operand_ranges(cfg: MacArrayConfig) -> dict[str, tuple[int, int]]:
    """Inclusive (min, max) of weights and activations."""
    return {
        "weight": signed_range(cfg.weight_bits),
        "act": signed_range(cfg.act_bits) if cfg.act_signed else unsigned_range(cfg.act_bits),
    }


def compress_nm(dense: np.ndarray, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Compress a dense (K, C) weight matrix, K = R * M, to N:M values and indices (R, C, N).

    Groups with fewer than N nonzeros are padded with zero weights at the lowest unused positions,
    so indices are always strictly increasing. Raises :class:`NMPatternError` naming the first
    group and column that holds more than N nonzeros.
    """
    dense = np.asarray(dense, dtype=np.int64)
    if dense.ndim != 2 or dense.shape[0] % m:
        raise NMPatternError(f"weight matrix of shape {dense.shape}: expected (K, C) with K a "
                             f"multiple of M = {m}")
    k, c = dense.shape
    groups = dense.reshape(k // m, m, c).transpose(0, 2, 1)           # (R, C, M)
    counts = np.count_nonzero(groups, axis=2)
    if (counts > n).any():
        r, col = np.argwhere(counts > n)[0]
        raise NMPatternError(
            f"weight matrix breaks the {n}:{m} pattern: column {col}, rows {r * m}..{r * m + m - 1}"
            f" hold {counts[r, col]} nonzeros, at most {n} allowed")
    # Stable sort puts nonzero positions first, in increasing order, then the zero positions in
    # increasing order; keeping the first N and re-sorting gives strictly increasing indices.
    order = np.argsort(groups == 0, axis=2, kind="stable")[:, :, :n]
    indices = np.sort(order, axis=2)
    values = np.take_along_axis(groups, indices, axis=2)
    return values, indices.astype(np.int64)


def expand_nm(values: np.ndarray, indices: np.ndarray, m: int) -> np.ndarray:
    """Inverse of :func:`compress_nm`: the dense (R * M, C) weight matrix."""
    r, c, n = values.shape
    dense = np.zeros((r, c, m), dtype=np.int64)
    np.put_along_axis(dense, np.asarray(indices, dtype=np.int64), values, axis=2)
    return dense.transpose(0, 2, 1).reshape(r * m, c)


def dense_tile(cfg: MacArrayConfig, weights: np.ndarray, acts: np.ndarray) -> Tile:
    """Build a :class:`Tile` from a dense (K, C) weight matrix, compressing it for N:M arrays."""
    values, indices = compress_nm(weights, cfg.n, cfg.m)
    return Tile(values, indices, np.asarray(acts, dtype=np.int64))


def _check_tile(cfg: MacArrayConfig, tile: Tile) -> None:
    shape = (cfg.rows, cfg.cols, cfg.n)
    if tile.values.shape != shape or tile.indices.shape != shape:
        raise ValueError(f"tile weights have shape {tile.values.shape}/{tile.indices.shape}, "
                         f"expected {shape}")
    if tile.acts.ndim != 2 or tile.acts.shape[1] != cfg.k or tile.acts.shape[0] < 1:
        raise ValueError(f"tile activations have shape {tile.acts.shape}, expected (B >= 1, "
                         f"{cfg.k})")
    for label, arr, (lo, hi) in (("weight", tile.values, operand_ranges(cfg)["weight"]),
                                 ("activation", tile.acts, operand_ranges(cfg)["act"]),
                                 ("index", tile.indices, (0, cfg.m - 1))):
        if arr.size and (arr.min() < lo or arr.max() > hi):
            raise ValueError(f"{label} values must lie in {lo}..{hi}")
    if cfg.codebook is not None:
        encode(tile.values, cfg.codebook)       # ValueError naming a weight outside the set
    if cfg.n > 1 and (np.diff(tile.indices, axis=2) <= 0).any():
        raise ValueError("N:M indices must be strictly increasing within each group")


def run(cfg: MacArrayConfig, tile: Tile) -> MacArrayTrace:
    """Compute every partial sum and result of ``tile`` on the array described by ``cfg``."""
    _check_tile(cfg, tile)
    r_, c_, m = cfg.rows, cfg.cols, cfg.m
    acts = tile.acts.reshape(-1, r_, m)                                # (B, R, M)
    # gathered[b, r, c, j] = a[b, r*M + idx[r, c, j]]
    gathered = acts[:, np.arange(r_)[:, None, None], tile.indices]     # (B, R, C, N)
    products = (gathered * tile.values[None]).sum(axis=3)              # (B, R, C)
    psums = np.empty_like(products)
    carry = np.zeros((tile.acts.shape[0], c_), dtype=np.int64)
    for r in range(r_):
        carry = overflow(carry + products[:, r, :], cfg.acc_bits, cfg.overflow)
        psums[:, r, :] = carry
    return MacArrayTrace(products=products, psums=psums, y=psums[:, -1, :].copy())


def cycle_model(cfg: MacArrayConfig, rows: int | Sequence[int]) -> CycleModel:
    """Cycles of tiles of ``rows`` activation rows each (an int: one tile), back to back, when
    every input is valid and every output ready (see module doc)."""
    rows = [rows] if isinstance(rows, int) else list(rows)
    if not rows or min(rows) < 1:
        raise ValueError(f"rows = {rows}: expected at least one tile of at least one row")
    R = cfg.rows
    # Tile i+1's first beat: C + 1 cycles after tile i's first row, one cycle after that row's
    # step that switches PE (0, C-1) to tile i (the weight's copy into the multiplier's input
    # register, however deep the PE is behind it).
    switched = cfg.cols + 1
    weight_cycles, act_cycles = list(range(R)), []
    launch = R
    for i, b in enumerate(rows):
        act_cycles += range(launch, launch + b)
        if i + 1 < len(rows):
            beats = launch + switched
            weight_cycles += range(beats, beats + R)
            launch = max(launch + b, beats + R)
    latency = 1 + cfg.latency     # input register + skewed array and deskew
    return CycleModel(weight_cycles=tuple(weight_cycles), act_cycles=tuple(act_cycles),
                      result_cycles=tuple(a + latency for a in act_cycles), latency=latency)
