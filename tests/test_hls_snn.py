"""HLS C++ of the snn engine: rendering, C simulation against the golden model (real g++).

Every csim compiles the kernel and testbench (about 2 s) and runs them on ``hls_vectors``: the
random layer, every edge layer of ``stimulus.edge_layers`` and the dense random layer, each one
kernel call, compared word for word (and ``last``) with ``golden.layer``. Seeds are fixed per
case so a failure reproduces with ``csim(cfg, folder, seed=..., vectors=...)``. The spike formats
(``in_format``, ``out_format``) are dense unless a case says otherwise.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import pytest

from hwgen.emit.hls import csim, render_files, render_hls
from hwgen.engines.registry import ENGINES, load_config
from hwgen.engines.snn import golden
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
    # Fiber in and out, FTP fast join: 96-neuron chunks (two mask words, bit 63 used), K = 150
    # and N = 100 not multiples of the chunk (partial last chunks on both sides), min_spikes 2 so
    # the output compressor drops fired words too.
    ("fiber_fiber_fast", SnnConfig(
        name="snn_fiber", in_neurons=150, out_neurons=100, chunk=96, min_spikes=2, pes=8,
        threshold=40, in_format="fiber", out_format="fiber"), 8, 3),
    # Fiber in, dense out, the laggy join with the paper's wrapping widths, 48-neuron chunks
    # (one partial mask word; K = 160 leaves a partial fourth chunk), min_spikes 2.
    ("fiber_dense_laggy", dataclasses.replace(
        _paper_small(), name="snn_paper_fiber", chunk=48, min_spikes=2, in_format="fiber"), 9, 4),
    # Dense in, fiber out, the sequential dataflow: 8-neuron chunks, N = 21 in three output
    # chunks (the last one partial), min_spikes 2.
    ("dense_fiber_sequential", SnnConfig(
        name="snn_seq_fiber", in_neurons=60, out_neurons=21, chunk=8, min_spikes=2, pes=4,
        join="laggy", dataflow="sequential", out_format="fiber"), 10, 4),
]
CONFIGS = {case[0]: case[1] for case in CASES}
RUNS = {case[0]: case[1:] for case in CASES}


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


@pytest.mark.parametrize("case,seed", [("snn_small", 2), ("fiber_fiber_fast", 8)])
def test_csim_fails_on_wrong_expected(tmp_path, case, seed):
    """The testbench compares: one changed expected value makes it FAIL (exit code 1). Dense
    out: the `last` flag of neuron 2; fiber out: the first sample's final `last` flag, cleared
    (a fiber whose end the kernel marks in the wrong beat)."""
    cfg = CONFIGS[case]
    artifacts = render_hls(cfg, tmp_path)
    assert csim(cfg, artifacts.directory, seed=seed, vectors=2).passed
    folder = artifacts.directory
    expected = (folder / "expected.txt").read_text().split()
    index = 5 if cfg.out_format == "dense" else 2 * expected[1::2].index("1") + 1
    expected[index] = str(int(expected[index]) ^ 1)
    (folder / "wrong.txt").write_text("\n".join(expected) + "\n")
    run = subprocess.run([str(folder / f"{cfg.name}_csim"), "stimulus.txt", "wrong.txt",
                          "output.txt"], cwd=folder, capture_output=True, text=True)
    assert run.returncode == 1
    assert "hwgen csim: FAIL 1 of" in run.stdout and f"first at {index}:" in run.stdout


def test_csim_fiber_input_applies_min_spikes(tmp_path, monkeypatch):
    """A spike fiber may keep words below min_spikes (a producer with a smaller min_spikes): the
    kernel drops them as it drops dense ones, so the golden outputs still hold; a kernel that
    keeps every announced word no longer matches."""
    cfg = CONFIGS["fiber_dense_laggy"]
    filtered = snn_hls.hls_vectors(cfg, 9, 2)
    real = golden.layer

    def unfiltered(a, b, c):
        trace = real(a, b, c)
        fibers = tuple(golden.compress(words, words != 0, c.chunk) for words in trace.words)
        return dataclasses.replace(trace, spike_fibers=fibers)

    monkeypatch.setattr(golden, "layer", unfiltered)
    vectors = snn_hls.hls_vectors(cfg, 9, 2)
    assert vectors.expected == filtered.expected and vectors.stimulus != filtered.stimulus
    artifacts = render_hls(cfg, tmp_path)
    result = csim(cfg, artifacts.directory, seed=9, vectors=2)
    assert result.passed, f"{result.message}; see {result.log_path}"
    kernel = artifacts.kernel.read_text()
    check = "if (popcount64(word) >= MIN_SPIKES) {"
    assert kernel.count(check) == 1
    artifacts.kernel.write_text(kernel.replace(check, "if (word != 0) {"))
    result = csim(cfg, artifacts.directory, seed=9, vectors=2)
    assert not result.passed and result.message.startswith("FAIL")


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


@pytest.mark.parametrize("case", ["defaults", "laggy_paper", "sequential_saturate",
                                  "fiber_fiber_fast"])
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
    arrays = ["wmask", "wvals", "smask", "o"] + ["omask"] * (cfg.out_format == "fiber")
    for array in arrays:
        assert f"#pragma HLS ARRAY_PARTITION variable={array} " in kernel
    # Exactly the stream functions of the configured formats.
    for function, used in (("compress_sample", cfg.in_format == "dense"),
                           ("receive_fiber", cfg.in_format == "fiber"),
                           ("send_fiber", cfg.out_format == "fiber")):
        assert (f"{cfg.name}_hls::{function}(" in kernel) == used, function
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
    assert f'constexpr char IN_FORMAT[] = "{cfg.in_format}";' in header
    assert f'constexpr char OUT_FORMAT[] = "{cfg.out_format}";' in header


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


def _decode_fiber(beats: list[int], cfg: SnnConfig, length: int) -> tuple[list[int], int]:
    """The dense words of the fiber serialized at the start of ``beats`` (the documented layout,
    read independently of hls.py) and the number of beats it takes."""
    mask_words = -(-cfg.chunk // 64)
    words, i = [0] * length, 0
    for lo in range(0, length, cfg.chunk):
        mask = sum((beats[i + j] % (1 << 64)) << (64 * j) for j in range(mask_words))
        i += mask_words
        assert mask >> min(cfg.chunk, length - lo) == 0, "mask bits beyond the chunk"
        for b in range(cfg.chunk):
            if (mask >> b) & 1:
                words[lo + b] = beats[i]
                i += 1
    return words, i


def _dense_samples(cfg: SnnConfig, seed: int, vectors: int) -> list[tuple[list[int], list[int]]]:
    """(input words, output words) of every sample of ``hls_vectors``, walked in the documented
    order and decoded to K and N dense words whatever the formats."""
    data = snn_hls.hls_vectors(cfg, seed, vectors)
    stimulus, expected = iter(data.stimulus), iter(data.expected)
    samples = []
    for _ in range(next(stimulus)):
        m, w = next(stimulus), next(stimulus)
        for _ in range(w):
            next(stimulus)
        for _ in range(m):
            if cfg.in_format == "fiber":
                beats = [next(stimulus) for _ in range(next(stimulus))]
                words, used = _decode_fiber(beats, cfg, cfg.in_neurons)
                assert used == len(beats)
            else:
                words = [next(stimulus) for _ in range(cfg.in_neurons)]
            out = []
            while not out or not out[-1][1]:      # `last` ends the sample's beats
                out.append((next(expected), next(expected)))
            if cfg.out_format == "fiber":
                out_words, used = _decode_fiber([beat for beat, _ in out], cfg, cfg.out_neurons)
                assert used == len(out)
            else:
                out_words = [beat for beat, _ in out]
                assert len(out) == cfg.out_neurons
            samples.append((words, out_words))
    assert next(stimulus, None) is None and next(expected, None) is None
    return samples


@pytest.mark.parametrize("case", ["fiber_fiber_fast", "fiber_dense_laggy",
                                  "dense_fiber_sequential"])
def test_fiber_vectors_are_the_dense_ones(case):
    """A fiber stimulus carries the dense words with those below min_spikes dropped, and a fiber
    expectation decodes to the dense one: the formats change the serialization, never the
    numbers (and `last` is only on each sample's final beat)."""
    cfg, seed, vectors = RUNS[case]
    dense = dataclasses.replace(cfg, in_format="dense", out_format="dense")
    samples = _dense_samples(dense, seed, vectors)
    if cfg.in_format == "fiber":
        samples = [([w if w.bit_count() >= cfg.min_spikes else 0 for w in words], out)
                   for words, out in samples]
    assert _dense_samples(cfg, seed, vectors) == samples


def _traces(case: str) -> tuple[SnnConfig, list[golden.LayerTrace]]:
    cfg, seed, vectors = RUNS[case]
    return cfg, [golden.layer(a, b, cfg) for _, a, b in snn_hls.segments(cfg, seed, vectors)]


def test_fiber_cases_exercise_their_edges():
    """The fiber csim cases hold the samples that separate a right serialization from a wrong
    one: output fibers whose last chunk keeps nothing (`last` on a mask beat) or keeps words,
    fired output words dropped by min_spikes, empty input chunks and, with two mask words, mask
    words with bit 63 set."""
    for case in ("fiber_fiber_fast", "fiber_dense_laggy", "dense_fiber_sequential"):
        cfg, traces = _traces(case)
        if cfg.in_format == "fiber":
            assert 0 in [m for trace in traces for f in trace.spike_fibers for m in f.masks], case
        if cfg.out_format == "fiber":
            out = [f for trace in traces for f in trace.out_fibers]
            assert {f.masks[-1] == 0 for f in out} == {True, False}, case
            fired = [w for trace in traces for w in trace.out_words.reshape(-1).tolist() if w]
            assert any(w.bit_count() < cfg.min_spikes for w in fired), case
        if cfg.chunk > 64:
            for fibers in ("spike_fibers", "out_fibers"):
                assert any((m >> 63) & 1 for trace in traces for f in getattr(trace, fibers)
                           for m in f.masks), (case, fibers)
