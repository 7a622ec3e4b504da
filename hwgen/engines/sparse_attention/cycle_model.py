"""Analytic cycle model of the sparse attention engine (DESIGN.md §3), from the schedule in
:mod:`.rtl`, with every input valid and the output always ready.

A sequence of length L whose tokens arrive one per cycle is loaded in L cycles; the compute side
takes the bank the cycle after its last token (1 cycle to start) and then spends, with
``n_i`` the keys row i selects (``min(k, L)`` for ``topk``):

* ``topk`` only, once per sequence: ``recip_bits + L + 3`` cycles for both quantization
  reciprocals (two sequential dividers side by side, ``recip_bits + 1`` cycles) and quantizing
  the L rows of K into the k4 memories;
* per row i: reading Q[i]; the selection and exact scores, one key per cycle (``topk``: after
  ``ceil(L / lanes)`` cycles of estimates streaming into the top-k unit, which returns the n_i
  keys one per cycle after the last estimate); the softmax pass, one key per cycle; the row
  reciprocal on one sequential divider (``row_recip_shift + 1`` quotient bits, one per cycle);
  the weighted sum, one key per cycle; handing the row to the output register. Each pass adds a
  cycle or two of pipeline fill; measured against the RTL, a row costs exactly
  ``3 n_i + row_recip_shift + 10`` cycles, and ``ceil(L / lanes) + 1`` more for ``topk``.

So a row costs ``3 n_i + row_recip_shift + 10`` cycles (+ ``ceil(L / lanes) + 1`` for ``topk``):
for fixed k the exact stage grows linearly in L, the estimate quadratically (L rows of L / lanes).
The last output row leaves 1 cycle after its hand-off. Back to back, the next sequence loads
while this one computes, so a sequence costs its compute cycles (:attr:`SequenceCycles.compute`)
as long as its L tokens take no longer.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import SparseAttentionConfig

__all__ = ["SequenceCycles", "sequence_cycles", "selected_counts"]


@dataclass(frozen=True)
class SequenceCycles:
    load: int       # token beats
    prepare: int    # topk: reciprocals and k4
    rows: int       # every row, from reading Q[i] to the hand-off of o[i]
    compute: int    # 1 + prepare + rows: the compute side's cycles for the sequence
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
    rows = sum(estimate + 3 * n + cfg.row_recip_shift + 10 for n in selected_counts(cfg, length))
    compute = 1 + prepare + rows
    return SequenceCycles(load=length, prepare=prepare, rows=rows, compute=compute,
                          total=length + compute + 1)
