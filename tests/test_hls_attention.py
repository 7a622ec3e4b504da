"""HLS C++ of the sparse attention engine: rendering and C simulation with g++ against the golden
model (hwgen/engines/sparse_attention/hls.py, templates/hls/sparse_attention/).

Every csim run feeds every edge case (lengths 1, 2, k-1, k, k+1, max_len; zero tensors, Q or K
alone zero, all-max, all-min, tied keys, near ties, a single nonzero, crowded keys, a dominant key)
and random mixed-length uniform, gaussian and peaked sequences back to back, and compares every
output element with the golden model bit for bit.

| config | mask | what else it covers |
|---|---|---|
| topk | topk, k = 4, lanes = 4 | the default numerics at max_len 16, head_dim 8 |
| topk_floor_sat | topk, k = 5, lanes = 3 | floor rounding, saturating 6-bit output |
| window | window 2, 2 global tokens | global rows and columns |
| window_local | window 1, no global tokens | max_selected = 2*window + 1 |
| dense_wrap | dense | 12-bit data, wrapping 10-bit output |
| tiny | topk, 2-bit data, head_dim 1 | narrowest widths; random zero tensors, ties everywhere |
| wide | topk, 16-bit data, head_dim 256 | widest intermediates, 1024-entry exp table |
| threshold_0 | threshold, margin 0, k = 4, lanes = 3 | only keys tied with the row max |
| threshold | threshold, margin 16, k = 4, lanes = 4 | cap k decides some rows, margin others |
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess

import numpy as np
import pytest

from hwgen.emit.hls import csim, render_files, render_hls
from hwgen.engines.registry import ENGINES
from hwgen.engines.sparse_attention import SparseAttentionConfig, golden, softmax
from hwgen.engines.sparse_attention import hls as attn_hls
from hwgen.engines.sparse_attention.stimulus import edge_sequences

SEED = int(os.environ.get("HWGEN_TEST_SEED", "20261122"))
VECTORS = 6

CONFIGS = {
    "topk": SparseAttentionConfig(name="hls_attn_topk", max_len=16, head_dim=8, topk=4, lanes=4),
    "topk_floor_sat": SparseAttentionConfig(name="hls_attn_floor", max_len=16, head_dim=6, topk=5,
                                            lanes=3, rounding="floor", out_bits=6),
    "window": SparseAttentionConfig(name="hls_attn_window", max_len=16, head_dim=8,
                                    mask="window", window=2, global_tokens=2),
    "window_local": SparseAttentionConfig(name="hls_attn_local", max_len=10, head_dim=3,
                                          mask="window", window=1, global_tokens=0,
                                          out_overflow="wrap", out_bits=5),
    "dense_wrap": SparseAttentionConfig(name="hls_attn_dense", max_len=12, head_dim=4,
                                        mask="dense", data_bits=12, out_bits=10,
                                        out_overflow="wrap", in_frac_bits=6),
    "tiny": SparseAttentionConfig(name="hls_attn_tiny", max_len=9, head_dim=1, topk=3, lanes=2,
                                  data_bits=2, est_bits=2, out_bits=2, in_frac_bits=0,
                                  exp_frac_bits=1, exp_bits=4, prob_bits=4),
    "wide": SparseAttentionConfig(name="hls_attn_wide", max_len=12, head_dim=256, topk=12,
                                  lanes=5, data_bits=16, est_bits=8, out_bits=24,
                                  exp_frac_bits=10, exp_bits=24, prob_bits=24, in_frac_bits=0),
    "threshold_0": SparseAttentionConfig(name="hls_attn_thr0", max_len=16, head_dim=8, topk=4,
                                         lanes=3, mask="threshold", margin=0),
    "threshold": SparseAttentionConfig(name="hls_attn_thr", max_len=16, head_dim=8, topk=4,
                                       lanes=4, mask="threshold", margin=16),
}


def _csim(cfg, tmp_path, seed=SEED, vectors=VECTORS):
    artifacts = render_hls(cfg, tmp_path)
    return artifacts, csim(cfg, artifacts.directory, seed=seed, vectors=vectors)


@pytest.mark.parametrize("key", CONFIGS, ids=lambda k: f"{k}-seed{SEED}")
def test_csim_matches_golden(key, tmp_path):
    cfg = CONFIGS[key]
    _, result = _csim(cfg, tmp_path)
    expected = attn_hls.hls_vectors(cfg, SEED, VECTORS).expected
    assert result.passed, f"seed {SEED}: {result.message} (log {result.log_path})"
    assert result.outputs == len(expected) > 0
    assert result.message == f"PASS {len(expected)} outputs"
    assert (tmp_path / cfg.name / "output.txt").read_text().split() == list(map(str, expected))


def test_stimulus_order_and_edge_cases():
    """The stimulus is S, then per sequence L and its Q, K, V rows; the expected values are the
    golden outputs row by row; every edge case is there, including max|x| = 0 tensors."""
    cfg = CONFIGS["topk"]
    data = attn_hls.hls_vectors(cfg, SEED, VECTORS)
    cases = attn_hls.sequences(cfg, SEED, VECTORS)
    stim, d = list(data.stimulus), cfg.head_dim
    assert stim.pop(0) == len(cases)
    expected = []
    for _, q, k, v in cases:
        length = stim.pop(0)
        assert length == q.shape[0]
        rows = np.array(stim[:3 * d * length]).reshape(length, 3 * d)
        del stim[:3 * d * length]
        np.testing.assert_array_equal(rows, np.concatenate([q, k, v], axis=1))
        expected += golden.attention(cfg, q, k, v).out.ravel().tolist()
    assert stim == [] and data.expected == expected
    lengths = {q.shape[0] for _, q, _, _ in cases}
    assert {1, cfg.topk - 1, cfg.topk, cfg.topk + 1, cfg.max_len} <= lengths
    assert len(cases) == len(list(edge_sequences(cfg))) + 1 + VECTORS
    dists = [label.split("_")[0] for label, *_ in cases[-VECTORS:]]
    assert dists == ["uniform"] * 2 + ["gaussian"] * 2 + ["peaked"] * 2
    maxabs = [(np.abs(q).max(), np.abs(k).max()) for _, q, k, _ in cases]
    assert (0, 0) in maxabs
    assert any(mq == 0 and mk > 0 for mq, mk in maxabs)
    assert any(mq > 0 and mk == 0 for mq, mk in maxabs)
    # the same seed gives the same vectors
    assert attn_hls.hls_vectors(cfg, SEED, VECTORS) == data


def test_ties_cross_the_topk_boundary():
    """The stimulus has rows whose k-th best estimate ties with a dropped key, so the csim checks
    the tie rule (lower index wins) and not only the ranking."""
    cfg = CONFIGS["topk"]
    crossing = 0
    for _, q, k, v in attn_hls.sequences(cfg, SEED, VECTORS):
        trace = golden.attention(cfg, q, k, v)
        for i, sel in enumerate(trace.selected):
            dropped = np.setdiff1d(np.arange(trace.length), sel)
            if dropped.size and np.isin(trace.est[i, sel].min(), trace.est[i, dropped]):
                crossing += 1
                kth = trace.est[i, sel].min()
                tied = np.flatnonzero(trace.est[i] == kth)
                # lower indices among the tied keys are kept
                assert np.all(np.isin(tied[:np.isin(tied, sel).sum()], sel))
    assert crossing > 0


def test_csim_detects_a_wrong_tie_rule(tmp_path):
    """The kernel edited to let a later key with an equal estimate displace an earlier one (ties
    to the higher index) compiles and fails the C simulation."""
    cfg = CONFIGS["topk"]
    artifacts = render_hls(cfg, tmp_path)
    text = artifacts.kernel.read_text()
    rule = "best_est[p] >= est;"
    assert text.count(rule) == 1
    artifacts.kernel.write_text(text.replace(rule, "best_est[p] > est;"))
    result = csim(cfg, artifacts.directory, seed=SEED, vectors=VECTORS)
    assert not result.passed and result.message.startswith("FAIL"), result.message


@pytest.mark.parametrize("key", ["threshold_0", "threshold"])
def test_threshold_stimulus_covers_cap_and_margin(key):
    """The csim of a threshold config sees rows where the cap k decides (more than k keys within
    the margin), rows where the margin decides (fewer than min(k, L) kept), rows that keep one key
    of several, and a kept key exactly `margin` below the row maximum (the >= boundary)."""
    cfg = CONFIGS[key]
    seen = {"cap": 0, "margin": 0, "single": 0, "boundary": 0}
    for _, q, k, v in attn_hls.sequences(cfg, SEED, VECTORS):
        trace = golden.attention(cfg, q, k, v)
        for i, sel in enumerate(trace.selected):
            row = trace.est[i]
            within = np.flatnonzero(row >= row.max() - cfg.margin)
            assert 1 <= len(sel) <= min(cfg.topk, len(within))
            seen["cap"] += len(within) > cfg.topk
            seen["margin"] += len(sel) < min(cfg.topk, trace.length)
            seen["single"] += len(sel) == 1 < trace.length
            seen["boundary"] += bool(np.any(row[sel] == row.max() - cfg.margin))
    assert all(seen.values()), seen


@pytest.mark.parametrize("mutation", ["strict", "margin"])
def test_csim_detects_a_wrong_threshold(mutation, tmp_path, monkeypatch):
    """The threshold kernel with a strict comparison (est > max - margin) or rendered with
    margin - 1 compiles and fails the C simulation (keys exactly at the margin are kept)."""
    cfg = CONFIGS["threshold"]
    if mutation == "margin":
        real = attn_hls.hls_context
        monkeypatch.setitem(ENGINES, "sparse_attention", dataclasses.replace(
            ENGINES["sparse_attention"], hls_context=lambda c: {**real(c), "margin": c.margin - 1}))
    artifacts = render_hls(cfg, tmp_path)
    if mutation == "strict":
        text = artifacts.kernel.read_text()
        rule = "<= MARGIN;"
        assert text.count(rule) == 1
        artifacts.kernel.write_text(text.replace(rule, "< MARGIN;"))
    result = csim(cfg, artifacts.directory, seed=SEED, vectors=VECTORS)
    assert not result.passed and result.message.startswith("FAIL"), result.message


def test_csim_detects_a_wrong_constant(tmp_path, monkeypatch):
    """A kernel rendered with one constant changed (the window half-width) fails."""
    cfg = CONFIGS["window"]
    real = attn_hls.hls_context

    def wrong(c):
        return {**real(c), "window": c.window + 1}

    monkeypatch.setitem(ENGINES, "sparse_attention",
                        dataclasses.replace(ENGINES["sparse_attention"], hls_context=wrong))
    _, result = _csim(cfg, tmp_path)
    assert not result.passed and result.message.startswith("FAIL"), result.message


def test_testbench_fails_on_one_changed_expected_value(tmp_path):
    cfg = CONFIGS["dense_wrap"]
    artifacts, result = _csim(cfg, tmp_path, vectors=2)
    assert result.passed
    folder = artifacts.directory
    values = (folder / "expected.txt").read_text().split()
    values[7] = str(int(values[7]) + 1)
    (folder / "expected.txt").write_text("\n".join(values) + "\n")
    run = subprocess.run([str(folder / f"{cfg.name}_csim"), "stimulus.txt", "expected.txt",
                          "output.txt"], cwd=folder, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert f"hwgen csim: FAIL 1 of {len(values)} outputs differ (first at 7" in run.stdout
    # a truncated stimulus is an error, not a pass
    stim = (folder / "stimulus.txt").read_text().split()
    (folder / "stimulus.txt").write_text(" ".join(stim[:-1]) + "\n")
    run = subprocess.run([str(folder / f"{cfg.name}_csim"), "stimulus.txt", "expected.txt",
                          "output.txt"], cwd=folder, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "hwgen csim: ERROR stimulus ended early" in run.stdout


def test_rendering_is_deterministic(tmp_path):
    cfg = CONFIGS["topk_floor_sat"]
    assert render_files(cfg) == render_files(cfg)
    a = render_hls(cfg, tmp_path / "a")
    b = render_hls(cfg, tmp_path / "b")
    names = sorted(p.name for p in a.directory.iterdir())
    assert names == sorted(p.name for p in b.directory.iterdir()) == sorted(
        [".hwgen", *render_files(cfg)])
    for name in names:
        assert (a.directory / name).read_bytes() == (b.directory / name).read_bytes()


@pytest.mark.parametrize("key", ["topk", "window", "dense_wrap", "threshold"])
def test_kernel_is_hls_style(key):
    cfg = CONFIGS[key]
    files = render_files(cfg)
    kernel, header = files[f"{cfg.name}.cpp"], files[f"{cfg.name}.h"]
    assert f"void {cfg.name}(hls::stream<{cfg.name}_token> &tokens, " \
           f"hls::stream<{cfg.name}_row> &out)" in header + kernel
    for pragma in ("#pragma HLS INTERFACE axis port=tokens", "#pragma HLS INTERFACE axis port=out",
                   "#pragma HLS PIPELINE II=1",
                   "#pragma HLS ARRAY_PARTITION variable=q_mem complete dim=2",
                   "#pragma HLS ARRAY_PARTITION variable=k_mem complete dim=2",
                   "#pragma HLS ARRAY_PARTITION variable=v_mem complete dim=2",
                   "#pragma HLS ARRAY_PARTITION variable=acc complete"):
        assert pragma in kernel, pragma
    if cfg.estimated:
        assert f"#pragma HLS ARRAY_PARTITION variable=k4 cyclic factor={cfg.lanes} dim=1" in kernel
        assert "#pragma HLS ARRAY_PARTITION variable=best_est complete" in kernel
    else:
        assert "k4" not in kernel and "best_est" not in kernel
    # the margin constant only where the threshold mask reads it
    margin = f"constexpr int64_t MARGIN = {cfg.margin}LL;"
    assert (margin in header, "MARGIN" in kernel) == (cfg.mask == "threshold",) * 2
    code = re.sub(r"//.*", "", kernel)
    # no dynamic allocation, no raw shifts or divisions (floor_shift and divide_floor instead)
    for banned in ("new ", "malloc", "std::", ">>", " / "):
        assert banned not in code, banned
    assert f"constexpr int MAX_LEN = {cfg.max_len};" in header
    assert f"constexpr int64_t EXP_MULT = {cfg.exp_mult}LL;" in header
    assert f"constexpr int EXP_SHIFT = {cfg.exp_shift};" in header


@pytest.mark.parametrize("key", ["topk", "wide"])
def test_exp_table_is_the_shared_array(key, monkeypatch):
    """The kernel's EXP_LUT is softmax.exp_lut printed by Python, entry for entry."""
    cfg = CONFIGS[key]
    assert cfg.exp_lut is softmax.exp_lut(cfg.exp_frac_bits, cfg.exp_bits)
    kernel = render_files(cfg)[f"{cfg.name}.cpp"]
    body = re.search(r"const int64_t EXP_LUT\[LUT_SIZE\] = \{(.*?)\};", kernel, re.S).group(1)
    assert [int(x) for x in body.replace(",", " ").split()] == cfg.exp_lut.tolist()
    # the context reads the array object itself: a different table changes the kernel
    fake = cfg.exp_lut.copy()
    fake[1] += 1
    monkeypatch.setattr(type(cfg), "exp_lut", property(lambda self: fake))
    assert render_files(cfg)[f"{cfg.name}.cpp"] != kernel


def test_render_uses_the_engine_module():
    engine = ENGINES["sparse_attention"]
    assert (engine.hls_context, engine.hls_vectors) == (attn_hls.hls_context,
                                                         attn_hls.hls_vectors)
