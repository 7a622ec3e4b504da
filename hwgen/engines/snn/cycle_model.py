"""Analytic cycle model of the SNN layer (docs/architecture.md §3), from the schedule in
:mod:`.rtl`.

Per sample, alone (every input valid, the output always ready), counted from the cycle of the
first spike word:

* **Input**: K cycles to compress the spike words; the schedule starts ``K + 2`` cycles in.
* **Fetch** (group 0 only), per chunk c: 2 cycles to read the chunk's mask and base, then the
  ``k_c`` kept words one per cycle plus 2 to land (1 cycle if ``k_c = 0``); the job is then on
  offer. Later groups read a finished job from the job memory while the one before is taken, so
  their jobs are on offer back to back.
* **Dispatch**: a job is taken by all P TPPEs at once; each TPPE takes it in the first cycle it
  is on offer and the TPPE is free. The next job is on offer the cycle after (group 0: after its
  fetch).
* **Join**, TPPE cycles per chunk ``J``: ``fast``/``ftp``: ``max(1, m)``; ``sequential``:
  ``sum_t max(1, m_t)``, where ``m`` counts matched (kept spike, nonzero weight) positions of the
  chunk and ``m_t`` those with a spike at t; ``laggy``/``ftp``: about ``G + m + 1`` with
  ``G = ceil(chunk / laggy_adders)`` slow prefix-sum groups — the correction side visits every
  group once and pops the matched weights through a two-cycle FIFO; see
  :func:`_laggy_join_cycles` for the exact count. A TPPE that took a chunk at cycle
  a is free for the next chunk at ``a + J`` (``fast``, ``sequential``: it accepts in its last
  join cycle) or ``a + J + 1`` (``laggy``); ``a + J`` is also the last join cycle of a pair's
  last chunk.
* **Collect**: a finished pair's O moves into the TPPE's output register in its last join
  cycle if that register is empty (or being emptied), and the TPPE goes on as after any other
  chunk; otherwise it holds O until the register frees and takes the next pair's first chunk the
  cycle after. Results go through the LIF in neuron order, one per cycle, from the cycle after
  they reach the output register.
* **Output**: the N output words are compressed as they leave the LIF and streamed out after the
  last one: the last word leaves ``N + 2`` cycles after the last neuron's result is collected.

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
    return _laggy_join_cycles(matched, cfg.adders, -(-cfg.chunk // cfg.adders))


#: Cycles from pushing a weight into the laggy join's FIFO to reading it (SyncFIFOBuffered).
_FIFO_LATENCY = 2


def _laggy_join_cycles(matched: int, adders: int, groups: int) -> int:
    """The laggy TPPE's join cycles for one chunk, cycle by cycle (chunk accepted in cycle 0).

    The weight side pushes the i-th matched weight into the FIFO in cycle 1 + i. The slow prefix
    sum offers group 0 in cycle 1 and each group the cycle after the one before is acknowledged;
    the correction side pops one matched weight per cycle (not before it is readable) and
    acknowledges a group the cycle after its last correction (at once if it has none). The join
    is done when both sides are.
    """
    positions = [i for i in range(groups * adders) if matched >> i & 1]
    readable = {pos: 1 + i + _FIFO_LATENCY for i, pos in enumerate(positions)}
    t = 1                                   # cycle the current group is on offer
    for g in range(groups):
        for pos in (p for p in positions if g * adders <= p < (g + 1) * adders):
            t = max(t, readable[pos]) + 1   # corrected in cycle t
        t += 1                              # acknowledged in cycle t, next group on offer after
    return max(t, 1 + len(positions))


def sample_cycles(cfg: SnnConfig, spike_fiber: golden.Fiber,
                  weight_fibers: tuple[golden.Fiber, ...]) -> SampleCycles:
    """Modeled cycles of one sample from its first spike word to its last output word."""
    P, N, K = cfg.pes, cfg.out_neurons, cfg.in_neurons
    words = golden.decompress(spike_fiber)
    chunks = spike_fiber.chunks
    overlap = 0 if cfg.join == "laggy" and cfg.dataflow == "ftp" else 1
    start = K + 2
    offer = start                  # cycle the next job is (or would be) on offer
    free = [start] * P             # cycle each TPPE can take its next chunk
    emptied = [start] * P          # cycle each TPPE's output register was last emptied
    collect = start                # cycle the collector is free
    last_collect = start
    for g in range(-(-N // P)):
        for c in range(chunks):
            if g == 0:
                k = _popcount(spike_fiber.masks[c])
                offer += 2 + (k + 2 if k else 1)
            span = words[c * cfg.chunk:(c + 1) * cfg.chunk]
            taken = max([offer] + free)
            for p in range(P):
                n = g * P + p
                mask = weight_fibers[n].masks[c] if n < N else 0
                join = join_cycles(cfg, spike_fiber.masks[c], span, mask)
                free[p] = taken + join + (1 - overlap)
                if c == chunks - 1:             # O moves to the output register, then is
                    copied = max(taken + join, emptied[p])         # collected in neuron order
                    collect = max(collect, copied + 1)
                    if n < N:
                        last_collect = collect
                    if copied > taken + join:   # held until the register freed
                        free[p] = copied + 1
                    emptied[p] = collect
                    collect += 1
            offer = taken + 1
    join = last_collect + 1 - start
    out = N + 2
    return SampleCycles(input=start, join=join, output=out, total=start + join + out)


def layer_cycles(cfg: SnnConfig, trace: golden.LayerTrace) -> list[SampleCycles]:
    """:func:`sample_cycles` of every sample of a :func:`golden.layer` trace."""
    return [sample_cycles(cfg, fiber, trace.weight_fibers) for fiber in trace.spike_fibers]
