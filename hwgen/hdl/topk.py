"""Streaming top-k selection: the key selection of the sparse attention engine
(docs/architecture.md §4.3).

A *set* of ``n`` values streams in, ``lanes`` per beat, with implicit indices ``0..n-1``; after
its last beat :class:`TopK` streams out the indices of the ``min(k, n)`` largest values in
increasing index order, one per beat. Equal values are ranked by index, the lower index first (a
stable sort by decreasing value), so the result is exactly
:func:`hwgen.engines.sparse_attention.golden.select` with ``mask="topk"`` on one row of
estimated scores. With a ``margin``, a set's result keeps only those selected items whose value
is at least the set's largest value minus ``margin``.

Microarchitecture: every stage starts and ends at registers, and no path of the design crosses
more than one value comparator. ``L = min(lanes, max_items)`` lanes can hold a real item (the
others are ignored) and ``K = min(k, max_items)``. Values are compared as unsigned *keys*: the
value with its sign bit inverted (signed shapes) below a valid bit, so a real item is ahead of
every lane past the beat's count.

Input pipeline (three registers: input, ranked, sorted)
    The beat is registered as it is taken. Next, every lane gets its rank within the beat from
    ``L * (L - 1) / 2`` key comparators and a popcount (lane ``a`` is ahead of lane ``b > a`` iff
    ``key_a >= key_b``: equal values keep lane order) and its item index ``base + lane``. Then the
    lanes are permuted into rank order (lane ``c`` goes to position ``rank_c``), so the sorted
    register holds the beat best first, the lanes past the count last.

Merge (the slots)
    ``K`` *slots*, each a (value, index) register, and a ``K``-bit valid mask, kept sorted best
    first (larger value first, equal values lower index first); the valid slots are a prefix.
    A beat is merged in one cycle as two sorted lists: ``K * L`` comparators give ``slot a is
    ahead of candidate j`` (``key_slot >= key_cand``: every index of the beat is larger than
    every stored one, so a tie goes to the slot). For a fixed candidate these bits are a
    thermometer code over the slots, and for a fixed slot over the candidates, so candidate ``j``
    lands at position ``j + a`` where its code steps down after ``a`` slots, and slot ``a`` at
    ``a + b`` where its code steps up after ``b`` candidates; each position ``i < K`` takes the
    one source whose two neighbouring code bits say so (an AND-OR multiplexer of ``2L + 1``
    sources at most). Candidates landing at ``K`` or later and slots pushed past ``K - 1`` drop
    out: they cannot be among the best ``k`` of the set. A threshold register follows the best
    value minus ``margin`` (one subtraction per source of position 0, then a choice).

Hand-off (slots to emitter, at most once per cycle)
    A set whose last beat has been merged waits in the slots (*finished*) until the emitter is
    free, and then moves into the emitter's registers: the indices, the kept mask (the valid
    slots; with a margin, those whose value is at least the threshold, one comparator each: a
    prefix of the valid slots), their number (from that prefix by a few gates, no adder), and
    ``K * (K - 1) / 2`` bits ``index_a < index_b`` from as many index comparators.

Emission
    Each cycle the emitter picks the kept index that no other kept index precedes (an AND over
    ``K - 1`` precedence bits per slot), clears it and moves it into the output register, whose
    ``last`` bit is ``remaining == 1``. The output stream comes from registers only.

The slot values are single-buffered and the indices double-buffered (slots and emitter), so the
next set streams into the emptied slots while the previous one is emitted.

Resources, with ``W`` the value width and ``I`` the index width: ``K * L`` key comparators in the
merge, ``L * (L - 1) / 2`` in the ranking, ``K`` threshold comparators with a margin and
``K * (K - 1) / 2`` ``I``-bit index comparators at the hand-off; ``L`` popcounts over ``L - 1``
bits; per slot an AND-OR multiplexer of at most ``2L + 1`` (value, index) sources; registers:
``3 L (W + I + 2)`` in the input pipeline (plus ``log2 L`` rank bits per lane), ``K (W + 2 I +
2) + K (K - 1) / 2`` for slots and emitter, and the threshold, counters and output register.
"""

from __future__ import annotations

import functools
import operator

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.hdl import Shape
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .popcount import popcount

__all__ = ["index_shape", "count_shape", "items_layout", "selected_layout", "TopK"]

#: Registers between ``items`` and the merge: input, ranked, sorted.
INPUT_STAGES = 3


def index_shape(max_items: int):
    """Shape of an item index of a set of at most ``max_items`` items: unsigned, holds
    ``0..max_items-1`` (at least 1 bit)."""
    return unsigned(max((max_items - 1).bit_length(), 1))


def count_shape(lanes: int):
    """Shape of a beat's ``count`` field: unsigned, holds ``0..lanes``."""
    return unsigned(lanes.bit_length())


def items_layout(value_shape, lanes: int) -> data.StructLayout:
    """One input beat of :class:`TopK`."""
    return data.StructLayout({
        "values": data.ArrayLayout(value_shape, lanes),  # lane l: the item b*lanes + l
        "count": count_shape(lanes),                     # lane l is real iff l < count
        "last": 1,                                       # the set's final beat
    })


def selected_layout(max_items: int) -> data.StructLayout:
    """One output beat of :class:`TopK`: a selected index; ``last`` on the set's final one."""
    return data.StructLayout({"index": index_shape(max_items), "last": 1})


def _check_int(name: str, value, lo: int, hi: int | None = None) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= lo \
        and (hi is None or value <= hi)
    if not ok:
        bounds = f"{lo}..{hi}" if hi is not None else f"at least {lo}"
        raise ValueError(f"{name} must be {bounds}, not {value!r}")


def _any_of(terms):
    """OR of ``terms`` (Amaranth values of one width); ``Const(0, 1)`` for none."""
    terms = list(terms)
    return functools.reduce(operator.or_, terms) if terms else Const(0, 1)


def _thermometer_count(therm, width: int):
    """The number of set bits of ``therm``, a prefix of ones (``therm[j]`` implies
    ``therm[j - 1]``), without an adder: bit ``b`` is the OR of the code's step positions
    ``v`` (``therm[v - 1] & ~therm[v]``) that have bit ``b`` set."""
    n = len(therm)
    steps = {v: therm[v - 1] & (~therm[v] if v < n else 1) for v in range(1, n + 1)}
    return Cat(_any_of(steps[v] for v in steps if v >> b & 1) for b in range(width))


class TopK(wiring.Component):
    """Streaming top-k: indices of the ``min(k, n)`` largest of ``n`` values, increasing.

    Parameters
    ----------
    k : int
        Items kept per set, 1..1024. ``k >= max_items`` keeps every item of every set.
    value_shape : shape-castable
        Shape of one value, ``signed(w)`` or ``unsigned(w)`` (anything :meth:`Shape.cast` takes,
        at least 1 bit); values are compared as that shape.
    lanes : int
        Values per input beat, 1..64.
    max_items : int
        Most items in one set, at least 1; it sets the index width (:func:`index_shape`).
    margin : int or None
        ``None`` (the default): a set's result is its ``min(k, n)`` selected items. An integer
        ``>= 0``: only the selected items whose value is at least ``v_max - margin`` are kept,
        ``v_max`` being the set's largest value (compared exactly, without overflow); the largest
        value itself is always kept. ``margin = 0`` keeps the selected items equal to the
        largest; a ``margin`` of at least the value range (``2**w - 1``) keeps all, like
        ``None``. Timing does not depend on ``margin``, only the result counts do.

    Attributes
    ----------
    items : stream of :func:`items_layout`, in
        The sets, back to back. A set is the beats up to and including one with ``last`` set;
        lane ``l`` of its ``b``-th beat (from 0) is the item of index ``b * lanes + l`` and is
        real iff ``l < count``. Every beat but the last has ``count = lanes`` and a set has
        1..``max_items`` items (more gives wrapped indices and an unspecified selection).
    selected : stream of :func:`selected_layout`, out
        Per set exactly ``m_s`` beats: the kept indices in increasing order, ``last`` set on the
        final one. ``m_s = min(k, n_s)`` without a margin; with one, the number of the
        ``min(k, n_s)`` selected items within ``margin`` of the largest, ``1 <= m_s <=
        min(k, n_s)``.

    Timing (see the module docstring for the structure). A beat is taken in one cycle whatever
    its count and enters a pipeline of :data:`INPUT_STAGES` = 3 registers (input, ranked,
    sorted); a beat moves on from one whenever the next is empty or is emptied in the same
    cycle, and the merge takes the beat in the sorted register in any cycle in which
    ``merge_ready = ~finished | emitter_free``. ``finished`` is high while the slots hold a set
    whose last beat has been merged but that has not been handed off; ``emitter_free`` is high
    when the emitter holds no result that has not yet moved to the output register, or moves its
    final one in this cycle; a result moves to the output register in any cycle in which
    ``advance = ~selected.valid | selected.ready``. So ``items.ready = ~(all three registers
    full) | merge_ready``, a combinational path from ``selected.ready``. A finished set is handed
    off at the edge ending the first cycle, after that of its last beat's merge, in which
    ``emitter_free`` is high; the next set's first beat can merge into the emptied slots in that
    same cycle. Its first result moves to the output register in the next cycle in which
    ``advance`` is high (one per such cycle after that) and is offered from the cycle after.

    With items offered every cycle and ``selected.ready`` always high, number cycles from the
    first beat's transfer (cycle 0). Set ``s`` of ``n_s`` items has ``B_s = ceil(n_s / lanes)``
    beats and ``m_s`` results. Number all beats ``b = 0, 1, ...`` across sets; beat ``b`` is
    taken in cycle ``A_b`` and merged in cycle ``M_b``, with ``A_0 = 0``,
    ``A_b = max(A_{b-1} + 1, M_{b-3})`` (the pipeline holds three beats) and
    ``M_b = max(A_b + 3, M_{b-1} + 1)``, and for the first beat of set ``s`` also at least
    ``H_{s-1}``. Set ``s`` is handed off in cycle ``H_s = max(M_last + 1, H_{s-1} + m_{s-1})``
    (``M_last`` that of its last beat; ``H_{-1} + m_{-1} = -inf``) and its results leave in
    cycles ``H_s + 2 .. H_s + m_s + 1``. So a set's first result comes 6 cycles after its last
    beat when nothing waits (merge 3 cycles after the transfer, hand-off 1 later, output register
    2 later), and in steady state a set costs ``max(B, m)`` cycles: results leave back to back
    while ``B_{s+1} <= m_s``, beats are taken every cycle while ``B_{s+1} >= m_s`` (and the
    pipeline absorbs up to three beats of difference). :meth:`schedule` evaluates this.
    ``selected.valid`` never depends on ``selected.ready``; backpressure stretches the emission
    cycle for cycle and the payload is held while ``valid & ~ready``.
    """

    def __init__(self, k: int, value_shape, lanes: int, max_items: int, margin: int | None = None):
        _check_int("k", k, 1, 1024)
        _check_int("lanes", lanes, 1, 64)
        _check_int("max_items", max_items, 1)
        if margin is not None:
            _check_int("margin", margin, 0)
        try:
            shape = Shape.cast(value_shape)
        except (TypeError, ValueError):
            raise ValueError(f"value_shape must be an Amaranth shape, not {value_shape!r}") \
                from None
        if shape.width < 1:
            raise ValueError(f"value_shape must be at least 1 bit wide, not {shape!r}")
        self.k = k
        self.value_shape = shape
        self.lanes = lanes
        self.max_items = max_items
        self.margin = margin
        self.slots = min(k, max_items)
        self.index_shape = index_shape(max_items)
        super().__init__({
            "items": In(stream.Signature(items_layout(shape, lanes))),
            "selected": Out(stream.Signature(selected_layout(max_items))),
        })

    def _kept(self, sizes, kept):
        top = [min(self.k, n) for n in sizes]
        if kept is None:
            return top
        kept = list(kept)
        if len(kept) != len(top):
            raise ValueError(f"kept must have one count per set ({len(top)}), not {len(kept)}")
        for s, (m, hi) in enumerate(zip(kept, top)):
            _check_int(f"kept[{s}]", m, 1, hi)
        return kept

    def schedule(self, sizes, kept=None) -> list[tuple[int, int, int, int]]:
        """Per set of ``sizes`` (item counts, back to back, no stalls): ``(first beat, last beat,
        first result, last result)`` cycles, counted from the first beat's transfer (cycle 0).

        ``kept``: the number of results of each set, ``m_s`` (default ``min(k, n_s)``, which is
        exact without a margin; with a margin pass the counts, each ``1..min(k, n_s)``)."""
        kept = self._kept(sizes, kept)
        out = []
        take, merge = [], []               # A_b, M_b of every beat so far
        prev_end = None                    # H_{s-1} + m_{s-1}
        prev_handoff = None                # H_{s-1}
        for n, m in zip(sizes, kept):
            beats = -(-n // self.lanes)
            first_beat = len(take)
            for b in range(first_beat, first_beat + beats):
                a = 0 if b == 0 else take[-1] + 1
                if b >= INPUT_STAGES:
                    a = max(a, merge[b - INPUT_STAGES])
                mb = a + INPUT_STAGES if b == 0 else max(a + INPUT_STAGES, merge[-1] + 1)
                if b == first_beat and prev_handoff is not None:
                    mb = max(mb, prev_handoff)
                take.append(a)
                merge.append(mb)
            handoff = merge[-1] + 1 if prev_end is None else max(merge[-1] + 1, prev_end)
            out.append((take[first_beat], take[-1], handoff + 2, handoff + m + 1))
            prev_handoff, prev_end = handoff, handoff + m
        return out

    def cycles(self, sizes, kept=None) -> int:
        """Cycles from the first beat's transfer to the last result's transfer, without stalls,
        for back-to-back sets of ``sizes`` items (the first beat's cycle not counted, the last
        result's is); ``kept`` as for :meth:`schedule`."""
        return self.schedule(sizes, kept)[-1][3]

    def elaborate(self, platform):
        m = Module()
        K, W, IDX = self.slots, self.value_shape.width, self.index_shape
        L = min(self.lanes, self.max_items)      # lanes that can hold a real item
        KEY = unsigned(W)                        # a value as an unsigned key (sign bit inverted)
        RANK = range(max(L, 2))
        beat, out = self.items.payload, self.selected

        def key(value):
            flip = 1 << (W - 1) if self.value_shape.signed else 0
            return value.as_unsigned() ^ Const(flip, W)

        # --- control: the pipeline's valid bits, the slots' state, the emitter's count -------
        v1, v2, v3 = Signal(name="in_valid"), Signal(name="ranked_valid"), \
            Signal(name="sorted_valid")
        finished = Signal(name="finished")       # the slots hold a whole set, not handed off
        remaining = Signal(range(K + 1), name="emit_remaining")   # results not yet output
        # remaining == 0 and remaining == 1 as registers of their own, so the input pipeline's
        # enables come from registers through one level of logic (comparators on ``remaining``
        # in front of them, fanned out to every lane's multiplexers, were the critical path).
        idle = Signal(init=1, name="emit_idle")
        one_left = Signal(name="emit_one_left")
        out_valid = Signal(name="out_valid")
        advance, emitter_free, merge_ready = Signal(name="advance"), \
            Signal(name="emitter_free"), Signal(name="merge_ready")
        ready3, ready2, ready1 = Signal(name="sorted_ready"), Signal(name="ranked_ready"), \
            Signal(name="in_ready")
        handoff, take3 = Signal(name="handoff"), Signal(name="merge")
        m.d.comb += [
            advance.eq(~out_valid | out.ready),
            emitter_free.eq(idle | (advance & one_left)),
            merge_ready.eq(~finished | emitter_free),
            handoff.eq(finished & emitter_free),
            ready3.eq(~v3 | merge_ready),
            ready2.eq(~v2 | ready3),
            ready1.eq(~v1 | ready2),
            self.items.ready.eq(ready1),
            take3.eq(v3 & merge_ready),
        ]

        # --- input register ------------------------------------------------------------------
        base = Signal(IDX, name="base")          # index of lane 0 of the next beat
        in_key = [Signal(KEY, name=f"in{c}_key", reset_less=True) for c in range(L)]
        in_count = Signal(count_shape(self.lanes), name="in_count", reset_less=True)
        in_last = Signal(name="in_last", reset_less=True)
        in_base = Signal(IDX, name="in_base", reset_less=True)
        with m.If(ready1):
            m.d.sync += v1.eq(self.items.valid)
            m.d.sync += [in_key[c].eq(key(beat.values[c])) for c in range(L)]
            m.d.sync += [in_count.eq(beat.count), in_last.eq(beat.last), in_base.eq(base)]
            with m.If(self.items.valid):
                m.d.sync += base.eq(Mux(beat.last, 0, base + self.lanes))

        # --- ranking: each lane's position within the beat ---------------------------------
        real = [Signal(name=f"in{c}_real") for c in range(L)]
        m.d.comb += [real[c].eq(in_count > c) for c in range(L)]
        ahead = [[None] * L for _ in range(L)]   # ahead[a][b]: lane a is ahead of lane b
        for b in range(L):
            for a in range(b):
                a_first = Signal(name=f"in{a}_ahead_of_in{b}")
                m.d.comb += a_first.eq(Cat(in_key[a], real[a]) >= Cat(in_key[b], real[b]))
                ahead[a][b], ahead[b][a] = a_first, ~a_first
        rk_key = [Signal(KEY, name=f"rk{c}_key", reset_less=True) for c in range(L)]
        rk_idx = [Signal(IDX, name=f"rk{c}_index", reset_less=True) for c in range(L)]
        rk_real = [Signal(name=f"rk{c}_real", reset_less=True) for c in range(L)]
        rk_rank = [Signal(RANK, name=f"rk{c}_rank", reset_less=True) for c in range(L)]
        rk_last = Signal(name="rk_last", reset_less=True)
        with m.If(ready2):
            m.d.sync += v2.eq(v1)
            m.d.sync += rk_last.eq(in_last)
            for c in range(L):
                others = Cat(ahead[a][c] for a in range(L) if a != c)
                m.d.sync += [rk_key[c].eq(in_key[c]), rk_idx[c].eq(in_base + c),
                             rk_real[c].eq(real[c]), rk_rank[c].eq(popcount(others))]

        # --- sorting: lane c goes to position rank_c ----------------------------------------
        cd_key = [Signal(KEY, name=f"cand{j}_key", reset_less=True) for j in range(L)]
        cd_idx = [Signal(IDX, name=f"cand{j}_index", reset_less=True) for j in range(L)]
        cd_real = [Signal(name=f"cand{j}_real", reset_less=True) for j in range(L)]
        cd_last = Signal(name="cand_last", reset_less=True)
        with m.If(ready3):
            m.d.sync += v3.eq(v2)
            m.d.sync += cd_last.eq(rk_last)
            for j in range(L):
                at = [Signal(name=f"rk{c}_at{j}") for c in range(L)]
                m.d.comb += [at[c].eq(rk_rank[c] == j) for c in range(L)]
                m.d.sync += [
                    cd_key[j].eq(_any_of(Mux(at[c], rk_key[c], 0) for c in range(L))),
                    cd_idx[j].eq(_any_of(Mux(at[c], rk_idx[c], 0) for c in range(L))),
                    cd_real[j].eq(_any_of(at[c] & rk_real[c] for c in range(L))),
                ]

        # --- merge: two sorted lists into the slots -----------------------------------------
        slot_key = [Signal(KEY, name=f"slot{a}_key", reset_less=True) for a in range(K)]
        slot_idx = [Signal(IDX, name=f"slot{a}_index", reset_less=True) for a in range(K)]
        slot_vld = Signal(K, name="slot_valid")
        # While the slots hold a finished set, a beat can only merge in its hand-off cycle; it
        # starts a new set, so it merges into empty slots: the merge sees ``old_vld``, which is
        # ``slot_vld`` while the set is unfinished and 0 once it is finished (a register of its
        # own, so the comparators start at registers).
        old_vld = Signal(K, name="old_valid")
        # Slot a ahead of candidate j. Valid entries come first in both lists, so for a valid
        # source the bits are a clean thermometer code and it lands on its true position; the
        # codes of invalid sources (stale keys) only decide positions past the valid items,
        # whose new valid bits stay 0 whatever lands there.
        ahead_of = [[Signal(name=f"slot{a}_ahead_of_cand{j}") for j in range(L)] for a in range(K)]
        for a in range(K):
            for j in range(L):
                m.d.comb += ahead_of[a][j].eq(
                    Cat(slot_key[a], old_vld[a]) >= Cat(cd_key[j], cd_real[j]))

        # Position i: with q the number of candidates among positions 0..i, those positions
        # hold candidates 0..q-1 and slots 0..i-q, so position i takes the worse of C[q-1] and
        # S[i-q] (one comparator bit picks it). Candidate j is among positions 0..i iff slot
        # i-j is not ahead of it: on the diagonal a + j = i these bits are a thermometer code of
        # q, which drives a balanced tree of 2:1 multiplexers directly (no encoding).
        new_key = [Signal(KEY, name=f"new{i}_key") for i in range(K)]
        new_idx = [Signal(IDX, name=f"new{i}_index") for i in range(K)]
        new_vld = Signal(K, name="new_valid")
        for i in range(K):
            top = min(i + 1, L)                  # q is 0..top
            leaves = []
            for q in range(top + 1):
                if q == 0:
                    leaves.append((slot_key[i], slot_idx[i]))
                elif q == i + 1:                 # no slot among positions 0..i
                    leaves.append((cd_key[q - 1], cd_idx[q - 1]))
                else:
                    cand_worse = ahead_of[i - q][q - 1]
                    leaves.append((Mux(cand_worse, cd_key[q - 1], slot_key[i - q]),
                                   Mux(cand_worse, cd_idx[q - 1], slot_idx[i - q])))
            at_least = [~ahead_of[i - j][j] for j in range(top)]   # at_least[j]: q > j

            def tree(lo, hi, part):
                if lo == hi:
                    return leaves[lo][part]
                mid = (lo + hi + 1) // 2
                return Mux(at_least[mid - 1], tree(mid, hi, part), tree(lo, mid - 1, part))

            m.d.comb += [new_key[i].eq(tree(0, top, 0)), new_idx[i].eq(tree(0, top, 1))]
            # Both lists' valid entries are prefixes: p + c > i iff p > i, c > i or p > a and
            # c > i - 1 - a for some a (registers only).
            m.d.comb += new_vld[i].eq(_any_of(
                [old_vld[i], cd_real[i] if i < L else Const(0, 1)]
                + [old_vld[a] & cd_real[i - 1 - a] for a in range(i) if i - 1 - a < L]))

        # The threshold: the best value minus the margin (a margin as large as the range of
        # values keeps everything and needs none).
        keep_all = self.margin is None or self.margin >= (1 << W) - 1
        if not keep_all:
            threshold = Signal(signed(W + 1), name="threshold", reset_less=True)
            with m.If(take3):
                m.d.sync += threshold.eq(Mux(ahead_of[0][0], slot_key[0] - self.margin,
                                             cd_key[0] - self.margin))

        with m.If(take3):
            m.d.sync += [slot_vld.eq(new_vld), finished.eq(cd_last),
                         old_vld.eq(Mux(cd_last, 0, new_vld))]
            m.d.sync += [slot_key[i].eq(new_key[i]) for i in range(K)]
            m.d.sync += [slot_idx[i].eq(new_idx[i]) for i in range(K)]
        with m.Elif(handoff):
            m.d.sync += [slot_vld.eq(0), finished.eq(0)]

        # --- hand-off: kept mask, its count, index precedence -------------------------------
        keep = Signal(K, name="keep")
        if keep_all:
            m.d.comb += keep.eq(slot_vld)
        else:
            m.d.comb += keep.eq(Cat(slot_vld[a] & (slot_key[a] >= threshold) for a in range(K)))
        emit_idx = [Signal(IDX, name=f"emit{a}_index", reset_less=True) for a in range(K)]
        emit_mask = Signal(K, name="emit_mask")
        before = {(a, b): Signal(name=f"emit{a}_before_{b}", reset_less=True)
                  for b in range(K) for a in range(b)}
        with m.If(handoff):
            # keep is a prefix of ones with at least one: one result iff keep[1] is 0.
            m.d.sync += [emit_mask.eq(keep), idle.eq(0),
                         one_left.eq(~keep[1] if K > 1 else 1),
                         remaining.eq(_thermometer_count(keep, len(remaining)))]
            m.d.sync += [emit_idx[a].eq(slot_idx[a]) for a in range(K)]
            m.d.sync += [before[a, b].eq(slot_idx[a] < slot_idx[b]) for a, b in before]

        # --- emission: the kept index no other kept index precedes --------------------------
        first = Signal(K, name="emit_first")
        for j in range(K):
            blocked = [emit_mask[a] & (before[a, j] if a < j else ~before[j, a])
                       for a in range(K) if a != j]
            m.d.comb += first[j].eq(emit_mask[j] & ~Cat(*blocked).any() if blocked
                                    else emit_mask[j])
        out_index = Signal(IDX, name="out_index")
        out_last = Signal(name="out_last")
        pick = Signal(name="pick")
        m.d.comb += pick.eq(advance & ~idle)
        with m.If(advance):
            m.d.sync += out_valid.eq(~idle)
        with m.If(pick):
            m.d.sync += [out_index.eq(_any_of(Mux(first[j], emit_idx[j], 0) for j in range(K))),
                         out_last.eq(one_left)]
        with m.If(~handoff & pick):
            m.d.sync += [emit_mask.eq(emit_mask & ~first), remaining.eq(remaining - 1),
                         idle.eq(one_left), one_left.eq(remaining == 2)]
        m.d.comb += [out.valid.eq(out_valid), out.payload.index.eq(out_index),
                     out.payload.last.eq(out_last)]
        return m
