"""The snn spike-compressing buffer (hwgen/engines/snn/compress.py) in Amaranth's simulator.

Every expected value comes from the golden model (:mod:`hwgen.engines.snn.golden`): the stored
fiber read back through the compressor's read ports must equal ``compress_spikes`` exactly (masks,
chunk bases, values), and the round trip must equal ``decompress(compress_spikes(...))``.
Random stimuli and handshake gaps come from recorded seeds.
"""

from __future__ import annotations

import gc
import random
import warnings

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import UnusedElaboratable
from hwgen.testbench.amaranth_streams import Transfers, simulate

from hwgen.engines.snn import golden
from hwgen.engines.snn.compress import (
    CompressRoundTrip,
    FiberGeometry,
    PingPongRoundTrip,
    SpikeCompressor,
    SpikeDecompressor,
)
from hwgen.engines.snn.config import SnnConfig
from hwgen.flows.lint import WAIVER_FILE
from hwgen.flows.toolchain import run_tool


def make_cfg(timesteps: int, chunk: int, min_spikes: int) -> SnnConfig:
    return SnnConfig(timesteps=timesteps, chunk=chunk, min_spikes=min_spikes,
                     laggy_adders=min(16, chunk))


# --- stimuli ------------------------------------------------------------------------------------

def chunk_words(rng: np.random.Generator, n: int, cfg: SnnConfig, kind: str) -> np.ndarray:
    """``n`` packed words of one chunk: silent, all firing, threshold-straddling or random."""
    T = cfg.timesteps
    if kind == "silent":
        return np.zeros(n, dtype=np.int64)
    if kind == "firing":                       # every neuron kept; at least min_spikes spikes
        spikes = rng.random((n, T)) < 0.5
        for row in spikes:                     # force min_spikes random steps on
            row[rng.choice(T, size=cfg.min_spikes, replace=False)] = True
        return golden.pack_spikes(spikes.astype(np.int64))
    if kind == "threshold":                    # exactly min_spikes - 1 or min_spikes spikes
        spikes = np.zeros((n, T), dtype=np.int64)
        for row in spikes:
            count = cfg.min_spikes - int(rng.integers(0, 2))
            row[rng.choice(T, size=count, replace=False)] = 1
        return golden.pack_spikes(spikes)
    density = rng.choice([0.05, 0.3, 0.7])
    return golden.pack_spikes((rng.random((n, T)) < density).astype(np.int64))


def vectors(cfg: SnnConfig, length: int, seed: int, count: int) -> list[np.ndarray]:
    """``count`` vectors; the first has a silent chunk 0 and an all-firing chunk 1 (or the reverse
    when there is only one chunk, in the second vector), later ones mix chunk kinds at random."""
    rng = np.random.default_rng(seed)
    geo = FiberGeometry(cfg, length)
    out = []
    for v in range(count):
        parts = []
        for c in range(geo.chunks):
            n = min(cfg.chunk, length - c * cfg.chunk)
            if v == 0:
                kind = ("silent", "firing")[c % 2]
            elif v == 1 and geo.chunks == 1:
                kind = "firing"
            else:
                kind = rng.choice(["silent", "firing", "threshold", "random", "random"])
            parts.append(chunk_words(rng, n, cfg, kind))
        out.append(np.concatenate(parts))
    return out


# --- simulation helpers -------------------------------------------------------------------------

class Rises:
    """Background monitor: the cycles in which ``signal`` is high after being low."""

    def __init__(self, signal):
        self.signal, self.cycles = signal, []

    async def run(self, ctx):
        cycle, prev = 0, 0
        async for _, _, value in ctx.tick().sample(self.signal):
            if value and not prev:
                self.cycles.append(cycle)
            prev, cycle = value, cycle + 1


def drive_words(stream, words_list, gap: float, rng: random.Random, lasts=None):
    """Testbench: send every vector, one beat per word, with random valid gaps of probability
    ``gap``; ``lasts[v][k]`` overrides the ``last`` bit (default: last on the final word)."""
    async def producer(ctx):
        for v, words in enumerate(words_list):
            for k, w in enumerate(words):
                while rng.random() < gap:
                    ctx.set(stream.valid, 0)
                    await ctx.tick()
                last = lasts[v][k] if lasts else k == len(words) - 1
                ctx.set(stream.valid, 1)
                ctx.set(stream.payload.word, int(w))
                ctx.set(stream.payload.last, int(last))
                await ctx.tick().until(stream.ready)
            ctx.set(stream.valid, 0)
    return producer


# --- the stored fiber, read back through the read ports -----------------------------------------

def expected_bases(fiber: golden.Fiber) -> list[int]:
    """Value index of each chunk's first kept word: the kept words of all earlier chunks."""
    return [int(sum(len(v) for v in fiber.values[:c])) for c in range(fiber.chunks)]


def run_compressor(cfg, length, words_list, seed, gap):
    """Feed every vector into a SpikeCompressor; after each ``done``, read every chunk row and
    every kept value through the read ports (holding ``en`` low for random cycles in between to
    check that data holds), then release. Returns the read-back per vector and the monitors."""
    dut = SpikeCompressor(cfg, length)
    geo = dut.geometry
    rng = random.Random(seed)
    inputs = Transfers(dut.words, dut.words.payload.word)
    done_rises = Rises(dut.done.valid)
    releases = Transfers(dut.done, dut.done.payload.kept)
    readback = []

    async def reader(ctx):
        async def read(port, addr):
            ctx.set(port.addr, addr)
            ctx.set(port.en, 1)
            await ctx.tick()
            ctx.set(port.en, 0)
            data = ctx.get(port.data)
            for _ in range(rng.choice([0, 0, 1, 2])):     # en low: data must hold
                ctx.set(port.addr, rng.randrange(1 << len(port.addr)))
                await ctx.tick()
                assert ctx.get(port.data) == data
            return data

        ctx.set(dut.chunk_read.en, 0)
        ctx.set(dut.value_read.en, 0)
        for _ in words_list:
            await ctx.tick().until(dut.done.valid)
            kept = ctx.get(dut.done.payload.kept)
            rows = [await read(dut.chunk_read, c) for c in range(geo.chunks)]
            values = [await read(dut.value_read, a) for a in range(kept)]
            assert ctx.get(dut.done.valid) == 1       # held through all the reads
            ctx.set(dut.done.ready, 1)
            await ctx.tick()
            ctx.set(dut.done.ready, 0)
            readback.append((kept, [r["mask"] for r in rows], [r["base"] for r in rows], values))

    simulate(dut, drive_words(dut.words, words_list, gap, rng), reader,
             background=(inputs.run, done_rises.run, releases.run))
    # While a fiber is held the compressor takes no beat, although the producer offers the next
    # vector's first word all the time: every vector enters after the previous release.
    in_cycles = [c for c, _ in inputs.beats]
    length_ = len(words_list[0])
    for v, (released, _) in enumerate(releases.beats[:-1]):
        assert done_rises.cycles[v] < released < in_cycles[(v + 1) * length_]
    assert len(releases.beats) == len(words_list)
    return readback, inputs, done_rises


COMPRESSOR_CASES = [
    # (timesteps, chunk, min_spikes, length, seed)
    (1, 16, 1, 53, 101),
    (4, 16, 1, 70, 102),
    (4, 16, 2, 45, 103),
    (8, 16, 2, 100, 104),
    (4, 16, 4, 37, 105),      # min_spikes == T: the keep test is an AND of all T bits
    (4, 16, 1, 64, 106),      # length a multiple of chunk
    (8, 128, 1, 300, 107),
    (4, 128, 2, 200, 108),
    (1, 128, 1, 20, 109),     # a single partial chunk
]


@pytest.mark.parametrize("T, chunk, min_spikes, length, seed", COMPRESSOR_CASES)
def test_stored_fiber_matches_golden(T, chunk, min_spikes, length, seed):
    cfg = make_cfg(T, chunk, min_spikes)
    words_list = vectors(cfg, length, seed, 3)
    readback, inputs, _ = run_compressor(cfg, length, words_list, seed, gap=0.3)
    assert len(readback) == len(words_list)
    assert [w for _, w in inputs.beats] == [int(w) for ws in words_list for w in ws]
    for words, (kept, masks, bases, values) in zip(words_list, readback):
        fiber = golden.compress_spikes(words, cfg)
        assert kept == fiber.kept
        assert tuple(masks) == fiber.masks
        assert bases == expected_bases(fiber)
        assert values == [int(v) for vals in fiber.values for v in vals]
        # The same read-back, cut into chunks by the stored bases, is the golden fiber.
        split = tuple(np.array(values[b:b + m.bit_count()], dtype=np.int64)
                      for m, b in zip(masks, bases))
        assert golden.Fiber(tuple(masks), split, length, chunk) == fiber
    masks_per_vector = [golden.compress_spikes(w, cfg).masks for w in words_list]
    full = [(1 << min(chunk, length - c * chunk)) - 1 for c in range(len(masks_per_vector[0]))]
    assert any(0 in ms for ms in masks_per_vector), "no all-silent chunk was exercised"
    assert any(ms[c] == f for ms in masks_per_vector for c, f in enumerate(full)), \
        "no all-firing chunk was exercised"


def test_empty_and_full_vectors():
    """A vector with no kept neuron (kept = 0, every mask 0, every base 0) and one keeping all."""
    cfg = make_cfg(4, 16, 2)
    length = 41
    silent_ish = np.array([1 << (k % 4) for k in range(length)])       # one spike each: dropped
    firing = np.full(length, 0b1011)
    readback, _, _ = run_compressor(cfg, length, [silent_ish, firing], seed=7, gap=0.0)
    (kept0, masks0, bases0, values0), (kept1, masks1, bases1, values1) = readback
    assert (kept0, masks0, bases0, values0) == (0, [0, 0, 0], [0, 0, 0], [])
    f = golden.compress_spikes(firing, cfg)
    assert (kept1, tuple(masks1), bases1) == (length, f.masks, [0, 16, 32])
    assert values1 == [0b1011] * length


def test_compressor_cycles():
    """Valid every cycle: a vector enters in ``length`` consecutive cycles, ``done`` rises 2
    cycles after the last beat, and the next vector's first beat enters the cycle after release."""
    cfg = make_cfg(4, 16, 1)
    length = 50
    words_list = vectors(cfg, length, 11, 2)
    readback, inputs, done_rises = run_compressor(cfg, length, words_list, 11, gap=0.0)
    cycles = [c for c, _ in inputs.beats]
    first, second = cycles[:length], cycles[length:]
    assert first == list(range(first[0], first[0] + length))
    assert second == list(range(second[0], second[0] + length))
    assert done_rises.cycles[0] == first[-1] + 2
    assert done_rises.cycles[1] == second[-1] + 2
    assert len(readback) == 2


# --- round trip: compressor -> decompressor ------------------------------------------------------

def run_round_trip(cfg, length, words_list, seed, gap, stall, lasts=None):
    dut = CompressRoundTrip(cfg, length)
    rng = random.Random(seed)
    sink_rng = random.Random(seed + 1)
    total = length * len(words_list)
    inputs = Transfers(dut.words_in, dut.words_in.payload.word)
    outputs = Transfers(dut.words_out, dut.words_out.payload.word, dut.words_out.payload.last)
    fiber_rises = Rises(dut.decompressor.fiber.valid)
    flags = {}

    async def sink(ctx):
        count = 0
        while count < total:
            ready = sink_rng.random() >= stall
            ctx.set(dut.words_out.ready, int(ready))
            _, _, valid = await ctx.tick().sample(dut.words_out.valid)
            count += bool(valid and ready)
        flags["error"] = ctx.get(dut.error)

    simulate(dut, drive_words(dut.words_in, words_list, gap, rng, lasts), sink,
             background=(inputs.run, outputs.run, fiber_rises.run))
    return inputs, outputs, fiber_rises, flags["error"]


def check_round_trip(cfg, length, words_list, outputs):
    assert len(outputs.beats) == length * len(words_list)
    for v, words in enumerate(words_list):
        beats = outputs.beats[v * length:(v + 1) * length]
        expect = golden.decompress(golden.compress_spikes(words, cfg))
        assert [w for _, w, _ in beats] == [int(x) for x in expect]
        assert [last for _, _, last in beats] == [0] * (length - 1) + [1]


ROUND_TRIP_CASES = [
    # (timesteps, chunk, min_spikes, length, seed, gap, stall)
    (1, 16, 1, 53, 201, 0.3, 0.3),
    (4, 16, 2, 45, 202, 0.5, 0.6),
    (8, 16, 1, 70, 203, 0.1, 0.5),
    (8, 16, 2, 64, 204, 0.3, 0.3),
    (4, 128, 1, 200, 205, 0.2, 0.4),
    (8, 128, 2, 150, 206, 0.4, 0.2),
    (1, 128, 1, 20, 207, 0.3, 0.7),
]


@pytest.mark.parametrize("T, chunk, min_spikes, length, seed, gap, stall", ROUND_TRIP_CASES)
def test_round_trip_matches_golden(T, chunk, min_spikes, length, seed, gap, stall):
    cfg = make_cfg(T, chunk, min_spikes)
    words_list = vectors(cfg, length, seed, 3)
    inputs, outputs, _, error = run_round_trip(cfg, length, words_list, seed, gap, stall)
    assert [w for _, w in inputs.beats] == [int(w) for ws in words_list for w in ws]
    check_round_trip(cfg, length, words_list, outputs)
    assert error == 0
    # Backpressure really happened: some output beats are further apart than one cycle.
    out_cycles = [c for c, _, _ in outputs.beats]
    assert max(b - a for a, b in zip(out_cycles, out_cycles[1:])) > 1


@pytest.mark.parametrize("chunk, length", [(16, 50), (128, 130)])
def test_round_trip_cycles(chunk, length):
    """Both streams never wait: the decompressor's first word leaves 2 cycles after the fiber
    is stored, then one word per cycle (``length + 2`` cycles from ``fiber.valid`` to the end of
    the vector, the last word in cycle ``length + 1``), and vectors start ``2 * length + 2``
    cycles apart."""
    cfg = make_cfg(4, chunk, 1)
    words_list = vectors(cfg, length, 31, 3)
    inputs, outputs, fiber_rises, error = run_round_trip(cfg, length, words_list, 31, 0.0, 0.0)
    check_round_trip(cfg, length, words_list, outputs)
    in_cycles = [c for c, _ in inputs.beats]
    out_cycles = [c for c, _, _ in outputs.beats]
    starts = in_cycles[::length]
    assert [b - a for a, b in zip(starts, starts[1:])] == [2 * length + 2] * 2
    for v in range(3):
        vin = in_cycles[v * length:(v + 1) * length]
        vout = out_cycles[v * length:(v + 1) * length]
        assert vin == list(range(vin[0], vin[0] + length))           # one input beat per cycle
        stored = fiber_rises.cycles[v]
        assert stored == vin[-1] + 2
        assert vout == list(range(stored + 2, stored + 2 + length))  # one output word per cycle
    assert error == 0


def test_decompressor_alone_back_to_back():
    """A fiber token that is always valid: the decompressor restarts ``length + 1`` cycles apart.

    The ports are driven by a tiny behavioural memory in the testbench (a stored golden fiber)."""
    cfg = make_cfg(4, 16, 1)
    length = 37
    words = vectors(cfg, length, 41, 1)[0]
    fiber = golden.compress_spikes(words, cfg)
    bases = expected_bases(fiber)
    flat = [int(v) for vals in fiber.values for v in vals]
    dut = SpikeDecompressor(cfg, length)
    outputs = Transfers(dut.words, dut.words.payload.word, dut.words.payload.last)
    releases = Transfers(dut.fiber, dut.fiber.valid)
    vectors_out = 3

    async def memory(ctx):
        # Synchronous read ports with enable, as amaranth.lib.memory builds them.
        async for _, _, c_en, c_addr, v_en, v_addr in ctx.tick().sample(
                dut.chunk_read.en, dut.chunk_read.addr, dut.value_read.en, dut.value_read.addr):
            if c_en and c_addr < fiber.chunks:
                ctx.set(dut.chunk_read.data.mask, fiber.masks[c_addr])
                ctx.set(dut.chunk_read.data.base, bases[c_addr])
            if v_en:
                ctx.set(dut.value_read.data, flat[v_addr] if v_addr < len(flat) else 0x5)

    async def sink(ctx):
        ctx.set(dut.fiber.valid, 1)
        ctx.set(dut.fiber.payload.kept, fiber.kept)
        ctx.set(dut.words.ready, 1)
        while len(outputs.beats) < vectors_out * length:
            await ctx.tick()

    simulate(dut, sink, background=(memory, outputs.run, releases.run))
    expect = [int(x) for x in golden.decompress(fiber)]
    got = [w for _, w, _ in outputs.beats]
    assert got == expect * vectors_out
    cycles = [c for c, _, _ in outputs.beats]
    assert cycles[0] == 2                                   # fiber.valid from cycle 0
    starts = cycles[::length]
    assert [b - a for a, b in zip(starts, starts[1:])] == [length + 1] * (vectors_out - 1)
    # Released in the walk step of the final neuron, the cycle before that neuron's word leaves.
    last_words = cycles[length - 1::length]
    assert [c for c, *_ in releases.beats][:vectors_out] == [c - 1 for c in last_words]


# --- protocol errors -----------------------------------------------------------------------------

def test_misplaced_last_sets_error_and_count_delimits_vectors():
    """``last`` on neuron 5 and missing on the final neuron: ``error`` goes high and stays high;
    vectors are still the counted ``length`` beats, so every vector comes back as counted."""
    cfg = make_cfg(4, 16, 1)
    length = 30
    words_list = vectors(cfg, length, 51, 3)
    good = [k == length - 1 for k in range(length)]
    early = [k == 5 for k in range(length)]
    lasts = [early, good, good]
    inputs, outputs, _, error = run_round_trip(cfg, length, words_list, 51, 0.2, 0.2, lasts)
    check_round_trip(cfg, length, words_list, outputs)
    assert error == 1


def test_correct_last_keeps_error_low():
    cfg = make_cfg(4, 16, 1)
    length = 30
    words_list = vectors(cfg, length, 52, 2)
    _, outputs, _, error = run_round_trip(cfg, length, words_list, 52, 0.2, 0.2)
    check_round_trip(cfg, length, words_list, outputs)
    assert error == 0


# --- Verilog ------------------------------------------------------------------------------------

@pytest.mark.parametrize("T, chunk, min_spikes, length", [
    (4, 16, 2, 45), (8, 128, 1, 300), (1, 128, 1, 1), (16, 256, 9, 4096)])
def test_verilog_converts_and_lints_clean(tmp_path, T, chunk, min_spikes, length):
    cfg = make_cfg(T, chunk, min_spikes)
    text = verilog.convert(CompressRoundTrip(cfg, length), name="spike_rt", emit_src=False)
    assert "module spike_rt(" in text
    path = tmp_path / "spike_rt.v"
    path.write_text(text)
    proc = run_tool("verilator", ["--lint-only", "-Wall", "--top-module", "spike_rt",
                                  str(WAIVER_FILE), str(path)], timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "%Warning" not in proc.stderr and "%Error" not in proc.stderr, proc.stderr


def test_lint_catches_a_real_problem(tmp_path):
    """The lint check above is not vacuous: the same call flags an undriven output."""
    path = tmp_path / "bad.v"
    path.write_text("module bad(input clk, output [3:0] q);\nendmodule\n")
    proc = run_tool("verilator", ["--lint-only", "-Wall", "--top-module", "bad",
                                  str(WAIVER_FILE), str(path)], timeout=120)
    assert proc.returncode != 0 and "UNDRIVEN" in proc.stderr


def test_bad_length_is_rejected():
    cfg = make_cfg(4, 16, 1)
    messages = []
    with warnings.catch_warnings():
        # The half-built component is garbage; Amaranth would warn that it was never elaborated.
        warnings.simplefilter("ignore", UnusedElaboratable)
        for cls in (SpikeCompressor, SpikeDecompressor, CompressRoundTrip):
            for length in (0, -3, 2.5, True):
                with pytest.raises(ValueError) as info:
                    cls(cfg, length)
                messages.append(str(info.value))
        del info                       # its traceback keeps the last half-built object alive
        gc.collect()
    assert messages[:4] == [f"length must be a positive integer, not {v!r}"
                            for v in (0, -3, 2.5, True)]
    assert len(set(messages)) == 4 and len(messages) == 12


@pytest.mark.parametrize("stall, gap", [(0.0, 0.0), (0.4, 0.3)])
def test_ping_pong_round_trip(stall, gap):
    """Vectors alternate between two buffers and come back in order; with both streams never
    waiting, each vector enters in ``length`` consecutive cycles and two vectors take one
    buffer's ``2 * length + 2`` turnaround (instead of one vector with a single buffer)."""
    cfg = make_cfg(4, 16, 1)
    length, count = 37, 5
    words_list = vectors(cfg, length, 301, count)
    dut = PingPongRoundTrip(cfg, length)
    rng, sink_rng = random.Random(301), random.Random(302)
    inputs = Transfers(dut.words_in, dut.words_in.payload.word)
    outputs = Transfers(dut.words_out, dut.words_out.payload.word, dut.words_out.payload.last)

    async def sink(ctx):
        while len(outputs.beats) < length * count:
            ctx.set(dut.words_out.ready, int(sink_rng.random() >= stall))
            await ctx.tick()

    simulate(dut, drive_words(dut.words_in, words_list, gap, rng), sink,
             background=(inputs.run, outputs.run))
    check_round_trip(cfg, length, words_list, outputs)
    if stall == 0.0 and gap == 0.0:
        cycles = [c for c, _ in inputs.beats]
        starts = cycles[::length]
        for v, start in enumerate(starts):
            assert cycles[v * length:(v + 1) * length] == list(range(start, start + length))
        assert [b - a for a, b in zip(starts[::2], starts[2::2])] == [2 * length + 2] * 2
        assert starts[1] - starts[0] == length
