"""The snn layer's write paths that were registered for Fmax (issue 13), in Amaranth's simulator.

The spike store's mask write and the weight loader's writes leave from registers a cycle after
their event's registered stage; these tests hold the margin that makes that invisible: a TPPE
that starts as early as the store's ``full`` (or the loader's falling ``loading``) allows reads
the new rows. A single-chunk layer (K <= chunk) is the tight case: the first mask row a TPPE
reads is the last one written. The layer tests of tests/test_snn_layer.py use several chunks,
whose first row is written long before.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.hdl import Value
from hwgen.testbench.amaranth_streams import simulate
from test_snn_layer import measure_timing, run

from hwgen.engines.snn import golden
from hwgen.engines.snn.config import SnnConfig
from hwgen.engines.snn.cycle_model import layer_timing
from hwgen.engines.snn.fiber import event_layout
from hwgen.engines.snn.stimulus import random_layer, weight_beats
from hwgen.engines.snn.store import REGISTERED_MASK_WRITE, SpikeStore
from hwgen.engines.snn.weights import WeightLoader
from hwgen.hdl.payload import pack

MODES = [("ftp", "fast"), ("ftp", "laggy"), ("sequential", "fast")]


def single_chunk(dataflow, join, in_format, **kw):
    return SnnConfig(**{**dict(timesteps=4, in_neurons=16, out_neurons=6, pes=4, chunk=16,
                               laggy_adders=4, threshold=12, dataflow=dataflow, join=join,
                               in_format=in_format, out_format="fiber"), **kw})


@pytest.mark.parametrize("pes", [4, REGISTERED_MASK_WRITE])
@pytest.mark.parametrize("dataflow, join", MODES)
@pytest.mark.parametrize("in_format", ["dense", "fiber"])
def test_single_chunk_layer_matches_golden(dataflow, join, in_format, pes):
    """Samples back to back with no gaps, a weight set right behind the last sample of a
    segment: each TPPE starts as soon as a bank is full or the set is loaded."""
    cfg = single_chunk(dataflow, join, in_format, pes=pes, out_neurons=pes + 2)
    seed = 7 + MODES.index((dataflow, join))
    rng = np.random.default_rng(seed)
    segments = [random_layer(cfg, rng, samples=3, weight_density=0.7),
                random_layer(cfg, rng, samples=3, weight_density=0.4)]
    got, expected = run(cfg, segments, seed, gap=0.0, ready_prob=1.0, wait=False)
    assert got == expected, f"seed {seed}"


@pytest.mark.parametrize("alone", [False, True], ids=["back_to_back", "alone"])
@pytest.mark.parametrize("dataflow, join", MODES)
def test_single_chunk_cycle_model_is_exact(dataflow, join, alone):
    cfg = single_chunk(dataflow, join, "fiber", pes=REGISTERED_MASK_WRITE, out_neurons=10)
    a, b = random_layer(cfg, np.random.default_rng(3), samples=4, weight_density=0.5)
    trace = golden.layer(a, b, cfg)
    model = [(t.first_in, t.last_out) for t in layer_timing(cfg, trace, alone)]
    origin = model[0][0]
    assert measure_timing(cfg, trace, alone) == [(f - origin, la - origin) for f, la in model]


@pytest.mark.parametrize("readers", [2, REGISTERED_MASK_WRITE])
@pytest.mark.parametrize("dataflow", ["ftp", "sequential"])
def test_store_mask_row_readable_when_full(dataflow, readers):
    """Events of two samples, one per cycle: in the cycle after ``full`` rises (a TPPE's first
    issue at the earliest) every read port reads the sample's last chunk row as written (the
    mask write is registered from ``REGISTERED_MASK_WRITE`` readers on). ``full_next`` and
    ``busy_next`` are what ``full`` and ``busy`` become at every tick."""
    cfg = SnnConfig(timesteps=4, in_neurons=24, out_neurons=readers, pes=readers, chunk=8,
                    dataflow=dataflow, laggy_adders=4)
    W, C, T = cfg.chunk, cfg.chunks, cfg.timesteps
    dut = SpikeStore(cfg, readers)
    layout = event_layout(W, C, T)
    rng = random.Random(5)
    samples = [[rng.choice([0, 0, 1, 5, 8, 15]) for _ in range(cfg.in_neurons)] for _ in range(2)]

    def row(words, c):
        chunk = words[c * W:(c + 1) * W]
        if dataflow == "ftp":
            return sum(int(w != 0) << i for i, w in enumerate(chunk))
        return sum(int(w >> t & 1) << (t * W + i) for t in range(T) for i, w in enumerate(chunk))

    async def tick(ctx):
        full_next, busy_next = ctx.get(dut.full_next), ctx.get(dut.busy_next)
        await ctx.tick()
        assert (ctx.get(dut.full), ctx.get(dut.busy)) == (full_next, busy_next)

    async def testbench(ctx):
        for s, words in enumerate(samples):
            for k, w in enumerate(words):
                c, pos = divmod(k, W)
                ev = {"c": c, "pos": pos, "value": w, "has_value": 1,
                      "chunk_end": int(pos == W - 1 or k == len(words) - 1),
                      "vector_end": int(k == len(words) - 1)}
                ctx.set(dut.events.valid, 1)
                ctx.set(Value.cast(dut.events.payload), pack(layout, ev))
                await tick(ctx)
            ctx.set(dut.events.valid, 0)
            bank = s % 2
            for _ in range(4):
                if ctx.get(dut.full) >> bank & 1:
                    break
                await tick(ctx)
            else:
                raise AssertionError("the bank did not fill")
            await tick(ctx)                        # the TPPE starts; its first issue reads:
            for port in dut.mask_reads:
                ctx.set(port.addr, (bank << dut.cbits) | (C - 1))
                ctx.set(port.en, 1)
            await tick(ctx)
            for port in dut.mask_reads:
                assert ctx.get(Value.cast(port.data)) == row(words, C - 1), f"sample {s}"
            ctx.set(dut.free, 1 << bank)
            await tick(ctx)
            ctx.set(dut.free, 0)

    simulate(dut, testbench)


def test_loader_writes_no_later_than_the_first_cycle_without_loading():
    """Every weight and mask write of a set is offered at the latest in the first cycle with
    ``loading`` low (a TPPE reads its first weight mask at the end of the cycle after it), and
    the set's mask writes are one per (neuron, chunk), to the neuron's TPPE."""
    cfg = SnnConfig(timesteps=4, in_neurons=16, out_neurons=6, pes=4, chunk=16,
                    laggy_adders=4, in_format="fiber")
    a, b = random_layer(cfg, np.random.default_rng(11), samples=1, weight_density=0.6)
    trace = golden.layer(a, b, cfg)
    dut = WeightLoader(cfg)
    beats = [pack(dut.beats.payload.shape(), beat) for beat in weight_beats(cfg, trace)]
    writes, mask_writes, mask_pes = [], [], []

    async def testbench(ctx):
        ctx.set(dut.allowed_next, 1)
        sent, low_since = 0, None
        for cycle in range(2000):
            ctx.set(dut.beats.valid, sent < len(beats))
            ctx.set(Value.cast(dut.beats.payload), beats[sent] if sent < len(beats) else 0)
            if any(ctx.get(write) for write in dut.write):
                writes.append(cycle)
            for q, write in enumerate(dut.mask_write):
                if ctx.get(write):
                    mask_writes.append(cycle)
                    mask_pes.append(q)
            if sent < len(beats) and ctx.get(dut.beats.ready):
                sent += 1
            if sent == len(beats) and not ctx.get(dut.loading) and low_since is None \
                    and mask_writes:
                low_since = cycle
            await ctx.tick()
            if low_since is not None and cycle > low_since + 10:
                break
        assert low_since is not None, "the set did not load"
        assert max(writes + mask_writes) <= low_since
        assert len(mask_writes) == cfg.out_neurons * cfg.chunks
        # Neuron n's masks go to TPPE n % P, in set order.
        assert mask_pes == [n % cfg.pes for n in range(cfg.out_neurons) for _ in range(cfg.chunks)]

    simulate(dut, testbench)

