"""An SNN network (hwgen/engines/snn_network) in Amaranth's simulator against golden.network.

Every beat on ``out`` and on every link (each layer's output fiber, exposed for debug) must equal
the golden model's, under random valid gaps and backpressure, across weight reloads with no reset
— including a reload sent right behind the samples before it, which the network must drain
first. The network's cycle model is held to the RTL cycle for cycle, on ``out`` and every link.
(The Verilator/cocotb check of the emitted Verilog is tests/test_snn_sim.py.)
"""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pytest
from amaranth.hdl import Value
from hwgen.testbench.amaranth_streams import Transfers, accept, send, simulate
from hwgen.testbench.test_snn import WEIGHT_SETTLE

from hwgen.config import ConfigError
from hwgen.emit.hls import csim, render_hls
from hwgen.engines.snn_network import golden
from hwgen.engines.snn_network.config import SnnNetworkConfig
from hwgen.engines.snn_network.cycle_model import network_timing
from hwgen.engines.snn_network.rtl import SnnNetwork
from hwgen.engines.snn_network.stimulus import (
    edge_networks,
    link_beats,
    network_out_beats,
    network_spike_beats,
    network_weight_beats,
    random_network,
)
from hwgen.hdl.payload import pack


def small(**kw) -> SnnNetworkConfig:
    layers = kw.pop("layers", [{"out_neurons": 12, "pes": 2, "threshold": 40},
                               {"out_neurons": 10, "pes": 3, "threshold": 30, "join": "laggy",
                                "laggy_adders": 4},
                               {"out_neurons": 6, "pes": 2, "threshold": 20, "weight_bits": 6,
                                "dataflow": "sequential"}])
    return SnnNetworkConfig(**{"timesteps": 4, "in_neurons": 24, "chunk": 8, "layers": layers,
                               **kw})


def taps(dut: SnnNetwork) -> list[Transfers]:
    """A monitor per link: its transfers (``taken``) with their payloads."""
    out = []
    for i in range(len(dut.layer_cfgs) - 1):
        link = getattr(dut, f"link{i}")
        out.append(Transfers(SimpleNamespace(valid=link.valid, ready=link.taken,
                                             payload=link.payload)))
    return out


def beats_of(transfers: Transfers, layout) -> list[dict]:
    return [{name: int(beat[1][name]) for name, _ in layout} for beat in transfers.beats]


def run(cfg, segments, seed: int, gap: float, ready_prob: float, wait: bool):
    """Stream ``segments`` [(a, weights)]: each segment's weight load, then its samples. With
    ``wait`` a load is sent once the samples before it have all come out, else right after their
    last input beat. Returns (out beats, link beats) received and expected."""
    traces = [golden.network(a, w, cfg) for a, w in segments]
    L = len(cfg.layers)
    want_out = [b for tr in traces for s in range(tr.samples)
                for b in network_out_beats(cfg, tr, s)]
    want_links = [[b for tr in traces for s in range(tr.samples) for b in link_beats(cfg, tr, i, s)]
                  for i in range(L - 1)]
    dut = SnnNetwork(cfg)
    rng = random.Random(seed)
    outputs, links = Transfers(dut.out), taps(dut)

    async def segments_in_order(ctx):
        done = 0
        for tr in traces:
            while wait and len(outputs.beats) < done:
                await ctx.tick()
            await send(dut.weights, network_weight_beats(cfg, tr), rng, gap)(ctx)
            for s in range(tr.samples):
                await send(dut.spikes, network_spike_beats(cfg, tr, s), rng, gap)(ctx)
                done += len(network_out_beats(cfg, tr, s))
        for _ in range(100_000):
            if len(outputs.beats) >= len(want_out):
                return
            await ctx.tick()
        raise AssertionError(f"{len(outputs.beats)} of {len(want_out)} output beats")

    simulate(dut, segments_in_order,
             background=[outputs.run, *(t.run for t in links), accept(dut.out, rng, ready_prob)])
    got_links = [beats_of(t, dut.link0.payload.shape()) for t in links]
    return beats_of(outputs, dut.out.payload.shape()), want_out, got_links, want_links


def fired(beats) -> int:
    return sum(1 for b in beats if (b["word"] if "word" in b else b["data"] * (1 - b["mask"])))


@pytest.mark.parametrize("in_format, out_format, wait, seed", [
    ("fiber", "fiber", True, 51), ("dense", "dense", False, 52), ("dense", "fiber", False, 53),
    ("fiber", "dense", True, 54)])
def test_network_matches_golden(in_format, out_format, wait, seed):
    """Three layers (fast, laggy, sequential; 8- and 6-bit weights), two weight loads with no
    reset; ``wait = False`` sends the second load right behind the first segment's samples."""
    cfg = small(in_format=in_format, out_format=out_format)
    rng = np.random.default_rng(seed)
    segments = [random_network(cfg, rng, samples=3, spike_density=0.5),
                random_network(cfg, rng, samples=2, weight_density=0.6, spike_density=0.5)]
    got, want, got_links, want_links = run(cfg, segments, seed, gap=0.2, ready_prob=0.6,
                                           wait=wait)
    for i, (g, w) in enumerate(zip(got_links, want_links)):
        assert g == w, f"link {i}, seed {seed}"
        assert fired(w), f"layer {i} never fired: the check would be weak"
    assert got == want, f"seed {seed}"
    assert fired(want), "the last layer never fired: the check would be weak"


def test_network_edge_cases():
    """Silent and saturated samples through every layer, and all-min / all-max weight columns."""
    cfg = small()
    rng = np.random.default_rng(55)
    segments = [(a, w) for _, a, w in edge_networks(cfg, rng)]
    got, want, got_links, want_links = run(cfg, segments, 55, gap=0.3, ready_prob=0.5, wait=False)
    assert got_links == want_links
    assert got == want


def test_one_layer_network():
    cfg = small(layers=[{"out_neurons": 5, "pes": 2, "threshold": 30}])
    rng = np.random.default_rng(56)
    segments = [random_network(cfg, rng, samples=3), random_network(cfg, rng, samples=2)]
    got, want, _, _ = run(cfg, segments, 56, gap=0.2, ready_prob=0.7, wait=False)
    assert got == want and fired(want)


def measure_timing(cfg, trace, alone: bool) -> list[list[tuple[int, int]]]:
    """Per layer, (first input beat, last output beat) of every sample, counted from the first
    sample's first beat: the weight load first, the samples ``WEIGHT_SETTLE`` cycles after its
    last beat, no gaps, ``out`` always ready."""
    dut = SnnNetwork(cfg)
    L, samples = len(cfg.layers), trace.samples
    w_beats = [pack(dut.weights.payload.shape(), b) for b in network_weight_beats(cfg, trace)]
    s_beats = [[pack(dut.spikes.payload.shape(), b) for b in network_spike_beats(cfg, trace, s)]
               for s in range(samples)]
    ports = [(dut.spikes.valid, dut.spikes.ready)] \
        + [(getattr(dut, f"link{i}").valid, getattr(dut, f"link{i}").taken) for i in range(L - 1)] \
        + [(dut.out.valid, dut.out.ready)]
    # Beats per sample on each port: the input, every link, the output.
    counts = [[len(b) for b in s_beats]] \
        + [[len(link_beats(cfg, trace, i, s)) for s in range(samples)] for i in range(L - 1)] \
        + [[len(network_out_beats(cfg, trace, s)) for s in range(samples)]]
    firsts = [[None] * samples for _ in ports]
    lasts = [[None] * samples for _ in ports]

    async def testbench(ctx):
        w = s = i = 0
        seen = [[0, 0] for _ in ports]            # per port: sample, beats of it so far
        start = t0 = None
        ctx.set(dut.out.ready, 1)
        for cycle in range(200_000):
            ctx.set(dut.weights.valid, w < len(w_beats))
            ctx.set(Value.cast(dut.weights.payload), w_beats[w] if w < len(w_beats) else 0)
            if w == len(w_beats) and start is None:
                start = cycle + WEIGHT_SETTLE
            offer = start is not None and cycle >= start and s < samples \
                and (not alone or s == 0 or lasts[-1][s - 1] is not None)
            ctx.set(dut.spikes.valid, offer)
            ctx.set(Value.cast(dut.spikes.payload), s_beats[s][i] if offer else 0)
            if w < len(w_beats) and ctx.get(dut.weights.ready):
                w += 1
            if offer and ctx.get(dut.spikes.ready):
                t0 = cycle if t0 is None else t0
                i += 1
                if i == len(s_beats[s]):
                    s, i = s + 1, 0
            for p, (valid, ready) in enumerate(ports):
                if ctx.get(valid) and ctx.get(ready):
                    sample, n = seen[p]
                    if n == 0:
                        firsts[p][sample] = cycle - t0
                    seen[p] = [sample, n + 1]
                    if n + 1 == counts[p][sample]:
                        lasts[p][sample] = cycle - t0
                        seen[p] = [sample + 1, 0]
            await ctx.tick()
            if lasts[-1][-1] is not None:
                return
        raise AssertionError("the network did not finish")

    simulate(dut, testbench)
    # Layer i: its first input beat (port i) and its last output beat (port i + 1).
    return [list(zip(firsts[i], lasts[i + 1])) for i in range(L)]


@pytest.mark.parametrize("alone", [False, True], ids=["back_to_back", "alone"])
@pytest.mark.parametrize("kw, seed", [
    (dict(), 61),
    (dict(in_format="dense", out_format="dense"), 62),
    (dict(layers=[{"out_neurons": 16, "pes": 4, "threshold": 20},
                  {"out_neurons": 8, "pes": 1, "threshold": 10}, {"out_neurons": 9, "pes": 3},
                  {"out_neurons": 3, "pes": 2, "threshold": 10}]), 63),
], ids=["three_layers", "dense_ports", "four_layers"])
def test_cycle_model_is_exact(kw, seed, alone):
    """Per layer, every sample's first input beat and last output beat, back to back and
    alone, equal :func:`network_timing` exactly."""
    cfg = small(**kw)
    a, w = random_network(cfg, np.random.default_rng(seed), samples=4, spike_density=0.5)
    trace = golden.network(a, w, cfg)
    timing = network_timing(cfg, trace, alone)
    t0 = timing[0][0].first_in
    want = [[(t.first_in - t0, t.last_out - t0) for t in layer] for layer in timing]
    assert measure_timing(cfg, trace, alone) == want


@pytest.mark.parametrize("kw, message", [
    (dict(layers=[]), "layers = []: expected a list of 1 to 8 tables"),
    (dict(layers=[{"pes": 2}]), "layers[0]: out_neurons is missing"),
    (dict(layers=[{"out_neurons": 4}, {"out_neurons": 4, "pes": 0}]),
     "layers[1].pes = 0: expected an integer from 1 to 64"),
    (dict(layers=[{"out_neurons": 4, "chunk": 8}]), "layers[0]: unknown field 'chunk'"),
    (dict(layers=[{"out_neurons": 4}] * 9), "expected a list of 1 to 8 tables"),
    (dict(layers=[7]), "layers[0] = 7: expected a table of layer fields"),
])
def test_config_errors(kw, message):
    with pytest.raises(ConfigError) as info:
        SnnNetworkConfig(**kw)
    assert message in str(info.value)


def test_golden_checks_the_weights():
    cfg = small()
    a, w = random_network(cfg, np.random.default_rng(1), samples=1)
    with pytest.raises(ValueError, match="expected a list of 3 matrices"):
        golden.network(a, w[:2], cfg)
    w[1] = w[1][:, :3]
    with pytest.raises(ValueError, match=r"layer 1: weights of shape \(12, 3\)"):
        golden.network(a, w, cfg)


def test_reload_waits_for_samples_in_flight():
    """A weight load sent right behind a sample must not reach layer 1 before that sample does:
    layer 0's set is short (2 neurons of 8 inputs) and its LIF long (16 timesteps), so without
    the drain layer 1 would load the new set while the sample is still in layer 0's LIF."""
    cfg = SnnNetworkConfig(timesteps=16, in_neurons=8, chunk=8, in_format="fiber",
                           out_format="fiber",
                           layers=[{"out_neurons": 2, "pes": 2, "threshold": 1},
                                   {"out_neurons": 4, "pes": 2, "threshold": 1}])
    a = np.ones((1, 8, 16), dtype=np.int64)
    first = [np.ones((8, 2), dtype=np.int64), np.full((2, 4), 5, dtype=np.int64)]
    second = [np.ones((8, 2), dtype=np.int64), np.full((2, 4), -5, dtype=np.int64)]
    got, want, got_links, want_links = run(cfg, [(a, first), (a, second)], 57, gap=0.0,
                                           ready_prob=1.0, wait=False)
    assert got_links == want_links
    assert got == want
    # The two loads give different outputs, so a sample joined with the wrong set is caught.
    outs = [golden.network(a, w, cfg).layers[-1].out_words for w in (first, second)]
    assert outs[0].any() and not outs[1].any()


@pytest.mark.parametrize("in_format, out_format", [("fiber", "dense"), ("dense", "fiber")])
def test_hls_csim_matches_golden(tmp_path, in_format, out_format):
    """The network's HLS kernel (every layer's snn kernel, chained) compiled with g++ and run on
    the golden model's segments: every output beat equal."""
    cfg = small(in_format=in_format, out_format=out_format)
    artifacts = render_hls(cfg, tmp_path)
    result = csim(cfg, artifacts.directory, seed=7, vectors=3)
    assert result.passed, result.message
    assert result.outputs > 0


def test_hls_csim_fails_on_a_wrong_layer(tmp_path):
    """A kernel whose layer 1 has another threshold than the golden model's must fail."""
    cfg = small()
    wrong = small(layers=[dict(t, threshold=t["threshold"] + 15) if i == 1 else t
                          for i, t in enumerate(cfg.layers)])
    artifacts = render_hls(wrong, tmp_path)
    assert not csim(cfg, artifacts.directory, seed=7, vectors=3).passed
