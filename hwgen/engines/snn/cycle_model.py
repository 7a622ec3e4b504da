"""Analytic cycle model of the SNN layer (DESIGN.md §3), from the schedule in :mod:`.rtl`.

Per sample, with every input valid and the output always ready:

* **Input**: K cycles to compress the spike words, plus 2 until the fiber is stored.
* **Join**, per group g of P output neurons and chunk c:

  - prepare the job in ``F_c`` cycles: in group 0, ``2 + (k_c + 2 if k_c else 1)`` (chunk info,
    mask, then the ``k_c`` kept words one per cycle, one more cycle for the last word to land and
    one to move on); in later groups 2 (read the stored job, load it);
  - TPPE join ``J_{n,c}``: ``fast``/``ftp``: ``max(1, m)``; ``sequential``: ``sum_t max(1, m_t)``;
    ``laggy``/``ftp``: ``max(max(1, m), G + sum_groups max(0, m_group - 1) + 2)`` with
    ``G = ceil(chunk / laggy_adders)`` slow prefix-sum groups (the correction side visits every
    group once and pops matched weights through a two-cycle FIFO), where ``m`` counts matched
    (kept spike, nonzero weight) positions of the chunk;
  - the job of chunk c is dispatched when it is fetched and every TPPE has finished chunk c-1
    (fetching overlaps joining): ``D_c = max(D_{c-1} + 1 + F_c, D_{c-1} + 2 + J_{c-1})``;
  - then the P results leave through the LIF, one per cycle.

* **Output**: the N output words are compressed as they leave the LIF and streamed out through
  the decompressor after the last one: N + 2 more cycles.

The model ignores a handful of one-cycle handshake bubbles; ``TOLERANCE`` states how far the
measured cycles may be from it, and the tests hold the RTL to that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import golden
from .config import SnnConfig

__all__ = ["TOLERANCE", "SampleCycles", "join_cycles", "sample_cycles", "layer_cycles"]

#: Allowed relative difference between measured and modeled cycles per sample.
TOLERANCE = 0.10


@dataclass(frozen=True)
class SampleCycles:
    input: int
    join: int          # all groups: fetch, join and LIF
    output: int
    total: int


def _popcount(x: int) -> int:
    return bin(x).count("1")


def join_cycles(cfg: SnnConfig, spike_mask: int, spike_words: np.ndarray, weight_mask: int) -> int:
    """Cycles one TPPE spends joining one chunk (after accepting it), per the module doc.

    ``spike_words`` are the chunk's decompressed words by position (dropped neurons 0).
    """
    matched = spike_mask & weight_mask
    m = _popcount(matched)
    if cfg.dataflow == "sequential":
        total = 0
        for t in range(cfg.timesteps):
            tmask = sum(((int(w) >> t) & 1) << i for i, w in enumerate(spike_words))
            total += max(1, _popcount(tmask & weight_mask))
        return total
    if cfg.join == "fast":
        return max(1, m)
    adders = cfg.adders
    groups = -(-cfg.chunk // adders)
    extra = sum(max(0, _popcount((matched >> (g * adders)) & ((1 << adders) - 1)) - 1)
                for g in range(groups))
    return max(max(1, m), groups + extra + 2)


def sample_cycles(cfg: SnnConfig, spike_fiber: golden.Fiber,
                  weight_fibers: tuple[golden.Fiber, ...]) -> SampleCycles:
    """Modeled cycles of one sample from its first spike word to its last output word."""
    P, N = cfg.pes, cfg.out_neurons
    words = golden.decompress(spike_fiber)
    chunks = spike_fiber.chunks
    join = 0
    for g in range(-(-N // P)):
        neurons = range(g * P, min((g + 1) * P, N))
        dispatch, prev_join = -1, None
        for c in range(chunks):
            k = _popcount(spike_fiber.masks[c])
            fetch = 2 + (k + 2 if k else 1) if g == 0 else 2
            ready = dispatch + 1 + fetch
            if prev_join is not None:
                ready = max(ready, dispatch + 2 + prev_join)
            dispatch = ready
            span = words[c * cfg.chunk:(c + 1) * cfg.chunk]
            prev_join = max(join_cycles(cfg, spike_fiber.masks[c], span, weight_fibers[n].masks[c])
                            for n in neurons)
        join += dispatch + 2 + prev_join + P + 1
    inp, out = cfg.in_neurons + 2, N + 2
    return SampleCycles(input=inp, join=join, output=out, total=inp + join + out)


def layer_cycles(cfg: SnnConfig, trace: golden.LayerTrace) -> list[SampleCycles]:
    """:func:`sample_cycles` of every sample of a :func:`golden.layer` trace."""
    return [sample_cycles(cfg, fiber, trace.weight_fibers) for fiber in trace.spike_fibers]
