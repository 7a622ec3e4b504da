"""Analytic cycle model of the sparse attention engine (docs/architecture.md §3), from the schedule
in
:mod:`.rtl`, with every input valid and the output always ready.

A sequence of length L whose tokens arrive one per cycle is loaded in L cycles; the compute side
takes the bank the cycle after its last token (1 cycle to start). With ``n_i`` the keys row i
selects (``min(k, L)`` for ``topk``) and ``B = ceil(L / lanes)``:

* ``topk`` only, once per sequence: ``recip_bits + L + 3`` cycles for both quantization
  reciprocals (two sequential dividers side by side) and quantizing the L rows of K into the k4
  memories;
* the **front** of row i takes ``F_i = 2 n_i + 4`` cycles (``topk``: ``+ B + 1``): reading
  Q[i], the selected keys and their exact scores one per cycle (``topk``: after the B cycles of
  estimates streaming into the top-k unit), the softmax pass one key per cycle, each pass with a
  cycle of pipeline fill; then it hands the row to the back, as soon as the back is free, in a
  hand-off cycle ``h_i`` that also starts the row's division;
* the **back** of row i ends ``row_recip_bits + n_i + 4`` cycles after ``h_i`` (the division,
  ``row_recip_bits`` quotient bits one per cycle; the weighted sum one key per cycle; the
  hand-over to the output register), in cycle ``e_i``.

So ``h_0 = start + 1 + prepare + F_0``, ``h_{i+1} = max(h_i + 1 + F_{i+1}, e_i + 1)``: rows
overlap front and back, and a row costs about ``max(F_i, row_recip_bits + n_i + 4)`` in steady
state. For fixed k the exact stage grows linearly in L, the estimate quadratically (L rows of B).
The sequence's last output row leaves in cycle ``e_last + 1``, in which the compute side also
releases its bank; it takes the next bank the cycle after. Back to back, the next sequence loads
while this one computes, so a sequence costs its compute cycles (:attr:`SequenceCycles.compute`)
as long as its L tokens take no longer.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import SparseAttentionConfig

__all__ = ["SequenceCycles", "sequence_cycles", "selected_counts", "stream_cycles"]


@dataclass(frozen=True)
class SequenceCycles:
    load: int       # token beats
    prepare: int    # topk: reciprocals and k4
    compute: int    # the compute side's cycles for the sequence, from taking its bank to
    #                 releasing it (the cycle its last output row leaves)
    total: int      # alone: first token to last output row, both included


def selected_counts(cfg: SparseAttentionConfig, length: int) -> list[int]:
    """Keys each row selects (the golden model's ``select`` sizes, without the scores)."""
    if cfg.mask == "topk":
        return [min(cfg.topk, length)] * length
    if cfg.mask == "dense":
        return [length] * length
    g, w = cfg.global_tokens, cfg.window
    counts = []
    for i in range(length):
        if i < g:
            counts.append(length)
        else:
            lo, hi = max(g, i - w), min(length - 1, i + w)
            counts.append(min(g, length) + hi - lo + 1)
    return counts


def sequence_cycles(cfg: SparseAttentionConfig, length: int) -> SequenceCycles:
    """Modeled cycles of one sequence of ``length`` tokens (see the module docstring)."""
    estimate = -(-length // cfg.lanes) + 1 if cfg.mask == "topk" else 0
    prepare = cfg.recip_bits + length + 3 if cfg.mask == "topk" else 0
    handoff = 1 + prepare              # cycle after taking the bank (cycle 0) the front starts
    back_end = None
    for n in selected_counts(cfg, length):
        front = estimate + 2 * n + 4
        handoff = handoff + front if back_end is None else max(handoff + 1 + front,
                                                               back_end + 1)
        back_end = handoff + cfg.row_recip_bits + n + 4
    compute = back_end + 2
    return SequenceCycles(load=length, prepare=prepare, compute=compute, total=length + compute)


def stream_cycles(cfg: SparseAttentionConfig, lengths: list[int]) -> int:
    """Cycles of sequences streamed back to back (tokens offered every cycle, output always
    ready), from the first token to the last output row, both included.

    Sequence s loads into bank ``s % 2`` once the previous sequence has loaded and the bank's
    previous sequence (s - 2) has been computed; it is computed once it has loaded and the
    previous one has been computed (the cycle after, the compute side takes the bank).
    """
    load_end = [0] * len(lengths)
    compute_end = [0] * len(lengths)
    for s, length in enumerate(lengths):
        start = 0 if s == 0 else load_end[s - 1] + 1
        if s >= 2:
            start = max(start, compute_end[s - 2] + 1)
        load_end[s] = start + length - 1
        begin = load_end[s] + 1 if s == 0 else max(load_end[s] + 1, compute_end[s - 1] + 1)
        compute_end[s] = begin + sequence_cycles(cfg, length).compute - 1
    return compute_end[-1] + 1
