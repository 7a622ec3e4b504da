"""HLS C++ of the snn engine: rendering, C simulation against the golden model (real g++).

Every csim compiles the kernel and testbench (about 2 s) and runs them on ``hls_vectors``: the
random layer, every edge layer of ``stimulus.edge_layers`` and the dense random layer, each one
kernel call, compared word for word (and ``last``) with ``golden.layer``. Seeds are fixed per
case so a failure reproduces with ``csim(cfg, folder, seed=..., vectors=...)``.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import pytest

from hwgen.emit.hls import csim, render_files, render_hls
from hwgen.engines.registry import ENGINES, load_config
from hwgen.engines.snn import hls as snn_hls
from hwgen.engines.snn.config import SnnConfig

ROOT = Path(__file__).resolve().parents[1]


def _paper_small() -> SnnConfig:
    """examples/snn_paper.toml shrunk: laggy join, 12-bit pseudo and 10-bit correction
    accumulators that wrap; two chunks (the second one partial), N not a multiple of P."""
    cfg = load_config(ROOT / "examples" / "snn_paper.toml")
    return dataclasses.replace(cfg, name="snn_paper_small", in_neurons=160, out_neurons=7,
                               pes=3)


# (id, config, seed, vectors)
CASES = [
    ("defaults", SnnConfig(), 1, 8),
    ("snn_small", load_config(ROOT / "examples" / "snn_small.toml"), 2, 6),
    ("laggy_paper", _paper_small(), 3, 4),
    # dataflow "sequential" (join "laggy" only changes timing there); narrow saturating
    # accumulators, so the per-pair saturation order matters.
    ("sequential_saturate", SnnConfig(
        name="snn_seq", in_neurons=96, out_neurons=9, chunk=32, pes=4, join="laggy",
        dataflow="sequential", pseudo_bits=9, acc_overflow="saturate", threshold=40), 4, 4),
    # Narrow everything: 3-bit weights, 4-bit saturating accumulators, a 4-bit wrapping membrane,
    # fire "gt", reset "subtract", half-up shift leak, min_spikes 2, 4-neuron chunks (K not a
    # multiple), 5 timesteps.
    ("narrow_edges", SnnConfig(
        name="snn_narrow", timesteps=5, in_neurons=37, out_neurons=5, chunk=4, min_spikes=2,
        pes=2, weight_bits=3, join="laggy", pseudo_bits=4, corr_bits=3, acc_overflow="saturate",
        membrane_bits=4, membrane_overflow="wrap", threshold=5, fire="gt", reset="subtract",
        leak="shift", leak_shift=1, rounding="half_up"), 5, 5),
    # 16 timesteps, 16-bit weights, 132-neuron chunks (three mask words, the last one partial),
    # no leak, wrapping 18-bit accumulators.
    ("wide_words", SnnConfig(
        name="snn_wide", timesteps=16, in_neurons=300, out_neurons=6, chunk=132, pes=5,
        weight_bits=16, pseudo_bits=18, threshold=3000, leak="none", min_spikes=3), 6, 3),
    # The smallest layer: one neuron in, one out, one timestep; named like a type of the
    # kernel's namespace (the top function must not clash with it).
    ("single", SnnConfig(name="word_t2", timesteps=1, in_neurons=1, out_neurons=1, chunk=4,
                         pes=1, threshold=1), 7, 3),
]
CONFIGS = {case[0]: case[1] for case in CASES}


@pytest.mark.parametrize("cfg,seed,vectors", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_csim_matches_golden(tmp_path, cfg, seed, vectors):
    artifacts = render_hls(cfg, tmp_path)
    result = csim(cfg, artifacts.directory, seed=seed, vectors=vectors)
    assert result.passed, f"{cfg.name} (seed {seed}): {result.message}; see {result.log_path}"
    expected = snn_hls.hls_vectors(cfg, seed, vectors).expected
    assert result.outputs == len(expected) > 0
    # Something fires, so the check is not one of all-zero words.
    assert any(expected[0::2]), f"{cfg.name}: no output spikes at all"


def _expected(cfg: SnnConfig, seed: int = 11, vectors: int = 4) -> list[int]:
    return snn_hls.hls_vectors(cfg, seed, vectors).expected


def test_edge_configs_exercise_their_rules():
    """The csim cases are only as good as their configs: in each one, the rule it is there for
    changes the golden model's outputs (so the kernel cannot pass with the rule wrong)."""
    paper = _paper_small()
    assert _expected(paper) != _expected(dataclasses.replace(paper, join="fast"))
    narrow = CONFIGS["narrow_edges"]
    for change in ({"acc_overflow": "wrap"}, {"membrane_overflow": "saturate"},
                   {"rounding": "floor"}, {"fire": "ge"}, {"min_spikes": 1}):
        assert _expected(narrow) != _expected(dataclasses.replace(narrow, **change)), change
    seq = CONFIGS["sequential_saturate"]
    assert _expected(seq) != _expected(dataclasses.replace(seq, acc_overflow="wrap"))


def test_sequential_and_fast_join_agree():
    """golden.join: the sequential dataflow makes the fast join's additions, so both kernels
    must give the same numbers; laggy differs only where its narrower accumulators wrap."""
    cfg = CONFIGS["sequential_saturate"]
    fast = dataclasses.replace(cfg, dataflow="ftp", join="fast")
    assert _expected(cfg) == _expected(fast)
    assert snn_hls.hls_context(cfg)["join_impl"] == "sequential"


def test_csim_fails_on_wrong_expected(tmp_path):
    """The testbench compares: one changed expected value makes it FAIL (exit code 1)."""
    cfg = CONFIGS["snn_small"]
    artifacts = render_hls(cfg, tmp_path)
    assert csim(cfg, artifacts.directory, seed=2, vectors=2).passed
    folder = artifacts.directory
    expected = (folder / "expected.txt").read_text().split()
    expected[5] = str(int(expected[5]) + 1)
    (folder / "wrong.txt").write_text("\n".join(expected) + "\n")
    run = subprocess.run([str(folder / f"{cfg.name}_csim"), "stimulus.txt", "wrong.txt",
                          "output.txt"], cwd=folder, capture_output=True, text=True)
    assert run.returncode == 1
    assert "hwgen csim: FAIL 1 of" in run.stdout and "first at 5" in run.stdout


def test_csim_fails_with_a_wrong_width(tmp_path, monkeypatch):
    """A kernel rendered with the correction accumulators as wide as the pseudo-accumulator
    (instead of the paper preset's 10 bits) no longer matches the golden model."""
    cfg = _paper_small()
    good = snn_hls.hls_context

    def wrong(c):
        return {**good(c), "corr_bits": c.acc_bits}

    monkeypatch.setitem(ENGINES, "snn",
                        dataclasses.replace(ENGINES["snn"], hls_context=wrong))
    artifacts = render_hls(cfg, tmp_path)
    result = csim(cfg, artifacts.directory, seed=3, vectors=4)
    assert not result.passed and result.message.startswith("FAIL")


def test_render_is_deterministic(tmp_path):
    for cfg in (CONFIGS["defaults"], CONFIGS["laggy_paper"], CONFIGS["sequential_saturate"]):
        first = render_files(cfg)
        assert first == render_files(cfg)
        a = render_hls(cfg, tmp_path / "a").directory
        b = render_hls(cfg, tmp_path / "b").directory
        for name in first:
            assert (a / name).read_bytes() == (b / name).read_bytes() == first[name].encode()


@pytest.mark.parametrize("case", ["defaults", "laggy_paper", "sequential_saturate"])
def test_kernel_has_hls_structure(case):
    cfg = CONFIGS[case]
    files = render_files(cfg)
    header, kernel = files[f"{cfg.name}.h"], files[f"{cfg.name}.cpp"]
    assert re.search(rf"void {cfg.name}\(hls::stream<int64_t> &weights, "
                     rf"hls::stream<{cfg.name}_hls::word_t> &spikes,\s+"
                     rf"hls::stream<{cfg.name}_hls::word_t> &out, int samples\)", kernel)
    for port in ("weights", "spikes", "out"):
        assert f"#pragma HLS INTERFACE axis port={port}" in kernel
    assert kernel.count("#pragma HLS PIPELINE II=1") >= 5
    for array in ("wmask", "wvals", "smask", "o"):
        assert f"#pragma HLS ARRAY_PARTITION variable={array} " in kernel
    # PE lanes and timesteps in registers: the accumulators and the remaining-match masks.
    accumulators = "corr" if cfg.join == "laggy" and cfg.dataflow == "ftp" else "acc"
    assert f"#pragma HLS ARRAY_PARTITION variable={accumulators} complete dim=0" in kernel
    assert "#pragma HLS ARRAY_PARTITION variable=rem complete dim=0" in kernel
    for forbidden in ("new ", "malloc", "std::vector", "std::deque"):
        assert forbidden not in kernel
    # Every number of the config the kernel needs is a constant of the header, and the join is
    # visible there.
    for constant, value in (("TIMESTEPS", cfg.timesteps), ("ACC_BITS", cfg.acc_bits),
                            ("CORR_BITS", cfg.correction_bits), ("U_BITS", cfg.u_bits),
                            ("THRESHOLD", cfg.threshold), ("CHUNKS", cfg.chunks)):
        assert re.search(rf"constexpr \w+ {constant} = {value};", header), constant
    assert f'constexpr char JOIN[] = "{cfg.join}";' in header
    assert f'constexpr char DATAFLOW[] = "{cfg.dataflow}";' in header


def test_stimulus_layout():
    """The documented order: S, then per segment M, W, W weight values, M*K spike words."""
    cfg = CONFIGS["narrow_edges"]
    vectors = snn_hls.hls_vectors(cfg, 5, 5)
    values = iter(vectors.stimulus)
    segments = next(values)
    assert segments == len(snn_hls.segments(cfg, 5, 5)) >= 2
    samples = 0
    for _ in range(segments):
        m, w = next(values), next(values)
        for _ in range(w + m * cfg.in_neurons):
            next(values)
        samples += m
    assert next(values, None) is None
    assert len(vectors.expected) == 2 * samples * cfg.out_neurons
    assert vectors.expected[1::2] == [int(n == cfg.out_neurons - 1)
                                      for _ in range(samples) for n in range(cfg.out_neurons)]
    assert vectors == snn_hls.hls_vectors(cfg, 5, 5)
    assert vectors != snn_hls.hls_vectors(cfg, 6, 5)
