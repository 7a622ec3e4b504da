"""Streaming top-k selection: the key selection of the sparse attention engine
(docs/architecture.md §4.3).

A *set* of ``n`` values streams in, ``lanes`` per beat, with implicit indices ``0..n-1``; after
its last beat :class:`TopK` streams out the indices of the ``min(k, n)`` largest values in
increasing index order, one per beat. Equal values are ranked by index, the lower index first (a
stable sort by decreasing value), so the result is exactly
:func:`hwgen.engines.sparse_attention.golden.select` with ``mask="topk"`` on one row of
estimated scores.

Microarchitecture, two stages with their own registers:

Insertion
    ``K = min(k, max_items)`` *slots*, each a (value, index, valid) register, kept sorted best
    first (larger value first, equal values lower index first); the valid slots are always a
    prefix. Each beat merges its up to ``lanes`` candidates into the slots in one cycle, by rank:
    a candidate's new position is the number of slots ahead of it (``value_slot >= value_cand``:
    every index in a beat is larger than every stored index, so a tie with a slot loses) plus the
    number of candidates of the same beat ahead of it (``value > value_cand``, or equal in a
    lower lane). Position ``i`` of the new slots takes the candidate whose rank is ``i``, if any,
    and otherwise the old slot ``i - d_i``, where ``d_i`` counts the candidates ranked before
    ``i``. Candidates ranked ``K`` or later, and the old slots pushed past ``K - 1``, drop out:
    they cannot be among the best ``k`` of the set, since ``K`` better items are already known.

Emission
    At a set's hand-off its kept indices move into ``K`` index registers with a ``K``-bit mask of
    the kept ones. Every cycle a balanced tree of ``K - 1`` index comparators finds the smallest
    masked index (indices in a set are distinct, so there are no ties); it is the output payload,
    and a transfer clears its mask bit. The payload comes from registers only.

The slot *values* are single-buffered and the *indices* double-buffered, so the next set
streams into the emptied slots while the previous set's indices are emitted.

Resources, with ``W`` the value width and ``L = min(lanes, max_items)`` candidate lanes (lanes at
or past ``max_items`` can never hold a real item and are ignored):

* ``K * L`` value comparators (each candidate against each slot) and ``L * (L - 1) / 2``
  (candidate pairs), all ``W`` bits; ``K - 1`` index comparators in the emission tree;
* ``L`` popcounts over ``K`` bits plus ``L`` popcounts over ``L - 1`` bits for the ranks, and
  per slot one popcount over ``L`` bits and ``2L`` rank-against-constant comparisons;
* per slot a ``2L + 1``-input multiplexer of (value, index) for the merge;
* registers: ``K * (W + 2 * index_bits + 2)`` for slots and emission buffer, plus a beat index.

For k = 16, lanes = 4, 11-bit values and max_items = 256: 64 value comparators plus 6 within
the beat, 15 8-bit index comparators and 472 flip-flops. The merge is combinational from
``items.payload`` and the slot registers to the slot registers; its longest path is one value
comparator, a ``K``-bit popcount, a rank comparison, an ``L``-bit popcount and the multiplexer.
The emission tree is ``ceil(log2(K))`` comparator-multiplexer levels deep.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.hdl import Shape
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .popcount import popcount

__all__ = ["index_shape", "count_shape", "items_layout", "selected_layout", "TopK"]


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

    Attributes
    ----------
    items : stream of :func:`items_layout`, in
        The sets, back to back. A set is the beats up to and including one with ``last`` set;
        lane ``l`` of its ``b``-th beat (from 0) is the item of index ``b * lanes + l`` and is
        real iff ``l < count``. Every beat but the last has ``count = lanes`` and a set has
        1..``max_items`` items (more gives wrapped indices and an unspecified selection).
    selected : stream of :func:`selected_layout`, out
        Per set exactly ``min(k, n)`` beats: the selected indices in increasing order, ``last``
        set on the final one.

    Timing (see the module docstring for the structure). A beat is taken in one cycle whatever
    its count. ``items.ready`` is high except while the slots hold a *finished* set (its last
    beat was taken while the emitter still had results of the previous set) that cannot be
    handed off yet: ``items.ready = ~finished | emitter_free``, with ``emitter_free`` high when
    the emitter is empty or its final result transfers in this cycle (a combinational path from
    ``selected.ready``). The hand-off of a set happens at the edge ending the cycle in which both
    its last beat has been taken (that cycle included) and the emitter is free. When it is the
    cycle of the last beat, the merged result goes straight to the emitter and the slots empty;
    otherwise the finished set waits in the slots and the next set's first beat is merged into
    empty slots in the hand-off cycle itself.

    With items offered every cycle and ``selected.ready`` always high, number cycles from the
    first beat's transfer (cycle 0). Set ``s`` of ``n_s`` items has ``B_s = ceil(n_s / lanes)``
    beats and ``m_s = min(k, n_s)`` results; its beats are taken in cycles ``F_s .. L_s`` with
    ``L_s = F_s + B_s - 1``, its hand-off is in cycle ``H_s = max(L_s, E_{s-1})`` and its results
    leave in cycles ``H_s + 1 .. E_s`` with ``E_s = H_s + m_s``; the next set starts in cycle
    ``F_{s+1} = max(L_s + 1, E_{s-1})`` (``F_0 = 0``, ``E_{-1} = -inf``). So the first result
    comes one cycle after the last beat when the emitter is idle, and in steady state a set costs
    ``max(B, m)`` cycles: inputs never stall while ``B_{s+1} >= m_s`` and results leave back to
    back while ``B_{s+1} <= m_s``. :meth:`schedule` evaluates this. ``selected.valid`` never
    depends on ``selected.ready``; backpressure stretches the emission cycle for cycle and the
    payload is held while ``valid & ~ready``.
    """

    def __init__(self, k: int, value_shape, lanes: int, max_items: int):
        _check_int("k", k, 1, 1024)
        _check_int("lanes", lanes, 1, 64)
        _check_int("max_items", max_items, 1)
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
        self.slots = min(k, max_items)
        self.index_shape = index_shape(max_items)
        super().__init__({
            "items": In(stream.Signature(items_layout(shape, lanes))),
            "selected": Out(stream.Signature(selected_layout(max_items))),
        })

    def schedule(self, sizes) -> list[tuple[int, int, int, int]]:
        """Per set of ``sizes`` (item counts, back to back, no stalls): ``(first beat, last beat,
        first result, last result)`` cycles, counted from the first beat's transfer (cycle 0)."""
        out = []
        prev_end = None                    # E_{s-1}
        first = 0                          # F_s
        for n in sizes:
            beats = -(-n // self.lanes)
            last = first + beats - 1
            handoff = last if prev_end is None else max(last, prev_end)
            end = handoff + min(self.k, n)
            out.append((first, last, handoff + 1, end))
            first = last + 1 if prev_end is None else max(last + 1, prev_end)
            prev_end = end
        return out

    def cycles(self, sizes) -> int:
        """Cycles from the first beat's transfer to the last result's transfer, without stalls,
        for back-to-back sets of ``sizes`` items (the first beat's cycle not counted, the last
        result's is)."""
        return self.schedule(sizes)[-1][3]

    def elaborate(self, platform):
        m = Module()
        K, W, IDX = self.slots, self.value_shape, self.index_shape
        L = min(self.lanes, self.max_items)      # lanes that can hold a real item
        beat, out = self.items.payload, self.selected

        # --- state --------------------------------------------------------------------------
        slot_val = [Signal(W, name=f"slot{j}_value", reset_less=True) for j in range(K)]
        slot_idx = [Signal(IDX, name=f"slot{j}_index", reset_less=True) for j in range(K)]
        slot_vld = Signal(K, name="slot_valid")
        finished = Signal(name="finished")         # the slots hold a whole set, not handed off
        base = Signal(IDX, name="base")            # index of lane 0 of the next beat
        emit_idx = [Signal(IDX, name=f"emit{j}_index", reset_less=True) for j in range(K)]
        emit_mask = Signal(K, name="emit_mask")    # kept indices not yet sent

        # --- emission: the smallest masked index, by a tree of K - 1 comparators -------------
        nodes = [(emit_mask[j], emit_idx[j], Const(j, range(max(K, 2)))) for j in range(K)]
        level = 0
        while len(nodes) > 1:
            nxt = []
            for p in range(0, len(nodes) - 1, 2):
                (va, ia, sa), (vb, ib, sb) = nodes[p], nodes[p + 1]
                pick_b = Signal(name=f"min_l{level}_{p // 2}_pick_b")
                idx = Signal(IDX, name=f"min_l{level}_{p // 2}_index")
                slot = Signal(range(max(K, 2)), name=f"min_l{level}_{p // 2}_slot")
                m.d.comb += [
                    pick_b.eq(vb & (~va | (ib < ia))),
                    idx.eq(Mux(pick_b, ib, ia)),
                    slot.eq(Mux(pick_b, sb, sa)),
                ]
                nxt.append((va | vb, idx, slot))
            if len(nodes) % 2:
                nxt.append(nodes[-1])
            nodes = nxt
            level += 1
        _, min_idx, min_slot = nodes[0]
        rest = Signal(K, name="emit_rest")         # the mask once the current result is sent
        m.d.comb += rest.eq(emit_mask & ~(Const(1, K) << min_slot)[:K])
        m.d.comb += [
            out.valid.eq(emit_mask.any()),
            out.payload.index.eq(min_idx),
            out.payload.last.eq(~rest.any()),
        ]
        sent = Signal(name="sent")
        emitter_free = Signal(name="emitter_free")
        m.d.comb += [
            sent.eq(out.valid & out.ready),
            emitter_free.eq(~emit_mask.any() | (sent & out.payload.last)),
            self.items.ready.eq(~finished | emitter_free),
        ]
        take = Signal(name="take")
        m.d.comb += take.eq(self.items.valid & self.items.ready)

        # --- insertion: merge the beat's candidates into the slots by rank -------------------
        # While the slots hold a finished set, a beat can only be taken in its hand-off cycle;
        # it starts a new set, so it merges into empty slots.
        old_vld = Signal(K, name="old_valid")
        m.d.comb += old_vld.eq(Mux(finished, 0, slot_vld))

        cand_val = [beat.values[c] for c in range(L)]
        cand_vld = [Signal(name=f"lane{c}_real") for c in range(L)]
        cand_idx = [Signal(IDX, name=f"lane{c}_index") for c in range(L)]
        for c in range(L):
            m.d.comb += [cand_vld[c].eq(beat.count > c), cand_idx[c].eq(base + c)]

        # Candidate c against slot j: the slot is ahead iff it is valid and not smaller.
        slot_ahead = [Signal(K, name=f"lane{c}_slots_ahead") for c in range(L)]
        for c in range(L):
            m.d.comb += slot_ahead[c].eq(
                Cat(old_vld[j] & (slot_val[j] >= cand_val[c]) for j in range(K)))
        # Candidate pairs a < b: a is ahead of b iff value_a >= value_b, else b is ahead of a
        # (a candidate past the beat's count is never ahead of anything).
        lane_ahead = [[None] * L for _ in range(L)]   # lane_ahead[a][b]: a is ahead of b
        for b in range(L):
            for a in range(b):
                a_first = Signal(name=f"lane{a}_ahead_of_lane{b}")
                m.d.comb += a_first.eq(cand_val[a] >= cand_val[b])
                lane_ahead[a][b] = a_first
                lane_ahead[b][a] = cand_vld[b] & ~a_first
        rank = [Signal(range(K + L), name=f"lane{c}_rank") for c in range(L)]
        for c in range(L):
            others = [lane_ahead[a][c] for a in range(L) if a != c]
            m.d.comb += rank[c].eq(popcount(slot_ahead[c]) + popcount(Cat(*others)))

        new_val = [Signal(W, name=f"new{i}_value") for i in range(K)]
        new_idx = [Signal(IDX, name=f"new{i}_index") for i in range(K)]
        new_vld = Signal(K, name="new_valid")
        for i in range(K):
            before = Signal(range(L + 1), name=f"new{i}_lanes_before")
            if i:                                    # nothing is ranked before position 0
                m.d.comb += before.eq(popcount(Cat(cand_vld[c] & (rank[c] < i)
                                                   for c in range(L))))
            with m.Switch(before):                   # default: the old slot i - before
                for d in range(min(i, L) + 1):
                    with m.Case(d):
                        m.d.comb += [new_val[i].eq(slot_val[i - d]), new_idx[i].eq(slot_idx[i - d]),
                                     new_vld[i].eq(old_vld[i - d])]
            for c in range(L):                       # at most one candidate lands on i
                with m.If(cand_vld[c] & (rank[c] == i)):
                    m.d.comb += [new_val[i].eq(cand_val[c]), new_idx[i].eq(cand_idx[c]),
                                 new_vld[i].eq(1)]

        # --- hand-off and updates ------------------------------------------------------------
        direct = Signal(name="direct_handoff")       # last beat taken with the emitter free
        m.d.comb += direct.eq(take & beat.last & ~finished & emitter_free)

        with m.If(finished & emitter_free):
            m.d.sync += emit_mask.eq(slot_vld)
            m.d.sync += [emit_idx[j].eq(slot_idx[j]) for j in range(K)]
        with m.Elif(direct):
            m.d.sync += emit_mask.eq(new_vld)
            m.d.sync += [emit_idx[j].eq(new_idx[j]) for j in range(K)]
        with m.Elif(sent):
            m.d.sync += emit_mask.eq(rest)

        with m.If(take):
            m.d.sync += base.eq(Mux(beat.last, 0, base + self.lanes))
            with m.If(direct):
                m.d.sync += [slot_vld.eq(0), finished.eq(0)]
            with m.Else():
                m.d.sync += [slot_vld.eq(new_vld), finished.eq(beat.last)]
                m.d.sync += [slot_val[j].eq(new_val[j]) for j in range(K)]
                m.d.sync += [slot_idx[j].eq(new_idx[j]) for j in range(K)]
        with m.Elif(finished & emitter_free):
            m.d.sync += [slot_vld.eq(0), finished.eq(0)]
        return m
