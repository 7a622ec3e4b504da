"""Prefix popcounts of a bitmask: the offset arithmetic of a sparse inner join
(docs/architecture.md §4.2).

For a bitmask ``mask`` of ``width`` bits the *rank* of position ``i`` is the number of set bits
below it, ``rank[i] = popcount(mask & ((1 << i) - 1))`` (an exclusive prefix popcount): if bit
``i`` is set, ``rank[i]`` is the index of that element in the compressed value array.

Two implementations, after LoAS (MICRO 2024):

:class:`FastPrefixSum`
    Combinational, all ``width`` ranks at once. A Sklansky parallel prefix: ``ceil(log2(width))``
    adder levels; level ``l`` adds the count of the last position of each lower half-block of
    size ``2**l`` into every position of the upper half-block, so ``width / 2`` adders per level
    (``(width / 2) * log2(width)`` in all for a power of two). Chosen over a ripple chain (depth
    ``width``) for its log depth, and over Kogge-Stone (same depth, about twice the adders) for
    area; the price is fan-out: the last count of a lower half drives its whole upper half
    (up to ``width / 2`` loads at the last level), which FPGA routing absorbs.

:class:`SlowPrefixSum`
    The LoAS "laggy" prefix sum: only ``adders`` adders, one group of ``adders`` consecutive
    ranks per cycle, ``ceil(width / adders)`` cycles per mask (see the class for the exact
    handshake timing).
"""

from __future__ import annotations

from amaranth import Module, Signal, unsigned
from amaranth.hdl import Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["inclusive_prefix_counts", "rank_shape", "group_layout", "FastPrefixSum",
           "SlowPrefixSum"]


def rank_shape(width: int):
    """Shape of a rank or a total over ``width`` bits: unsigned, holds 0..width."""
    return unsigned(max(width, 1).bit_length())


def inclusive_prefix_counts(bits) -> list[Value]:
    """``out[i] = bits[0] + ... + bits[i]`` as a Sklansky parallel prefix (expressions).

    ``ceil(log2(n))`` adder levels. At level ``l`` every position ``i`` with bit ``l`` of ``i``
    set adds the count at ``j = (i with its low l bits cleared) - 1``, the last position of the
    lower half of its ``2**(l+1)`` block. Bit ``l`` of ``j`` is clear, so ``j`` itself is not
    updated at level ``l`` and the update can be done in place.
    """
    s = [Value.cast(b) for b in bits]
    n = len(s)
    level = 0
    while (1 << level) < n:
        for i in range(n):
            if (i >> level) & 1:
                s[i] = s[i] + s[((i >> level) << level) - 1]
        level += 1
    return s


class FastPrefixSum(wiring.Component):
    """All exclusive prefix popcounts of a ``width``-bit mask, combinationally.

    Depth ``ceil(log2(width))`` adders (see the module docstring for the structure).

    Attributes
    ----------
    mask : Signal(width), in
    ranks : array of ``width`` values of :func:`rank_shape`, out
        ``ranks[i] = popcount(mask & ((1 << i) - 1))``.
    total : :func:`rank_shape`, out
        ``popcount(mask)``.
    """

    def __init__(self, width: int):
        if width < 1:
            raise ValueError(f"prefix sum width must be at least 1, not {width}")
        self.width = width
        super().__init__({
            "mask": In(width),
            "ranks": Out(data.ArrayLayout(rank_shape(width), width)),
            "total": Out(rank_shape(width)),
        })

    @property
    def depth(self) -> int:
        """Adder levels on the longest path."""
        return (self.width - 1).bit_length()

    def elaborate(self, platform):
        m = Module()
        inclusive = inclusive_prefix_counts(self.mask[i] for i in range(self.width))
        m.d.comb += self.ranks[0].eq(0)
        for i in range(1, self.width):
            m.d.comb += self.ranks[i].eq(inclusive[i - 1])
        m.d.comb += self.total.eq(inclusive[-1])
        return m


def group_layout(width: int, adders: int) -> data.StructLayout:
    """One output beat of :class:`SlowPrefixSum`: the ranks of positions ``group*adders + j``."""
    groups = -(-width // adders)
    return data.StructLayout({
        "ranks": data.ArrayLayout(rank_shape(width), adders),  # ranks[j] of position group*A + j
        "bits": adders,              # mask bits of those positions (0 beyond width)
        "count": rank_shape(width),  # popcount of the mask up to the end of this group
        "group": range(max(groups, 2)),
        "first": 1,
        "last": 1,                   # the mask's final group; then count = popcount(mask)
    })


class SlowPrefixSum(wiring.Component):
    """The LoAS laggy prefix sum: exclusive ranks of a mask, ``adders`` ranks per cycle.

    Interface: an input stream ``mask`` (one beat = one ``width``-bit mask) and an output stream
    ``groups`` with ``G = ceil(width / adders)`` beats per mask, see :func:`group_layout`. Beat
    ``g`` carries ``ranks[j] = rank[g*adders + j]`` for ``j < adders``; positions past ``width``
    in the last group have mask bit 0 and rank ``popcount(mask)``. Beats carry ``first``/``last``.

    Microarchitecture: the accepted mask goes into a shift register ``rest`` (``G * adders`` bits,
    zero padded) and a running count ``base`` starts at 0. The output beat is combinational from
    registers only: a ripple chain of exactly ``adders`` adders, ``r[0] = base``,
    ``r[j+1] = r[j] + rest[j]``, gives ``ranks[j] = r[j]`` and ``count = r[adders]``. Each
    transferred beat shifts ``rest`` right by ``adders`` and loads ``base = count``. So the unit
    holds ``adders`` adders (each ``bits_for(width)`` wide, in one chain of depth ``adders``)
    instead of the fast prefix sum's ``(width/2) * log2(width)``.

    Timing, with ``groups.ready`` held high: a mask transferred at the clock edge ending cycle
    ``c`` gives group ``g`` valid in cycle ``c + 1 + g``; the last group is in cycle ``c + G``.
    ``mask.ready`` is high when idle or when the last group transfers, so the next mask is taken
    in that same cycle and back-to-back masks leave with no gap: exactly ``G`` cycles per mask,
    ``G * masks`` cycles for a run of masks plus 1 cycle of latency. Backpressure on ``groups``
    stretches this cycle for cycle; ``groups.valid`` never depends on ``groups.ready`` and the
    payload is held while ``valid & ~ready``.
    """

    def __init__(self, width: int, adders: int):
        if width < 1:
            raise ValueError(f"prefix sum width must be at least 1, not {width}")
        if not 1 <= adders <= width:
            raise ValueError(f"adders must be 1..{width}, not {adders}")
        self.width = width
        self.adders = adders
        self.groups_per_mask = -(-width // adders)
        super().__init__({
            "mask": In(stream.Signature(width)),
            "groups": Out(stream.Signature(group_layout(width, adders))),
        })

    def cycles(self, masks: int = 1) -> int:
        """Cycles from the first mask's transfer to the last group's transfer, without stalls,
        for ``masks`` back-to-back masks (the mask's cycle not counted, the last group's is)."""
        return self.groups_per_mask * masks

    def elaborate(self, platform):
        m = Module()
        A, G = self.adders, self.groups_per_mask
        out = self.groups

        busy = Signal(name="busy")                                   # = groups.valid
        rest = Signal(G * A, name="rest", reset_less=True)           # unprocessed mask bits
        base = Signal(rank_shape(self.width), name="base", reset_less=True)
        group = Signal(range(max(G, 2)), name="group", reset_less=True)
        last = Signal(name="last_group")
        m.d.comb += last.eq(group == G - 1)

        # The ripple chain: A adders, each adding one mask bit to the running count. Each link
        # reads the previous link's payload field (a wire), not its expression, so the chain is
        # A small assignments rather than one expression A levels deep. No sum exceeds width.
        ranks = out.payload.ranks
        m.d.comb += ranks[0].eq(base)
        for j in range(1, A):
            m.d.comb += ranks[j].eq(ranks[j - 1] + rest[j - 1])
        m.d.comb += out.payload.bits.eq(rest[:A])
        r = Signal.like(base, name="next_base")
        m.d.comb += r.eq(ranks[A - 1] + rest[A - 1])
        m.d.comb += [
            out.payload.count.eq(r),
            out.payload.group.eq(group),
            out.payload.first.eq(group == 0),
            out.payload.last.eq(last),
            out.valid.eq(busy),
        ]

        done = out.valid & out.ready
        m.d.comb += self.mask.ready.eq(~busy | (done & last))
        with m.If(self.mask.valid & self.mask.ready):
            m.d.sync += [rest.eq(self.mask.payload), base.eq(0), group.eq(0), busy.eq(1)]
        with m.Elif(done & last):
            m.d.sync += busy.eq(0)
        with m.Elif(done):
            m.d.sync += [rest.eq(rest >> A), base.eq(r), group.eq(group + 1)]
        return m
