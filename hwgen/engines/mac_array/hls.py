"""What the mac_array HLS templates print, and the C-simulation vectors (see hwgen/emit/hls.py).

The kernel computes one tile per call, as the RTL does: it reads the tile's weights (as they
travel: weights, or codebook indices with a weight set, decoded by the same table the RTL holds)
and N:M indices, then activation rows until one carries ``last``, and writes one result row per
activation row.

Stimulus order (integers): the number of tiles; then per tile R*C*N stored weights (element
``(r*C + c)*N + j``), R*C*N N:M indices (0 when dense), the number of rows B and B*K
activations, row by row. Expected order: per tile, B*C results, row by row.
"""

from __future__ import annotations

import numpy as np

from hwgen.engines.base import HlsVectors
from hwgen.hdl.shift import encode as encode_shift
from hwgen.hdl.shift import shift_bits

from .config import MacArrayConfig
from .golden import run
from .stimulus import test_tiles
from .weight_set import encode

__all__ = ["hls_context", "hls_vectors"]


def hls_context(cfg: MacArrayConfig) -> dict:
    """Every value the templates print (``templates/hls/mac_array/``)."""
    book = cfg.codebook
    # The RTL's decode table is a full power of two; unused codes decode to 0.
    table = None if book is None else [*book, *([0] * ((1 << cfg.code_bits) - len(book)))]
    # Shift PEs: the table of (nonzero, neg, shift) of each entry instead (weight 0: all 0).
    shift_table = None
    if cfg.shift_pe:
        sb = shift_bits(cfg.weight_bits)
        shift_table = [(int(code >> (sb + 1)), int((code >> sb) & 1), int(code & ((1 << sb) - 1)))
                       for code in encode_shift(table, cfg.weight_bits)]
    return {
        "rows": cfg.rows, "cols": cfg.cols, "n": cfg.n, "m": cfg.m, "k": cfg.k,
        "guard": f"{cfg.name.upper()}_H",
        "act_bits": cfg.act_bits, "act_signed": cfg.act_signed,
        "act_signed_cpp": "true" if cfg.act_signed else "false",
        "weight_bits": cfg.weight_bits, "code_bits": cfg.code_bits,
        "idx_field_bits": max(cfg.idx_bits, 1),     # the index field is 1 bit even when dense
        "acc_bits": cfg.acc_bits, "overflow": cfg.overflow, "sparsity": cfg.sparsity or "dense",
        "weight_set": "all" if book is None else f"{len(book)} values",
        "table": table, "table_size": None if table is None else len(table),
        "shift_table": shift_table, "weight_type": "shift_code_t" if cfg.shift_pe else "int64_t",
    }


def hls_vectors(cfg: MacArrayConfig, seed: int, vectors: int) -> HlsVectors:
    """The testbench's tiles (a ``vectors``-row random tile, the edge tiles, a short one) and
    their golden results."""
    tiles = test_tiles(cfg, np.random.default_rng(seed), vectors)
    stimulus, expected = [len(tiles)], []
    for tile in tiles:
        stored = tile.values if cfg.codebook is None else encode(tile.values, cfg.codebook)
        stimulus += stored.reshape(-1).tolist() + tile.indices.reshape(-1).tolist()
        stimulus += [tile.acts.shape[0], *tile.acts.reshape(-1).tolist()]
        expected += run(cfg, tile).y.reshape(-1).tolist()
    return HlsVectors(stimulus=stimulus, expected=expected)
