"""Multiplier switching-cost calibration (hwgen/power/calibration.py).

Yosys is the real YoWASP build, never mocked; tests that run it are marked ``synth``. Widths are
4 and 6 bits where that shows the behaviour, 8x8 where the brief's numbers are about it. The gate
simulator itself is tested in ``test_power_gatesim.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from hwgen.engines.mac_array.weight_set import codebook
from hwgen.hdl.shift import encode as encode_shift
from hwgen.power import calibration
from hwgen.power.calibration import (
    CalibrationError,
    MultiplierCost,
    cost_cache_path,
    multiplier_cost,
    multiplier_netlist,
)

#: Seed of the random 8x8 product check (recorded so a failure can be replayed).
PRODUCT_SEED = 20240611


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test calibrates into its own cache, never the user's."""
    monkeypatch.setenv("HWGEN_CACHE", str(tmp_path / "cache"))


def _all_pairs(weight_bits, act_bits, act_signed):
    w = np.arange(-(1 << (weight_bits - 1)), 1 << (weight_bits - 1))
    a = (np.arange(-(1 << (act_bits - 1)), 1 << (act_bits - 1)) if act_signed
         else np.arange(1 << act_bits))
    return np.meshgrid(w, a, indexing="ij")


# -- the netlist is the multiplier -----------------------------------------------------------

@pytest.mark.synth
@pytest.mark.parametrize("act_signed", [True, False], ids=["signed", "unsigned"])
def test_netlist_computes_product_exhaustively_4x4(act_signed):
    netlist = multiplier_netlist(4, 4, act_signed)
    assert netlist.inputs == {"w": (4, True), "a": (4, act_signed)}
    assert netlist.outputs == {"prod": (8 if act_signed else 9, True)}
    w, a = _all_pairs(4, 4, act_signed)
    prod = netlist.evaluate({"w": w, "a": a})["prod"]
    assert prod.shape == (16, 16)
    np.testing.assert_array_equal(prod, w * a)


@pytest.mark.synth
def test_netlist_computes_product_8x8_random():
    netlist = multiplier_netlist(8, 8, True)
    rng = np.random.default_rng(PRODUCT_SEED)
    w = np.concatenate([[-128, -128, 127, 127], rng.integers(-128, 128, size=20000)])
    a = np.concatenate([[-128, 127, -128, 127], rng.integers(-128, 128, size=20000)])
    np.testing.assert_array_equal(netlist.evaluate({"w": w, "a": a})["prod"], w * a)


# -- the cost table ----------------------------------------------------------------------------

@pytest.mark.synth
def test_table_is_deterministic_and_second_call_comes_from_cache(tmp_path, monkeypatch):
    first = multiplier_cost(6, 6, True, samples=128, seed=3)
    assert isinstance(first, MultiplierCost)
    assert (first.weight_bits, first.act_bits, first.act_signed, first.samples, first.seed) \
        == (6, 6, True, 128, 3)
    assert first.cost.shape == (64,) and first.cost.dtype == np.float64
    assert first.w_min == -32 and first.gates > 0
    path = cost_cache_path(6, 6, True, samples=128, seed=3)
    assert path == tmp_path / "cache" / "energy" / "multiplier-w6-a6s-n128-seed3-v1.json"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, path.name + ".lock"]

    def no_yosys(*args, **kwargs):
        raise AssertionError("yosys ran although the table is cached")

    with monkeypatch.context() as patch:
        patch.setattr(calibration, "run_tool", no_yosys)
        second = multiplier_cost(6, 6, True, samples=128, seed=3)
    np.testing.assert_array_equal(second.cost, first.cost)
    assert second.gates == first.gates

    # A fresh calibration (empty cache, Yosys again) gives the identical table.
    monkeypatch.setenv("HWGEN_CACHE", str(tmp_path / "other-cache"))
    fresh = multiplier_cost(6, 6, True, samples=128, seed=3)
    np.testing.assert_array_equal(fresh.cost, first.cost)
    assert fresh.gates == first.gates
    assert not first.cost.flags.writeable


@pytest.mark.synth
def test_table_equals_per_lane_toggle_sum():
    # 100 samples are not a multiple of 64: the padded word-level path must still agree with
    # per-lane toggles summed over the same pairs (drawn as the module doc states).
    table = multiplier_cost(6, 6, False, samples=100, seed=7)
    a0, a1 = np.random.default_rng(7).integers(0, 63, size=(2, 100), endpoint=True)
    flips = sum((int(x) ^ int(y)).bit_count() for x, y in zip(a0, a1))
    netlist = multiplier_netlist(6, 6, False)
    for w in (-32, -5, 0, 1, 31):
        toggles = netlist.toggles({"w": w, "a": a0}, {"w": w, "a": a1})
        assert toggles.shape == (100,)
        assert table.of(w) == pytest.approx(toggles.sum() / flips, rel=1e-12)
    c = table.cost
    np.testing.assert_array_equal(table.of([[0, -32], [31, 0]]), [[c[32], c[0]], [c[63], c[32]]])


@pytest.mark.synth
def test_cost_is_physically_plausible_8x8():
    table = multiplier_cost(8, 8, True)
    w = np.arange(-128, 128)
    assert table.gates == multiplier_netlist(8, 8, True).gates
    # A zero weight leaves every partial product off: less switching than -1 (all weight bits
    # set) or -128 (the sign bit's partial products).
    assert table.of(0) < table.of(-1)
    assert table.of(0) < table.of(-128)
    assert (table.cost[w != 0] > 0).all()


# -- the shift PE's product ---------------------------------------------------------------------

@pytest.mark.synth
@pytest.mark.parametrize("act_signed", [True, False], ids=["signed", "unsigned"])
def test_shift_netlist_computes_every_pow2_product_exhaustively(act_signed):
    """The shift product's gates, port w taking shift codes: every pow2 weight of 5 bits
    (-16 and 0 included) times every 6-bit activation equals w * a."""
    netlist = multiplier_netlist(5, 6, act_signed, pe="shift")
    assert netlist.inputs == {"w": (5, False), "a": (6, act_signed)}
    assert netlist.outputs == {"prod": (11, True)}
    w, a = _all_pairs(5, 6, act_signed)
    held = np.bitwise_count(np.abs(w)) <= 1
    w, a = w[held], a[held]
    assert {-16, 0, 8}.issubset(set(w.tolist()))
    prod = netlist.evaluate({"w": encode_shift(w, 5), "a": a})["prod"]
    np.testing.assert_array_equal(prod, w * a)


@pytest.mark.synth
def test_shift_table_has_costs_for_pow2_weights_only_and_its_own_cache_file():
    shift = multiplier_cost(8, 8, True, pe="shift")
    multiply = multiplier_cost(8, 8, True)
    assert (shift.pe, multiply.pe) == ("shift", "multiply")
    book = np.array(codebook("pow2", 8))
    assert not np.isnan(shift.of(book)).any() and np.isnan(shift.cost).sum() == 256 - 16
    with pytest.raises(ValueError, match="^weight 3 has no cost: a shift PE cannot hold it$"):
        shift.of([1, 3])
    # Fewer gates than the multiplier, and less switching for every nonzero pow2 weight
    # (a regression guard on the measured 119 against 408 gates, not a theorem).
    assert shift.gates < multiply.gates / 2
    nonzero = book[book != 0]
    assert (shift.of(nonzero) < multiply.of(nonzero)).all()
    assert cost_cache_path(8, 8, True, pe="shift").name.startswith("shift-w8-a8s-")
    assert cost_cache_path(8, 8, True, pe="shift").is_file()
    # From the cache: the same table, NaN (stored as null) included.
    again = multiplier_cost(8, 8, True, pe="shift")
    np.testing.assert_array_equal(again.cost, shift.cost)


# -- errors ------------------------------------------------------------------------------------

@pytest.mark.synth
def test_yosys_failure_raises_calibration_error_with_log(monkeypatch):
    monkeypatch.setattr(calibration, "ABC_GATES", "AND,BOGUS")
    with pytest.raises(CalibrationError) as info:
        multiplier_netlist(4, 4, True)
    message = str(info.value)
    assert message.startswith("yosys failed to synthesize pe_multiplier (weight_bits=4, "
                              "act_bits=4, act_signed=True, pe=multiply), exit status 1; last log "
                              "lines:\n")
    assert "ERROR: Command syntax error: Unsupported gate type: BOGUS" in message


def test_unsimulatable_netlist_raises_calibration_error(monkeypatch):
    monkeypatch.setattr(calibration, "synthesize_multiplier", lambda *args: {"modules": {}})
    with pytest.raises(CalibrationError) as info:
        multiplier_netlist(4, 4, True)
    assert str(info.value) == ("the synthesized pe_multiplier cannot be simulated: netlist has "
                               "no module 'pe_multiplier' (modules: [])")


@pytest.mark.parametrize("kwargs, message", [
    ({"weight_bits": 1}, "weight_bits = 1: expected an integer from 2 to 16"),
    ({"weight_bits": 17}, "weight_bits = 17: expected an integer from 2 to 16"),
    ({"weight_bits": 8.0}, "weight_bits = 8.0: expected an integer from 2 to 16"),
    ({"act_bits": 0}, "act_bits = 0: expected an integer from 2 to 16"),
    ({"act_bits": True}, "act_bits = True: expected an integer from 2 to 16"),
    ({"samples": 0}, "samples = 0: expected an integer from 1 to 100000"),
    ({"samples": 100001}, "samples = 100001: expected an integer from 1 to 100000"),
    ({"act_signed": 1}, "act_signed = 1: expected True or False"),
    ({"seed": -1}, "seed = -1: expected a non-negative integer"),
    ({"pe": "dsp"}, "pe = 'dsp': expected one of 'multiply', 'shift'"),
])
def test_bad_arguments(kwargs, message, tmp_path):
    args = {"weight_bits": 4, "act_bits": 4, "act_signed": True} | kwargs
    with pytest.raises(ValueError) as info:
        multiplier_cost(**args)
    assert str(info.value) == message
    assert not (tmp_path / "cache").exists()


def test_weight_out_of_range():
    table = MultiplierCost(weight_bits=4, act_bits=4, act_signed=True, samples=1, seed=0,
                           gates=1, cost=np.arange(16.0))
    assert table.of(-8) == 0.0 and table.of(7) == 15.0
    with pytest.raises(ValueError) as info:
        table.of([3, 8])
    assert str(info.value) == "weight 8 is outside the 4-bit signed range -8..7"
    with pytest.raises(ValueError, match="expected integers"):
        table.of(1.5)
