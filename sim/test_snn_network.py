"""cocotb testbench: an SNN network (``SnnNetwork``) against ``golden.network``, beat for beat, on
``out`` and on every link between layers (each layer's output fiber, exposed as ``link<i>``).

Phases
------
1. **Throughput** (segment ``random``) — a random network of ``vectors`` samples (LoAS sparsity
   with option ``profile``: the input's silent neurons and every layer's weights), no valid gaps,
   ``out`` always ready, samples sent ``WEIGHT_SETTLE`` cycles after the weight load's last
   beat: each sample alone (its cycles from its first input beat to its last output beat), then
   all back to back. Both are held to the cycle model (``hwgen/engines/snn_network/
   cycle_model.py``) **exactly**: the isolated cycles per sample, and back to back every
   sample's first input beat and last output beat on ``out`` and on every link, counted from the
   first sample's first beat (per-layer timing). A difference is a ``timing_errors`` entry.
2. **Stress** (skipped with option ``phase2 = false``) — the edge networks of
   ``stimulus.edge_networks`` and a second random network, each segment's weight load sent right
   behind the previous segment's samples (the network drains before it loads: no reset, no
   waiting), with random valid gaps on ``weights`` and ``spikes`` and random ``ready``
   backpressure on ``out``.

Both phases check the ``perf`` counters (``sim/counters.py``). ``steady_state_utilization`` =
matched pairs of every layer / (sum of the layers' P x cycles) over the back-to-back run from
the first sample's last output beat to the last one's (the whole run with one sample).
"""

from __future__ import annotations

import hashlib
import json

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from hwgen.engines.base import TestbenchResult
from hwgen.engines.snn.rtl import out_layout, spikes_layout
from hwgen.engines.snn.stimulus import loas_profile
from hwgen.engines.snn_network import golden
from hwgen.engines.snn_network.cycle_model import network_cycles, network_timing
from hwgen.engines.snn_network.rtl import link_signature, weights_layout
from hwgen.engines.snn_network.stimulus import (
    edge_networks,
    link_beats,
    network_out_beats,
    network_spike_beats,
    network_weight_beats,
    random_network,
)
from hwgen.hdl.payload import pack, unpack

from .counters import CounterMonitor, SegmentCounters
from .harness import finish, open_bench
from .scoreboard import InOrderScoreboard
from .streams import TapMonitor
from .test_snn import WEIGHT_SETTLE, parse_options, sample_matches


@cocotb.test()
async def snn_network_matches_golden(dut):
    bench = await open_bench(dut)
    dut, params, clock = bench.dut, bench.params, bench.clock
    cfg = params.cfg
    profile, phase2 = parse_options(params.options)
    cfgs = cfg.layer_configs
    L = len(cfgs)
    rng = np.random.default_rng(params.seed)
    weights, spikes, sink = bench.source("weights"), bench.source("spikes"), bench.sink("out")
    taps = [TapMonitor(dut, f"link{i}", clock) for i in range(L - 1)]
    for tap in taps:
        tap.start()
    monitor = CounterMonitor(dut, clock)
    monitor.start()
    w_layout, s_layout = weights_layout(cfg), spikes_layout(cfgs[0])
    link_layout = link_signature(cfg).members["payload"].shape
    out_board = InOrderScoreboard(out_layout(cfgs[-1]), dut._log)
    link_boards = [InOrderScoreboard(link_layout, dut._log) for _ in range(L - 1)]

    timeouts: list[str] = []
    timing_errors: list[str] = []
    counter_errors: list[str] = []
    segments: list[dict] = []

    def check():
        out_board.check(sink.received)
        for board, tap in zip(link_boards, taps):
            board.check(tap.received)

    async def wait_outputs(what: str, budget: int) -> bool:
        for _ in range(budget):
            check()
            if len(sink.received) >= len(out_board.expected):
                return True
            await RisingEdge(dut.clk)
        timeouts.append(what)
        dut._log.error("timeout: %s (%d of %d output beats)", what, len(sink.received),
                       len(out_board.expected))
        return False

    queued = [0, 0]                         # beats queued on weights, spikes

    def load(trace) -> int:
        beats = network_weight_beats(cfg, trace)
        for beat in beats:
            weights.send(pack(w_layout, beat))
        queued[0] += len(beats)
        return len(beats)

    def send(name: str, trace, m: int) -> tuple[int, int]:
        """Queue sample m and expect its beats on out and on every link; returns (input beats,
        output beats)."""
        beats = network_spike_beats(cfg, trace, m)
        for beat in beats:
            spikes.send(pack(s_layout, beat))
        queued[1] += len(beats)
        for i, board in enumerate(link_boards):
            for j, beat in enumerate(link_beats(cfg, trace, i, m)):
                board.add(beat, f"{name} sample {m} link {i} beat {j}")
        outs = network_out_beats(cfg, trace, m)
        for j, beat in enumerate(outs):
            out_board.add(beat, f"{name} sample {m} output beat {j}")
        return len(beats), len(outs)

    async def sent_all():
        """Wait until every queued input beat has been taken."""
        while weights.queue or spikes.queue or len(weights.sent) < queued[0] \
                or len(spikes.sent) < queued[1]:
            await RisingEdge(dut.clk)

    def budget(trace) -> int:
        return 4 * max(t.cycles for t in network_timing(cfg, trace, alone=True)[-1]) + 400

    async def counted(name: str, stress: bool, run) -> None:
        """Run ``run()`` as one counter segment."""
        counters = SegmentCounters(dut, clock, monitor, [weights, spikes], sink)
        await counters.begin()
        samples = await run()
        errs, entry = await counters.end()
        for msg in errs:
            dut._log.error("performance counter mismatch in %s: %s", name, msg)
        counter_errors.extend(f"{name}: {msg}" for msg in errs)
        segments.append({"name": name, "phase": 2 if stress else 1, "samples": samples, **entry})

    # --- phase 1: throughput -----------------------------------------------------------------
    if profile is None:
        a, w = random_network(cfg, rng, samples=params.vectors)
    else:
        silent, sparsity = loas_profile(profile)
        a, w = random_network(cfg, rng, samples=params.vectors, silent_fraction=silent,
                              weight_density=1.0 - sparsity)
    trace = golden.network(a, w, cfg)
    V = trace.samples
    measured: dict = {}

    async def phase1():
        weights.valid_prob = spikes.valid_prob = 1.0
        sink.ready_prob = 1.0
        w0 = len(weights.sent)
        n = load(trace)
        while len(weights.sent) < w0 + n:
            await RisingEdge(dut.clk)
        for _ in range(WEIGHT_SETTLE):
            await RisingEdge(dut.clk)
        limit = budget(trace)
        lat = []
        for m in range(V):
            s0, r0 = len(spikes.sent), len(sink.received)
            _, n_out = send("random", trace, m)
            if not await wait_outputs(f"random isolated sample {m}", limit):
                return V
            lat.append(sink.received[r0 + n_out - 1].cycle - spikes.sent[s0].cycle + 1)
        model = network_cycles(cfg, trace)
        if lat != model:
            timing_errors.append(f"isolated samples: {lat} cycles, the cycle model says {model}")
        # Back to back: first input beat and last output beat of every sample, per layer.
        s0 = len(spikes.sent)
        r0 = [len(t.received) for t in taps] + [len(sink.received)]
        ends = [[] for _ in range(L)]
        firsts, n_in = [], 0
        counts = [0] * L
        for m in range(V):
            firsts.append(s0 + n_in)
            n_in += send("random", trace, m)[0]
            for i in range(L):
                counts[i] += len(link_beats(cfg, trace, i, m)) if i < L - 1 \
                    else len(network_out_beats(cfg, trace, m))
                ends[i].append(r0[i] + counts[i] - 1)
        if not await wait_outputs("random back to back", V * limit):
            return V
        t0 = spikes.sent[s0].cycle
        ports = [t.received for t in taps] + [sink.received]
        got = [[ports[i][e].cycle - t0 for e in ends[i]] for i in range(L)]
        timing = network_timing(cfg, trace, alone=False)
        m0 = timing[0][0].first_in
        want = [[t.last_out - m0 for t in layer] for layer in timing]
        got_first = [spikes.sent[f].cycle - t0 for f in firsts]
        want_first = [t.first_in - m0 for t in timing[0]]
        if got != want or got_first != want_first:
            timing_errors.append(f"back to back: first input beats {got_first}, last beats per "
                                 f"layer {got}; the cycle model says {want_first}, {want}")
        last_out = got[-1]
        work = sum(sample_matches(lc, lt, m) for lc, lt in zip(cfgs, trace.layers)
                   for m in range(1 if V > 1 else 0, V))
        window = last_out[-1] - last_out[0] if V > 1 else last_out[0] + 1
        pes = sum(min(lc.pes, lc.out_neurons) for lc in cfgs)
        measured.update({"cycles_per_sample": lat, "model_cycles_per_sample": model,
                         "pipelined_cycles": last_out[-1] + 1,
                         "pipelined_intervals": [b - a for a, b in zip(last_out, last_out[1:])],
                         "layer_last_out": got, "steady_state_cycles": window,
                         "steady_state_matches": work,
                         "peak_matches_per_cycle": pes,
                         "steady_state_utilization": work / (pes * window) if window else 0.0})
        return V

    await counted("random", False, phase1)

    # --- phase 2: edge networks and a second random network, loads right behind samples ------
    if phase2:
        parts = [(name, golden.network(ea, ew, cfg)) for name, ea, ew in edge_networks(cfg, rng)]
        a2, w2 = random_network(cfg, rng, samples=params.vectors, spike_density=0.5,
                                silent_fraction=0.3, weight_density=0.5)
        parts.append(("random_stress", golden.network(a2, w2, cfg)))

        async def phase2_run():
            weights.valid_prob = spikes.valid_prob = params.valid_prob
            sink.ready_prob = params.ready_prob
            total, slow = 0, 1.0 / min(params.valid_prob, params.ready_prob)
            for name, tr in parts:
                # The load follows the previous segment's last input beat at once, and the
                # segment's samples follow its last beat (beats of both offered together would
                # race: the network applies a load offered at a sample boundary first).
                await sent_all()
                load(tr)
                await sent_all()
                for m in range(tr.samples):
                    send(name, tr, m)
                total += tr.samples
            limit = int(sum(budget(tr) * tr.samples for _, tr in parts) * slow) + 2000
            await wait_outputs("stress", limit)
            return total

        await counted("stress", True, phase2_run)

    check()
    received = [unpack(out_board.layout, t.bits) for t in sink.received]
    digest = hashlib.sha256(json.dumps(
        [[s["name"], s["samples"]] for s in segments] + [sorted(r.items()) for r in received]
    ).encode()).hexdigest()
    totals = {key: sum(s["counters"][key] for s in segments) for key in ("cycles", "busy", "stall")}
    boards = [out_board, *link_boards]
    finish(params, TestbenchResult(
        beats=sum(b.checked for b in boards), expected_beats=sum(len(b.expected) for b in boards),
        errors=sum(b.errors for b in boards), timeouts=timeouts, timing_errors=timing_errors,
        counter_errors=counter_errors, counters=totals,
        throughput={"samples": V, "layers": L, **measured,
                    "steady_state_utilization": measured.get("steady_state_utilization", 0.0),
                    "utilization_definition": "matched pairs of every layer / (sum of the "
                                              "layers' pes * cycles) back to back"},
        extra={"output_beats": out_board.checked,
               "link_beats": [b.checked for b in link_boards],
               "nonzero_link_beats": [sum(1 for want, _ in b.expected
                                          if not want["mask"] and want["data"])
                                      for b in link_boards],
               "segments": segments, "options": {"profile": profile, "phase2": phase2},
               "output_digest": digest}))
