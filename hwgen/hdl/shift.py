"""Multiplier-free product of a power-of-two weight: a shift, a negation and a zero gate
(docs/architecture.md §4.1, shift PEs; after ShiftAddNAS / ShiftAddViT, which replace
multiplications by shifts).

A ``weight_bits``-bit power-of-two weight (the ``pow2`` weight set: 0, ±1, ±2, ...,
±2^(weight_bits-2) and -2^(weight_bits-1)) is held as a *shift code* of three fields, packed as
Amaranth lays out :func:`code_layout` (first field at the least significant bit)::

    shift    shift_bits(weight_bits) bits   k, the weight's magnitude is 2^k (0 .. weight_bits-1)
    neg      1 bit                          the weight is negative
    nonzero  1 bit                          the weight is not 0

so weight = 0 if not nonzero, else (-1)^neg * 2^shift. The flag says *nonzero* rather than
*zero* so that the all-zero pattern (the registers' reset and initial value, and what unused
codebook indices decode to) is the weight 0, as in a multiplier's weight register.

Widths: with an activation of ``act_bits`` bits the product has ``weight_bits + act_bits`` bits,
signed, the width of :attr:`MacArrayConfig.prod_bits`: the largest magnitude is
2^(weight_bits-1) * 2^(act_bits-1) (signed activation) or 2^(weight_bits-1) * (2^act_bits - 1)
(unsigned), below 2^(weight_bits+act_bits-1) except for the first, which is +2^(wb+ab-2) and
fits as well. So the product is exact for every code :func:`encode` makes, including
-2^(weight_bits-1) times the most negative activation. When ``weight_bits`` is not a power of
two the shift field can hold shifts above ``weight_bits - 1``, which no weight has and
:func:`encode` never makes; the block then keeps the low ``weight_bits + act_bits`` bits of
``±a * 2^shift`` (wrap).

:class:`ShiftMultiplier` is the combinational product; :class:`ShiftProduct` puts it between
the same three registers as :class:`hwgen.hdl.dsp.RegisteredProduct` with input registers
(``a_reg``, ``b_reg``, ``p``, the same clock enables, the same two cycles), so a MAC array PE
can swap one for the other without changing its pipeline. It is fabric logic on every target:
no DSP block.
"""

from __future__ import annotations

import numpy as np
from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.hdl import Shape, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hwgen.hdl.dsp import add_product
from hwgen.hdl.params import check_bits

__all__ = ["ShiftMultiplier", "ShiftProduct", "code_layout", "encode", "shift_bits",
           "shift_product"]


def shift_bits(weight_bits: int) -> int:
    """Width of the shift field: enough for every shift 0 .. weight_bits - 1 (at least 1)."""
    return max(1, (weight_bits - 1).bit_length())


def code_layout(weight_bits: int) -> data.StructLayout:
    """The shift code of a ``weight_bits``-bit power-of-two weight (see the module doc)."""
    return data.StructLayout({"shift": unsigned(shift_bits(weight_bits)), "neg": 1,
                              "nonzero": 1})


def encode(weights, weight_bits: int) -> np.ndarray:
    """The packed shift codes of ``weights`` (int64 array of the same shape).

    Raises
    ------
    ValueError
        A weight is not 0 or a signed power of two in the ``weight_bits``-bit range (the first
        one is named).
    """
    w = np.asarray(weights, dtype=np.int64)
    magnitude = np.abs(w)
    shift = np.zeros_like(w)
    nonzero = w != 0
    shift[nonzero] = np.log2(magnitude[nonzero]).round().astype(np.int64)
    valid = ~nonzero | ((np.left_shift(1, shift) == magnitude)
                        & ((shift < weight_bits - 1) | ((shift == weight_bits - 1) & (w < 0))))
    if not valid.all():
        bad = int(w[~valid].flat[0])
        raise ValueError(f"weight {bad} is not 0 or a signed power of two in the "
                         f"{weight_bits}-bit weight range")
    sb = shift_bits(weight_bits)
    return (shift | ((w < 0).astype(np.int64) << sb) | (nonzero.astype(np.int64) << (sb + 1)))


class ShiftMultiplier(wiring.Component):
    """``prod = w * a`` for a power-of-two weight given as its shift code, combinational.

    Parameters
    ----------
    weight_bits : int
        Width of the weight the code stands for, 1 to 64.
    act_bits : int
        Width of the activation, 1 to 64.
    act_signed : bool
        Whether the activation is signed (two's complement) or unsigned.

    Attributes
    ----------
    w : In(code_layout(weight_bits))
        The weight's shift code.
    a : In(signed(act_bits) or unsigned(act_bits))
    prod : Out(signed(weight_bits + act_bits))
        ``0`` if not ``w.nonzero``, else ``(-1)^w.neg * (a << w.shift)``: exact for every code
        :func:`encode` makes (see the module doc).
    """

    def __init__(self, weight_bits: int, act_bits: int, act_signed: bool):
        self.weight_bits = check_bits("weight_bits", weight_bits)
        self.act_bits = check_bits("act_bits", act_bits)
        if not isinstance(act_signed, bool):
            raise TypeError(f"act_signed must be a bool, not {act_signed!r}")
        super().__init__({
            "w": In(code_layout(weight_bits)),
            "a": In(signed(act_bits) if act_signed else unsigned(act_bits)),
            "prod": Out(signed(weight_bits + act_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        # a * 2^shift in the product's width (a barrel shifter); sign- or zero-extended as a is.
        shifted = Signal(signed(len(self.prod)))
        m.d.comb += shifted.eq(self.a << self.w.shift)
        # The negation cannot overflow: |shifted| < 2^(len(prod) - 1) for every valid code.
        m.d.comb += self.prod.eq(Mux(self.w.nonzero, Mux(self.w.neg, -shifted, shifted), 0))
        return m


class ShiftProduct(wiring.Component):
    """:class:`ShiftMultiplier` between registers, cycle for cycle a
    :class:`hwgen.hdl.dsp.RegisteredProduct` with ``input_registers=True``.

    At a clock edge (reset first: every register becomes 0, i.e. the weight 0)::

        a_reg <= a                  if en
        b_reg <= b                  if en & b_en
        p     <= b_reg * a_reg      if en       (the weight b_reg stands for)

    Parameters
    ----------
    a_shape : Shape
        Shape of the activation, 1 to 64 bits.
    weight_bits : int
        Width of the power-of-two weights, 1 to 64.

    Attributes
    ----------
    a : In(a_shape)
    b : In(code_layout(weight_bits))
        The weight's shift code.
    en : In(1), 1 unless driven
        Clock enable of every register.
    b_en : In(1), 1 unless driven
        Clock enable of the weight register, on top of ``en``.
    p : Out(signed(weight_bits + len(a)))
        Registered product.
    """

    def __init__(self, a_shape, weight_bits: int):
        self.a_shape = Shape.cast(a_shape)
        self.weight_bits = check_bits("weight_bits", weight_bits)
        check_bits("a_shape width", self.a_shape.width)
        super().__init__({
            "a": In(self.a_shape), "b": In(code_layout(weight_bits)),
            "en": In(1, init=1), "b_en": In(1, init=1),
            "p": Out(signed(weight_bits + self.a_shape.width)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.shift = shift = ShiftMultiplier(self.weight_bits, self.a_shape.width,
                                                     self.a_shape.signed)
        # Named as RegisteredProduct's generic registers, which the energy model reads.
        a_reg = Signal(self.a_shape, name="a_reg")
        b_reg = Signal(code_layout(self.weight_bits), name="b_reg")
        with m.If(self.en):
            m.d.sync += [a_reg.eq(self.a), self.p.eq(shift.prod)]
            with m.If(self.b_en):
                m.d.sync += b_reg.eq(self.b)
        m.d.comb += [shift.a.eq(a_reg), shift.w.eq(b_reg)]
        return m


def shift_product(m: Module, a, code, name: str, *, weight_bits: int, en=None,
                  b_en=None) -> Value:
    """The weight ``code`` stands for times ``a``, two cycles later (:class:`ShiftProduct`,
    added to ``m`` as ``name``), with the clock enables ``en`` and ``b_en`` if given."""
    a = Value.cast(a)
    return add_product(m, ShiftProduct(a.shape(), weight_bits), name, a, code, en=en, b_en=b_en)
