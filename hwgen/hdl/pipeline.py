"""Pipelining helpers: reduction trees with registers between levels, and delay lines
(docs/architecture.md §3, "Pipelining and DSP blocks").

Both add logic to a caller's :class:`~amaranth.hdl.Module` in its ``sync`` domain and return the
number of register stages they inserted, so the caller's schedule (and its cycle model) can name
every cycle. The registers are free-running: there is no enable and no stall, so a value entered
in cycle ``t`` leaves ``stages`` cycles later, and valid bits travel beside the data in a
:func:`delay` of the same length.
"""

from __future__ import annotations

from amaranth import Mux, Signal
from amaranth.hdl import Value
from amaranth.lib import data

from hwgen.hdl.arith import partial_products, tree_level
from hwgen.hdl.dsp import fits_dsp, registered_product

__all__ = ["LUT_PIECE_BITS", "PRODUCT_PIECE_BITS", "PRODUCT_STAGES", "delay", "dot_product_stages",
           "maximum", "pipelined_dot_product", "pipelined_product", "pipelined_tree",
           "pulse_copies", "register_copies", "replicated_register", "tree_stages"]


def _levels(terms: int) -> int:
    """Adder levels of a balanced tree over ``terms`` operands."""
    return max(terms - 1, 0).bit_length()


def tree_stages(terms: int, levels_per_stage: int = 2) -> int:
    """Register stages :func:`pipelined_tree` inserts for ``terms`` operands."""
    return -(-_levels(terms) // levels_per_stage)


def maximum(a, b) -> Value:
    """The larger of two values of the same signedness (one comparator and a multiplexer)."""
    return Mux(a > b, a, b)


def pipelined_tree(m, terms, op=lambda a, b: a + b, levels_per_stage: int = 2,
                   name: str = "tree") -> tuple[Value, int]:
    """Reduce ``terms`` by a balanced binary tree of ``op`` with a register after every
    ``levels_per_stage`` levels and after the last one.

    Returns ``(result, stages)``: ``result`` is the output register (or the single term itself
    when there is nothing to reduce, ``stages = 0``) and ``stages`` is
    :func:`tree_stages`. Each register is exactly as wide as the expression it holds, so ``op =
    +`` (which Amaranth widens by one bit) never overflows.
    """
    level = [Value.cast(t) for t in terms]
    if not level:
        raise ValueError("pipelined_tree needs at least one term")
    stage = depth = 0
    while len(level) > 1:
        level = tree_level(level, op)
        depth += 1
        if depth % levels_per_stage == 0 or len(level) == 1:
            regs = []
            for n, value in enumerate(level):
                reg = Signal(value.shape(), name=f"{name}_s{stage}_{n}")
                m.d.sync += reg.eq(value)
                regs.append(reg)
            level, stage = regs, stage + 1
    assert stage == tree_stages(len(terms), levels_per_stage)
    return level[0], stage


def dot_product_stages(terms: int, width: int, signed: bool) -> int:
    """Register stages :func:`pipelined_dot_product` inserts for ``terms`` pairs whose ``b``
    operands are ``width`` bits (``signed`` or not): a register after every two adder levels
    (the bit-plane sums' and the planes' combination) and after the last one; a lone signed
    plane (``width`` 1) is negated after that and registered once more."""
    levels = _levels(terms) + _levels(width)
    stages = levels // 2 + (levels % 2 or levels == 0)
    return stages + (signed and width == 1)


def pipelined_dot_product(m, a, b, name: str = "dot") -> tuple[Value, int]:
    """``sum(a[c] * b[c])`` of narrow operands in LUTs, summed bit plane by bit plane, with a
    register after every two adder levels and after the last one.

    Yosys maps every ``$mul`` wider than a bit to a DSP block on ECP5, so narrow products go in
    LUTs. Written as a sum of products, each product is an adder tree of its own (partial
    products, a negated sign term) before the sum. Summed by the bits of ``b`` instead, plane
    ``i`` is ``sum(a[c] if b[c][i] else 0)``: one AND gate per bit of ``a``, into adders only
    as wide as ``a`` plus the plane's level. The planes are then combined with their weights
    ``2**i`` (negative for the sign bit of a signed ``b``) pairwise, by a subtraction where the
    sign plane is in the pair. At the estimate stage's 16 pairs of 4 x 4 bits that is 850 LUT4
    and 141 flip-flops against 967 and 180 for registered products and their sum (an eighth
    and a fifth fewer), in the same number of register stages.

    Returns ``(result, stages)``: the output register (exactly as wide as its expression, so
    nothing overflows) and :func:`dot_product_stages`.
    """
    a, b = [Value.cast(x) for x in a], [Value.cast(x) for x in b]
    if not a or len(a) != len(b):
        raise ValueError(f"a and b must hold the same number of operands (at least one), "
                         f"not {len(a)} and {len(b)}")
    width, signed = len(b[0]), b[0].shape().signed
    if any(len(x) != width or x.shape().signed != signed for x in b):
        raise ValueError("the operands of b must all have the same shape")
    depth = stage = 0

    def register(lists):
        # One register stage over every list of terms.
        nonlocal stage
        out = []
        for k, terms in enumerate(lists):
            regs = []
            for n, (value, sign) in enumerate(terms):
                reg = Signal(value.shape(), name=f"{name}_s{stage}_{k}_{n}")
                m.d.sync += reg.eq(value)
                regs.append((reg, sign))
            out.append(regs)
        stage += 1
        return out

    def pair(x, y):
        # A term is (value, sign): sign -1 means it is to be subtracted.
        (u, su), (v, sv) = x, y
        if su == sv:
            return u + v, su
        return (u - v, su) if su > 0 else (v - u, sv)

    def reduce(lists):
        # Each list one adder level down; a register after every second level.
        nonlocal depth
        while len(lists[0]) > 1:
            lists = [tree_level(terms, pair) for terms in lists]
            depth += 1
            if depth % 2 == 0:
                lists = register(lists)
        return lists

    planes = reduce([[(Mux(bc[i], ac, 0), 1) for ac, bc in zip(a, b)] for i in range(width)])
    last = width - 1
    (total,), = reduce([[(value << i, -1 if signed and i == last else 1)
                         for i, ((value, _),) in enumerate(planes)]])
    if depth % 2 or depth == 0:
        (total,), = register([[total]])
    value, sign = total
    if sign < 0:
        ((value, sign),), = register([[(-value, 1)]])
    assert stage == dot_product_stages(len(a), width, signed)
    return value, stage


def delay(m, value, cycles: int, name: str = "delay"):
    """``value`` as it was ``cycles`` cycles ago (a shift register; ``value`` itself for 0).

    A :class:`~amaranth.lib.data.View` keeps its layout (the registers are views too).
    """
    if not isinstance(value, data.View):
        value = Value.cast(value)
    for n in range(cycles):
        reg = Signal(value.shape(), name=f"{name}_d{n + 1}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


def replicated_register(m, value, load, copies: int, name: str = "copy") -> list[Value]:
    """``copies`` registers that all load ``value`` in a cycle with ``load`` and hold it, for a
    value that feeds many far-apart sinks (DSP inputs): each sink gets its own copy, placed
    near it, instead of one net routed to all of them. ``load`` is one signal, or one per copy
    (all high in the same cycles, e.g. :func:`pulse_copies`), so that no single net reaches the
    enables of every copy either.

    Identical registers would be merged again by Yosys (``opt_merge`` shares cells with the
    same inputs). With one ``load`` the copies therefore hold in a ring, copy ``n`` loading copy
    ``n + 1`` (the last one copy 0) when ``load`` is low: every copy has different inputs, and
    all equal ``value`` from the cycle after a load on. With one load per copy each copy holds
    its own value (its load makes it different), so no net joins the copies: the ring pulled
    them together, away from their sinks (4.6 ns of routing from a q4 copy to its estimate
    lane, the rows-2 head's seed 3 at 9dc1e0d).
    """
    value = Value.cast(value)
    own = isinstance(load, (list, tuple))
    loads = list(load) if own else [load] * copies
    if len(loads) != copies:
        raise ValueError(f"load must be one signal or {copies}, not {len(loads)}")
    regs = [Signal(value.shape(), name=f"{name}{n}") for n in range(copies)]
    for n, reg in enumerate(regs):
        m.d.sync += reg.eq(Mux(loads[n], value, regs[n] if own else regs[(n + 1) % copies]))
    return regs


def register_copies(m, value, copies: int, name: str = "copy", init=0) -> list[Signal]:
    """``copies`` registers of ``value`` (each ``value`` a cycle later), for a value that feeds
    many far-apart sinks (the write address and enable of P memory copies): each group of sinks
    gets its own register, placed near it, instead of one net routed to all of them.

    The copies are identical, and Yosys merges identical registers into one (``opt_merge``), so
    each has the ``keep`` attribute; hwgen's synthesis script keeps a register whose output wire
    is kept (``templates/synth/yosys.ys.j2``). Another tool must keep them too (Vivado:
    ``DONT_TOUCH``, or ``-keep_equivalent_registers``). ``init`` is their value after reset."""
    value = Value.cast(value)
    regs = [Signal(value.shape(), name=f"{name}{n}", init=init, attrs={"keep": 1})
            for n in range(copies)]
    m.d.sync += [reg.eq(value) for reg in regs]
    return regs


def pulse_copies(m, pulse, copies: int, name: str = "pulse") -> list[Signal]:
    """``copies`` registers, each ``pulse`` delayed by a cycle, for a pulse that would drive too
    many enables through one net. ``pulse`` must never be high in two consecutive cycles.

    Each copy is ``pulse & ~itself``, which equals ``pulse`` under that rule: every copy has an
    input of its own, so Yosys does not merge them back into one register (``opt_merge``)."""
    regs = [Signal(name=f"{name}{n}") for n in range(copies)]
    for reg in regs:
        m.d.sync += reg.eq(pulse & ~reg)
    return regs


#: Bits of the unsigned pieces :func:`pipelined_product` splits the wider operand into: with a
#: sign bit added they fit the 18-bit signed inputs of an ECP5 MULT18X18D.
PRODUCT_PIECE_BITS = 17

#: A piece after the first that is at most this wide is multiplied in LUTs, not in a DSP: a
#: 27-bit operand is then one DSP and a 10-bit LUT product instead of two DSPs.
LUT_PIECE_BITS = 10

#: Register stages of :func:`pipelined_product` (by default; it also takes 3).
PRODUCT_STAGES = 2


def pipelined_product(m, a, b, name: str = "product", stages: int = PRODUCT_STAGES) -> Value:
    """``a * b`` in ``stages`` register stages (:data:`PRODUCT_STAGES`, or 3), with at most two
    adder levels before each register.

    The wider operand is split into :data:`PRODUCT_PIECE_BITS`-bit pieces (the top one keeps
    its sign). Stage 1 registers each piece's product with the narrower operand: one DSP each
    while the narrower operand has at most 18 bits, except a narrow top piece
    (:data:`LUT_PIECE_BITS`), whose shifted partial products (over the narrower of the two
    factors) are summed two adder levels deep in LUTs and registered as up to four partial
    sums. A DSP product's register is :class:`~hwgen.hdl.dsp.RegisteredProduct`, the DSP's own
    output register on ECP5.
    With ``stages=3`` a LUT piece's partial products get one adder level before the first
    register and the rest of their sum before a second one, while the DSP products register
    their operands first (the DSP's input registers): one adder level, not two, then follows
    the AND gates of the partial products,
    whose operands fan out to every gate (the quantizer's 10-bit piece, two levels deep, was a
    critical path of the attention engine).
    The last stage registers the shifted sum of everything the stage before holds. So no carry
    chain follows a multiplier in the same cycle, which a single wide ``*`` (split into DSPs and
    an adder by Yosys) does.
    A product whose operands both fit one DSP has nothing to sum: its stages are the DSP's output
    register and a fabric register, which takes the routing out of the DSP column. With
    ``stages=3`` the DSP products' input registers come first (``RegisteredProduct(
    input_registers=True)``), so operands read from a block RAM's output register can go into
    the DSP without a fabric register between them, the routing into the DSP column getting a
    cycle of its own.
    """
    if stages not in (PRODUCT_STAGES, PRODUCT_STAGES + 1):
        raise ValueError(f"stages must be {PRODUCT_STAGES} or {PRODUCT_STAGES + 1}, "
                         f"not {stages!r}")
    a, b = Value.cast(a), Value.cast(b)
    if len(a) > len(b):
        a, b = b, a
    if fits_dsp(a.shape()) and fits_dsp(b.shape()):
        product = registered_product(m, a, b, name=f"{name}_pp0",
                                     input_registers=stages > PRODUCT_STAGES)
        return _registered(m, [product], f"{name}_sum")[0]
    partials = []
    for n, low in enumerate(range(0, len(b), PRODUCT_PIECE_BITS)):
        piece = b[low:low + PRODUCT_PIECE_BITS]
        if b.shape().signed and low + PRODUCT_PIECE_BITS >= len(b):
            piece = piece.as_signed()
        if n > 0 and len(piece) <= LUT_PIECE_BITS:
            x, y = (a, piece) if len(piece) <= len(a) else (piece, a)
            levels = 2 if stages == PRODUCT_STAGES else 1
            regs = _registered(m, _add_levels(partial_products(x, y), levels), f"{name}_pp{n}")
            if stages > PRODUCT_STAGES:
                regs = _registered(m, _add_levels(regs, len(regs)), f"{name}_pp{n}_sum")
        else:
            if fits_dsp(a.shape()) and fits_dsp(piece.shape()):
                # In the DSP's own output register where the target has one (hwgen.hdl.dsp),
                # after its input registers with three stages.
                regs = [registered_product(m, a, piece, name=f"{name}_pp{n}",
                                           input_registers=stages > PRODUCT_STAGES)]
            else:
                regs = _registered(m, [a * piece], f"{name}_pp{n}")
                if stages > PRODUCT_STAGES:
                    regs = _registered(m, regs, f"{name}_pp{n}_wait")
        partials += [reg << low if low else reg for reg in regs]
    total, = _add_levels(partials, len(partials))
    result = Signal(total.shape(), name=f"{name}_sum")
    m.d.sync += result.eq(total)
    return result


def _registered(m, values: list[Value], name: str) -> list[Value]:
    """One register per value (``name``, or ``name_k`` for several)."""
    regs = []
    for k, value in enumerate(values):
        reg = Signal(value.shape(), name=f"{name}_{k}" if len(values) > 1 else name)
        m.d.sync += reg.eq(value)
        regs.append(reg)
    return regs


def _add_levels(terms: list[Value], levels: int) -> list[Value]:
    """``levels`` levels of a balanced adder tree over ``terms``: the partial sums left."""
    for _ in range(levels):
        if len(terms) == 1:
            break
        terms = tree_level(terms, lambda a, b: a + b)
    return terms

