"""An SNN network's RTL under Verilator against golden.network (cocotb, through hwgen.flows.sim).

One small 3-layer config (fast / laggy / sequential layers, fiber in, dense out) is one Verilator
build; every run checks each beat on ``out`` and on both links, the exact per-layer timing of the
no-stall phase, weight loads sent right behind samples, and the perf counters (see
sim/test_snn_network.py). Seeds are recorded in the test ids; set HWGEN_TEST_SEED to try others.
"""

from __future__ import annotations

import dataclasses
import os

import pytest

from hwgen.engines.snn_network import SnnNetworkConfig
from hwgen.flows.sim import SimError, build, run_testbench, simulate

pytestmark = pytest.mark.sim

SEED = int(os.environ.get("HWGEN_TEST_SEED", "20261202"))

LAYERS = [{"out_neurons": 12, "pes": 3, "threshold": 40},
          {"out_neurons": 10, "pes": 2, "threshold": 30, "join": "laggy", "laggy_adders": 4},
          {"out_neurons": 5, "pes": 2, "threshold": 20, "weight_bits": 6,
           "dataflow": "sequential", "fire": "gt", "leak": "shift", "leak_shift": 1}]
CFG = SnnNetworkConfig(name="snn_net_small", timesteps=4, in_neurons=24, chunk=8,
                       in_format="fiber", out_format="dense", layers=LAYERS)


def with_layer(i: int, **changes) -> SnnNetworkConfig:
    layers = [dict(t) for t in LAYERS]
    layers[i].update(changes)
    return dataclasses.replace(CFG, layers=layers)


@pytest.mark.parametrize("seed", [SEED], ids=lambda s: f"seed{s}")
def test_network_rtl_matches_golden(seed):
    result = simulate(CFG, seed=seed, vectors=5)
    assert result.passed, f"seed {seed}: {result.message}"
    details = result.details
    assert [s["name"] for s in details["segments"]] == ["random", "stress"]
    assert all(n > 0 for n in details["nonzero_link_beats"]), \
        "a layer never fired: the check would be weak"
    assert len(details["link_beats"]) == 2 and all(details["link_beats"])
    throughput = details["throughput"]
    assert throughput["cycles_per_sample"] == throughput["model_cycles_per_sample"]
    assert len(throughput["layer_last_out"]) == 3
    assert result.stall > 0, "backpressure phase produced no stall cycles"
    assert [s["stall_not_busy"] for s in details["segments"]] == [0, 0]


def test_network_testbench_catches_a_wrong_layer():
    """Layer 1 built with theta = 30, checked against a golden model with theta = 45: the
    beats of link 1 and of ``out`` differ."""
    build_dir = build(CFG)
    result = run_testbench(with_layer(1, threshold=45), build_dir, seed=SEED, vectors=3, waves=False, valid_prob=0.7,
                           ready_prob=0.7, progress=lambda line: None)
    assert not result.passed and result.errors > 0


def test_network_testbench_catches_a_cycle_model_mismatch():
    """The RTL built with 3 TPPEs in layer 0, checked against the cycle model of 1 (same
    outputs: P does not change the numbers), must fail on timing alone."""
    build_dir = build(CFG)
    result = run_testbench(with_layer(0, pes=1), build_dir, seed=SEED, vectors=3, waves=False,
                           valid_prob=0.7, ready_prob=0.7, progress=lambda line: None,
                           options={"phase2": False})
    assert not result.passed
    assert result.errors == 0 and result.details["timing_errors"], result.message


def test_network_testbench_rejects_unknown_options():
    with pytest.raises(SimError, match="crashed before writing results"):
        simulate(CFG, vectors=1, options={"profle": "vgg16"})
