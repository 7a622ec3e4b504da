"""Streaming top-k selection: the key selection of the sparse attention engine
(docs/architecture.md §4.3).

A *set* of ``n`` values streams in, ``lanes`` per beat, with implicit indices ``0..n-1``; after
its last beat :class:`TopK` streams out the indices of the ``min(k, n)`` largest values in
increasing index order, one per beat. Equal values are ranked by index, the lower index first (a
stable sort by decreasing value), so the result is exactly
:func:`hwgen.engines.sparse_attention.golden.select` with ``mask="topk"`` on one row of
estimated scores. With a ``margin``, a set's result keeps only those selected items whose value
is at least the set's largest value minus ``margin``.

Microarchitecture: a pipeline in which every stage after the input starts and ends at registers
and no path crosses more than one comparator (the longest are a comparator and a few multiplexer
levels); the input register takes the comparisons of the incoming beat's lanes, so that beat's
values should come from registers.
``L = min(lanes, max_items)`` lanes can hold a real item (the others are ignored) and
``K = min(k, max_items)``. Values are compared as unsigned *keys*: the value with its sign bit
inverted (signed shapes) below a valid bit, so a real item is ahead of every lane past the
beat's count.

Input pipeline (four registers: input, ranked, sorted, ring input)
    The beat is registered as it is taken, with the results of ``L * (L - 1) / 2`` key
    comparators on its incoming values (lane ``a`` is ahead of lane ``b > a`` iff ``key_a >=
    key_b``: equal values keep lane order; the values should come from registers). Next, every
    lane gets its rank within the beat from a popcount of those bits, registered decoded (one bit
    per position), and its item index ``base + lane``. Then the lanes are permuted into rank
    order (lane ``c`` goes to position ``rank_c``: per position an AND-OR over the lanes, from
    registers only, in groups of :data:`SORT_GROUP` lanes whose parts the sorted register holds
    apart), so the sorted register holds the beat best first, the lanes past the count last.
    The ring-input register joins each position's parts (an OR, at most one part holds a lane),
    so that the sorting multiplexers, which gather from every lane, end beside their lanes and
    the ring's comparators start at a register of their own. The pipeline's valid bits and enables are kept once per lane (identical copies),
    each enabling its lane's registers and its position's sorted and ring-input registers, so no
    single enable net spans all lanes.

Ring (the slots, two banks, two stages)
    A *bank* is ``K`` slots, each a (value, index) register, and a ``K``-bit valid mask, kept
    sorted best first (larger value first, equal values lower index first); the valid slots are a
    prefix. Merging a beat into a bank takes two cycles, so two banks take turns (the loop is
    C-slowed): stage 1 compares the bank with the sorted beat, ``K * L`` comparators giving
    ``slot a is ahead of candidate j`` (``key_slot >= key_cand``: every index of the beat is
    larger than every index in the bank, so a tie goes to the slot), and registers the bits;
    stage 2 merges the two sorted lists by them and writes the bank back to stage 1. With ``q``
    the number of candidates among the new positions ``0..i``, position ``i`` takes the worse of
    candidate ``q - 1`` and slot ``i - q`` (one of the bits picks it); the bits on the diagonal
    ``a + j = i`` are a thermometer code of ``q`` and drive a balanced tree of 2:1 multiplexers
    directly (``ceil(log2(L + 1))`` levels after that pick). Candidates landing at ``K`` or
    later and slots pushed past ``K - 1`` drop out: they cannot be among the best ``k`` of the
    set. A beat goes to whichever bank is in stage 1 when it is taken, so a set is spread over
    both banks.

Capture and pairing
    When stage 1 takes a set's last beat, the bank leaving stage 2 in that cycle holds the
    set's *first part* and the bank leaving it in the next cycle (the one that took the last
    beat) its *final part*; both go back to stage 1 empty. The first part waits in a register
    for its final part; then both move to the capture register, and from there to the pair
    register: ``T[i] = better(A[i], B[K - 1 - i])`` of the final part ``A`` and the first part
    ``B`` (a half cleaner, ``K`` comparators of value and index, since the parts come from
    interleaved beats) holds the set's best ``K``, first a prefix of ``A`` and then a suffix of
    ``B``. The pair register keeps their indices and the kept mask: the valid ones, or with a
    margin those whose value is at least each part's best value minus ``margin`` (computed per
    bank in stage 2 as it is captured; ``4K`` comparators).

Hand-off (pair register to emitter, at most once per cycle)
    The emitter takes the indices, the kept mask, its count (as a thermometer code, from the
    prefix and the suffix by two levels of gates, no adder; a pick shifts it) and
    ``K * (K - 1) / 2`` bits ``index_a < index_b`` from as many index comparators.

Emission
    Each cycle the emitter picks the kept index that no other kept index precedes (an AND over
    ``K - 1`` precedence bits per slot) and clears it; the pick goes to a register as a one-hot
    mask with a copy of the indices (so the emitter can take the next set meanwhile), whose
    index is selected on the way to the output buffer: two registers (a skid buffer), so
    ``selected.ready`` goes no further. ``last`` is ``remaining == 1`` at the pick. The output
    stream comes from registers only.

Buffering: a set can be in the ring, the capture register, the pair register and the emitter
at once, so the next sets stream in while one is emitted.

Resources, with ``W`` the value width and ``I`` the index width: ``K * L`` key comparators in the
ring, ``L * (L - 1) / 2`` at the input, ``K`` ``(W + I + 1)``-bit comparators in the pairing
(``4K`` threshold comparators more with a margin), ``K * (K - 1) / 2`` ``I``-bit index
comparators at the hand-off; ``L`` popcounts over ``L - 1`` bits; per slot a tree of ``L + 1``
2:1 multiplexers of (value, index); registers: about ``(3 + G) L (W + I + 2) + L * L`` in the
input pipeline (``G = ceil(L / SORT_GROUP)`` parts of the sorted register) and ``5 L`` for its control, ``K L + 6 K (W + I + 1)`` in the ring, capture and pair
registers, ``K (2 I + 2) + K (K - 1) / 2`` in the emitter and the picked register.

Measured on ECP5-85K before the input pipeline took its comparisons, its one-hot positions and
its ring-input register (``benchmarks/topk_fmax.py``: registered inputs and outputs,
nextpnr-ecp5 ``--freq 100`` with router1, median of seeds 1, 2, 3; not measured since): k = 8,
lanes = 4, signed 11-bit, 64 items:
160 MHz, 2382 LUT4, 1325 FF; k = 16, lanes = 8, signed 13-bit, 256 items: 120 MHz, 9911 LUT4,
3268 FF; k = 8, lanes = 8, signed 11-bit, 64 items: 142 MHz, 3889 LUT4, 1654 FF (without a
margin).
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

#: Registers between ``items`` and the ring: input, ranked, sorted, ring input.
INPUT_STAGES = 4

#: Lanes whose sorting multiplexers end in one part of the sorted register (see the module
#: docstring): an AND-OR of up to this many lanes per position and bit, and the ring-input
#: register ORs a position's parts.
SORT_GROUP = 4


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
    its count and enters a pipeline of :data:`INPUT_STAGES` = 4 registers (input, ranked,
    sorted, ring input); a beat moves on from one whenever the next is empty or is emptied in
    the same cycle. The ring's first stage takes the beat in the ring-input register in every
    cycle in which
    the ring advances (``ring_go``); it advances unless its second stage holds a set's last beat
    while the capture register is full and not emptied in that cycle (then both stages hold).
    When it advances with a last beat in its second stage, that set moves into the capture
    register. The capture register moves its set on to the pair register in any cycle in which
    that is empty or hands off, and the pair register hands its set off to the emitter in any
    cycle in which ``emitter_free`` is high: the emitter holds no result that has not yet moved
    to the picked register, or moves its final one in this cycle. A result is picked in any
    cycle in which the picked register is empty or moves on, the first one in the cycle after
    the hand-off; the picked register moves on to the output buffer in any cycle in which the
    buffer's second register is empty, and the result is offered from the next cycle (if the
    first register is still waiting for ``selected.ready``, it waits in the second). All of
    these conditions come from registers: ``items.ready = ~(all four input registers full) |
    ring_go`` does not depend on ``selected.ready``.

    With items offered every cycle and ``selected.ready`` always high, number cycles from the
    first beat's transfer (cycle 0). Set ``s`` of ``n_s`` items has ``B_s = ceil(n_s / lanes)``
    beats and ``m_s`` results. Number all beats ``b = 0, 1, ...`` across sets; beat ``b`` is
    taken in cycle ``A_b`` and by the ring's first stage in cycle ``M_b``, with ``A_0 = 0``,
    ``A_b = max(A_{b-1} + 1, M_{b-4})`` (the input pipeline holds four beats) and
    ``M_b = max(A_b + 4, M_{b-1} + 1)``, and for the first beat of set ``s`` also at least
    ``C_{s-1}``. With ``t_s`` the ``M`` of set ``s``'s last beat, the set is captured in cycle
    ``C_s = max(t_s + 1, X_{s-1})``, paired in ``X_s = max(C_s + 1, H_{s-1})`` and handed off
    in ``H_s = max(X_s + 1, H_{s-1} + m_{s-1})`` (the terms of set ``-1`` are ``-inf``), and
    its results leave in cycles ``H_s + 3 .. H_s + m_s + 2``. So with nothing waiting a set's
    first result comes 10 cycles after its last beat (ring 4 cycles after the transfer, capture,
    pairing and hand-off 1 each, pick, output register and transfer 3), and in steady state a
    set costs ``max(B, m)`` cycles: one beat and one result per cycle, the stages between the
    ring and the emitter absorbing differences between sets. :meth:`schedule` evaluates this.
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
        prev = None                        # (C, X, H, H + m) of the previous set
        for n, m in zip(sizes, kept):
            beats = -(-n // self.lanes)
            first_beat = len(take)
            for b in range(first_beat, first_beat + beats):
                a = 0 if b == 0 else take[-1] + 1
                if b >= INPUT_STAGES:
                    a = max(a, merge[b - INPUT_STAGES])
                mb = a + INPUT_STAGES if b == 0 else max(a + INPUT_STAGES, merge[-1] + 1)
                if b == first_beat and prev is not None:
                    mb = max(mb, prev[0])
                take.append(a)
                merge.append(mb)
            capture = merge[-1] + 1 if prev is None else max(merge[-1] + 1, prev[1])
            pair = capture + 1 if prev is None else max(capture + 1, prev[2])
            handoff = pair + 1 if prev is None else max(pair + 1, prev[3])
            out.append((take[first_beat], take[-1], handoff + 3, handoff + m + 2))
            prev = (capture, pair, handoff, handoff + m)
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
        THR = signed(W + 1)                      # a key minus the margin
        beat, out = self.items.payload, self.selected
        keep_all = self.margin is None or self.margin >= (1 << W) - 1

        def key(value):
            flip = 1 << (W - 1) if self.value_shape.signed else 0
            return value.as_unsigned() ^ Const(flip, W)

        def bank(prefix, n=K):
            """Registers of a sorted list: keys, indices, valid mask."""
            return ([Signal(KEY, name=f"{prefix}{a}_key", reset_less=True) for a in range(n)],
                    [Signal(IDX, name=f"{prefix}{a}_index", reset_less=True) for a in range(n)],
                    Signal(n, name=f"{prefix}_valid"))

        # --- control ------------------------------------------------------------------------
        # Every enable below is a function of registers only (selected.ready goes into the
        # output buffer, not further); ring_go, which enables most registers, is a register
        # itself, loaded with its next value (computed from the next values of the registers it
        # depends on, at the end).
        r2_last = Signal(name="ring2_last")          # the ring's second stage holds a last beat
        cap_valid, t_valid = Signal(name="capture_valid"), Signal(name="pair_valid")
        # The number of results not yet picked, as a thermometer code: remaining[j] iff more
        # than j are left.
        remaining = Signal(K, name="emit_remaining")
        none_left, one_left = Signal(name="emit_none_left"), Signal(name="emit_one_left")
        skid_valid = Signal(name="skid_valid")
        e2_valid = Signal(name="picked_valid")
        advance, emitter_free, handoff = Signal(name="advance"), Signal(name="emitter_free"), \
            Signal(name="handoff")
        t_accept = Signal(name="pair_accept")
        ring_go = Signal(name="ring_go", init=1)
        go = Signal(name="ring_go_next")
        # The input pipeline's control: the valid bits v1 .. v4 of its four registers and
        # their enables. ``ready4 = ~v4 | ring_go`` is a register too, loaded with its next value
        # (decoded from ring_go, the enable of the registers before the ring was merged into
        # their data multiplexers and ran, with ring_go's fanout, at 10.8 ns on the attention
        # engine's threshold mask); ``ready3 = ~v3 | ready4``, ``ready2 = ~v2 | ready3`` and
        # ``ready1 = ~v1 | ready2`` are decoded from it (as registers, their next values made
        # ready1 an 11.5 ns path through ring_go's). The control is kept once per lane, each copy
        # enabling that lane's registers (and the sorted and ring-input registers' position of
        # that number): one enable for all of them, about 150 registers per stage at 8 lanes
        # spread over the lanes' logic, had 10 ns of routing (the rows-1 head's seed 1). The
        # copies follow the same recurrence from the same inputs, so they are always equal, but
        # each reads its own registers, so Yosys does not merge them; copy 0 is the one the rest
        # of the unit reads.
        control = []
        for c in range(L):
            tag = "" if c == 0 else f"_copy{c}"
            cv1, cv2, cv3, cv4 = (Signal(name=f"{n}_valid{tag}")
                                  for n in ("in", "ranked", "sorted", "ring_in"))
            cr4 = Signal(name=f"ring_in_ready{tag}", init=1)
            cr3, cr2, cr1 = (Signal(name=f"{n}_ready{tag}") for n in ("sorted", "ranked", "in"))
            m.d.comb += [cr3.eq(~cv3 | cr4), cr2.eq(~cv2 | cr3), cr1.eq(~cv1 | cr2)]
            cv4_next = Mux(cr4, cv3, cv4)
            m.d.sync += [cv1.eq(Mux(cr1, self.items.valid, cv1)), cv2.eq(Mux(cr2, cv1, cv2)),
                         cv3.eq(Mux(cr3, cv2, cv3)), cv4.eq(cv4_next), cr4.eq(~cv4_next | go)]
            control.append((cv1, cv2, cv3, cv4, cr1, cr2, cr3, cr4))
        _, v2, _, _, ready1, ready2, ready3, ready4 = control[0]
        m.d.comb += [
            none_left.eq(~remaining[0]),
            one_left.eq(remaining[0] & (~remaining[1] if K > 1 else 1)),
            advance.eq(~e2_valid | ~skid_valid),
            emitter_free.eq(none_left | (advance & one_left)),
            handoff.eq(t_valid & emitter_free),
            t_accept.eq(~t_valid | emitter_free),
            self.items.ready.eq(ready1),
        ]

        # --- input register ------------------------------------------------------------------
        base = Signal(IDX, name="base")          # index of lane 0 of the next beat
        in_key = [Signal(KEY, name=f"in{c}_key", reset_less=True) for c in range(L)]
        in_real = [Signal(name=f"in{c}_real", reset_less=True) for c in range(L)]
        in_last = Signal(name="in_last", reset_less=True)
        in_base = Signal(IDX, name="in_base", reset_less=True)
        # ahead[a][b]: lane a is ahead of lane b, compared as the beat is taken (from the
        # incoming values, which should come from registers) and registered with it: in the
        # ranking stage, the comparators, the popcount and the decode ran at 11.0 ns (8.9 ns of
        # routing) at 8 lanes.
        ahead = [[None] * L for _ in range(L)]
        beat_key = [key(beat.values[c]) for c in range(L)]
        beat_real = [beat.count > c for c in range(L)]
        with m.If(ready1):
            m.d.sync += [in_last.eq(beat.last), in_base.eq(base)]
            with m.If(self.items.valid):
                m.d.sync += base.eq(Mux(beat.last, 0, base + self.lanes))
        for b in range(L):
            with m.If(control[b][4]):
                m.d.sync += [in_key[b].eq(beat_key[b]), in_real[b].eq(beat_real[b])]
                for a in range(b):
                    a_first = Signal(name=f"in{a}_ahead_of_in{b}", reset_less=True)
                    m.d.sync += a_first.eq(Cat(beat_key[a], beat_real[a])
                                           >= Cat(beat_key[b], beat_real[b]))
                    ahead[a][b], ahead[b][a] = a_first, ~a_first

        # --- ranking: each lane's position within the beat ---------------------------------
        rk_key = [Signal(KEY, name=f"rk{c}_key", reset_less=True) for c in range(L)]
        rk_idx = [Signal(IDX, name=f"rk{c}_index", reset_less=True) for c in range(L)]
        rk_real = [Signal(name=f"rk{c}_real", reset_less=True) for c in range(L)]
        # rk_at[c][j]: lane c goes to position j, decoded here so that the sorting stage's
        # multiplexers start at registers (from a registered rank, the decode and the sorted
        # register's enable were merged into one LUT level in front of the multiplexers, whose
        # outputs routed 5-8 ns to them: 10.8 and 13.7 ns paths at 8 lanes, rows 2).
        rk_at = [[Signal(name=f"rk{c}_at{j}", reset_less=True) for j in range(L)]
                 for c in range(L)]
        rk_last = Signal(name="rk_last", reset_less=True)
        with m.If(ready2):
            m.d.sync += rk_last.eq(in_last)
        for c in range(L):
            with m.If(control[c][5]):
                others = Cat(ahead[a][c] for a in range(L) if a != c)
                rank = popcount(others)
                m.d.sync += [rk_key[c].eq(in_key[c]), rk_idx[c].eq(in_base + c),
                             rk_real[c].eq(in_real[c])]
                m.d.sync += [rk_at[c][j].eq(rank == j) for j in range(L)]

        # --- sorting: lane c goes to position rank_c ----------------------------------------
        # Per position an AND-OR over the lanes, in groups of SORT_GROUP lanes: the sorted
        # register holds each group's part and the ring-input register ORs the parts. With one
        # AND-OR over all 8 lanes, a position bit's net to its multiplexers, which gather from
        # every lane, had 7.4-8.7 ns of routing (the rows-2 head's seeds 1 and 3 at 3dd524f,
        # 84.4 and 94.5 MHz); a group's part can sit beside its lanes. An empty sorted register
        # has no real lane and no last flag.
        groups = [range(g, min(g + SORT_GROUP, L)) for g in range(0, L, SORT_GROUP)]
        cd_key = [[Signal(KEY, name=f"cand{j}_part{g}_key", reset_less=True) for j in range(L)]
                  for g in range(len(groups))]
        cd_idx = [[Signal(IDX, name=f"cand{j}_part{g}_index", reset_less=True)
                   for j in range(L)] for g in range(len(groups))]
        cd_real = [[Signal(name=f"cand{j}_part{g}_real") for j in range(L)]
                   for g in range(len(groups))]
        cd_last = Signal(name="cand_last")
        with m.If(ready3):
            m.d.sync += cd_last.eq(v2 & rk_last)
        for j in range(L):
            with m.If(control[j][6]):
                for g, lanes in enumerate(groups):
                    at = {c: rk_at[c][j] for c in lanes}
                    m.d.sync += [
                        cd_key[g][j].eq(_any_of(Mux(at[c], rk_key[c], 0) for c in lanes)),
                        cd_idx[g][j].eq(_any_of(Mux(at[c], rk_idx[c], 0) for c in lanes)),
                        cd_real[g][j].eq(control[j][1]
                                         & _any_of(at[c] & rk_real[c] for c in lanes)),
                    ]

        # --- ring input: the sorted beat, its parts joined, placed beside the ring ----------
        # The ring's comparators start here: from the sorted register, which the sorting
        # multiplexers pull towards the lanes, their results had 6-7 ns of routing to the merge
        # (the rows-2 head's seeds 2 and 3 at f828e2e, 93.4 and 90.1 MHz).
        ri_key = [Signal(KEY, name=f"ring_in{j}_key", reset_less=True) for j in range(L)]
        ri_idx = [Signal(IDX, name=f"ring_in{j}_index", reset_less=True) for j in range(L)]
        ri_real = [Signal(name=f"ring_in{j}_real") for j in range(L)]
        ri_last = Signal(name="ring_in_last")
        with m.If(ready4):
            m.d.sync += ri_last.eq(cd_last)
        for j in range(L):
            with m.If(control[j][7]):
                m.d.sync += [ri_key[j].eq(_any_of(part[j] for part in cd_key)),
                             ri_idx[j].eq(_any_of(part[j] for part in cd_idx)),
                             ri_real[j].eq(_any_of(part[j] for part in cd_real))]

        # --- the ring: two banks of slots, merged in two stages -----------------------------
        # Stage 1 compares the bank in r1 with the sorted beat (slot a ahead of candidate j:
        # key_slot >= key_cand, a tie going to the slot, whose index is lower); stage 2 merges
        # them by those bits and writes the bank back to r1. The two banks alternate, so each
        # takes every other beat and every stage is one cycle.
        r1_key, r1_idx, r1_vld = bank("ring1_slot")
        r2_key, r2_idx, r2_vld = bank("ring2_slot")
        r2_ckey, r2_cidx, r2_creal = bank("ring2_cand", L)
        r2_ahead = [[Signal(name=f"ring2_slot{a}_ahead_of_cand{j}", reset_less=True)
                     for j in range(L)] for a in range(K)]
        with m.If(ring_go):
            m.d.sync += [r2_vld.eq(r1_vld), r2_creal.eq(Cat(ri_real))]
            m.d.sync += [r2_key[a].eq(r1_key[a]) for a in range(K)]
            m.d.sync += [r2_idx[a].eq(r1_idx[a]) for a in range(K)]
            m.d.sync += [r2_ckey[j].eq(ri_key[j]) for j in range(L)]
            m.d.sync += [r2_cidx[j].eq(ri_idx[j]) for j in range(L)]
            m.d.sync += [r2_ahead[a][j].eq(Cat(r1_key[a], r1_vld[a]) >= Cat(ri_key[j], ri_real[j]))
                         for a in range(K) for j in range(L)]

        # Stage 2. Position i: with q the number of candidates among positions 0..i, those
        # positions hold candidates 0..q-1 and slots 0..i-q, so position i takes the worse of
        # C[q-1] and S[i-q] (one comparator bit picks it). Candidate j is among positions 0..i
        # iff slot i-j is not ahead of it: on the diagonal a + j = i these bits are a
        # thermometer code of q, which drives a balanced tree of 2:1 multiplexers directly.
        # Valid entries come first in both lists, so for the valid positions the codes are
        # clean; the codes of invalid entries (stale keys) only decide positions past the
        # valid items, whose valid bits stay 0 whatever lands there.
        new_key = [Signal(KEY, name=f"new{i}_key") for i in range(K)]
        new_idx = [Signal(IDX, name=f"new{i}_index") for i in range(K)]
        new_vld = Signal(K, name="new_valid")
        for i in range(K):
            top = min(i + 1, L)                  # q is 0..top
            leaves = []
            for q in range(top + 1):
                if q == 0:
                    leaves.append((r2_key[i], r2_idx[i]))
                elif q == i + 1:                 # no slot among positions 0..i
                    leaves.append((r2_ckey[q - 1], r2_cidx[q - 1]))
                else:
                    cand_worse = r2_ahead[i - q][q - 1]
                    leaves.append((Mux(cand_worse, r2_ckey[q - 1], r2_key[i - q]),
                                   Mux(cand_worse, r2_cidx[q - 1], r2_idx[i - q])))
            at_least = [~r2_ahead[i - j][j] for j in range(top)]   # at_least[j]: q > j

            def tree(lo, hi, part, leaves=leaves, at_least=at_least):
                if lo == hi:
                    return leaves[lo][part]
                mid = (lo + hi + 1) // 2
                return Mux(at_least[mid - 1], tree(mid, hi, part), tree(lo, mid - 1, part))

            m.d.comb += [new_key[i].eq(tree(0, top, 0)), new_idx[i].eq(tree(0, top, 1))]
            # Both valid masks are prefixes: p + c > i iff p > i, c > i or p > a and
            # c > i - 1 - a for some a (registers only).
            m.d.comb += new_vld[i].eq(_any_of(
                [r2_vld[i], r2_creal[i] if i < L else Const(0, 1)]
                + [r2_vld[a] & r2_creal[i - 1 - a] for a in range(i) if i - 1 - a < L]))
        # The merged bank's best key minus the margin (position 0 is slot 0 or candidate 0).
        if not keep_all:
            new_thr = Signal(THR, name="new_threshold")
            m.d.comb += new_thr.eq(Mux(r2_ahead[0][0], r2_key[0] - self.margin,
                                       r2_ckey[0] - self.margin))

        # Captures. When stage 1 takes a set's last beat, the bank leaving stage 2 in that
        # cycle is complete for that set (its *first part*; empty, or the final part of the
        # previous set, see below) and the next cycle's is its *final part* (the bank that took
        # the last beat). A captured bank goes back to r1 empty. ring_go is low while a final
        # part cannot go to the capture register.
        first_cap = Signal(name="first_capture")
        m.d.comb += first_cap.eq(ri_last)            # taken by stage 1 whenever ring_go
        f_key, f_idx, f_vld = bank("first_slot")
        f_thr = Signal(THR, name="first_threshold", reset_less=True)
        c_key, c_idx, c_vld = bank("final_slot")
        c_thr = Signal(THR, name="final_threshold", reset_less=True)
        p_key, p_idx, p_vld = bank("other_slot")     # the first part, paired with the final
        p_thr = Signal(THR, name="other_threshold", reset_less=True)
        # The capture enables ``ring_go & r2_last`` and ``ring_go & ~r2_last & first_cap`` are
        # registers loaded with their next values: decoded from ring_go, one LUT drove the
        # enables of a whole bank (6.3 ns of routing after it, the example's top-k path).
        cap_final = Signal(name="capture_final")
        cap_first = Signal(name="capture_first")
        with m.If(ring_go):
            m.d.sync += [r1_key[a].eq(new_key[a]) for a in range(K)]
            m.d.sync += [r1_idx[a].eq(new_idx[a]) for a in range(K)]
            m.d.sync += r1_vld.eq(Mux(r2_last | first_cap, 0, new_vld))
        with m.If(cap_final):
            # The final part; a first part captured in the previous cycle is its pair. (If a
            # last beat is taken now too, that set's first part is empty: this bank is the
            # previous set's.)
            m.d.sync += [c_vld.eq(new_vld), p_vld.eq(f_vld), f_vld.eq(0)]
            m.d.sync += [c_key[a].eq(new_key[a]) for a in range(K)]
            m.d.sync += [c_idx[a].eq(new_idx[a]) for a in range(K)]
            m.d.sync += [p_key[a].eq(f_key[a]) for a in range(K)]
            m.d.sync += [p_idx[a].eq(f_idx[a]) for a in range(K)]
            if not keep_all:
                m.d.sync += [c_thr.eq(new_thr), p_thr.eq(f_thr)]
        with m.Elif(cap_first):
            m.d.sync += f_vld.eq(new_vld)
            m.d.sync += [f_key[a].eq(new_key[a]) for a in range(K)]
            m.d.sync += [f_idx[a].eq(new_idx[a]) for a in range(K)]
            if not keep_all:
                m.d.sync += f_thr.eq(new_thr)

        # --- pairing: the set's best K of its two parts --------------------------------------
        # Both parts are sorted, so T[i] = better(A[i], B[K-1-i]) holds the best K (a half
        # cleaner; values then fall and rise along T). Indices break ties: the parts come from
        # interleaved beats. With a margin an item is kept if it is at least both parts' best
        # minus the margin (an empty part has no say).
        t_idx = [Signal(IDX, name=f"pair{i}_index", reset_less=True) for i in range(K)]
        # The kept entries of T: a prefix of A (t_from_a[i]: T[i] is A[i] and kept) and a
        # suffix of B (t_from_b[r]: T[K - 1 - r] is B[r] and kept; a prefix in r).
        t_from_a = Signal(K, name="pair_keep_final")
        t_from_b = Signal(K, name="pair_keep_other")

        def full(keys, idxs, vld, a):
            return Cat(~idxs[a], keys[a], vld[a])

        def kept(keys, vld, a):
            if keep_all:
                return vld[a]
            return vld[a] & (~c_vld[0] | (keys[a] >= c_thr)) & (~p_vld[0] | (keys[a] >= p_thr))

        win = [Signal(name=f"pair{i}_final_wins") for i in range(K)]
        m.d.comb += [win[i].eq(full(c_key, c_idx, c_vld, i) >= full(p_key, p_idx, p_vld, K - 1 - i))
                     for i in range(K)]
        with m.If(cap_valid & t_accept):
            m.d.sync += t_from_a.eq(Cat(win[i] & kept(c_key, c_vld, i) for i in range(K)))
            m.d.sync += t_from_b.eq(Cat(~win[K - 1 - r] & kept(p_key, p_vld, r)
                                        for r in range(K)))
            m.d.sync += [t_idx[i].eq(Mux(win[i], c_idx[i], p_idx[K - 1 - i])) for i in range(K)]

        # --- hand-off: kept mask, its count, index precedence -------------------------------
        # The kept entries, and their number as a thermometer code (more than j kept iff, for
        # some x, more than x - 1 from A and more than j - x from B): no adder.
        fa, fb = t_from_a, t_from_b

        def at_least(therm, x):                  # the code says more than x - 1
            return Const(1, 1) if x == 0 else therm[x - 1] if x <= K else Const(0, 1)

        t_keep = Signal(K, name="pair_keep")
        m.d.comb += t_keep.eq(fa | Cat(fb[K - 1 - i] for i in range(K)))
        count = Signal(K, name="pair_count")
        m.d.comb += count.eq(Cat(_any_of(at_least(fa, x) & at_least(fb, j + 1 - x)
                                         for x in range(j + 2)) for j in range(K)))
        emit_idx = [Signal(IDX, name=f"emit{a}_index", reset_less=True) for a in range(K)]
        emit_mask = Signal(K, name="emit_mask")
        before = {(a, b): Signal(name=f"emit{a}_before_{b}", reset_less=True)
                  for b in range(K) for a in range(b)}
        with m.If(handoff):
            m.d.sync += [emit_mask.eq(t_keep), remaining.eq(count)]
            m.d.sync += [emit_idx[a].eq(t_idx[a]) for a in range(K)]
            m.d.sync += [before[a, b].eq(t_idx[a] < t_idx[b]) for a, b in before]

        # --- emission: the kept index no other kept index precedes --------------------------
        first = Signal(K, name="emit_first")
        for j in range(K):
            blocked = [emit_mask[a] & (before[a, j] if a < j else ~before[j, a])
                       for a in range(K) if a != j]
            m.d.comb += first[j].eq(emit_mask[j] & ~Cat(*blocked).any() if blocked
                                    else emit_mask[j])
        pick = Signal(name="pick")
        m.d.comb += pick.eq(advance & ~none_left)
        with m.If(~handoff & pick):
            m.d.sync += [emit_mask.eq(emit_mask & ~first), remaining.eq(remaining[1:])]

        # --- output: the picked one-hot (with a copy of the indices it points into), then a
        # buffer of two registers, so only the buffer sees selected.ready -------------------
        e2_sel = Signal(K, name="picked", reset_less=True)
        e2_idx = [Signal(IDX, name=f"picked{j}_index", reset_less=True) for j in range(K)]
        e2_last = Signal(name="picked_last", reset_less=True)
        with m.If(pick):
            m.d.sync += [e2_sel.eq(first), e2_last.eq(one_left)]
            m.d.sync += [e2_idx[j].eq(emit_idx[j]) for j in range(K)]
        e2_index = Signal(IDX, name="picked_index")
        m.d.comb += e2_index.eq(_any_of(Mux(e2_sel[j], e2_idx[j], 0) for j in range(K)))
        out_valid = Signal(name="out_valid")
        out_index = Signal(IDX, name="out_index")
        out_last = Signal(name="out_last")
        skid_index = Signal(IDX, name="skid_index")
        skid_last = Signal(name="skid_last")
        taken = Signal(name="taken")
        m.d.comb += taken.eq(out_valid & out.ready)
        with m.If(skid_valid):                   # the picked result waits
            with m.If(taken):
                m.d.sync += [out_index.eq(skid_index), out_last.eq(skid_last)]
        with m.Elif(e2_valid):                   # the picked result moves on
            with m.If(~out_valid | taken):
                m.d.sync += [out_valid.eq(1), out_index.eq(e2_index), out_last.eq(e2_last)]
            with m.Else():
                m.d.sync += [skid_index.eq(e2_index), skid_last.eq(e2_last)]
        with m.Elif(taken):
            m.d.sync += out_valid.eq(0)
        m.d.comb += [out.valid.eq(out_valid), out.payload.index.eq(out_index),
                     out.payload.last.eq(out_last)]

        # --- next values of the control registers, and ring_go from them -------------------
        nxt = {n: Signal(name=f"{n}_next") for n in
               ("ring2_last", "capture_valid", "pair_valid", "picked", "skid")}
        nxt["remaining"] = Signal(K, name="remaining_next")
        m.d.comb += [
            nxt["ring2_last"].eq(Mux(ring_go, ri_last, r2_last)),
            nxt["capture_valid"].eq(ring_go & r2_last | cap_valid & ~t_accept),
            nxt["pair_valid"].eq(cap_valid & t_accept | t_valid & ~handoff),
            nxt["remaining"].eq(Mux(handoff, count, Mux(pick, remaining[1:], remaining))),
            nxt["picked"].eq(pick | e2_valid & skid_valid),
            nxt["skid"].eq(Mux(skid_valid, ~taken, e2_valid & out_valid & ~taken)),
        ]
        # ring_go = ~r2_last | ~cap_valid | t_accept, one cycle ahead.
        m.d.comb += go.eq(~nxt["ring2_last"] | ~nxt["capture_valid"] | ~nxt["pair_valid"]
                          | ~nxt["remaining"][0] | (~nxt["picked"] | ~nxt["skid"])
                          & (~nxt["remaining"][1] if K > 1 else 1))
        first_cap_next = Mux(ready4, cd_last, ri_last)
        m.d.sync += [
            r2_last.eq(nxt["ring2_last"]), cap_valid.eq(nxt["capture_valid"]),
            t_valid.eq(nxt["pair_valid"]), e2_valid.eq(nxt["picked"]),
            skid_valid.eq(nxt["skid"]), ring_go.eq(go),
            cap_final.eq(go & nxt["ring2_last"]),
            cap_first.eq(go & ~nxt["ring2_last"] & first_cap_next),
        ]
        return m
