"""The TPPE inner join (hwgen/engines/snn/join.py) in Amaranth's simulator against the golden join.

Every (sample, output neuron) pair of a random layer and of the edge-case layers is joined chunk by
chunk with random input gaps and output backpressure; each O[0..T-1] must equal
``golden.join(...).o``. Seeds are recorded in the test ids.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from hwgen.testbench.amaranth_streams import Transfers, accept, send, simulate

from hwgen.engines.snn import golden
from hwgen.engines.snn.config import SnnConfig
from hwgen.engines.snn.cycle_model import join_cycles
from hwgen.engines.snn.join import Tppe
from hwgen.engines.snn.stimulus import edge_layers, random_layer

MODES = [("ftp", "fast"), ("ftp", "laggy"), ("sequential", "fast")]


def chunk_jobs(cfg: SnnConfig, spikes: golden.Fiber, weights: golden.Fiber) -> list[dict]:
    """The chunk beats of one (sample, neuron) pair, values packed from rank 0 and zero padded."""
    words = golden.decompress(spikes)
    jobs = []
    for c in range(spikes.chunks):
        def pad(values):
            return [int(v) for v in values] + [0] * (cfg.chunk - len(values))
        job = {"wmask": int(weights.masks[c]), "wvals": pad(weights.values[c]),
               "first": int(c == 0), "last": int(c == spikes.chunks - 1)}
        if cfg.dataflow == "ftp":
            job |= {"smask": int(spikes.masks[c]), "svals": pad(spikes.values[c])}
        else:
            span = words[c * cfg.chunk:(c + 1) * cfg.chunk]
            job["tmasks"] = [sum(((int(word) >> t) & 1) << i for i, word in enumerate(span))
                             for t in range(cfg.timesteps)]
        jobs.append(job)
    return jobs


def run_layer(cfg: SnnConfig, a, b, seed: int, gap: float, ready_prob: float):
    """Join every pair of the layer on one TPPE; return (results, expected, monitors)."""
    trace = golden.layer(a, b, cfg)
    jobs, expected = [], []
    for m in range(a.shape[0]):
        for n in range(b.shape[1]):
            jobs += chunk_jobs(cfg, trace.spike_fibers[m], trace.weight_fibers[n])
            expected.append([int(v) for v in trace.joins[m][n].o])
    dut = Tppe(cfg)
    rng = random.Random(seed)
    results = Transfers(dut.sums)
    chunks = Transfers(dut.chunks, dut.chunks.payload.first)

    async def wait_for_all(ctx):
        while len(results.beats) < len(expected):
            await ctx.tick()

    simulate(dut, send(dut.chunks, jobs, rng, gap), wait_for_all,
             background=[results.run, chunks.run, accept(dut.sums, rng, ready_prob)])
    got = [[int(v) for v in beat[1].o] for beat in results.beats]
    return got, expected, trace, chunks, results


@pytest.mark.parametrize("dataflow, join", MODES)
@pytest.mark.parametrize("timesteps, chunk, seed", [(1, 16, 11), (4, 16, 12), (8, 32, 13)])
def test_join_matches_golden(dataflow, join, timesteps, chunk, seed):
    cfg = SnnConfig(timesteps=timesteps, in_neurons=2 * chunk + 5, out_neurons=3, chunk=chunk,
                    dataflow=dataflow, join=join, laggy_adders=4)
    a, b = random_layer(cfg, np.random.default_rng(seed), samples=3)
    got, expected, *_ = run_layer(cfg, a, b, seed, gap=0.3, ready_prob=0.5)
    assert got == expected, f"seed {seed}"


@pytest.mark.parametrize("dataflow, join", MODES)
def test_join_edge_layers(dataflow, join):
    cfg = SnnConfig(timesteps=4, in_neurons=40, out_neurons=4, chunk=16, dataflow=dataflow,
                    join=join, laggy_adders=4, min_spikes=2)
    for name, a, b in edge_layers(cfg, np.random.default_rng(5)):
        got, expected, *_ = run_layer(cfg, a, b, 5, gap=0.2, ready_prob=0.7)
        assert got == expected, name


def test_laggy_paper_widths_wrap_like_the_golden_model():
    """12-bit pseudo / 10-bit correction accumulators that overflow: the RTL wraps exactly as the
    golden model, whose laggy output then differs from the exact sum."""
    cfg = SnnConfig(timesteps=4, in_neurons=64, out_neurons=4, chunk=16, join="laggy",
                    laggy_adders=4, preset="paper")
    layers = dict((name, (a, b)) for name, a, b in edge_layers(cfg, np.random.default_rng(9)))
    a, b = layers["paper_overflow"]
    got, expected, trace, *_ = run_layer(cfg, a, b, 9, gap=0.1, ready_prob=0.8)
    assert got == expected
    exact = golden.float_reference(a, b)
    assert (trace.o != exact).any(), "the paper_overflow layer did not overflow"


@pytest.mark.parametrize("dataflow", ["ftp", "sequential"])
def test_fast_join_cycles(dataflow):
    """No gaps, output always ready: a pair takes 1 accept cycle, then every chunk max(1, matches)
    join cycles (ftp) or the sum over t of max(1, matches at t) (sequential), the next chunk being
    accepted in the last join cycle of the one before; the result moves to the output register in
    the last join cycle and leaves the cycle after."""
    cfg = SnnConfig(timesteps=4, in_neurons=48, out_neurons=2, chunk=16, dataflow=dataflow)
    a, b = random_layer(cfg, np.random.default_rng(21), samples=2)
    got, expected, trace, chunks, results = run_layer(cfg, a, b, 21, gap=0.0, ready_prob=1.0)
    assert got == expected
    starts = [beat[0] for beat in chunks.beats if beat[1]]          # first chunk of each pair
    ends = [beat[0] for beat in results.beats]
    pair = 0
    for m in range(a.shape[0]):
        for n in range(b.shape[1]):
            sf, wf = trace.spike_fibers[m], trace.weight_fibers[n]
            words = golden.decompress(sf)
            cycles = 1
            for c in range(sf.chunks):
                matched = sf.masks[c] & wf.masks[c]
                if dataflow == "ftp":
                    cycles += max(1, bin(matched).count("1"))
                else:
                    span = words[c * cfg.chunk:(c + 1) * cfg.chunk]
                    for t in range(cfg.timesteps):
                        tmask = sum(((int(w) >> t) & 1) << i for i, w in enumerate(span))
                        cycles += max(1, bin(tmask & wf.masks[c]).count("1"))
            assert ends[pair] - starts[pair] == cycles, (m, n)
            pair += 1


@pytest.mark.parametrize("chunk, adders, seed", [(16, 4, 41), (32, 8, 5), (16, 16, 7), (16, 1, 3)])
def test_laggy_join_cycles(chunk, adders, seed):
    """No gaps, output always ready: the laggy TPPE takes the next chunk join_cycles + 1 cycles
    after the one before (it does not overlap), and a pair's result, moved to the output register
    in the last join cycle, leaves join_cycles + 1 cycles after its last chunk was taken, exactly
    as the cycle model counts them."""
    cfg = SnnConfig(timesteps=4, in_neurons=2 * chunk + 3, out_neurons=3, chunk=chunk,
                    join="laggy", laggy_adders=adders)
    a, b = random_layer(cfg, np.random.default_rng(seed), samples=3)
    got, expected, trace, chunks, results = run_layer(cfg, a, b, seed, gap=0.0, ready_prob=1.0)
    assert got == expected
    starts = [beat[0] for beat in chunks.beats] + [None]
    ends = iter(beat[0] for beat in results.beats)
    k = 0
    for m in range(a.shape[0]):
        sf, words = trace.spike_fibers[m], golden.decompress(trace.spike_fibers[m])
        for n in range(b.shape[1]):
            for c in range(sf.chunks):
                span = words[c * chunk:(c + 1) * chunk]
                join = join_cycles(cfg, sf.masks[c], span, trace.weight_fibers[n].masks[c])
                after = next(ends) if c == sf.chunks - 1 else starts[k + 1]
                assert after - starts[k] == join + 1, (m, n, c)
                k += 1
