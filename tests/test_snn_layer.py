"""The whole SNN layer (hwgen/engines/snn/rtl.py) in Amaranth's simulator against golden.layer.

A run is a list of *segments*, each a weight set followed by samples, with no reset in between:
the weights are reloaded between samples. Every beat on ``out`` must equal the golden model's
(dense words or fibers, per ``out_format``), under random valid gaps and backpressure. (The
Verilator/cocotb check of the emitted Verilog is tests/test_snn_sim.py.) The cycle model is held
to the RTL cycle for cycle, alone and back to back.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.hdl import Value
from hwgen.testbench.amaranth_streams import Transfers, accept, send, simulate
from hwgen.testbench.test_snn import WEIGHT_SETTLE

from hwgen.engines.snn import golden
from hwgen.engines.snn.config import SnnConfig
from hwgen.engines.snn.cycle_model import layer_timing
from hwgen.engines.snn.rtl import SnnLayer
from hwgen.engines.snn.stimulus import out_beats, random_layer, spike_beats, weight_beats
from hwgen.hdl.payload import pack


def run(cfg: SnnConfig, segments, seed: int, gap: float, ready_prob: float, wait: bool = True):
    """Stream ``segments`` [(a, b)]; returns (received out beats, expected out beats). A weight
    set is sent once the samples before it have all come out, or (not ``wait``) right after
    their last input beat."""
    traces = [golden.layer(a, b, cfg) for a, b in segments]
    expected = [beat for tr in traces for s in range(tr.words.shape[0])
                for beat in out_beats(cfg, tr, s)]
    dut = SnnLayer(cfg)
    rng = random.Random(seed)
    outputs = Transfers(dut.out)
    layout = dut.out.payload.shape()

    async def segments_in_order(ctx):
        # The layer takes a set only while no sample is stored or on its way into the store,
        # and applies it to the samples after it.
        done = 0
        for tr in traces:
            while wait and len(outputs.beats) < done:
                await ctx.tick()
            await send(dut.weights, weight_beats(cfg, tr), rng, gap)(ctx)
            for s in range(tr.words.shape[0]):
                await send(dut.spikes, spike_beats(cfg, tr, s), rng, gap)(ctx)
                done += len(out_beats(cfg, tr, s))
        for _ in range(50_000):
            if len(outputs.beats) >= len(expected):
                return
            await ctx.tick()
        raise AssertionError(f"{len(outputs.beats)} of {len(expected)} output beats")

    simulate(dut, segments_in_order, background=[outputs.run, accept(dut.out, rng, ready_prob)])
    got = [{name: int(beat[1][name]) for name, _ in layout} for beat in outputs.beats]
    return got, expected


MODES = [("ftp", "fast"), ("ftp", "laggy"), ("sequential", "fast")]
FORMATS = [("dense", "dense"), ("fiber", "fiber"), ("fiber", "dense"), ("dense", "fiber")]


@pytest.mark.parametrize("dataflow, join", MODES)
@pytest.mark.parametrize("in_format, out_format", FORMATS)
def test_layer_matches_golden(dataflow, join, in_format, out_format):
    seed = 31 + MODES.index((dataflow, join)) + 3 * FORMATS.index((in_format, out_format))
    cfg = SnnConfig(timesteps=4, in_neurons=40, out_neurons=6, pes=4, chunk=16,
                    dataflow=dataflow, join=join, laggy_adders=4, threshold=20,
                    in_format=in_format, out_format=out_format)
    rng = np.random.default_rng(seed)
    segments = [random_layer(cfg, rng, samples=3),
                random_layer(cfg, rng, samples=2, weight_density=0.6)]
    got, expected = run(cfg, segments, seed, gap=0.2, ready_prob=0.6)
    assert got == expected, f"seed {seed}"
    words = [b["word"] if "word" in b else b["data"] * (1 - b["mask"]) for b in expected]
    assert any(words), "no output neuron fired: the check would be weak"


@pytest.mark.parametrize("in_format", ["dense", "fiber"])
def test_weight_set_right_behind_the_last_sample(in_format):
    """A set sent right after a sample's last input beat applies to the samples after it only:
    the sample's last chunk is silent, so its fiber ends in a mask beat whose (empty) event
    reaches the store cycles later, and a high threshold set gives other outputs."""
    cfg = SnnConfig(timesteps=4, in_neurons=16, out_neurons=3, pes=2, chunk=8, threshold=20,
                    in_format=in_format, out_format="fiber")
    a = np.zeros((1, 16, 4), dtype=np.int64)
    a[0, :8] = 1
    b = np.full((16, 3), 10, dtype=np.int64)
    got, expected = run(cfg, [(a, b), (a, -b)], 71, gap=0.0, ready_prob=1.0, wait=False)
    assert got == expected
    assert golden.layer(a, b, cfg).out_words.any() and not golden.layer(a, -b, cfg).out_words.any()


@pytest.mark.parametrize("pes, out_neurons, lanes, out_format, seed", [
    (1, 3, None, "fiber", 32), (3, 7, None, "fiber", 33), (4, 2, None, "fiber", 34),
    (8, 19, None, "fiber", 35), (8, 19, 4, "dense", 36), (8, 6, 2, "fiber", 37)])
def test_layer_pe_counts(pes, out_neurons, lanes, out_format, seed):
    """One TPPE, P not dividing N, more TPPEs than neurons; LIF lanes (``cfg.lanes``: 8 with
    19 neurons: a partial last row; 4 of 8 TPPEs per row into dense words; 2 of 6)."""
    cfg = SnnConfig(timesteps=3, in_neurons=21, out_neurons=out_neurons, pes=pes, chunk=8,
                    laggy_adders=2, threshold=12, in_format="fiber", out_format=out_format,
                    lif_lanes=lanes)
    a, b = random_layer(cfg, np.random.default_rng(seed), samples=3)
    got, expected = run(cfg, [(a, b)], seed, gap=0.3, ready_prob=0.5)
    assert got == expected, f"seed {seed}"


def measure_timing(cfg: SnnConfig, trace, alone: bool) -> list[tuple[int, int]]:
    """(first input beat, last output beat) of every sample, counted from the first sample's
    first beat: the weight set first, the samples ``WEIGHT_SETTLE`` cycles after its last beat
    (as the cocotb testbench does), no gaps, ``out`` always ready; ``alone``: each sample after
    the previous one's last output beat."""
    dut = SnnLayer(cfg)
    samples = trace.words.shape[0]
    w_beats = [pack(dut.weights.payload.shape(), b) for b in weight_beats(cfg, trace)]
    s_beats = [[pack(dut.spikes.payload.shape(), b) for b in spike_beats(cfg, trace, s)]
               for s in range(samples)]
    n_out = [len(out_beats(cfg, trace, s)) for s in range(samples)]
    first, last = [None] * samples, [None] * samples

    async def testbench(ctx):
        w = s = i = o = done = 0
        start = t0 = None
        ctx.set(dut.out.ready, 1)
        for cycle in range(100_000):
            ctx.set(dut.weights.valid, w < len(w_beats))
            ctx.set(Value.cast(dut.weights.payload), w_beats[w] if w < len(w_beats) else 0)
            if w == len(w_beats) and start is None:
                start = cycle + WEIGHT_SETTLE
            offer = start is not None and cycle >= start and s < samples \
                and (not alone or s == 0 or last[s - 1] is not None)
            ctx.set(dut.spikes.valid, offer)
            ctx.set(Value.cast(dut.spikes.payload), s_beats[s][i] if offer else 0)
            if w < len(w_beats) and ctx.get(dut.weights.ready):
                w += 1
            if offer and ctx.get(dut.spikes.ready):
                t0 = cycle if t0 is None else t0
                if i == 0:
                    first[s] = cycle - t0
                i += 1
                if i == len(s_beats[s]):
                    s, i = s + 1, 0
            if ctx.get(dut.out.valid):
                o += 1
                if o == n_out[done]:
                    last[done], done, o = cycle - t0, done + 1, 0
            await ctx.tick()
            if done == samples:
                return
        raise AssertionError("the layer did not finish")

    simulate(dut, testbench)
    return list(zip(first, last))


@pytest.mark.parametrize("alone", [False, True], ids=["back_to_back", "alone"])
@pytest.mark.parametrize("kw, seed", [
    (dict(), 41),
    (dict(join="laggy", in_format="fiber", out_format="fiber"), 42),
    (dict(dataflow="sequential", in_format="fiber"), 43),
    (dict(pes=3, out_neurons=7, out_format="fiber"), 44),
    (dict(pes=4, out_neurons=16, chunk=8, laggy_adders=2, in_format="fiber"), 45),
    (dict(in_neurons=136, chunk=128, laggy_adders=16, pes=2, out_neurons=4, timesteps=1,
          in_format="fiber", out_format="fiber"), 46),
    # LIF lanes: 4 (the most) with a partial last row; 2 of 4 TPPEs per row; dense out with 2.
    (dict(out_neurons=11, in_format="fiber", out_format="fiber"), 47),
    (dict(pes=4, out_neurons=10, lif_lanes=2, out_format="fiber"), 48),
    (dict(pes=8, out_neurons=13, lif_lanes=2, in_format="fiber"), 49),
])
def test_cycle_model_is_exact(kw, seed, alone):
    """Every sample's first input beat and last output beat fall in the cycles the model says."""
    base = dict(timesteps=4, in_neurons=40, out_neurons=6, pes=4, chunk=16, laggy_adders=4,
                threshold=20)
    cfg = SnnConfig(**{**base, **kw})
    a, b = random_layer(cfg, np.random.default_rng(seed), samples=4, weight_density=0.5)
    trace = golden.layer(a, b, cfg)
    model = [(t.first_in, t.last_out) for t in layer_timing(cfg, trace, alone)]
    origin = model[0][0]
    assert measure_timing(cfg, trace, alone) == [(f - origin, la - origin) for f, la in model]
