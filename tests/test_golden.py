"""The MAC array golden model against independent references (no simulator involved)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.engines.mac_array import MacArrayConfig, golden
from hwgen.engines.mac_array.stimulus import edge_tiles, random_tile
from hwgen.fixedpoint import saturate, wrap


@given(st.integers(-(1 << 60), 1 << 60), st.integers(2, 48))
def test_wrap_is_congruent_and_in_range(x, bits):
    y = int(wrap(x, bits))
    assert -(1 << (bits - 1)) <= y < (1 << (bits - 1))
    assert (y - x) % (1 << bits) == 0


@given(st.integers(-(1 << 60), 1 << 60), st.integers(2, 48))
def test_saturate_clamps(x, bits):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    assert int(saturate(x, bits)) == min(max(x, lo), hi)


def _nm_matrix(rng, k, c, n, m):
    """A dense (K, C) matrix with at most N nonzeros in every group of M rows."""
    dense = np.zeros((k, c), dtype=np.int64)
    for g in range(k // m):
        for col in range(c):
            count = rng.integers(0, n, endpoint=True)
            pos = rng.choice(m, size=count, replace=False)
            dense[g * m + pos, col] = rng.choice([-3, -1, 1, 2, 127, -128], size=count)
    return dense


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 15), st.integers(1, 4), st.integers(1, 5))
def test_compress_expand_round_trip(seed, m_minus, groups, cols):
    rng = np.random.default_rng(seed)
    m = m_minus + 1
    n = int(rng.integers(1, m))
    dense = _nm_matrix(rng, groups * m, cols, n, m)
    values, indices = golden.compress_nm(dense, n, m)
    assert values.shape == indices.shape == (groups, cols, n)
    assert (np.diff(indices, axis=2) > 0).all()
    assert ((indices >= 0) & (indices < m)).all()
    np.testing.assert_array_equal(golden.expand_nm(values, indices, m), dense)


def test_compress_rejects_broken_pattern_naming_the_group():
    dense = np.zeros((8, 3), dtype=np.int64)
    dense[4:7, 2] = [1, 2, 3]                 # three nonzeros in the second group of column 2
    with pytest.raises(golden.NMPatternError,
                       match=r"breaks the 2:4 pattern: column 2, rows 4\.\.7 hold 3 nonzeros, "
                             r"at most 2 allowed"):
        golden.compress_nm(dense, 2, 4)


def test_compress_rejects_k_not_multiple_of_m():
    with pytest.raises(golden.NMPatternError, match=r"multiple of M = 4"):
        golden.compress_nm(np.zeros((6, 2)), 2, 4)


CONFIGS = [
    MacArrayConfig(rows=1, cols=1),
    MacArrayConfig(rows=3, cols=5),
    MacArrayConfig(rows=4, cols=4, sparsity="2:4"),
    MacArrayConfig(rows=3, cols=2, sparsity="1:4", act_signed=False),
    MacArrayConfig(rows=2, cols=3, sparsity="3:16", weight_bits=4, act_bits=6, acc_bits=10),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.rows}x{c.cols}-{c.sparsity}")
def test_run_equals_matmul_modulo_acc_bits(cfg):
    """Wrapping after every PE row equals wrapping the exact matrix product once."""
    rng = np.random.default_rng(7)
    tile = random_tile(cfg, rng, rows=50)
    trace = golden.run(cfg, tile)
    dense_w = golden.expand_nm(tile.values, tile.indices, cfg.m)
    exact = tile.acts @ dense_w
    np.testing.assert_array_equal(trace.y, wrap(exact, cfg.acc_bits))
    np.testing.assert_array_equal(trace.psums[:, -1, :], trace.y)


def _saturating_reference(cfg, values, indices, acts):
    """Scalar loops, one PE at a time, clamping after each row."""
    lo, hi = -(1 << (cfg.acc_bits - 1)), (1 << (cfg.acc_bits - 1)) - 1
    out = np.zeros((acts.shape[0], cfg.cols), dtype=np.int64)
    for b in range(acts.shape[0]):
        for c in range(cfg.cols):
            acc = 0
            for r in range(cfg.rows):
                acc += sum(int(values[r, c, j]) * int(acts[b, r * cfg.m + indices[r, c, j]])
                           for j in range(cfg.n))
                acc = min(max(acc, lo), hi)
            out[b, c] = acc
    return out


@pytest.mark.parametrize("sparsity", [None, "2:4"])
def test_saturation_clamps_after_every_row(sparsity):
    cfg = MacArrayConfig(rows=4, cols=3, acc_bits=16, overflow="saturate", sparsity=sparsity)
    rng = np.random.default_rng(11)
    for tile in [random_tile(cfg, rng, 40), *edge_tiles(cfg, rng)]:
        trace = golden.run(cfg, tile)
        np.testing.assert_array_equal(
            trace.y, _saturating_reference(cfg, tile.values, tile.indices, tile.acts))


def test_edge_tiles_overflow_a_narrow_accumulator():
    """The edge tiles must really leave acc_bits, or the wrap/saturate checks test nothing."""
    cfg = MacArrayConfig(rows=4, cols=4, acc_bits=16)
    tiles = edge_tiles(cfg, np.random.default_rng(3))
    exact = [t.acts @ golden.expand_nm(t.values, t.indices, cfg.m) for t in tiles]
    assert max(e.max() for e in exact) > (1 << 15) - 1       # min * min products
    assert min(e.min() for e in exact) < -(1 << 15)          # min * max products


def test_run_rejects_out_of_range_operands():
    cfg = MacArrayConfig(rows=2, cols=2, act_signed=False)
    tile = random_tile(cfg, np.random.default_rng(0), 3)
    bad = golden.Tile(tile.values, tile.indices, tile.acts - 1 - tile.acts.max())
    with pytest.raises(ValueError, match=r"activation values must lie in 0\.\.255"):
        golden.run(cfg, bad)


def test_dense_tile_compresses_for_nm_arrays():
    cfg = MacArrayConfig(rows=2, cols=3, sparsity="2:4")
    rng = np.random.default_rng(5)
    dense = _nm_matrix(rng, cfg.k, cfg.cols, 2, 4)
    acts = rng.integers(-128, 127, size=(6, cfg.k))
    tile = golden.dense_tile(cfg, dense, acts)
    np.testing.assert_array_equal(golden.run(cfg, tile).y, acts @ dense)


@pytest.mark.parametrize("sparsity, latency", [(None, 8 + 8 + 2), ("2:4", 8 + 8 + 3)])
def test_cycle_model_adds_load_stream_and_latency(sparsity, latency):
    """Input register, R + C - 1 wavefront steps, the product's operand and output registers,
    and with two products per PE (2:4) the register of their sum."""
    cfg = MacArrayConfig(rows=8, cols=8, sparsity=sparsity)
    model = golden.cycle_model(cfg, 256)
    assert (model.load, model.stream, model.latency) == (8, 256, latency)
    assert model.total == 8 + 256 + latency


@pytest.mark.parametrize("sparsity, stages", [(None, 2), ("2:4", 3)])
def test_cycle_model_streams_long_tiles_back_to_back(sparsity, stages):
    """8 tiles of 256 rows on 12x12: tile i+1's beats from C + 1 cycles after tile i's first row
    (whatever the PE's depth P), its rows right behind tile i's, so only the first load and the
    last drain (R + C - 1 + P) cost cycles."""
    cfg = MacArrayConfig(rows=12, cols=12, sparsity=sparsity)
    model = golden.cycle_model(cfg, [256] * 8)
    launches = [12 + 256 * i for i in range(8)]
    assert model.act_cycles == tuple(range(12, 12 + 2048))
    assert model.weight_cycles == tuple(range(12)) + tuple(
        L + 12 + 1 + r for L in launches[:-1] for r in range(12))
    assert model.gaps == 0 and model.stream == 2048
    assert model.total == 12 + 2048 + 1 + (12 + 12 - 1 + stages)
    assert model.result_cycles == tuple(a + model.latency for a in model.act_cycles)
    assert 2048 / model.total >= 0.98


@pytest.mark.parametrize("rows", [1, 2, 10, 11, 12, 13])
def test_cycle_model_short_tiles_wait_for_their_weights(rows):
    """4x6 dense: the next tile's last beat transfers at L + C + 1 + R - 1 = L + 10, so a
    tile of fewer than R + C + 1 = 11 rows (``cfg.hide_rows``) leaves a gap of 11 - rows cycles
    before the next."""
    cfg = MacArrayConfig(rows=4, cols=6)
    model = golden.cycle_model(cfg, [rows, rows, 3])
    assert model.act_cycles[:rows] == tuple(range(4, 4 + rows))
    assert model.act_cycles[rows] == 4 + max(rows, 11)
    assert model.act_cycles[2 * rows] == 4 + 2 * max(rows, 11)
    assert model.gaps == 2 * max(0, 11 - rows)


def test_cycle_model_needs_a_row():
    cfg = MacArrayConfig(rows=2, cols=2)
    for rows in ([], [3, 0]):
        with pytest.raises(ValueError, match="at least one tile of at least one row"):
            golden.cycle_model(cfg, rows)
