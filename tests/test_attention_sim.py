"""The sparse attention RTL under Verilator (sim/test_sparse_attention.py), one build per config.

Every run: each edge length (1, 2, k-1, k, k+1, max_len) and skewed random lengths alone and back
to back with the cycle model held exactly, then every edge case (zero tensors, all-max, all-min,
tied keys, near ties, a single nonzero) and mixed-length gaussian sequences back to back with
random valid gaps and ready backpressure; every output row equal to the golden model.

| config | mask | what else it covers |
|---|---|---|
| topk | topk, k = 4, lanes = 4 | the default numerics, L = max_len = 24, one row unit |
| topk_odd | topk, k = 5, lanes = 3, rows = 2 | lanes not dividing L, floor rounding, 6-bit saturated out |
| window | window 2, 2 global tokens, rows = 3 | global rows and columns, L not a multiple of rows |
| dense | dense | 12-bit data, wrapping 10-bit output |
| threshold | threshold, margin 10, cap 5, rows = 2 | data-dependent key counts per row of a group |
"""

from __future__ import annotations

import dataclasses
import os

import pytest

from hwgen.emit.design import elaborate
from hwgen.engines.sparse_attention import SparseAttentionConfig
from hwgen.flows.sim import build, run_testbench, simulate

pytestmark = pytest.mark.sim

SEED = int(os.environ.get("HWGEN_TEST_SEED", "20261122"))

CONFIGS = {
    "topk": SparseAttentionConfig(name="attn_topk", max_len=24, head_dim=8, topk=4, lanes=4),
    "topk_odd": SparseAttentionConfig(name="attn_topk_odd", max_len=16, head_dim=6, topk=5,
                                      lanes=3, rows=2, rounding="floor", out_bits=6),
    "window": SparseAttentionConfig(name="attn_window", max_len=16, head_dim=8, mask="window",
                                    window=2, global_tokens=2, rows=3),
    "threshold": SparseAttentionConfig(name="attn_threshold", max_len=16, head_dim=6,
                                       mask="threshold", topk=5, margin=10, lanes=4, rows=2),
    "dense": SparseAttentionConfig(name="attn_dense", max_len=12, head_dim=4, mask="dense",
                                   data_bits=12, out_bits=10, out_overflow="wrap",
                                   in_frac_bits=6),
}


@pytest.mark.parametrize("key", CONFIGS, ids=lambda k: f"{k}-seed{SEED}")
def test_rtl_matches_golden_with_gaps_and_backpressure(key):
    cfg = CONFIGS[key]
    result = simulate(cfg, seed=SEED, vectors=4)
    assert result.passed, f"seed {SEED}: {result.message}"
    details = result.details
    assert result.errors == 0 and result.beats == details["expected_beats"] > 0
    throughput = details["throughput"]
    assert throughput["cycles_alone"] == throughput["model_alone"]
    assert throughput["cycles_stream"] == throughput["model_stream"]
    assert cfg.max_len in throughput["lengths"] and 1 in throughput["lengths"]
    assert result.stall > 0, "backpressure phase produced no stall cycles"


def test_a_wrong_expectation_is_caught():
    """The RTL built with window 2, checked against a golden model with window 3, must fail."""
    built = CONFIGS["window"]
    build_dir = build(built)
    wrong = dataclasses.replace(built, window=3)
    result = run_testbench(wrong, build_dir, seed=SEED, vectors=1, waves=False, valid_prob=1.0,
                           ready_prob=1.0, progress=lambda line: None, options={"phase2": False})
    assert not result.passed and result.errors > 0


@pytest.mark.parametrize("key", ["threshold", "dense"], ids=lambda k: f"{k}-seed{SEED}")
def test_the_ecp5_netlist_on_the_cell_models_matches_golden(key):
    """Elaborated for ECP5, the engine's DSP products are MULT18X18D instances with their output
    registers on and its token memories DP16KD blocks with theirs (what synthesis for ECP5 uses,
    hwgen/hdl/dsp.py and bram.py); on the cell models (hwgen/data/ecp5_cells_sim.v) the outputs
    and cycles are those of the generic design."""
    design = elaborate(CONFIGS[key], "ecp5")
    assert design.family == "ecp5" and design.verilog.count("MULT18X18D #(") > 0
    assert design.verilog.count("DP16KD #(") > 0
    result = simulate(design, seed=SEED, vectors=2)
    assert result.passed, f"seed {SEED}: {result.message}"
    throughput = result.details["throughput"]
    assert throughput["cycles_alone"] == throughput["model_alone"]
    assert throughput["cycles_stream"] == throughput["model_stream"]
