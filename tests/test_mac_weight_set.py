"""Weight sets: presets, codebook encoding, projection, and the golden model's membership check."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.config import ConfigError
from hwgen.engines.mac_array.config import MacArrayConfig
from hwgen.engines.mac_array.golden import Tile, run
from hwgen.engines.mac_array.stimulus import test_tiles
from hwgen.engines.mac_array.weight_set import codebook, decode, encode, project

SEED = 20261123


def test_pow2_of_8_bit_weights():
    assert codebook("pow2", 8) == (-128, -64, -32, -16, -8, -4, -2, -1, 0,
                                   1, 2, 4, 8, 16, 32, 64)
    cfg = MacArrayConfig(weight_set="pow2")
    assert cfg.code_bits == 4 and cfg.codebook == codebook("pow2", 8)


@pytest.mark.parametrize("bits, k", [(4, 1), (4, 2), (6, 3), (8, 2)])
def test_low_hamming_is_magnitudes_with_at_most_k_ones(bits, k):
    expected = tuple(v for v in range(-(1 << (bits - 1)), 1 << (bits - 1))
                     if bin(abs(v)).count("1") <= k)
    assert codebook(f"low_hamming_{k}", bits) == expected
    assert codebook("low_hamming_1", bits) == codebook("pow2", bits)


def test_all_means_no_table():
    cfg = MacArrayConfig()
    assert cfg.codebook is None and cfg.code_bits == cfg.weight_bits


@pytest.mark.parametrize("values, bits", [((0, 1), 1), ((-1, 0, 1), 2), ((0, 1, 2, 3), 2),
                                           ((-2, 0, 1, 3, 5), 3)])
def test_code_bits_is_ceil_log2(values, bits):
    assert MacArrayConfig(weight_set=list(values)).code_bits == bits


def test_explicit_list_is_sorted_and_kept_as_given():
    cfg = MacArrayConfig(weight_set=[5, 0, -3])
    assert cfg.weight_set == (5, 0, -3) and cfg.codebook == (-3, 0, 5)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(-128, 127).filter(bool), min_size=1, max_size=12, unique=True),
       st.lists(st.integers(-128, 127), min_size=1, max_size=40))
def test_projection_is_the_nearest_member_ties_toward_zero(members, weights):
    values = tuple(sorted({0, *members}))
    projected = project(weights, values)
    for w, p in zip(weights, projected.tolist()):
        best = min(abs(w - v) for v in values)
        nearest = [v for v in values if abs(w - v) == best]
        assert p == min(nearest, key=abs)
    assert np.array_equal(decode(encode(projected, values), values), projected)


def test_encode_names_the_first_weight_outside_the_set():
    with pytest.raises(ValueError) as info:
        encode(np.array([[0, 4], [3, 1]]), (-1, 0, 1, 4))
    assert str(info.value) == "weight 3 at (1, 0) is not in the weight set [-1, 0, 1, 4]"


def test_golden_rejects_a_tile_with_a_weight_outside_the_set():
    cfg = MacArrayConfig(rows=2, cols=2, weight_set="pow2")
    tile = test_tiles(cfg, np.random.default_rng(SEED), 4)[0]
    values = tile.values.copy()
    values[1, 0, 0] = 3
    with pytest.raises(ValueError, match=r"^weight 3 at \(1, 0, 0\) is not in the weight set "):
        run(cfg, Tile(values, tile.indices, tile.acts))


def test_stimulus_uses_only_the_set_and_reaches_its_extremes():
    cfg = MacArrayConfig(rows=3, cols=3, sparsity="2:4", weight_set=[-9, -2, 0, 3, 11])
    tiles = test_tiles(cfg, np.random.default_rng(SEED), 64)
    seen = set(np.concatenate([t.values.ravel() for t in tiles]).tolist())
    assert seen == {-9, -2, 0, 3, 11}
    assert any((t.values == -9).all() for t in tiles) and any((t.values == 11).all()
                                                              for t in tiles)


def test_weight_set_errors_are_config_errors():
    with pytest.raises(ConfigError, match=r'^weight_set = "pow3": expected "all", "pow2"'):
        MacArrayConfig(weight_set="pow3")
