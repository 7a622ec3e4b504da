"""The MAC array's energy proxy: golden register trace, toggles, multiplier cost, layers."""

from __future__ import annotations

import numpy as np
import pytest

from hwgen.engines.mac_array.config import MacArrayConfig
from hwgen.engines.mac_array.golden import NMPatternError, Tile, expand_nm, run
from hwgen.engines.mac_array.stimulus import random_tile, test_tiles
from hwgen.engines.mac_array.tiles import load_tiles, save_tiles
from hwgen.engines.mac_array.weight_set import project
from hwgen.hdl.shift import shift_bits
from hwgen.power.calibration import multiplier_cost, pe_cost
from hwgen.power.energy import CATEGORIES, Schedule, energy_proxy, ideal_schedule, trace_registers
from hwgen.power.layer import layer_energy, layer_outputs, layer_tiles

SEED = 20261123


def popcount(x: int, bits: int) -> int:
    return bin(x & ((1 << bits) - 1)).count("1")


def held_weights(cfg: MacArrayConfig, stored: np.ndarray) -> np.ndarray:
    """The weights the weight registers stand for: themselves, or with shift PEs the weight of
    each shift code, decoded as hwgen/hdl/shift.py's docstring states the code (shift in the
    low bits, then neg, then nonzero)."""
    if not cfg.shift_pe:
        return stored
    sb = shift_bits(cfg.weight_bits)
    shift, neg, nonzero = stored & ((1 << sb) - 1), (stored >> sb) & 1, (stored >> (sb + 1)) & 1
    return nonzero * (1 - 2 * neg) * (1 << shift)


def test_one_pe_by_hand():
    """1x1 dense array, weight 3, activations 1, 2, 2, worked out from docs/architecture.md §4.1.

    The weight beat transfers in cycle 0, so the next weight holds 3 from cycle 1; the rows
    transfer in cycles 1..3 and the first one enters the input register (the PE's left input) at
    the end of cycle 1. The input register holds 1, 2, 2 in cycles 2..4, the multiplier's
    operand register (sel) one cycle later, cycles 3..5; the active weight is taken from the
    next one as the first row enters sel, so it holds 3 from cycle 3. The product register
    follows one cycle later (3, 6, 6 in cycles 4..6) and the partial sum one more (cycles
    5..7), then bubbles bring zeros.
    """
    cfg = MacArrayConfig(rows=1, cols=1)
    tile = Tile(np.array([[[3]]]), np.zeros((1, 1, 1), dtype=np.int64),
                np.array([[1], [2], [2]]))
    schedule = ideal_schedule(cfg, [tile])
    assert schedule.weight_cycles == (0,) and schedule.act_cycles == (1, 2, 3)
    trace = trace_registers(cfg, [tile], schedule)
    regs = trace.registers()
    # The operand, active weight and product are the registers of the product's block.
    assert set(regs) == {"pe_r0_c0_mul0.a_reg", "pe_r0_c0_mul0.b_reg", "pe_r0_c0_next_w0",
                         "pe_r0_c0_mul0.p", "pe_r0_c0_psum"}              # no column to feed
    assert regs["pe_r0_c0_next_w0"][1].tolist() == [0] + [3] * (trace.cycles - 1)
    assert regs["pe_r0_c0_mul0.a_reg"][1][:8].tolist() == [0, 0, 0, 1, 2, 2, 0, 0]
    assert regs["pe_r0_c0_mul0.b_reg"][1].tolist() == [0, 0, 0] + [3] * (trace.cycles - 3)
    assert regs["pe_r0_c0_mul0.p"][1][:9].tolist() == [0, 0, 0, 0, 3, 6, 6, 0, 0]
    assert regs["pe_r0_c0_psum"][1][:9].tolist() == [0, 0, 0, 0, 0, 3, 6, 6, 0]
    toggles = {k: int(v.sum()) for k, v in trace.toggles().items()}
    # weight 0 -> 3: 2 bits in the next set, 2 in the active one; operands 0 -> 1 -> 2 -> 2 -> 0:
    # 1 + 2 + 0 + 1; products 0 -> 3 -> 6 -> 6 -> 0: 2 + 2 + 0 + 2; the partial sum the same,
    # all in its LSB part (acc 22 bits, MSB group 6 bits never leaves 0).
    assert toggles == {"psum_lsb": 6, "psum_msb": 0, "act": 0, "sel": 4, "prod": 6,
                       "weight": 4, "idx": 0}


def test_two_tiles_by_hand():
    """1x2 dense array, tiles (weights 1, 2; rows 5) and (weights 3, 4; rows 7, 7), worked out
    from docs/architecture.md §4.1: the second tile's weights load while the first streams and
    each PE switches as the second tile's first row reaches it, one column later in column 1.

    Beats in cycles 0 and L_0 + C + 1 = 1 + 2 + 1 = 4 (the cycle after PE (0, 1) switched
    to tile 0); rows in cycles 1, 5, 6. Row 5 is in the input register (column 0's left input)
    in cycle 2 and in column 1's left input in cycle 3; row 7 in cycles 6 and 7. A PE switches
    as the first row leaves its left input for its multiplier's operand register: column 0 to
    1, 3 at the ends of cycles 2 and 6, column 1 to 2, 4 at the ends of cycles 3 and 7.
    """
    cfg = MacArrayConfig(rows=1, cols=2)
    zero = np.zeros((1, 2, 1), dtype=np.int64)
    tiles = [Tile(np.array([[[1], [2]]]), zero, np.array([[5]])),
             Tile(np.array([[[3], [4]]]), zero, np.array([[7], [7]]))]
    schedule = ideal_schedule(cfg, tiles)
    assert schedule.weight_cycles == (0, 4) and schedule.act_cycles == (1, 5, 6)
    regs = trace_registers(cfg, tiles, schedule).registers()
    assert regs["pe_r0_c0_next_w0"][1][:7].tolist() == [0, 1, 1, 1, 1, 3, 3]
    assert regs["pe_r0_c1_next_w0"][1][:7].tolist() == [0, 2, 2, 2, 2, 4, 4]
    assert regs["pe_r0_c0_mul0.b_reg"][1][:9].tolist() == [0, 0, 0, 1, 1, 1, 1, 3, 3]
    assert regs["pe_r0_c1_mul0.b_reg"][1][:10].tolist() == [0, 0, 0, 0, 2, 2, 2, 2, 4, 4]
    # Products two cycles after the left input: 5 * 1 in cycle 4, 5 * 2 in cycle 5; 7 * 3 in
    # cycles 8, 9 and 7 * 4 in cycles 9, 10. Nothing ever meets the other tile's weight.
    assert regs["pe_r0_c0_mul0.p"][1][:11].tolist() == [0, 0, 0, 0, 5, 0, 0, 0, 21, 21, 0]
    assert regs["pe_r0_c1_mul0.p"][1][:12].tolist() == [0, 0, 0, 0, 0, 10, 0, 0, 0, 28, 28,
                                                         0]


def test_two_products_are_summed_in_a_register_by_hand():
    """1x1 2:4 array, weights 3 and 5 at positions 0 and 2, rows (1, 0, 2, 0) and (2, 0, 1, 0)
    in cycles 1 and 2, worked out from docs/architecture.md §4.1: the operands (positions 0
    and 2 of the input register) are 1, 2 and 2, 1 in cycles 3, 4; the products 3, 6 and 10, 5
    in cycles 4, 5; with two products per PE their sum has a register of its own, 13 and 11 in
    cycles 5, 6, and the partial sum follows in cycles 6, 7.
    """
    cfg = MacArrayConfig(rows=1, cols=1, sparsity="2:4")
    assert cfg.pe_stages == 3 and cfg.latency == 4
    tile = Tile(np.array([[[3, 5]]]), np.array([[[0, 2]]]), np.array([[1, 0, 2, 0], [2, 0, 1, 0]]))
    schedule = ideal_schedule(cfg, [tile])
    assert schedule.act_cycles == (1, 2)
    trace = trace_registers(cfg, [tile], schedule)
    regs = {name: values for name, (_, values) in trace.registers().items()}
    assert regs["pe_r0_c0_mul0.a_reg"][:7].tolist() == [0, 0, 0, 1, 2, 0, 0]
    assert regs["pe_r0_c0_mul1.a_reg"][:7].tolist() == [0, 0, 0, 2, 1, 0, 0]
    assert regs["pe_r0_c0_mul0.p"][:8].tolist() == [0, 0, 0, 0, 3, 6, 0, 0]
    assert regs["pe_r0_c0_mul1.p"][:8].tolist() == [0, 0, 0, 0, 10, 5, 0, 0]
    assert regs["pe_r0_c0_prod_sum"][:9].tolist() == [0, 0, 0, 0, 0, 13, 11, 0, 0]
    assert regs["pe_r0_c0_psum"].tolist() == [0, 0, 0, 0, 0, 0, 13, 11, 0]
    # Products 0 -> 3 -> 6 -> 0: 2 + 2 + 2 bits, 0 -> 10 -> 5 -> 0: 2 + 4 + 2; their sum
    # 0 -> 13 -> 11 -> 0: 3 + 2 + 3.
    assert int(trace.toggles()["prod"].sum()) == 6 + 8 + 8


def test_negative_values_toggle_their_sign_extension():
    cfg = MacArrayConfig(rows=1, cols=1, acc_bits=20, msb_bits=4)
    tile = Tile(np.array([[[-1]]]), np.zeros((1, 1, 1), dtype=np.int64), np.array([[1]]))
    toggles = {k: int(v.sum()) for k, v in trace_registers(
        cfg, [tile], ideal_schedule(cfg, [tile])).toggles().items()}
    # -1 is all ones: the product register (16 bits) flips 16 bits up and 16 back; the partial
    # sum 16 LSB bits and 4 MSB bits each way; the operand 1 bit each way; the next and the
    # active weight register 8 bits once each.
    assert toggles["prod"] == 32 and toggles["psum_lsb"] == 32 and toggles["psum_msb"] == 8
    assert toggles["sel"] == 2
    assert toggles["weight"] == 16


def test_trace_rows_match_the_golden_results():
    """Every result the golden model computes appears in the last PE row's partial sums."""
    cfg = MacArrayConfig(rows=3, cols=4, sparsity="2:4")
    tiles = test_tiles(cfg, np.random.default_rng(SEED), 7)
    trace = trace_registers(cfg, tiles, ideal_schedule(cfg, tiles))
    psums = trace.values["psum"]                          # (cycles, R, C)
    for tile in tiles:
        y = run(cfg, tile).y
        for c in range(cfg.cols):
            column = psums[:, -1, c].tolist()
            # Column c's results pass through in order, one per cycle.
            seq = y[:, c].tolist()
            assert any(column[t:t + len(seq)] == seq for t in range(len(column))), (c, seq)


@pytest.mark.parametrize("cfg", [
    MacArrayConfig(rows=2, cols=3),
    MacArrayConfig(rows=3, cols=2, sparsity="2:4", weight_set="pow2"),
    MacArrayConfig(rows=3, cols=2, sparsity="2:4", weight_set="pow2", pe="multiply"),
    MacArrayConfig(rows=2, cols=2, sparsity="1:3", act_signed=False, acc_bits=17,
                   overflow="saturate", weight_set=[-7, -1, 0, 2, 5]),
], ids=["dense", "2of4-pow2-shift", "2of4-pow2-multiply", "1of3-set5-unsigned-sat"])
def test_energy_proxy_equals_the_trace_and_a_brute_force_multiplier_count(cfg):
    """energy_proxy (streaming) and trace_registers (stored) are two code paths: same toggles.
    The multiplier part is recounted here from the stored operands, element by element."""
    rng = np.random.default_rng(SEED)
    tiles = [random_tile(cfg, rng, 9), random_tile(cfg, rng, 4)]
    schedule = ideal_schedule(cfg, tiles)
    trace = trace_registers(cfg, tiles, schedule)
    cost = pe_cost(cfg)
    assert cost.pe == ("shift" if cfg.shift_pe else "multiply")
    proxy = energy_proxy(cfg, tiles, schedule, cost)
    assert proxy.register_toggles == {k: int(v.sum()) for k, v in trace.toggles().items()}
    assert proxy.cycles == schedule.cycles

    # The multiplier's activation input: its operand register.
    regs = trace.values
    operands = regs["sel"]
    decoded = held_weights(cfg, regs["weight"])
    mask = (1 << cfg.act_bits) - 1
    expected = 0.0
    for t in range(1, trace.cycles):
        for index in np.ndindex(operands.shape[1:]):
            flips = popcount(int(operands[(t - 1, *index)]) ^ int(operands[(t, *index)]),
                             cfg.act_bits)
            if flips:
                expected += cost.of(np.array([decoded[(t, *index)]]))[0] * flips
    assert proxy.multiplier_toggles == pytest.approx(expected, rel=1e-12)
    assert mask and proxy.total == proxy.registers + proxy.multiplier_toggles


@pytest.mark.parametrize("cfg", [
    MacArrayConfig(rows=3, cols=4),
    MacArrayConfig(rows=2, cols=3, sparsity="2:4", weight_set=[-9, -1, 0, 4, 6]),
    MacArrayConfig(rows=2, cols=2, act_signed=False, acc_bits=16, overflow="saturate",
                   weight_set="pow2"),
], ids=["dense", "2of4-set", "unsigned-sat-pow2"])
def test_lockstep_replay_equals_the_sequential_one(cfg):
    """The default (stretches of the run at once) and the cycle-by-cycle replay of the ideal
    schedule give the same proxy, on tiles of different lengths (some streaming back to back,
    some waiting for their weights), with stretches so short that their boundaries fall
    everywhere: inside a tile, on a weight switch, in the drain."""
    rng = np.random.default_rng(SEED)
    tiles = [random_tile(cfg, rng, b) for b in (7, 1, 12, 3)]
    # A first tile of zero weights loads over the registers' initial zeros: no weight toggles.
    tiles[0] = Tile(np.zeros_like(tiles[0].values), tiles[0].indices, tiles[0].acts)
    cost = pe_cost(cfg)
    sequential = energy_proxy(cfg, tiles, ideal_schedule(cfg, tiles), cost)
    for span in (None, 1, 2, 3, 5, 8):
        lockstep = energy_proxy(cfg, tiles, cost=cost, span=span)
        assert lockstep.register_toggles == sequential.register_toggles, span
        assert lockstep.cycles == sequential.cycles
        assert lockstep.multiplier_toggles == pytest.approx(sequential.multiplier_toggles,
                                                            rel=1e-12)


def test_weight_set_registers_hold_decoded_weights():
    """Codes travel; the PE registers hold the weights the table decoded at load."""
    cfg = MacArrayConfig(rows=2, cols=2, weight_set=[-3, 0, 4, 9])
    tile = random_tile(cfg, np.random.default_rng(SEED), 3)
    trace = trace_registers(cfg, [tile], ideal_schedule(cfg, [tile]))
    assert (trace.values["weight"][-1] == tile.values).all()
    assert trace.registers()["pe_r1_c1_mul0.b_reg"][0] == 8


def test_zero_weights_leave_products_and_sums_still():
    cfg = MacArrayConfig(rows=3, cols=3)
    rng = np.random.default_rng(SEED)
    tile = Tile(np.zeros((3, 3, 1), dtype=np.int64), np.zeros((3, 3, 1), dtype=np.int64),
                rng.integers(-128, 128, size=(20, 3)))
    proxy = energy_proxy(cfg, [tile])
    assert proxy.register_toggles["prod"] == proxy.register_toggles["psum_lsb"] == 0
    assert proxy.register_toggles["act"] > 0
    cost = multiplier_cost(8, 8, True)
    # A multiplier with weight 0 still switches (the activation drives gates), at cost[0] per
    # activation bit toggle.
    assert proxy.multiplier_toggles > 0
    assert proxy.multiplier_toggles / cost.of(np.array([0]))[0] == pytest.approx(
        round(proxy.multiplier_toggles / cost.of(np.array([0]))[0]))


def test_stalls_freeze_every_register():
    """A schedule with stall cycles gives the same values, the cycle after each stalled cycle
    repeated (the pipeline freezes a cycle after the stall)."""
    cfg = MacArrayConfig(rows=2, cols=2)
    tile = random_tile(cfg, np.random.default_rng(SEED), 6)
    base = ideal_schedule(cfg, [tile])
    # Stall while results leave, after the last row entered (the cycle after a stall takes no
    # row).
    after_last_row = base.act_cycles[-1] + 1
    stalls = (after_last_row, after_last_row + 2, after_last_row + 3)
    shifted = Schedule(cycles=base.cycles + len(stalls), weight_cycles=base.weight_cycles,
                       act_cycles=base.act_cycles, stall_cycles=stalls)
    ideal = trace_registers(cfg, [tile], base).values["psum"]
    stalled = trace_registers(cfg, [tile], shifted).values["psum"]
    keep = [t for t in range(shifted.cycles) if t - 2 not in stalls]
    assert np.array_equal(stalled[keep], ideal)


def test_a_row_right_after_a_stall_is_refused():
    cfg = MacArrayConfig(rows=2, cols=2)
    tile = random_tile(cfg, np.random.default_rng(SEED), 6)
    base = ideal_schedule(cfg, [tile])
    bad = Schedule(cycles=base.cycles, weight_cycles=base.weight_cycles,
                   act_cycles=base.act_cycles, stall_cycles=(base.act_cycles[2] - 1,))
    with pytest.raises(ValueError, match=f"transferred in cycle {base.act_cycles[2]}, after the "
                                         f"stalled cycle {base.act_cycles[2] - 1}"):
        trace_registers(cfg, [tile], bad)


@pytest.mark.parametrize("sparsity", [None, "2:4"])
def test_ideal_schedule_ends_with_every_data_register_flushed(sparsity):
    cfg = MacArrayConfig(rows=3, cols=4, sparsity=sparsity)
    rng = np.random.default_rng(SEED)
    tiles = [random_tile(cfg, rng, 5), random_tile(cfg, rng, 2)]
    trace = trace_registers(cfg, tiles, ideal_schedule(cfg, tiles))
    for group, values in trace.values.items():
        if group not in ("weight", "idx", "next_weight", "next_idx"):
            assert not values[-1].any(), group


def test_schedule_must_fit_the_tiles():
    cfg = MacArrayConfig(rows=2, cols=2)
    tile = random_tile(cfg, np.random.default_rng(SEED), 3)
    with pytest.raises(ValueError, match="schedule has 2 weight beats and 2 activation rows; "
                                         "the tiles need 2 and 3"):
        trace_registers(cfg, [tile], Schedule(20, (0, 1), (2, 3)))


def test_layer_outputs_equal_matmul_and_tiles_round_trip(tmp_path):
    cfg = MacArrayConfig(rows=3, cols=2, sparsity="2:4")
    rng = np.random.default_rng(SEED)
    k, c_out, b = 17, 5, 6                               # neither a multiple of the tile
    dense = np.zeros((k, c_out), dtype=np.int64)
    for g in range(0, k, 4):                             # at most 2 nonzeros per group of 4
        for c in range(c_out):
            rows = rng.choice(np.arange(g, min(g + 4, k)), size=min(2, k - g), replace=False)
            dense[rows, c] = rng.integers(-128, 128, size=len(rows))
    acts = rng.integers(-128, 128, size=(b, k))
    assert np.array_equal(layer_outputs(cfg, dense, acts), acts @ dense)
    tiles = layer_tiles(cfg, dense, acts)
    assert len(tiles) == 2 * 3                           # ceil(17 / 12) x ceil(5 / 2)
    assert np.array_equal(expand_nm(tiles[0].values, tiles[0].indices, 4), dense[:12, :2])
    save_tiles(tmp_path / "t.npz", tiles)
    back = load_tiles(tmp_path / "t.npz")
    assert all(np.array_equal(x.values, y.values) and np.array_equal(x.acts, y.acts)
               for x, y in zip(tiles, back))
    dense[0:3, 0] = 1                                    # 3 nonzeros in a group of 4
    with pytest.raises(NMPatternError):
        layer_tiles(cfg, dense, acts)


def test_pow2_projection_lowers_the_multiplier_switching():
    """Not a theorem, a regression guard on a fixed random layer: restricting weights to powers
    of two lowers the calibrated multiplier switching, and the register total with it."""
    cfg = MacArrayConfig(rows=4, cols=4)
    rng = np.random.default_rng(SEED)
    weights = np.clip(np.round(rng.normal(0, 30, size=(8, 8))), -128, 127).astype(np.int64)
    acts = rng.integers(0, 128, size=(32, 8))
    pow2 = MacArrayConfig(rows=4, cols=4, weight_set="pow2", pe="multiply")
    before = layer_energy(cfg, weights, acts)
    after = layer_energy(pow2, project(weights, pow2.codebook), acts)
    assert after.multiplier_toggles < before.multiplier_toggles
    assert set(before.register_toggles) == set(CATEGORIES)


def test_shift_pes_hold_shift_codes_and_switch_less_than_multipliers():
    """The same pow2 layer on shift PEs and on multiplier PEs: the same outputs; the weight
    registers hold the shift codes (5 bits for 8-bit weights, decoded back to the weights);
    every other register switches identically; the calibrated shift product switches less than
    the multiplier (119 against 408 gates at 8x8), which is a regression guard, not a theorem."""
    rng = np.random.default_rng(SEED)
    shift = MacArrayConfig(rows=4, cols=4, weight_set="pow2")
    multiply = MacArrayConfig(rows=4, cols=4, weight_set="pow2", pe="multiply")
    weights = project(np.clip(np.round(rng.normal(0, 30, size=(8, 8))), -128, 127),
                      shift.codebook)
    weights[0, :4] = [-128, 0, 64, -1]          # the most negative weight and 0 are in the layer
    acts = rng.integers(-128, 128, size=(32, 8))
    assert (layer_outputs(shift, weights, acts) == layer_outputs(multiply, weights, acts)).all()
    tile = random_tile(shift, rng, 5)
    shift_trace = trace_registers(shift, [tile], ideal_schedule(shift, [tile]))
    multiply_trace = trace_registers(multiply, [tile], ideal_schedule(multiply, [tile]))
    assert shift_trace.values["weight"].min() >= 0 and shift_trace.values["weight"].max() < 32
    assert (held_weights(shift, shift_trace.values["weight"])
            == multiply_trace.values["weight"]).all()
    assert shift_trace.registers()["pe_r0_c0_mul0.b_reg"][0] == 5
    on_shift, on_multiply = layer_energy(shift, weights, acts), layer_energy(multiply, weights, acts)
    differ = {c for c in CATEGORIES
              if on_shift.register_toggles[c] != on_multiply.register_toggles[c]}
    assert differ == {"weight"}
    assert on_shift.multiplier_toggles < 0.5 * on_multiply.multiplier_toggles
