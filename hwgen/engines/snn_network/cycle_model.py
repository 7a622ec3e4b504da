"""Cycle model of an SNN network (docs/architecture.md §3 and §4.2.1): the layers' cycle models
(:class:`hwgen.engines.snn.cycle_model.LayerSim`) chained as the RTL chains the layers, exact.

Every cycle, each layer's ``out`` beat on offer comes from its registers; layer i+1 decides
whether it takes layer i's beat (its receiver's rules), which is layer i's ``out.ready``; then
every layer updates. The model assumes the weights are loaded before the samples arrive (so the
gate of :mod:`.rtl` is open) and the network's ``out`` always ready.
"""

from __future__ import annotations

from hwgen.engines.snn.cycle_model import LayerSim, SampleTiming, cycle_limit, input_beats

from .config import SnnNetworkConfig
from .golden import NetworkTrace

__all__ = ["network_timing", "network_cycles"]


def network_timing(cfg: SnnNetworkConfig, trace: NetworkTrace,
                   alone: bool) -> list[list[SampleTiming]]:
    """Per layer, the timing of every sample: ``[i][m]`` is when sample m's first beat entered
    layer i and its last beat left it (layer L-1's is the network's), all counted from the run's
    first cycle. Samples are sent back to back, or ``alone`` (each after the previous one's last
    output beat)."""
    cfgs = cfg.layer_configs
    L, samples = len(cfgs), trace.samples
    sims = [LayerSim(lc, lt) for lc, lt in zip(cfgs, trace.layers)]
    beats = [b for s in range(samples)
             for b in input_beats(cfgs[0], trace.layers[0].spike_fibers[s], s)]
    pos, offer_from, in_sample = 0, 0, 0
    first_in = [[None] * samples for _ in range(L)]
    last_out = [[None] * samples for _ in range(L)]
    entering = [0] * L                      # per layer, the sample its next input beat belongs to
    limit = cycle_limit(samples, cfgs)
    now = 0
    while last_out[-1][-1] is None:
        if now > limit:
            raise RuntimeError("the network cycle model did not finish (a model bug)")
        offered = beats[pos] if pos < len(beats) and now >= offer_from else None
        outs = [sim.offer() for sim in sims]
        taken = []
        for i, sim in enumerate(sims):
            beat = offered if i == 0 else outs[i - 1]
            took = sim.decide(beat)
            taken.append(took)
            if took:
                if first_in[i][entering[i]] is None:
                    first_in[i][entering[i]] = now
                if beat[2] is not None:
                    entering[i] += 1
        for i, sim in enumerate(sims):
            ready = taken[i + 1] if i < L - 1 else True
            if ready and outs[i] is not None and outs[i][2] is not None:
                last_out[i][outs[i][2]] = now
            sim.commit(ready)
        if taken[0]:
            pos += 1
            if offered[2] is not None:
                in_sample += 1
                offer_from = now + 1 if not alone else float("inf")
        if alone and in_sample < samples and offer_from == float("inf") \
                and last_out[-1][in_sample - 1] is not None:
            offer_from = now + 1
        now += 1
    return [[SampleTiming(f, o) for f, o in zip(first_in[i], last_out[i])] for i in range(L)]


def network_cycles(cfg: SnnNetworkConfig, trace: NetworkTrace) -> list[int]:
    """Cycles of each sample alone through the whole network, first input beat to last output
    beat."""
    timing = network_timing(cfg, trace, alone=True)
    return [SampleTiming(first.first_in, last.last_out).cycles
            for first, last in zip(timing[0], timing[-1])]
