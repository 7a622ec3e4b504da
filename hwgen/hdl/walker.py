"""The set bits of a bitmask, one per cycle, lowest first: the matched positions of a sparse
inner join and the positions of a fiber's kept words (docs/architecture.md §4.2).

A ``width``-bit mask is seen as ``groups`` slices of ``slice_width`` bits (the groups of LoAS's
laggy prefix sum). The walker keeps, besides the mask, one flag per slice that says whether the
slice still holds a set bit, and walks only those slices: the lowest set bit of the current
slice each cycle, and in the cycle the slice runs out the next non-empty slice comes in through
a ``groups``-to-1 multiplexer. No adder or priority encoder spans the whole mask, so the walk's
logic depth depends on ``slice_width`` and ``groups``, not on ``width``, and a mask with ``m``
set bits costs ``max(1, m)`` cycles whatever the bits' spread.

Microarchitecture
-----------------
::

    masks ─> pending (mask, slice flags, tag) ─> walk (slices, current slice, flags left, tag)
                                                     └─> positions (pos, first, last, empty, tag)

* **pending**: a mask taken from ``masks``, with its slice flags (an OR over each slice of the
  incoming mask) and the lowest of them (one-hot) registered beside it; it moves to the walk
  stage in the cycle the walk stage finishes the mask before it, so masks follow each other
  without a gap.
* **walk**: the lowest set bit of the current slice is the position offered on ``positions``;
  when it is taken, the slice loses that bit, and the last bit of a slice loads the lowest
  slice still flagged, kept one-hot in a register written with the flags. A mask without a set
  bit is offered once, as a beat with ``empty`` set.

Whether the beat on offer is the mask's last decides, in the same cycle, ``masks.ready`` and the
load of the pending mask, the enable of the pending registers and of the walk stage's mask. So
it is a register, written one cycle ahead from the next state: each slice's "two or more bits"
and "three or more" flags are registered beside its "any bit" flag (pending, then walk), the
pending stage keeps "the mask has at most one set bit", and the walk stage keeps "the current
slice has one bit left", "... and no later slice is flagged" (the last beat) and "the beat after
this one is the last". The enables are then one LUT after registers, and the last-beat flag's
next state (``masks.ready``'s with ``always_ready``) a multiplexer of registers; bit counts up to
four (:func:`at_least_bits`) are LUT trees with no carry chain.

Timing: a mask taken from ``masks`` in cycle c (with the walker idle) offers its first position
in cycle c + 2; with ``positions.ready`` high, a mask with ``m`` set bits offers them in
``max(1, m)`` consecutive cycles and the next mask's first position follows in the next cycle,
provided it was taken at least two cycles before.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, unsigned
from amaranth.hdl import Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from hwgen.hdl.pipeline import register_copies

__all__ = ["lowest_bit", "at_least_bits", "onehot_index", "onehot_select", "walker_slices",
           "SetBitWalker"]


def lowest_bit(mask) -> Value:
    """One-hot of the lowest set bit of ``mask`` (zero when ``mask`` is zero)."""
    mask = Value.cast(mask)
    return (mask & -mask)[:len(mask)]


def onehot_index(onehot) -> Value:
    """The index of the set bit of a one-hot ``onehot`` (an OR of the indices; zero if none)."""
    onehot = Value.cast(onehot)
    bits = max(ceil_log2(len(onehot)), 1)
    out = Value.cast(0)
    for i in range(len(onehot)):
        if i:
            out = out | (onehot[i].replicate(bits) & i)
    return out[:bits]


def at_least_bits(value, n: int) -> Value:
    """1 when ``value`` has ``n`` or more set bits (``n >= 1``): a tree over halves that counts
    each part's set bits up to ``n`` (a part has ``k`` or more when its halves have ``i`` and
    ``k - i`` or more for some ``i``), so LUT logic with no carry chain (``value & (value - 1)``,
    for ``n = 2``, is one)."""
    def tree(bits):
        # counts[k - 1]: the bits hold k or more set bits, for k up to min(n, len(bits))
        if len(bits) == 1:
            return [bits[0]]
        half = len(bits) // 2
        a, b = tree(bits[:half]), tree(bits[half:])
        counts = []
        for k in range(1, min(n, len(a) + len(b)) + 1):
            term = Value.cast(0)
            for i in range(max(0, k - len(b)), min(k, len(a)) + 1):
                if not i:
                    term = term | b[k - 1]
                elif i == k:
                    term = term | a[k - 1]
                else:
                    term = term | (a[i - 1] & b[k - i - 1])
            counts.append(term)
        return counts
    value = Value.cast(value)
    counts = tree([value[i] for i in range(len(value))])
    return counts[n - 1] if n <= len(counts) else Value.cast(0)


def onehot_select(onehot, values) -> Value:
    """``values[i]`` for the set bit i of a one-hot ``onehot`` (an AND-OR multiplexer; zero if
    no bit is set). ``values`` are values of one width."""
    out = Value.cast(0)
    for i, value in enumerate(values):
        value = Value.cast(value)
        out = out | (onehot[i].replicate(len(value)) & value)
    return out


def walker_slices(width: int, slice_width: int) -> tuple[int, int]:
    """``(slice width, groups)`` of a walker over ``width`` bits: ``slice_width``, or the smallest
    power of two that holds ``width`` if that is smaller, and ``ceil(width / slice width)``."""
    bits = min(slice_width, 1 << ceil_log2(width))
    return bits, -(-width // bits)


class SetBitWalker(wiring.Component):
    """Offers the set bits of each mask on ``masks``, lowest first, one per cycle.

    Parameters
    ----------
    width : int
        Mask width, 1 to 4096.
    slice_width : int
        Bits per slice, a power of two from 1 to 64; reduced to the smallest power of two that
        holds ``width`` if that is smaller.
    tag : ShapeCastable
        A payload that travels with each mask to every beat of its walk (``unsigned(0)``: none).
    always_ready : bool
        The consumer holds ``positions.ready`` high in every cycle. ``masks.ready`` is then a
        register, written from the next state (the same value in every cycle), so the producer's
        enables start at a register.

    Attributes
    ----------
    masks : stream, in
        ``mask`` (``width`` bits) and ``tag``.
    positions : stream, out
        ``pos`` (the bit's index, ``range(width)``), ``first`` (the mask's first beat), ``last``
        (its last beat), ``empty`` (the mask had no set bit: its one beat carries no position)
        and the mask's ``tag``.
    slice_width, groups : int
        The slices' width and number (``groups * slice_width >= width``).

    Raises
    ------
    ValueError
        A parameter is out of range.
    """

    def __init__(self, width: int, slice_width: int = 16, tag=unsigned(0),
                 always_ready: bool = False):
        for name, value, hi in (("width", width, 4096), ("slice_width", slice_width, 64)):
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= hi:
                self._MustUse__silence = True       # refused, so never elaborated
                raise ValueError(f"{name} must be an integer from 1 to {hi}, not {value!r}")
        if slice_width & (slice_width - 1):
            self._MustUse__silence = True
            raise ValueError(f"slice_width must be a power of two, not {slice_width}")
        self.width = width
        self.slice_width, self.groups = walker_slices(width, slice_width)
        self.tag_shape = tag
        self.always_ready = always_ready
        super().__init__({
            "masks": In(stream.Signature(data.StructLayout({"mask": width, "tag": tag}))),
            "positions": Out(stream.Signature(data.StructLayout({
                "pos": range(max(width, 2)), "first": 1, "last": 1, "empty": 1, "tag": tag}))),
        })

    def elaborate(self, platform):
        S, G = self.slice_width, self.groups
        m = Module()
        padded = G * S

        def slices(mask):
            return [mask[g * S:(g + 1) * S] for g in range(G)]

        # --- pending stage --------------------------------------------------------------------
        p_valid = Signal()
        p_mask = Signal(padded)
        p_flags = Signal(G)                           # the slices that hold a set bit
        p_several = Signal(G)                         # the slices that hold two or more
        p_three = Signal(G)                           # ... three or more
        p_first = Signal(G)                           # the lowest of p_flags (one-hot)
        p_single = Signal()                           # the mask has one set bit or none
        p_tag = Signal(self.tag_shape)
        p_valid_next = Signal()
        incoming = Value.cast(self.masks.payload.mask)
        in_flags, in_several = Signal(G), Signal(G)
        m.d.comb += [in_flags.eq(Cat(part.any() for part in slices(incoming))),
                     in_several.eq(Cat(at_least_bits(part, 2) for part in slices(incoming)))]
        # The pending registers load whenever the stage is ready, whatever ``masks.valid``
        # (``p_valid`` says whether they hold a mask): with the valid in it, their 100-odd-bit
        # enable ran from the job FIFO's output register through the walker into a TPPE's
        # pending mask (snn_paper, 14.9 ns). Now it is one LUT after the walker's registers.
        m.d.comb += p_valid_next.eq(Mux(self.masks.ready, self.masks.valid, p_valid))
        m.d.sync += p_valid.eq(p_valid_next)
        with m.If(self.masks.ready):
            m.d.sync += [p_mask.eq(incoming), p_tag.eq(self.masks.payload.tag),
                         p_flags.eq(in_flags), p_first.eq(lowest_bit(in_flags)),
                         p_several.eq(in_several),
                         p_three.eq(Cat(at_least_bits(part, 3) for part in slices(incoming))),
                         p_single.eq(~at_least_bits(in_flags, 2) & ~(in_flags & in_several).any())]

        # --- walk stage -----------------------------------------------------------------------
        w_valid, w_first, w_empty = Signal(), Signal(), Signal()
        w_slices = Signal(padded)
        w_several = Signal(G)                         # p_several of the mask
        w_three = Signal(G)                           # p_three of the mask
        w_cur = Signal(S)                             # set bits left in the current slice
        w_index = Signal(range(max(G, 2)))            # the current slice
        w_left = Signal(G)                            # later slices that hold a set bit
        w_next = Signal(G)                            # the lowest of w_left (one-hot)
        w_one = Signal()                              # w_cur has one set bit (or none)
        w_last = Signal()                             # ... and w_left is empty: the last beat
        w_last2 = Signal()                            # the beat after this one is the last
        w_tag = Signal(self.tag_shape)
        # The valid and the last-beat flags are written through their next states, which also
        # give ``masks.ready`` of the next cycle (``always_ready``).
        w_valid_next, w_last_next = Signal(), Signal()
        m.d.comb += [w_valid_next.eq(w_valid), w_last_next.eq(w_last)]
        m.d.sync += [w_valid.eq(w_valid_next), w_last.eq(w_last_next)]

        # The one-hot values are signals, not expressions: each bit taken from an expression
        # would repeat the whole expression in the netlist.
        low, rest = Signal(S), Signal(S)
        m.d.comb += [low.eq(lowest_bit(w_cur)), rest.eq(w_cur & ~low)]
        pos = Cat(onehot_index(low)[:ceil_log2(S)], w_index[:ceil_log2(G)])
        m.d.comb += [
            self.positions.valid.eq(w_valid),
            self.positions.payload.pos.eq(pos),
            self.positions.payload.first.eq(w_first),
            self.positions.payload.last.eq(w_last),
            self.positions.payload.empty.eq(w_empty),
            self.positions.payload.tag.eq(w_tag),
        ]
        # The slice a load or a slice change brings in is a register (``p_first``, ``w_next``),
        # not the lowest bit of a register: the carry chain of ``lowest_bit(p_flags)`` (or of
        # ``w_left``) in front of the slice multiplexer and ``w_cur`` was the critical path of the
        # fiber receiver (10.28 ns, seq_fast at 97.2 MHz). The pending stage registers the lowest
        # flag of the incoming mask beside its flags, and the walk stage the lowest of what
        # ``w_left`` becomes, so each carry chain ends in a register. Neither changes a cycle.
        first, nxt = p_first, w_next
        after_first, after_nxt = Signal(G), Signal(G)     # w_left after a load, a slice change
        m.d.comb += [after_first.eq(p_flags & ~first), after_nxt.eq(w_left & ~nxt)]
        # ``w_last`` is the load decision's term that depends on the data: as a LUT tree over
        # ``w_cur`` in the same cycle, it drove the enable of the 128-bit pending and walk
        # registers (snn_paper at 54.6 MHz, 16.1 ns of its 18.3 ns routing). So it is a
        # register, and so is what it becomes after an advance (``w_last2``), each written a
        # cycle ahead from registers: a state's beat is its last when its slice has one bit left
        # (``w_one``) and no later slice is flagged. The slice a load or a slice change brings
        # in has one bit left unless its ``several`` flag is set; taking a bit of a slice with
        # several leaves one unless the slice had three or more. From that state, the beat
        # after is the last (``last_after``) when either the slice has two bits left and no
        # later slice is flagged, or it has one and the next slice has one and is the last
        # flagged. A load sets ``w_last`` from the pending mask's ``p_single``. So ``w_last``'s
        # next state, and with it ``masks.ready``'s (``always_ready``), is a multiplexer of
        # registers: the 7-LUT next-state logic in front of the ready register was snn_paper's
        # critical path at seed 1 of 3349d15 (11.6 ns).
        def last_after(one, two_left, next_one, next_alone, alone):
            """``w_last2`` of a state whose slice has one bit left if ``one``, two or fewer if
            ``two_left``, whose next flagged slice has one bit if ``next_one`` and no flagged
            slice after it if ``next_alone``, and no later flagged slice at all if ``alone``."""
            return Mux(one, next_one & next_alone, two_left & alone)

        advance = Signal()
        m.d.comb += advance.eq(w_valid & self.positions.ready)
        # ``load`` selects every walk-stage register's next value (some 200 flip-flops in a
        # TPPE). With ``always_ready`` it is a register written from the next state, with a
        # copy each for the control registers, the mask and the tag: from ``p_valid`` through
        # the load LUT to the walk stage's slice register had 7.6 ns of routing (snn_paper,
        # seed 1 at 9512ea3, 75.5 MHz).
        if self.always_ready:
            load_next = Signal()
            m.d.comb += load_next.eq(p_valid_next & (~w_valid_next | w_last_next))
            load, load_mask, load_tag = register_copies(m, load_next, 3, name="load")
        else:
            load = Signal()                           # the walk stage takes the pending mask
            m.d.comb += load.eq(p_valid & (~w_valid | (advance & w_last)))
            load_mask = load_tag = load
        second = Signal(G)                                # the lowest of after_nxt (one-hot)
        after_first_low = Signal(G)                       # the lowest of after_first (one-hot)
        m.d.comb += [second.eq(lowest_bit(after_nxt)), after_first_low.eq(lowest_bit(after_first))]
        with m.If(advance):
            m.d.sync += w_first.eq(0)
            with m.If(w_last):
                m.d.comb += w_valid_next.eq(0)
            with m.Elif(~w_one):                      # the slice's lowest bit is taken
                one = ~at_least_bits(w_cur, 3)
                m.d.sync += [w_cur.eq(rest), w_one.eq(one),
                             w_last2.eq(last_after(one, ~at_least_bits(w_cur, 4),
                                                   ~(nxt & w_several).any(),
                                                   ~at_least_bits(w_left, 2), ~w_left.any()))]
                m.d.comb += w_last_next.eq(w_last2)
            with m.Else():                            # the next slice that holds a set bit
                one = ~(nxt & w_several).any()
                m.d.sync += [w_cur.eq(onehot_select(nxt, slices(w_slices))),
                             w_index.eq(onehot_index(nxt)), w_left.eq(after_nxt),
                             w_next.eq(second), w_one.eq(one),
                             w_last2.eq(last_after(one, ~(nxt & w_three).any(),
                                                   ~(second & w_several).any(),
                                                   ~at_least_bits(after_nxt, 2),
                                                   ~after_nxt.any()))]
                m.d.comb += w_last_next.eq(w_last2)
        with m.If(load_mask):
            m.d.sync += w_slices.eq(p_mask)
        with m.If(load_tag):
            m.d.sync += w_tag.eq(p_tag)
        with m.If(load):
            one = ~(first & p_several).any()
            m.d.comb += [w_valid_next.eq(1), w_last_next.eq(p_single)]
            m.d.sync += [w_first.eq(1), w_empty.eq(~p_flags.any()),
                         w_several.eq(p_several), w_three.eq(p_three),
                         w_cur.eq(onehot_select(first, slices(p_mask))),
                         w_index.eq(onehot_index(first)), w_left.eq(after_first),
                         w_next.eq(after_first_low), w_one.eq(one),
                         w_last2.eq(last_after(one, ~(first & p_three).any(),
                                               ~(after_first_low & p_several).any(),
                                               ~at_least_bits(after_first, 2),
                                               ~after_first.any()))]

        if self.always_ready:
            # With positions.ready high, ready = ~p_valid | load = ~p_valid | ~w_valid | w_last:
            # registered from the next state. In a TPPE, the walker's load through ready into
            # the enable of the job FIFO's 150-bit output register was snn_paper's critical path
            # (seed 1 at 15dab37: 11.9 ns, 10.9 of it routing).
            ready = Signal(init=1)
            m.d.sync += ready.eq(~p_valid_next | ~w_valid_next | w_last_next)
            m.d.comb += self.masks.ready.eq(ready)
        else:
            m.d.comb += self.masks.ready.eq(~p_valid | load)
        return m
