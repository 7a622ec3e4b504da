"""The MAC array RTL under Verilator against the golden model (cocotb, through hwgen.flows.sim).

Every run checks each result beat, the exact cycle model of a no-stall tile and the perf counters
(see sim/test_mac_array.py). Seeds are recorded in the test ids; set HWGEN_TEST_SEED to try others.
"""

from __future__ import annotations

import dataclasses
import os
import sys

import pytest

from hwgen.engines.mac_array import MacArrayConfig
from hwgen.flows.sim import build, run_testbench, simulate

pytestmark = pytest.mark.sim

SEED = int(os.environ.get("HWGEN_TEST_SEED", "20261122"))

CONFIGS = {
    "dense_1x1": MacArrayConfig(name="dense_1x1", rows=1, cols=1),
    "dense_4x4": MacArrayConfig(name="dense_4x4", rows=4, cols=4),
    "dense_8x8": MacArrayConfig(name="dense_8x8", rows=8, cols=8),
    "dense_3x5": MacArrayConfig(name="dense_3x5", rows=3, cols=5),
    "nm_2of4": MacArrayConfig(name="nm_2of4", rows=4, cols=4, sparsity="2:4"),
    "nm_1of4_unsigned": MacArrayConfig(name="nm_1of4_unsigned", rows=3, cols=2, sparsity="1:4",
                                       act_signed=False),
    "unsigned_4x4": MacArrayConfig(name="unsigned_4x4", rows=4, cols=4, act_signed=False),
    # acc_bits = weight_bits + act_bits: all-min and all-max tiles overflow after two rows.
    "wrap_acc16": MacArrayConfig(name="wrap_acc16", rows=4, cols=3, acc_bits=16),
    "saturate_acc16": MacArrayConfig(name="saturate_acc16", rows=4, cols=3, acc_bits=16,
                                     overflow="saturate"),
    "saturate_2of4_unsigned": MacArrayConfig(name="saturate_2of4_unsigned", rows=3, cols=2,
                                             sparsity="2:4", act_signed=False, acc_bits=17,
                                             overflow="saturate"),
    "wide_16bit": MacArrayConfig(name="wide_16bit", rows=2, cols=2, weight_bits=16,
                                 act_bits=16, acc_bits=33, overflow="saturate"),
    "set_pow2_2of4": MacArrayConfig(name="set_pow2_2of4", rows=4, cols=3, sparsity="2:4",
                                    weight_set="pow2"),
    "set_list_unsigned": MacArrayConfig(name="set_list_unsigned", rows=3, cols=3,
                                        act_signed=False, weight_set=[-5, 0, 1, 2, 7],
                                        overflow="saturate"),
}


def _check(result, seed):
    assert result.passed, f"seed {seed}: {result.message}"
    assert result.errors == 0 and result.beats == result.details["expected_beats"]


@pytest.mark.parametrize("key", CONFIGS, ids=lambda k: f"{k}-seed{SEED}")
def test_rtl_matches_golden_with_gaps_and_backpressure(key):
    cfg = CONFIGS[key]
    result = simulate(cfg, seed=SEED, vectors=48)
    _check(result, SEED)
    # The no-stall phase streams one activation row per cycle.
    assert result.utilization == 1.0
    assert result.stall > 0, "backpressure phase produced no stall cycles"


def test_heavy_backpressure_and_sparse_valid():
    cfg = CONFIGS["nm_2of4"]
    result = simulate(cfg, seed=SEED + 1, vectors=16, valid_prob=0.3, ready_prob=0.2)
    _check(result, SEED + 1)
    assert result.stall > result.beats / 2


def test_testbench_catches_a_wrong_expectation():
    """The RTL built with wrap, checked against a saturating golden model, must fail."""
    built = CONFIGS["wrap_acc16"]
    build_dir = build(built)
    wrong = dataclasses.replace(built, overflow="saturate")
    result = run_testbench(wrong, build_dir, seed=SEED, vectors=8, waves=False, valid_prob=0.7,
                           ready_prob=0.7, progress=lambda line: None)
    assert not result.passed
    assert result.errors > 0


def test_waves_are_written():
    result = simulate(CONFIGS["dense_1x1"], seed=SEED, vectors=4, waves=True)
    _check(result, SEED)
    assert result.waves_path is not None
    assert "pe_r0_c0_psum" in result.waves_path.read_text()


def test_a_build_belongs_to_its_python_environment(monkeypatch, tmp_path):
    """The simulator links cocotb's library from the environment that built it (by path): a
    build made by another environment (removed since, say) is not reused, and this one runs."""
    cfg = MacArrayConfig(name="env_m1", rows=1, cols=1)
    monkeypatch.setenv("HWGEN_CACHE", str(tmp_path / "cache"))
    here = build(cfg)
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "removed-venv"))
    elsewhere = build(cfg)
    assert elsewhere != here and here.is_dir() and elsewhere.is_dir()
    monkeypatch.undo()
    monkeypatch.setenv("HWGEN_CACHE", str(tmp_path / "cache"))
    assert build(cfg) == here
    result = simulate(cfg, seed=SEED, vectors=4)
    assert result.passed, result.message
