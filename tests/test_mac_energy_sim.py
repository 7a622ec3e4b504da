"""The energy proxy's register toggles against the Verilator waveform of the same run, exactly.

The testbench runs its usual stimulus (random gaps, backpressure, edge tiles) with a VCD dump and
records when every transfer and stall happened; the golden trace replays that schedule, and the
toggles of every PE register category must equal the waveform's in every cycle.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hwgen.engines.mac_array.config import MacArrayConfig
from hwgen.engines.mac_array.tiles import load_tiles
from hwgen.engines.mac_array.weight_set import project
from hwgen.flows.sim import simulate
from hwgen.power.energy import CATEGORIES
from hwgen.power.layer import layer_energy, layer_outputs, simulate_layer, waveform_toggles

pytestmark = pytest.mark.sim

SEED = 20261123

CONFIGS = {
    "dense_3x4": MacArrayConfig(name="energy_dense_3x4", rows=3, cols=4, acc_bits=18,
                                msb_bits=5),
    # Shift PEs: the weight registers hold shift codes.
    "pow2_2of4": MacArrayConfig(name="energy_pow2_2of4", rows=3, cols=3, sparsity="2:4",
                                weight_set="pow2"),
    "pow2_multiply": MacArrayConfig(name="energy_pow2_mul", rows=2, cols=3, weight_set="pow2",
                                    pe="multiply"),
    "set5_1of3_unsigned_sat": MacArrayConfig(
        name="energy_set5_1of3", rows=2, cols=3, sparsity="1:3", act_signed=False,
        acc_bits=17, overflow="saturate", weight_set=[-7, -1, 0, 2, 5]),
}


@pytest.fixture(scope="module", params=list(CONFIGS))
def waves_run(request):
    """(cfg, SimResult) of one testbench run with waves, gaps and backpressure."""
    cfg = CONFIGS[request.param]
    result = simulate(cfg, seed=SEED, vectors=24, waves=True, valid_prob=0.6, ready_prob=0.6)
    assert result.passed, result.message
    return cfg, result


def test_waveform_toggles_equal_golden_every_cycle(waves_run):
    cfg, result = waves_run
    run = result.details["run"]
    assert run["stall_cycles"], "the run must include backpressure stalls"
    tiles = load_tiles(run["tiles"])
    from_waves, golden = waveform_toggles(cfg, result.waves_path, run, tiles)
    for category in CATEGORIES:
        differ = np.flatnonzero(from_waves[category] != golden[category])
        assert differ.size == 0, (f"{category}: cycles {differ[:5].tolist()} differ: waveform "
                                  f"{from_waves[category][differ[:5]].tolist()}, golden "
                                  f"{golden[category][differ[:5]].tolist()}")
    # Every category the configuration has switched at all (else the comparison proves little).
    present = {"psum_lsb", "psum_msb", "act", "sel", "prod", "weight"} | (
        {"idx"} if cfg.idx_bits else set())
    assert all(golden[c].sum() > 0 for c in present)
    assert all(golden[c].sum() == 0 for c in set(CATEGORIES) - present)


def test_a_schedule_off_by_one_cycle_is_caught(waves_run):
    """The comparison can fail: the same run with every stall one cycle late differs."""
    cfg, result = waves_run
    run = dict(result.details["run"])
    run["stall_cycles"] = [t + 1 for t in run["stall_cycles"]
                           if t + 2 not in set(run["act_cycles"])]
    from_waves, golden = waveform_toggles(cfg, result.waves_path, run,
                                          load_tiles(run["tiles"]))
    assert any((from_waves[c] != golden[c]).any() for c in CATEGORIES)


def test_a_layer_through_the_rtl():
    """A small layer with pow2 weights: RTL outputs equal the golden layer, the waveform's
    toggles equal the golden proxy of that run, which equals the ideal-schedule proxy."""
    cfg = dataclasses.replace(CONFIGS["pow2_2of4"])
    rng = np.random.default_rng(SEED)
    k, c_out, b = 12, 5, 10
    dense = np.zeros((k, c_out), dtype=np.int64)
    for g in range(0, k, 4):
        for c in range(c_out):
            rows = rng.choice(np.arange(g, g + 4), size=2, replace=False)
            dense[rows, c] = rng.integers(-100, 100, size=2)
    weights = project(dense, cfg.codebook)
    acts = rng.integers(-128, 128, size=(b, k))
    sim = simulate_layer(cfg, weights, acts, waves=True, seed=SEED)
    assert np.array_equal(sim.outputs, layer_outputs(cfg, weights, acts))
    assert np.array_equal(sim.outputs, acts @ weights)
    assert sim.register_toggles_vcd == sim.energy_golden.register_toggles
    # No gaps and no backpressure: the run switches exactly as the ideal schedule says.
    ideal = layer_energy(cfg, weights, acts)
    assert sim.energy_golden.register_toggles == ideal.register_toggles
    assert sim.energy_golden.multiplier_toggles == pytest.approx(ideal.multiplier_toggles,
                                                                 rel=1e-12)
