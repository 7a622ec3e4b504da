"""The MAC array RTL under Verilator against the golden model (cocotb, through hwgen.flows.sim).

Every run checks each result beat, the exact cycle model of the tiles it streams back to back
without stalls (every transfer cycle, and the busy counter) and the perf counters (see
sim/test_mac_array.py). Seeds are recorded in the test ids; set HWGEN_TEST_SEED to try others.
"""

from __future__ import annotations

import dataclasses
import os
import sys

import numpy as np
import pytest

from hwgen.emit.design import elaborate
from hwgen.engines.mac_array import MacArrayConfig, golden
from hwgen.engines.mac_array.stimulus import random_tile
from hwgen.engines.mac_array.tiles import save_tiles
from hwgen.engines.mac_array.weight_set import project
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
    # pow2 weights on multipliers (pe = "multiply"; shift PEs: tests/test_mac_shift.py)
    "set_pow2_2of4": MacArrayConfig(name="set_pow2_2of4", rows=4, cols=3, sparsity="2:4",
                                    weight_set="pow2", pe="multiply"),
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


def _given(cfg, tiles, tmp_path, seed, valid_prob=1.0, ready_prob=1.0):
    """Stream ``tiles`` through the RTL (the testbench's ``tiles`` option)."""
    path = tmp_path / "tiles.npz"
    save_tiles(path, tiles)
    result = simulate(cfg, seed=seed, valid_prob=valid_prob, ready_prob=ready_prob,
                      options={"tiles": str(path)})
    _check(result, seed)
    return result


@pytest.mark.parametrize("key", ["dense_4x4", "nm_2of4", "set_pow2_2of4"],
                         ids=lambda k: f"{k}-seed{SEED}")
def test_multi_tile_layer_with_gaps_backpressure_and_weights_early_and_late(key, tmp_path):
    """Tiles long and short, a one-row tile among them, with random gaps and backpressure; each
    tile's weights are offered early (the array holds them back while the bank is in use),
    during the previous tile or late (after its last result)."""
    cfg = CONFIGS[key]
    rng = np.random.default_rng(SEED)
    tiles = [random_tile(cfg, rng, rows) for rows in (25, 1, 9, 2, 31, 4, 12)]
    result = _given(cfg, tiles, tmp_path, SEED, valid_prob=0.6, ready_prob=0.6)
    assert result.stall > 0
    assert set(result.details["weight_timing"][1:]) == {"early", "during", "late"}


@pytest.mark.parametrize("key", ["dense_4x4", "dense_3x5", "nm_2of4"],
                         ids=lambda k: f"{k}-seed{SEED}")
def test_tiles_stream_back_to_back_at_the_cycle_model(key, tmp_path):
    """No gaps, no backpressure: the testbench holds every transfer to the cycle model and the
    design's busy counter to its total. Tiles of R + C + 1 rows or more follow each other
    without a single idle cycle; a shorter one waits for the next tile's weights, as modelled."""
    cfg = CONFIGS[key]
    hide = cfg.hide_rows
    rng = np.random.default_rng(SEED)
    lengths = [hide, 40, hide + 1, 17, hide]
    result = _given(cfg, [random_tile(cfg, rng, b) for b in lengths], tmp_path, SEED)
    tp, model = result.details["throughput"], golden.cycle_model(cfg, lengths)
    assert model.gaps == 0
    assert tp["busy"] == tp["cycles_total"] == model.total == (
        cfg.rows + sum(lengths) + 1 + cfg.latency)
    assert tp["cycles_stream"] == sum(lengths) and result.utilization == 1.0

    short = [hide - 1, 1, 3]
    result = _given(cfg, [random_tile(cfg, rng, b) for b in short], tmp_path, SEED)
    model = golden.cycle_model(cfg, short)
    assert model.gaps == 1 + (hide - 1)
    assert result.details["throughput"]["busy"] == model.total


def _switch_test_tiles(cfg, rng, count, rows):
    """Tiles whose weights differ in sign at every PE from one tile to the next (positive, then
    negative, ...) over positive activations, so any PE meeting the other tile's weights moves
    its column's sum in one direction. With N:M the positive tiles pick the first N positions of
    every group, the negative ones the last N, and the first N activations of a group are the
    larger ones: any PE meeting the other tile's indices moves the sum the same way."""
    shape = (cfg.rows, cfg.cols, cfg.n)
    low, high = np.arange(cfg.n), np.arange(cfg.m - cfg.n, cfg.m)
    tiles = []
    for i in range(count):
        sign = 1 if i % 2 == 0 else -1
        values = sign * rng.integers(1, 128, size=shape)
        if cfg.codebook is not None:        # the nearest allowed values keep their sign
            values = project(values, cfg.codebook)
        indices = np.broadcast_to(low if sign > 0 else high, shape).copy()
        acts = rng.integers(1, 64, size=(rows, cfg.rows, cfg.m))
        acts[:, :, :cfg.n] += 64
        tiles.append(golden.Tile(values, indices, acts.reshape(rows, cfg.k)))
    return tiles


def _mixed(cfg, weights_from, indices_from, row):
    return golden.run(cfg, golden.Tile(weights_from.values, indices_from.indices, row[None])).y


@pytest.mark.parametrize("key", ["dense_4x4", "nm_2of4"], ids=lambda k: f"{k}-seed{SEED}")
def test_weight_switch_is_neither_a_row_early_nor_late(key, tmp_path):
    """Tiles back to back (no idle cycle between the last row of one and the first of the next)
    with weights and indices that differ everywhere: the results are bit-exact only if every
    PE switches exactly at the new tile's first row. The golden model shows the stimulus would
    catch a switch one row late (the new tile's first row computed with the old tile's weights,
    indices or both) or one row early (the old tile's last row with the new ones)."""
    cfg = CONFIGS[key]
    assert 2 * cfg.n <= cfg.m or cfg.n == cfg.m == 1
    rng = np.random.default_rng(SEED)
    rows = cfg.hide_rows
    tiles = _switch_test_tiles(cfg, rng, 6, rows)
    for old, new in zip(tiles, tiles[1:]):
        truth_old = golden.run(cfg, old).y[-1]
        truth_new = golden.run(cfg, new).y[0]
        for w_from, i_from in ((new, new), (new, old), (old, new)):
            if w_from is old and cfg.idx_bits == 0:
                continue                      # dense: no indices to mix up
            assert (_mixed(cfg, w_from, i_from, old.acts[-1]) != truth_old).all()
        for w_from, i_from in ((old, old), (old, new), (new, old)):
            if w_from is new and cfg.idx_bits == 0:
                continue
            assert (_mixed(cfg, w_from, i_from, new.acts[0]) != truth_new).all()
    result = _given(cfg, tiles, tmp_path, SEED)
    assert result.details["throughput"]["cycles_stream"] == len(tiles) * rows   # no gap
    _given(cfg, tiles, tmp_path, SEED + 1, valid_prob=0.5, ready_prob=0.5)


@pytest.mark.parametrize("key", ["dense_3x5", "nm_1of4_unsigned", "set_pow2_2of4"],
                         ids=lambda k: f"{k}-seed{SEED}")
def test_the_ecp5_netlist_on_the_cell_models_matches_golden(key, tmp_path):
    """Elaborated for ECP5, every PE product is a MULT18X18D instance with its input and output
    registers on (what synthesis for ECP5 uses, hwgen/hdl/dsp.py), the pipeline's stall on the
    blocks' clock enables and the active weights in their B registers, reloaded through a
    clock enable of their own. On the cell model (hwgen/data/ecp5_cells_sim.v) the results and
    cycles are those of the generic design: the usual run (gaps, backpressure, back-to-back
    tiles held to the cycle model) and tiles switching weights (and indices) back to back,
    without and with gaps and backpressure."""
    cfg = CONFIGS[key]
    design = elaborate(cfg, "ecp5")
    assert design.family == "ecp5" and design.dsp_products == cfg.multipliers
    assert design.verilog.count("MULT18X18D #(") == cfg.multipliers
    result = simulate(design, seed=SEED, vectors=24)
    _check(result, SEED)
    assert result.utilization == 1.0 and result.stall > 0
    tiles = _switch_test_tiles(cfg, np.random.default_rng(SEED), 4,
                               cfg.hide_rows)
    path = tmp_path / "tiles.npz"
    save_tiles(path, tiles)
    for seed, prob in ((SEED, 1.0), (SEED + 1, 0.5)):
        result = simulate(design, seed=seed, valid_prob=prob, ready_prob=prob,
                          options={"tiles": str(path)})
        _check(result, seed)
