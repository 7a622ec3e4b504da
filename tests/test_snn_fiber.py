"""The snn engine's port formats (hwgen/engines/snn/fiber.py) in Amaranth's simulator.

The receivers' write events are compared with what the golden fibers say (every kept neuron's
value at its position, one event per empty chunk, chunk and vector ends); the emitter's beats
with ``stimulus.fiber_beats`` of ``golden.compress_spikes``. Malformed streams must raise the
sticky ``error``. Random vectors come from recorded seeds.
"""

from __future__ import annotations

import numpy as np
import pytest
from hwgen.testbench.amaranth_streams import run_through

from hwgen.engines.snn import golden
from hwgen.engines.snn.config import SnnConfig
from hwgen.engines.snn.fiber import (
    DenseReceiver,
    FiberEmitter,
    FiberReceiver,
    fiber_layout,
    row_layout,
    word_layout,
)
from hwgen.engines.snn.stimulus import fiber_beats
from hwgen.hdl.payload import pack, unpack


def vectors(cfg: SnnConfig, length: int, count: int, seed: int) -> list[np.ndarray]:
    """Packed words with silent stretches (empty chunks), full chunks and sparse ones."""
    rng = np.random.default_rng(seed)
    out = [np.zeros(length, dtype=np.int64), np.full(length, (1 << cfg.timesteps) - 1)]
    for _ in range(count):
        density = rng.choice([0.05, 0.3, 0.9])
        words = rng.integers(1, 1 << cfg.timesteps, size=length)
        out.append(np.where(rng.random(length) < density, words, 0).astype(np.int64))
    return out


def expected_events(cfg: SnnConfig, fiber: golden.Fiber, dense: bool) -> list[dict]:
    events = []
    for c, mask in enumerate(fiber.masks):
        lo, hi = fiber.span(c)
        end = c == fiber.chunks - 1
        positions = range(hi - lo) if dense else [i for i in range(hi - lo) if mask >> i & 1]
        words = golden.decompress(fiber)
        if not positions:
            events.append({"c": c, "pos": 0, "value": 0, "has_value": 0, "chunk_end": 1,
                           "vector_end": int(end)})
        for j, i in enumerate(positions):
            last = j == len(positions) - 1
            events.append({"c": c, "pos": i, "value": int(words[lo + i]), "has_value": 1,
                           "chunk_end": int(last), "vector_end": int(last and end)})
    return events


CASES = [(dict(timesteps=4, chunk=16), 40, 1), (dict(timesteps=3, chunk=8, min_spikes=2), 8, 2),
         (dict(timesteps=4, chunk=128), 136, 3), (dict(timesteps=1, chunk=4), 7, 4)]


@pytest.mark.parametrize("fmt", ["dense", "fiber"])
@pytest.mark.parametrize("kw, length, seed", CASES)
def test_receiver_events(fmt, kw, length, seed):
    cfg = SnnConfig(in_neurons=length, **kw)
    rx = (DenseReceiver if fmt == "dense" else FiberReceiver)(cfg.chunk, length, cfg.timesteps)
    beats, want = [], []
    for words in vectors(cfg, length, 6, seed):
        fiber = golden.compress_spikes(words, cfg)
        if fmt == "dense":
            beats += [pack(word_layout(cfg.timesteps), {"word": int(w), "last": int(k == length - 1)})
                      for k, w in enumerate(words)]
            want += expected_events(cfg, golden.compress(words, np.ones(length, bool), cfg.chunk),
                                    dense=True)
        else:
            beats += [pack(fiber_layout(cfg.chunk, cfg.timesteps), b)
                      for b in fiber_beats(fiber, cfg.timesteps)]
            want += expected_events(cfg, fiber, dense=False)
    # The events follow the beats combinationally, so the beats are offered without gaps (a
    # source holds valid until ready; run_through's gaps would drop it): backpressure only.
    _, received = run_through(rx, rx.beats, rx.events, beats, len(want), seed, 1.0, 0.6,
                              max_cycles=100_000)
    layout = rx.events.payload.shape()
    got = [unpack(layout, bits) for _, bits in received]
    for event in got:
        if not event["has_value"]:
            event["pos"] = event["value"] = 0        # an event without a value carries neither
    assert got == want


def run_error(rx, beats, layout, seed):
    """Stream ``beats`` (events always taken) and return the sticky error after them."""
    from amaranth.hdl import Value
    from hwgen.testbench.amaranth_streams import simulate
    result = {}

    async def testbench(ctx):
        ctx.set(rx.events.ready, 1)
        for bits in beats:
            ctx.set(rx.beats.valid, 1)
            ctx.set(Value.cast(rx.beats.payload), pack(layout, bits))
            for _ in range(20):
                if ctx.get(rx.beats.ready):
                    break
                await ctx.tick()
            await ctx.tick()
        ctx.set(rx.beats.valid, 0)
        for _ in range(4):
            await ctx.tick()
        result["error"] = ctx.get(rx.error)

    simulate(rx, testbench)
    return result["error"]


def test_fiber_receiver_flags_malformed_streams():
    chunk, length, bits = 8, 16, 4
    layout = fiber_layout(chunk, bits)
    good = [{"data": 0b101, "mask": 1, "last": 0}, {"data": 3, "mask": 0, "last": 0},
            {"data": 5, "mask": 0, "last": 0}, {"data": 0, "mask": 1, "last": 1}]
    missing_word = [good[0], good[1], good[3]]
    early_last = [dict(good[0]), good[1], good[2], {"data": 0, "mask": 1, "last": 0}]
    early_last[0]["last"] = 1
    no_last = good[:3] + [{"data": 0, "mask": 1, "last": 0}]
    assert run_error(FiberReceiver(chunk, length, bits), good, layout, 1) == 0
    for bad in (missing_word, early_last, no_last):
        assert run_error(FiberReceiver(chunk, length, bits), bad, layout, 1) == 1


def test_dense_receiver_flags_a_misplaced_last():
    layout = word_layout(2)
    good = [{"word": 1, "last": 0}, {"word": 2, "last": 0}, {"word": 3, "last": 1}]
    bad = [{"word": 1, "last": 1}, {"word": 2, "last": 0}, {"word": 3, "last": 1}]
    assert run_error(DenseReceiver(4, 3, 2), good, layout, 2) == 0
    assert run_error(DenseReceiver(4, 3, 2), bad, layout, 2) == 1


@pytest.mark.parametrize("lanes", [1, 2, 4])
@pytest.mark.parametrize("kw, length, seed", CASES)
def test_emitter_matches_the_golden_compressor(kw, length, seed, lanes):
    """Rows of ``lanes`` words in (the vector's last row partial where ``lanes`` does not divide
    the length: its other lanes carry spikes that must be ignored)."""
    cfg = SnnConfig(**kw)
    em = FiberEmitter(cfg.chunk, length, cfg.timesteps, cfg.min_spikes, lanes)
    rng = np.random.default_rng(seed + 20)
    beats, want = [], []
    for words in vectors(cfg, length, 6, seed + 10):
        padded = list(words) + [int(x) for x in rng.integers(1, 1 << cfg.timesteps,
                                                              size=-length % lanes)]
        beats += [pack(row_layout(cfg.timesteps, lanes), {"words": padded[r:r + lanes]})
                  for r in range(0, length, lanes)]
        want += fiber_beats(golden.compress_spikes(words, cfg), cfg.timesteps)
    _, received = run_through(em, em.rows, em.out, beats, len(want), seed, 0.7, 0.4,
                              max_cycles=100_000)
    layout = em.out.payload.shape()
    assert [unpack(layout, bits) for _, bits in received] == want


@pytest.mark.parametrize("lanes", [0, 3, 8])
def test_emitter_rejects_lanes_that_do_not_divide_the_chunk(lanes):
    with pytest.raises(ValueError, match=f"lanes must be a power of two dividing chunk = 4, "
                                         f"not {lanes}"):
        FiberEmitter(4, 7, 2, 1, lanes)
