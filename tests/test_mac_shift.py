"""MAC arrays with shift PEs (``weight_set = "pow2"``, hwgen/hdl/shift.py): the RTL under
Verilator against the golden model, no DSP block in the ECP5 elaboration nor in synthesis, the
config rules, and the cycle model unchanged.

The golden model computes ``weight * activation`` whatever the PE (it is written from the spec);
the testbench holds every run to it, beat by beat, and the no-stall phase to the cycle model,
transfer by transfer (sim/test_mac_array.py). Seeds are recorded in the test ids.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hwgen.config import ConfigError
from hwgen.emit.design import elaborate
from hwgen.engines.mac_array import MacArrayConfig, golden
from hwgen.engines.mac_array.golden import Tile
from hwgen.engines.mac_array.stimulus import random_tile
from hwgen.engines.mac_array.tiles import save_tiles
from hwgen.flows.sim import simulate

SEED = 20261206

CONFIGS = {
    "pow2_3x4": MacArrayConfig(name="shift_3x4", rows=3, cols=4, weight_set="pow2"),
    # Unsigned activations, 5-bit weights (shift field 3 bits, shifts 0..4), 2:4, saturating
    # at acc_bits = weight_bits + act_bits: the all-min / all-max tiles saturate.
    "pow2_2of4_w5_unsigned_sat": MacArrayConfig(
        name="shift_2of4_w5", rows=3, cols=2, sparsity="2:4", weight_bits=5, act_signed=False,
        acc_bits=13, overflow="saturate", weight_set="pow2"),
    "pow2_16bit_wrap": MacArrayConfig(name="shift_16bit", rows=2, cols=3, weight_bits=16,
                                      act_bits=16, acc_bits=32, weight_set="pow2"),
}


def _every_code_tiles(cfg: MacArrayConfig, rng: np.random.Generator) -> list[Tile]:
    """Tiles that put every pow2 weight (0 and -2^(weight_bits-1) included) in every PE
    position, one tile per rotation of the codebook, over random rows and all-min and all-max
    activation rows; tiles of different lengths, some long enough to hide the next load."""
    book = np.asarray(cfg.codebook)
    shape = (cfg.rows, cfg.cols, cfg.n)
    position = np.arange(np.prod(shape)).reshape(shape)
    lo, hi = golden.operand_ranges(cfg)["act"]
    tiles = []
    for turn in range(len(book)):
        base = random_tile(cfg, rng, 2 + turn % 7)
        acts = np.concatenate([base.acts, np.full((1, cfg.k), lo), np.full((1, cfg.k), hi)])
        tiles.append(Tile(book[(position + turn) % len(book)], base.indices, acts))
    return tiles


@pytest.mark.sim
@pytest.mark.parametrize("key", CONFIGS, ids=lambda k: f"{k}-seed{SEED}")
def test_shift_array_matches_golden(key, tmp_path):
    """The testbench's own run (a long random tile, all-min/all-max and zero-weight tiles, back
    to back on the cycle model, then random gaps and backpressure), then every code in every
    PE, back to back and with gaps and backpressure."""
    cfg = CONFIGS[key]
    assert cfg.shift_pe
    result = simulate(cfg, seed=SEED, vectors=32)
    assert result.passed, f"seed {SEED}: {result.message}"
    assert result.utilization == 1.0 and result.stall > 0
    path = tmp_path / "tiles.npz"
    save_tiles(path, _every_code_tiles(cfg, np.random.default_rng(SEED)))
    for seed, prob in ((SEED, 1.0), (SEED + 1, 0.6)):
        result = simulate(cfg, seed=seed, valid_prob=prob, ready_prob=prob,
                          options={"tiles": str(path)})
        assert result.passed, f"seed {seed}: {result.message}"
        assert result.errors == 0 and result.beats == result.details["expected_beats"]
    assert result.stall > 0


@pytest.mark.parametrize("key", CONFIGS)
def test_no_dsp_block_in_the_ecp5_elaboration(key):
    """Elaborated for ECP5 a shift array instantiates no MULT18X18D and multiplies nowhere; the
    same array with pe = "multiply" has one DSP per product."""
    cfg = CONFIGS[key]
    design = elaborate(cfg, "ecp5")
    assert design.dsp_products == 0 and "MULT18X18D" not in design.verilog
    multiply = elaborate(dataclasses.replace(cfg, pe="multiply"), "ecp5")
    assert multiply.dsp_products == cfg.multipliers


@pytest.mark.synth
def test_synthesis_for_ecp5_uses_no_dsp():
    """The real flow (Yosys synth_ecp5, nextpnr): a 2x2 pow2 array reports 0 DSPs."""
    from hwgen.flows.synth import synthesize

    cfg = MacArrayConfig(name="shift_synth_2x2", rows=2, cols=2, weight_set="pow2")
    report = synthesize(cfg, "ecp5-85k")
    assert report.dsps == 0 and report.luts > 0 and report.fits


def test_pe_config():
    """pe absent: shift with pow2, multiply otherwise; shift needs pow2, one clear line."""
    assert MacArrayConfig(weight_set="pow2").shift_pe
    assert not MacArrayConfig(weight_set="pow2", pe="multiply").shift_pe
    assert not MacArrayConfig(weight_set="low_hamming_1").shift_pe      # same set, multiplier PEs
    assert MacArrayConfig(weight_set="pow2").weight_reg_bits == 5
    assert MacArrayConfig(weight_set="pow2", weight_bits=16, acc_bits=32).weight_reg_bits == 6
    assert MacArrayConfig(weight_set="pow2", pe="multiply").weight_reg_bits == 8
    for kwargs, message in (
            ({"pe": "shift"}, 'pe = "shift": expected "multiply" (a shift PE needs weight_set = '
                              '"pow2", not "all")'),
            ({"pe": "shift", "weight_set": [-2, 0, 1]},
             'pe = "shift": expected "multiply" (a shift PE needs weight_set = "pow2", not '
             '[-2, 0, 1])'),
            ({"pe": "dsp"}, 'pe = "dsp": expected one of "multiply", "shift"')):
        with pytest.raises(ConfigError) as info:
            MacArrayConfig(**kwargs)
        assert str(info.value) == message

