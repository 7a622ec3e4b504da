"""The whole SNN layer (hwgen/engines/snn/rtl.py) in Amaranth's simulator against golden.layer.

Weights are loaded once, then several samples stream back to back with random valid gaps and
output backpressure; every output word must equal the golden model's compressed-then-decompressed
output spikes. (The Verilator/cocotb check of the emitted Verilog is tests/test_snn_sim.py.)
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from hwgen.testbench.amaranth_streams import Transfers, accept, send, simulate

from hwgen.engines.snn import golden
from hwgen.engines.snn.config import SnnConfig
from hwgen.engines.snn.cycle_model import TOLERANCE, layer_cycles
from hwgen.engines.snn.rtl import SnnLayer
from hwgen.engines.snn.stimulus import random_layer, weight_beats


def run(cfg: SnnConfig, a, b, seed: int, gap: float, ready_prob: float):
    trace = golden.layer(a, b, cfg)
    expected = [int(w) for fiber in trace.out_fibers for w in golden.decompress(fiber)]
    words = [{"word": int(w), "last": int(k == cfg.in_neurons - 1)}
             for sample in trace.words for k, w in enumerate(sample)]
    dut = SnnLayer(cfg)
    rng = random.Random(seed)
    outputs = Transfers(dut.out)

    async def wait_for_outputs(ctx):
        for _ in range(50_000):
            if len(outputs.beats) >= len(expected):
                return
            await ctx.tick()
        raise AssertionError("layer did not produce every output word")

    simulate(dut, send(dut.weights, weight_beats(cfg, trace), rng, gap),
             send(dut.spikes, words, rng, gap), wait_for_outputs,
             background=[outputs.run, accept(dut.out, rng, ready_prob)])
    got = [int(beat[1].word) for beat in outputs.beats]
    lasts = [int(beat[1].last) for beat in outputs.beats]
    return got, expected, lasts


@pytest.mark.parametrize("dataflow, join", [("ftp", "fast"), ("ftp", "laggy"),
                                             ("sequential", "fast")])
@pytest.mark.parametrize("pes, out_neurons, seed", [(4, 6, 31), (1, 3, 32)])
def test_layer_matches_golden(dataflow, join, pes, out_neurons, seed):
    cfg = SnnConfig(timesteps=4, in_neurons=40, out_neurons=out_neurons, pes=pes, chunk=16,
                    dataflow=dataflow, join=join, laggy_adders=4, threshold=20)
    a, b = random_layer(cfg, np.random.default_rng(seed), samples=3)
    got, expected, lasts = run(cfg, a, b, seed, gap=0.2, ready_prob=0.6)
    assert got == expected, f"seed {seed}"
    assert any(expected), "no output neuron fired: the check would be weak"
    assert lasts == [int(n == out_neurons - 1) for _ in range(3) for n in range(out_neurons)]


def measure_sample_cycles(cfg: SnnConfig, a, b, seed: int) -> tuple[list[int], list[int]]:
    """Cycles from each sample's first spike word to its last output word, one sample at a time
    with no gaps or backpressure, and what :mod:`hwgen.engines.snn.cycle_model` predicts."""
    trace = golden.layer(a, b, cfg)
    K, N, samples = cfg.in_neurons, cfg.out_neurons, a.shape[0]
    dut = SnnLayer(cfg)
    rng = random.Random(seed)
    inputs = Transfers(dut.spikes, dut.spikes.payload.last)
    outputs = Transfers(dut.out, dut.out.payload.last)
    words = [{"word": int(w), "last": int(k == K - 1)} for s in trace.words for k, w in enumerate(s)]

    async def one_sample_at_a_time(ctx):
        for s in range(samples):
            while len(outputs.beats) < s * N:
                await ctx.tick()
            await send(dut.spikes, words[s * K:(s + 1) * K], rng)(ctx)
        while len(outputs.beats) < samples * N:
            await ctx.tick()

    simulate(dut, send(dut.weights, weight_beats(cfg, trace), rng), one_sample_at_a_time,
             background=[inputs.run, outputs.run, accept(dut.out, rng)])
    measured = [outputs.beats[(s + 1) * N - 1][0] - inputs.beats[s * K][0] + 1
                for s in range(samples)]
    return measured, [c.total for c in layer_cycles(cfg, trace)]


@pytest.mark.parametrize("dataflow, join", [("ftp", "fast"), ("ftp", "laggy"),
                                             ("sequential", "fast")])
@pytest.mark.parametrize("pes, out_neurons", [(4, 6), (1, 3)])
def test_cycles_per_sample_follow_the_model(dataflow, join, pes, out_neurons):
    cfg = SnnConfig(timesteps=4, in_neurons=40, out_neurons=out_neurons, pes=pes, chunk=16,
                    dataflow=dataflow, join=join, laggy_adders=4, threshold=20)
    a, b = random_layer(cfg, np.random.default_rng(41), samples=3)
    measured, model = measure_sample_cycles(cfg, a, b, 41)
    for got, want in zip(measured, model):
        assert abs(got - want) <= TOLERANCE * want, (measured, model)
