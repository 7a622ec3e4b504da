"""Random and edge-case tiles for the MAC array testbench and benchmarks.

Everything is drawn from a ``numpy.random.Generator`` the caller seeds, so a run is reproduced by
its seed alone.
"""

from __future__ import annotations

import numpy as np

from .config import MacArrayConfig
from .golden import Tile, operand_ranges

__all__ = ["random_tile", "edge_tiles", "test_tiles"]


def _operands(rng: np.random.Generator, lo: int, hi: int, shape) -> np.ndarray:
    """Uniform values with extremes (lo, hi, 0) over-represented: they find overflow bugs."""
    values = rng.integers(lo, hi, size=shape, endpoint=True)
    pick = rng.random(shape)
    values = np.where(pick < 0.1, lo, values)
    values = np.where((pick >= 0.1) & (pick < 0.2), hi, values)
    return np.where((pick >= 0.2) & (pick < 0.25), 0, values).astype(np.int64)


def _weights(cfg: MacArrayConfig, rng: np.random.Generator, shape) -> np.ndarray:
    """Random weights: over the whole range, or drawn from the weight set with its extremes and
    0 over-represented as in :func:`_operands`."""
    if cfg.codebook is None:
        return _operands(rng, *operand_ranges(cfg)["weight"], shape)
    book = np.asarray(cfg.codebook, dtype=np.int64)
    codes = _operands(rng, 0, len(book) - 1, shape)
    zero = int(np.searchsorted(book, 0))
    # _operands over-represents codes 0 and |S|-1 (the set's min and max) and code value 0 (the
    # smallest weight again): move that last share onto the weight 0 instead.
    codes = np.where((codes == 0) & (rng.random(shape) < 1 / 3), zero, codes)
    return book[codes]


def _indices(cfg: MacArrayConfig, rng: np.random.Generator) -> np.ndarray:
    """Strictly increasing N-of-M positions per (row, column), uniformly chosen."""
    shape = (cfg.rows, cfg.cols)
    keys = rng.random(shape + (cfg.m,))
    return np.sort(np.argsort(keys, axis=2)[:, :, :cfg.n], axis=2).astype(np.int64)


def random_tile(cfg: MacArrayConfig, rng: np.random.Generator, rows: int) -> Tile:
    """A tile of random weights and ``rows`` random activation rows."""
    values = _weights(cfg, rng, (cfg.rows, cfg.cols, cfg.n))
    acts = _operands(rng, *operand_ranges(cfg)["act"], (rows, cfg.k))
    return Tile(values, _indices(cfg, rng), acts)


def edge_tiles(cfg: MacArrayConfig, rng: np.random.Generator) -> list[Tile]:
    """All-minimum and all-maximum operands in every combination, zero weights, a one-row tile.

    With a weight set the extreme weights are the set's smallest and largest members.

    The extreme products drive the partial sums to their largest magnitude, so with a narrow
    ``acc_bits`` they exercise wrap and saturation in both directions.
    """
    ranges = operand_ranges(cfg)
    (w_lo, w_hi), (a_lo, a_hi) = ranges["weight"], ranges["act"]
    if cfg.codebook is not None:
        w_lo, w_hi = cfg.codebook[0], cfg.codebook[-1]
    wshape, ashape = (cfg.rows, cfg.cols, cfg.n), (3, cfg.k)
    idx = _indices(cfg, rng)
    tiles = [Tile(np.full(wshape, w, dtype=np.int64), idx, np.full(ashape, a, dtype=np.int64))
             for w in (w_lo, w_hi) for a in (a_lo, a_hi)]
    tiles.append(Tile(np.zeros(wshape, dtype=np.int64), idx,
                      _operands(rng, a_lo, a_hi, ashape)))
    tiles.append(random_tile(cfg, rng, rows=1))
    return tiles


def test_tiles(cfg: MacArrayConfig, rng: np.random.Generator, vectors: int) -> list[Tile]:
    """The verification sequence: a long random tile, the edge tiles, then a short random tile."""
    return [random_tile(cfg, rng, vectors), *edge_tiles(cfg, rng), random_tile(cfg, rng, 5)]


test_tiles.__test__ = False  # not a pytest test, despite the name
