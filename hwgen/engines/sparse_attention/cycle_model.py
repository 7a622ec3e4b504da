"""Analytic cycle model of the sparse attention engine (docs/architecture.md §3), from the schedule
in :mod:`.rtl`, with every input valid and the output always ready.

Fixed latencies (the RTL checks its pipelines against these at elaboration):

* :func:`estimate_latency`: a k4 read issued in cycle t reaches the top-k units in
  ``t + 2 + dot`` (read, read register, the LUT dot product's register stages,
  :func:`hwgen.hdl.pipeline.dot_product_stages`);
* :func:`exact_latency`: a key issued in cycle t has its exact score written in
  ``t + 6 + tree`` (index buffer read, K read and its register, the product's three stages:
  the DSP's input and output registers and one in the fabric, adder tree);
* :data:`SOFTMAX_LATENCY`: a row-buffer read issued in t has its exp written in ``t + 7``
  (read and its register, ``z``, ``z * C_mult``, table, shift);
* :data:`WSUM_LATENCY`: a row-buffer read issued in t is accumulated in ``t + 7`` (row buffer
  and its register, V read and its register, ``p``, and the product's three stages), the result
  register follows in ``t + 8``;
* :data:`QUANT_LATENCY`: a row read by the prepare unit in t is written to q4 / k4 in ``t + 9``
  (read and its two registers, row and reciprocal, the product's three stages, rounding,
  clamp).

The token memories (Q, K, V) are block RAM with two registers after the read data
(:data:`.rtl.BRAM_READ_REGISTERS`) for the prepare unit and one for the exact and weighted-sum
stages (their second register is the DSPs' input register), the other memories one.

**A sequence** of length L arrives one token per cycle; its last token is taken in cycle ``c``
and it is ``loaded`` from ``c + 2`` (``c + 3`` for ``topk`` / ``threshold``, whose running
maxima of |Q| and |K| take one more register). ``topk`` / ``threshold`` then run the prepare unit
(:func:`prepare_cycles`, one sequence at a time, overlapping the previous sequence's row groups);
``window`` / ``dense`` are ready at once. A bank is refilled from the cycle after its last group's
weighted sum.

**Row groups** ``g`` (``rows`` queries each, ``active`` of them real) pass through the stages
``estimate`` (estimated masks only), ``exact``, ``softmax``, ``divide``, ``wsum``, ``emit``. Each
stage X takes group g in cycle ``take[X][g] = max(done[X-1][g] + 1, take[X+1][g-1] + h)``: the
previous stage has finished it, and the next stage takes X's previous group in the same cycle
(``h = 0``) if that stage took it empty, i.e. while not holding a finished group of its own
(``take[X+2][g-2] != take[X+1][g-1]``; always for emit), else one cycle later (``h = 1``: the take
chain in the RTL is two stages long). The emit stage instead waits for its own previous group:
``done[emit][g-1] + 1``. A stage works from ``take + 1``; with ``n`` the most keys any unit of
the group selected:

* estimate: ``B = ceil(L / lanes)`` block reads, done at its last issue, ``take + B`` (the
  dot products drain while the stage takes its next group: the last beat reaches the top-k
  units at ``take + B + estimate_latency``, which is when the select stage's sets start);
* exact: the keys leave the top-k units (or counters) one per cycle, done at
  ``take + n + exact_latency``;
* softmax: ``take + n + SOFTMAX_LATENCY``; wsum: ``take + n + WSUM_LATENCY``;
* divide: :func:`divide_cycles` (request in ``take + 1``, two quotient bits per cycle, result);
* emit: the ``active`` rows leave in cycles ``take + 1 .. take + active``.

The first stage takes group 0 of a sequence once it is prepared (``prepared + 1``) and the
following groups as soon as the chain lets it. So in steady state a group costs its slowest
stage, typically ``max(B, n + exact_latency, divide_cycles) + 1``, and a sequence about
``ceil(L / rows)`` of those.

Cycles depend on the data only through the keys each row selects: ``threshold`` rows keep a
data-dependent number, so :func:`sequence_cycles` and :func:`stream_cycles` take the per-row
counts (``golden.attention(...).selected`` sizes) for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwgen.hdl.pipeline import dot_product_stages, tree_stages
from hwgen.hdl.topk import INPUT_STAGES as TOPK_INPUT_STAGES

from .config import SparseAttentionConfig

__all__ = [
    "QUANT_LATENCY",
    "SOFTMAX_LATENCY",
    "WSUM_LATENCY",
    "SequenceCycles",
    "divide_cycles",
    "estimate_latency",
    "exact_latency",
    "prepare_cycles",
    "prepare_max_latency",
    "stage_names",
    "recip_latency",
    "selected_counts",
    "sequence_cycles",
    "stream_cycles",
]

SOFTMAX_LATENCY = 7
WSUM_LATENCY = 8
QUANT_LATENCY = 9


def stage_names(cfg: SparseAttentionConfig) -> list[str]:
    """The row-group stages, in order."""
    return (["estimate", "queue", "select"] if cfg.estimated else []) + [
        "exact", "softmax", "divide", "wsum", "emit"]


def estimate_latency(cfg: SparseAttentionConfig) -> int:
    return 2 + dot_product_stages(cfg.head_dim, cfg.est_bits, signed=True)


def exact_latency(cfg: SparseAttentionConfig) -> int:
    return 6 + tree_stages(cfg.head_dim)


def prepare_max_latency(cfg: SparseAttentionConfig) -> int:
    """Cycles from the prepare unit's take to the max|x| registers: the leaf registers and the
    max tree's register stages."""
    return 1 + tree_stages(cfg.head_dim)


def recip_latency(cfg: SparseAttentionConfig) -> int:
    """The quantization reciprocal divider: request to result, ``recip_bits + 1``."""
    return cfg.recip_bits + 1


def divide_cycles(cfg: SparseAttentionConfig) -> int:
    """The divide stage, take to done: request one cycle after the take, result
    ``ceil(row_recip_bits / 2) + 1`` cycles after the request (two quotient bits per cycle)."""
    return -(-cfg.row_recip_bits // 2) + 2


def prepare_cycles(cfg: SparseAttentionConfig, length: int) -> int:
    """The prepare unit, take (cycle 0) to its last q4 / k4 write: the max trees, one cycle to
    start the dividers, the reciprocals, then 2L rows one per cycle and the quantizer's
    latency."""
    return prepare_max_latency(cfg) + recip_latency(cfg) + 2 * length + QUANT_LATENCY


@dataclass(frozen=True)
class SequenceCycles:
    load: int       # token beats
    prepare: int    # topk / threshold: the prepare unit's cycles (0 otherwise)
    compute: int    # from the cycle after the last token to the last output row
    total: int      # alone: first token to last output row, both included


def selected_counts(cfg: SparseAttentionConfig, length: int, counts=None) -> list[int]:
    """Keys each row selects: ``counts`` itself (required for ``threshold``, whose counts depend
    on the data), else the sizes of the golden model's ``select``."""
    if counts is not None:
        counts = [int(n) for n in counts]
        if len(counts) != length or not all(1 <= n <= cfg.max_selected for n in counts):
            raise ValueError(f"counts must be {length} integers from 1 to {cfg.max_selected}")
        return counts
    if cfg.mask == "threshold":
        raise ValueError("the threshold mask's cycles depend on the data: pass the per-row "
                         "counts (golden.attention(...).selected sizes)")
    if cfg.mask == "topk":
        return [min(cfg.topk, length)] * length
    if cfg.mask == "dense":
        return [length] * length
    g, w = cfg.global_tokens, cfg.window
    out = []
    for i in range(length):
        if i < g:
            out.append(length)
        else:
            lo, hi = max(g, i - w), min(length - 1, i + w)
            out.append(min(g, length) + hi - lo + 1)
    return out


class _Pipeline:
    """The stage recurrences over all groups of all sequences, in order."""

    def __init__(self, cfg: SparseAttentionConfig):
        self.cfg = cfg
        self.names = stage_names(cfg)
        self.take = {n: None for n in self.names}     # of the previous group
        # Whether the stage took the previous group empty (see the module docstring).
        self.took_empty = {n: True for n in self.names}
        self.done = {n: None for n in self.names}
        # Per row unit, its top-k unit's previous set: (pair, hand-off, result count); before
        # the first set, zeros (every cycle is later, so they bind nothing).
        self.topk_set = [(0, 0, 0)] * cfg.rows

    def _select_done(self, take: int, last_beat: int, counts: list[int]) -> int:
        """The select stage: every active unit's top-k unit (:class:`hwgen.hdl.topk.TopK`,
        ``TopK.schedule`` without stalls, results always taken) takes the set's last beat into
        its ring at ``M = last_beat + INPUT_STAGES``, captures it at ``C = max(M + 1, X_prev)``,
        moves it to the pair register at ``X = max(C + 1, H_prev)``, hands it off at
        ``H = max(X + 1, H_prev + m_prev)`` and sends its ``m`` results in ``H + 3 .. H + m + 2``;
        the stage is done in the first cycle from its take in which every set is complete."""
        last_capture = take - 1
        for u, m in enumerate(counts):
            x_prev, h_prev, m_prev = self.topk_set[u]
            c = max(last_beat + TOPK_INPUT_STAGES + 1, x_prev)
            x = max(c + 1, h_prev)
            h = max(x + 1, h_prev + m_prev)
            self.topk_set[u] = (x, h, m)
            last_capture = max(last_capture, h + m + 2)
        return max(take, last_capture + 1)

    def group(self, ready: int, length: int, counts: list[int]) -> tuple[int, int]:
        """Run one group whose first stage may take it from cycle ``ready``: returns
        (wsum done, emit done)."""
        cfg = self.cfg
        n = max(counts)
        blocks = -(-length // cfg.lanes)
        dur = {
            "estimate": blocks,
            "queue": 1,
            "exact": n + exact_latency(cfg),
            "softmax": n + SOFTMAX_LATENCY,
            "divide": divide_cycles(cfg),
            "wsum": n + WSUM_LATENCY,
            "emit": len(counts),
        }
        earliest = ready
        takes, took_empty = {}, {}
        for k, name in enumerate(self.names):
            t = earliest
            following = None if name == "emit" else self.names[k + 1]
            if following is None:
                if self.done[name] is not None:
                    t = max(t, self.done[name] + 1)
            elif self.take[following] is not None:
                t = max(t, self.take[following] + (not self.took_empty[following]))
            takes[name] = t
            took_empty[name] = following is None or t != self.take[following]
            if name == "select":
                self.done[name] = self._select_done(
                    t, self.done["estimate"] + estimate_latency(cfg), counts)
            else:
                self.done[name] = t + dur[name]
            earliest = self.done[name] + 1
        self.take.update(takes)
        self.took_empty.update(took_empty)
        return self.done["wsum"], self.done["emit"]


def _schedule(cfg: SparseAttentionConfig, lengths, counts) -> list[tuple[int, int]]:
    """(first token, last output row) cycles of each sequence streamed back to back."""
    pipe = _Pipeline(cfg)
    spans = []
    release: list[int] = []                 # per sequence: its bank is free from this cycle
    last_token = -1
    prep_free = 0
    for s, (length, rows) in enumerate(zip(lengths, counts)):
        first = last_token + 1
        if s >= 2:
            first = max(first, release[s - 2])
        last_token = first + length - 1
        ready = last_token + 2
        if cfg.estimated:
            take = max(ready + 1, prep_free)
            done = take + prepare_cycles(cfg, length)
            prep_free = done + 1
            ready = done + 1
        end = None
        for g in range(0, length, cfg.rows):
            wsum_done, end = pipe.group(ready, length, rows[g:g + cfg.rows])
        release.append(wsum_done + 1)
        spans.append((first, end))
    return spans


def _counts(cfg, lengths, counts):
    if counts is None:
        counts = [None] * len(lengths)
    return [selected_counts(cfg, n, c) for n, c in zip(lengths, counts)]


def sequence_cycles(cfg: SparseAttentionConfig, length: int, counts=None) -> SequenceCycles:
    """Modeled cycles of one sequence of ``length`` tokens alone (see the module docstring);
    ``counts`` are the keys per row (required for ``threshold``)."""
    rows = selected_counts(cfg, length, counts)
    first, end = _schedule(cfg, [length], [rows])[0]
    total = end - first + 1
    prepare = prepare_cycles(cfg, length) if cfg.estimated else 0
    return SequenceCycles(load=length, prepare=prepare, compute=total - length, total=total)


def stream_cycles(cfg: SparseAttentionConfig, lengths: list[int], counts=None) -> int:
    """Cycles of sequences streamed back to back (tokens offered every cycle, output always
    ready), from the first token to the last output row, both included. ``counts`` holds the
    per-row key counts of each sequence (required for ``threshold``)."""
    spans = _schedule(cfg, lengths, _counts(cfg, lengths, counts))
    return spans[-1][1] - spans[0][0] + 1
