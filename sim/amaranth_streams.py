"""Stream drivers and monitors for unit tests of Amaranth blocks in Amaranth's own simulator.

The cocotb drivers in :mod:`sim.streams` check whole engines under Verilator; these do the same
job for small blocks (docs/architecture.md §5: Amaranth's simulator is fine for ``hdl/`` blocks and
engine
parts). Same protocol rules: ``valid`` never waits for ``ready``, payload stable until taken.
"""

from __future__ import annotations

import random

from amaranth.hdl import Value
from amaranth.sim import Simulator

__all__ = ["Transfers", "send", "accept", "simulate"]


class Transfers:
    """Background monitor: ``(cycle, *values)`` of every transfer on ``stream``.

    ``fields`` are the signals or views sampled with each transfer (default: the payload).
    """

    def __init__(self, stream, *fields):
        self.stream = stream
        self.fields = fields or (stream.payload,)
        self.beats: list[tuple] = []

    async def run(self, ctx):
        s = self.stream
        cycle = 0
        async for _, _, valid, ready, *values in ctx.tick().sample(s.valid, s.ready, *self.fields):
            if valid and ready:
                self.beats.append((cycle, *values))
            cycle += 1


def send(stream, payloads, rng: random.Random, gap: float = 0.0):
    """Testbench offering each payload (anything ``ctx.set`` takes for the payload) in order,
    idling before a beat with probability ``gap`` per cycle."""
    async def producer(ctx):
        for payload in payloads:
            while rng.random() < gap:
                ctx.set(stream.valid, 0)
                await ctx.tick()
            ctx.set(stream.valid, 1)
            ctx.set(stream.payload, payload)
            await ctx.tick().until(stream.ready)
        ctx.set(stream.valid, 0)
    return producer


def accept(stream, rng: random.Random, ready_prob: float = 1.0):
    """Background testbench holding ``ready`` high with probability ``ready_prob`` per cycle."""
    async def consumer(ctx):
        while True:
            ctx.set(stream.ready, int(rng.random() < ready_prob))
            await ctx.tick()
    return consumer


def simulate(dut, *testbenches, background=()) -> None:
    """Run ``testbenches`` to completion with ``background`` ones alongside (10 ns clock)."""
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for tb in background:
        sim.add_testbench(tb, background=True)
    for tb in testbenches:
        sim.add_testbench(tb)
    sim.run()


def run_through(dut, source, sink, payloads, outputs: int, seed: int, valid_prob: float = 1.0,
                ready_prob: float = 1.0, max_cycles: int = 20000):
    """Stream ``payloads`` (payload bits) into ``source`` and take ``outputs`` beats from ``sink``,
    with random valid gaps and ready backpressure, checking the output stream rules every cycle
    (``valid`` held and payload stable until the beat is taken).

    Returns ``(accepted, received)``: the cycle of every input transfer and ``(cycle, bits)`` of
    every output transfer.
    """
    rng = random.Random(seed)
    accepted, received = [], []

    async def testbench(ctx):
        pending = list(payloads)
        held = None                      # the output payload while it waits for ready
        for cycle in range(max_cycles):
            offer = bool(pending) and rng.random() < valid_prob
            ctx.set(source.valid, offer)
            ctx.set(Value.cast(source.payload), pending[0] if offer else 0)
            ready = rng.random() < ready_prob
            ctx.set(sink.ready, ready)
            valid = ctx.get(sink.valid)
            bits = ctx.get(Value.cast(sink.payload))
            if held is not None:
                assert valid, f"cycle {cycle}: valid dropped before the beat was taken"
                assert bits == held, f"cycle {cycle}: payload changed while stalled"
            if offer and ctx.get(source.ready):
                accepted.append(cycle)
                pending.pop(0)
            if valid and ready:
                received.append((cycle, bits))
                held = None
            else:
                held = bits if valid else None
            await ctx.tick()
            if not pending and len(received) == outputs:
                return
        raise AssertionError(f"not finished after {max_cycles} cycles")

    simulate(dut, testbench)
    return accepted, received
