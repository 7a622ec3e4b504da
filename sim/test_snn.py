"""cocotb testbench: the SNN layer RTL (``SnnLayer``) against ``golden.layer``, beat for beat.

Every layer of stimulus is one *segment*: its weight set on ``weights`` (weight fibers, see
``hwgen/engines/snn/weights.py``), then its samples on ``spikes`` (dense words or fibers,
``in_format``). Segments follow each other without a reset: each weight set is loaded between the
previous segment's last output and the next samples. Every ``out`` beat (dense words or fibers,
``out_format``) is compared in order with the golden model's output spikes after the compressor
of golden rule 5 (``stimulus.out_beats``).

Phases
------
1. **Throughput** (segment ``random``) — the random layer (``vectors`` samples; LoAS sparsity with
   option ``profile``), no valid gaps, ``out`` always ready, samples sent once the weight set's
   last beat has been taken and ``WEIGHT_SETTLE`` cycles have passed:

   a. *isolated*: each sample is sent only after the previous one's last output beat; its
      ``cycles_per_sample`` is the number of cycles from the transfer of its first input beat to
      the transfer of its last output beat, both included (the counter check below proves the
      testbench clock and the ``perf__cycles`` counter agree).
   b. *pipelined*: the same samples again, back to back. ``intervals`` are the cycles between
      consecutive samples' last output beats; ``steady_state_utilization`` is measured here.

   Both are held to the cycle model (``hwgen/engines/snn/cycle_model.py``) **exactly**: the
   isolated cycles per sample, and in the pipelined run the cycle of every sample's first input
   beat and last output beat counted from the first sample's first beat. A difference is a
   ``timing_errors`` entry, so the simulation fails.
2. **Stress** (skipped with option ``phase2 = false``) — every edge-case layer of
   ``stimulus.edge_layers`` built for this config, then a fresh random layer of ``vectors`` samples
   with other densities, with random valid gaps on ``weights`` and ``spikes`` and random ``ready``
   backpressure on ``out``. An edge layer that ``edge_layers`` leaves out for this config (or that
   the golden model rejects) is recorded under ``skipped`` with the reason.

Utilization
-----------
``steady_state_utilization`` = matched pairs / (P x cycles) over the pipelined run's steady state
(from the first sample's last output word to the last sample's last output word, counting the
matches of samples 1..V-1; the whole run when V = 1). A matched pair is a (kept spike neuron,
nonzero weight) pair of one (sample, output neuron) for ``dataflow = "ftp"`` and a (kept neuron,
nonzero weight, timestep with a spike) triple for ``"sequential"`` (``golden.JoinTrace.matches``
/ ``step_matches``). Every TPPE handles at most one match per cycle in every mode (the laggy
join's weight side too), so this is the fraction of PE-cycles that did useful join work; compress,
fetch, LIF and output cycles, and PEs without a neuron in the last group, count as idle.

Performance counters
--------------------
Each segment is checked on its own, from counter deltas (``counters`` in the result are the sums
over segments, ``segments[i].counters`` the per-segment deltas). A monitor reads
``perf__busy`` and ``perf__stall`` every cycle, so the checks are per cycle, not only totals:

* ``cycles`` delta == cycles the testbench counted, exactly.
* ``stall`` increments in exactly the cycles in which the testbench saw ``out.valid & ~out.ready``.
* ``busy`` is the RTL's "a beat is offered on an input or ``out``, or the store, loader, TPPEs,
  collector or LIF hold work"; that state is internal, so what is exactly checkable from the
  ports is:
  ``busy`` increments in every cycle with a transfer on ``weights``, ``spikes`` or ``out``;
  ``busy <= cycles``; and ``busy`` and ``stall`` do not move while the design is idle (in every
  cycle of a ``2 * IDLE_TAIL`` idle tail after a segment's last transfer).
  Every stall cycle must also be a busy cycle (``hwgen.hdl.perf``: stall cycles are busy cycles
  in which the engine could not advance); ``segments[i].stall_not_busy`` reports violations.
"""

from __future__ import annotations

import hashlib
import json

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from hwgen.engines.base import TestbenchResult
from hwgen.engines.snn import golden
from hwgen.engines.snn.cycle_model import layer_timing
from hwgen.engines.snn.rtl import out_layout, spikes_layout, weights_layout
from hwgen.engines.snn.stimulus import (
    edge_layers,
    loas_profile,
    out_beats,
    random_layer,
    spike_beats,
    weight_beats,
)
from hwgen.hdl.payload import pack, unpack

from .counters import CounterMonitor, SegmentCounters
from .harness import finish, open_bench
from .scoreboard import InOrderScoreboard
from .streams import StreamDriver

#: Every edge layer stimulus.edge_layers can build; one it leaves out for a config is "skipped".
EDGE_LAYERS = ("silent_chunks", "firing_chunks", "at_threshold", "weight_extremes",
               "min_spikes_boundary", "paper_overflow")
SKIP_REASONS = {"at_threshold": "theta + 1 is not a sum of K weights of weight_bits, or does not "
                                "fit acc_bits (stimulus.edge_layers leaves it out)"}
#: Cycles after a weight set's last beat before phase 1 sends samples: the set's last rows are
#: written by then (the cycle model assumes loaded weights).
WEIGHT_SETTLE = 8
OPTIONS = ("profile", "phase2")


def parse_options(options: dict) -> tuple[str | None, bool]:
    """(profile, phase2) from ``HWGEN_OPTIONS``; anything else is an error."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f"unknown snn testbench option(s) {unknown}: expected {list(OPTIONS)}")
    profile = options.get("profile")
    if profile is not None:
        loas_profile(profile)               # ValueError naming the allowed profiles
    phase2 = options.get("phase2", True)
    if not isinstance(phase2, bool):
        raise ValueError(f"option phase2 = {phase2!r}: expected true or false")
    return profile, phase2


def sample_matches(cfg, trace: golden.LayerTrace, m: int) -> int:
    """Matched pairs of sample m over all output neurons (the join work, see the docstring)."""
    if cfg.dataflow == "sequential":
        return sum(int(j.step_matches.sum()) for j in trace.joins[m])
    return sum(j.matches for j in trace.joins[m])


class LayerDriver:
    """Turns golden-model layers into weight-set beats and sample beats (``in_format``)."""

    def __init__(self, cfg, weights: StreamDriver, spikes: StreamDriver):
        self.cfg, self.weights, self.spikes = cfg, weights, spikes
        self.w_layout, self.s_layout = weights_layout(cfg), spikes_layout(cfg)

    def load_weights(self, trace: golden.LayerTrace) -> int:
        """Queue the layer's weight set; returns its beat count."""
        beats = weight_beats(self.cfg, trace)
        for beat in beats:
            self.weights.send(pack(self.w_layout, beat))
        return len(beats)

    def send_sample(self, trace: golden.LayerTrace, m: int) -> int:
        """Queue sample m; returns its beat count."""
        beats = spike_beats(self.cfg, trace, m)
        for beat in beats:
            self.spikes.send(pack(self.s_layout, beat))
        return len(beats)


class Scoreboard(InOrderScoreboard):
    """Expected output beats of every sample from the golden model (``out_format``)."""

    def __init__(self, cfg, log):
        super().__init__(out_layout(cfg), log)
        self.cfg = cfg

    def expect(self, segment: str, trace: golden.LayerTrace, m: int) -> int:
        """Expect sample m's output beats; returns their count."""
        beats = out_beats(self.cfg, trace, m)
        for i, beat in enumerate(beats):
            self.add(beat, f"{segment} sample {m} output beat {i} (O = {trace.o[m].tolist()}, "
                           f"LIF spikes {trace.spikes[m].tolist()})")
        return len(beats)


def sample_budget(model_cycles: int) -> int:
    """A generous bound on one sample's cycles without gaps (only matters on a hang)."""
    return 4 * model_cycles + 200


@cocotb.test()
async def snn_layer_matches_golden(dut):
    bench = await open_bench(dut)
    dut, params, clock = bench.dut, bench.params, bench.clock
    cfg = params.cfg
    profile, phase2 = parse_options(params.options)
    data_rng = np.random.default_rng(params.seed)
    P, V = cfg.pes, params.vectors
    weights, spikes, sink = bench.source("weights"), bench.source("spikes"), bench.sink("out")
    monitor = CounterMonitor(dut, clock)
    monitor.start()
    driver = LayerDriver(cfg, weights, spikes)
    scoreboard = Scoreboard(cfg, dut._log)

    timeouts: list[str] = []
    timing_errors: list[str] = []
    counter_errors: list[str] = []
    segments: list[dict] = []
    skipped: list[dict] = []

    async def wait_outputs(what: str, budget: int) -> bool:
        for _ in range(budget):
            if len(sink.received) >= len(scoreboard.expected):
                scoreboard.check(sink.received)
                return True
            await RisingEdge(dut.clk)
            scoreboard.check(sink.received)
        timeouts.append(what)
        dut._log.error("timeout: %s (%d of %d output words)", what, len(sink.received),
                       len(scoreboard.expected))
        return False

    async def segment(name: str, a, b, stress: bool):
        """Load the layer's weight set (no reset: sets follow each other), run its samples,
        check the counters. Returns (trace, phase-1 measurements or None)."""
        trace = golden.layer(a, b, cfg)
        samples = trace.words.shape[0]
        gap = params.valid_prob if stress else 1.0
        weights.valid_prob = spikes.valid_prob = gap
        sink.ready_prob = params.ready_prob if stress else 1.0
        counters = SegmentCounters(dut, clock, monitor, [weights, spikes], sink)
        await counters.begin()
        slow = 1.0 / min(gap, sink.ready_prob)
        w0 = len(weights.sent)
        w_beats = driver.load_weights(trace)
        alone = layer_timing(cfg, trace, alone=True)
        budget = sample_budget(max(t.cycles for t in alone))
        measured = None
        ok = True
        if not stress:
            # The cycle model assumes the set is loaded before the samples arrive: wait for its
            # last beat, then for its last rows to be written.
            while len(weights.sent) < w0 + w_beats:
                await RisingEdge(dut.clk)
            for _ in range(WEIGHT_SETTLE):
                await RisingEdge(dut.clk)
            # 1a: isolated samples, each against the cycle model.
            lat = []
            for m in range(samples):
                s0, r0 = len(spikes.sent), len(sink.received)
                driver.send_sample(trace, m)
                n_out = scoreboard.expect(name, trace, m)
                ok = await wait_outputs(f"{name} isolated sample {m}", budget)
                if not ok:
                    break
                lat.append(sink.received[r0 + n_out - 1].cycle - spikes.sent[s0].cycle + 1)
            model = [t.cycles for t in alone]
            if ok and lat != model:
                timing_errors.append(f"{name} isolated samples: {lat} cycles, the cycle model "
                                     f"says {model}")
            # 1b: the same samples back to back, each sample's first input beat and last output
            # beat against the model.
            pipe = None
            if ok:
                s0, r0 = len(spikes.sent), len(sink.received)
                firsts, lasts, n_in, n_out = [], [], 0, 0
                for m in range(samples):
                    firsts.append(s0 + n_in)
                    n_in += driver.send_sample(trace, m)
                    n_out += scoreboard.expect(name, trace, m)
                    lasts.append(r0 + n_out - 1)
                ok = await wait_outputs(f"{name} pipelined", samples * budget)
            if ok:
                t0 = spikes.sent[s0].cycle
                got = [(spikes.sent[f].cycle - t0, sink.received[la].cycle - t0)
                       for f, la in zip(firsts, lasts)]
                stream = layer_timing(cfg, trace, alone=False)
                want = [(t.first_in - stream[0].first_in, t.last_out - stream[0].first_in)
                        for t in stream]
                if got != want:
                    timing_errors.append(f"{name} back to back: (first input beat, last output "
                                         f"beat) of each sample {got}, the cycle model says "
                                         f"{want}")
                last_out = [la for _, la in got]
                matches = [sample_matches(cfg, trace, m) for m in range(samples)]
                if samples > 1:
                    window = last_out[-1] - last_out[0]
                    work = sum(matches[1:])
                else:
                    window = last_out[0] + 1
                    work = matches[0]
                pipe = {"cycles": last_out[-1] + 1,
                        "intervals": [b_ - a_ for a_, b_ in zip(last_out, last_out[1:])],
                        "steady_state_cycles": window, "steady_state_matches": work,
                        "utilization": work / (P * window) if window > 0 else 0.0}
            measured = {"cycles_per_sample": lat, "pipelined": pipe,
                        "model_cycles_per_sample": [t.cycles for t in alone],
                        "matches_per_sample": [sample_matches(cfg, trace, m)
                                               for m in range(samples)]}
        else:
            for m in range(samples):
                driver.send_sample(trace, m)
                scoreboard.expect(name, trace, m)
            ok = await wait_outputs(f"{name} (stress)", int(samples * budget * slow) + 1000
                                    + int(4 * w_beats * slow))

        errs, entry = await counters.end()
        for msg in errs:
            dut._log.error("performance counter mismatch in %s: %s", name, msg)
        counter_errors.extend(f"{name}: {msg}" for msg in errs)
        segments.append({"name": name, "phase": 2 if stress else 1, "samples": samples,
                         **entry})
        return trace, measured

    # Phase 1: throughput on the random layer.
    if profile is None:
        a, b = random_layer(cfg, data_rng, samples=V)
    else:
        silent, sparsity = loas_profile(profile)
        a, b = random_layer(cfg, data_rng, samples=V, silent_fraction=silent,
                            weight_density=1.0 - sparsity)
    _, phase1 = await segment("random", a, b, stress=False)

    # Phase 2: edge layers and a second random layer under gaps and backpressure.
    if phase2:
        built = {name: (ea, eb) for name, ea, eb in edge_layers(cfg, data_rng)}
        for name in EDGE_LAYERS:
            if name not in built:
                skipped.append({"name": name, "reason": SKIP_REASONS.get(
                    name, "stimulus.edge_layers did not build it for this config")})
                continue
            ea, eb = built[name]
            try:
                golden.layer(ea, eb, cfg)
            except ValueError as exc:
                skipped.append({"name": name, "reason": f"golden model rejects it: {exc}"})
                continue
            await segment(name, ea, eb, stress=True)
        a2, b2 = random_layer(cfg, data_rng, samples=V, spike_density=0.5, silent_fraction=0.3,
                              weight_density=0.5)
        await segment("random_stress", a2, b2, stress=True)

    scoreboard.check(sink.received)         # words that came after the last wait, if any
    for entry in skipped:
        dut._log.warning("edge layer %s skipped: %s", entry["name"], entry["reason"])
    received = [unpack(scoreboard.layout, t.bits) for t in sink.received]
    digest = hashlib.sha256(json.dumps(
        [[s["name"], s["samples"]] for s in segments] + [sorted(r.items()) for r in received]
    ).encode()).hexdigest()
    pipe = (phase1 or {}).get("pipelined") or {}
    totals = {key: sum(s["counters"][key] for s in segments) for key in ("cycles", "busy", "stall")}
    finish(params, TestbenchResult(
        beats=scoreboard.checked, expected_beats=len(scoreboard.expected),
        errors=scoreboard.errors, timeouts=timeouts, timing_errors=timing_errors,
        counter_errors=counter_errors, counters=totals,
        throughput={
            "samples": V,
            "profile": profile,
            "cycles_per_sample": (phase1 or {}).get("cycles_per_sample", []),
            "model_cycles_per_sample": (phase1 or {}).get("model_cycles_per_sample", []),
            "matches_per_sample": (phase1 or {}).get("matches_per_sample", []),
            "pipelined_cycles": pipe.get("cycles"),
            "pipelined_intervals": pipe.get("intervals", []),
            "steady_state_cycles": pipe.get("steady_state_cycles"),
            "steady_state_matches": pipe.get("steady_state_matches"),
            "peak_matches_per_cycle": P,
            "steady_state_utilization": pipe.get("utilization", 0.0),
            "utilization_definition": "matched pairs / (pes * cycles) in the pipelined "
                                      "no-stall run (fraction of PE-cycles doing a join step)",
        },
        extra={
            # expected words with at least one output spike: a check of all-zero words proves
            # little
            "nonzero_beats": sum(1 for want, _ in scoreboard.expected
                                 if (want["word"] if "word" in want else not want["mask"]
                                     and want["data"])),
            "segments": segments,
            "skipped": skipped,
            "options": {"profile": profile, "phase2": phase2},
            "output_digest": digest,
        }))
