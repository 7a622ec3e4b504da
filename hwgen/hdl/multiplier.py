"""The product of one processing element: a signed weight times an activation, combinational.

The power analysis (:mod:`hwgen.power.calibration`) synthesizes this block to gates to measure how
much a MAC array multiplier (docs/architecture.md §4.1) switches for each weight value. The array
itself computes every PE product with a :class:`hwgen.hdl.dsp.RegisteredProduct` (a DSP block
with its registers on ECP5), whose generic description multiplies the same operands between its
input and output registers: the multiplier measured here.

Widths
------
The product is exact (never truncated). With a signed activation it has
``weight_bits + act_bits`` bits. An unsigned activation is treated as a non-negative signed
number one bit wider, so the product has ``weight_bits + act_bits + 1`` bits; its top bit then
always equals the bit below it (the MAC array's product register, ``MacArrayConfig.prod_bits``,
has ``weight_bits + act_bits`` bits either way).
"""

from __future__ import annotations

from amaranth import Module, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwgen.hdl.params import MAX_BITS, check_bits

__all__ = ["MAX_BITS", "Multiplier"]


class Multiplier(wiring.Component):
    """``prod = w * a``, exact and combinational (no registers, no clock).

    Parameters
    ----------
    weight_bits : int
        Width of the signed (two's complement) weight ``w``, 1 to 64.
    act_bits : int
        Width of the activation ``a``, 1 to 64.
    act_signed : bool
        Whether ``a`` is signed (two's complement) or unsigned.

    Attributes
    ----------
    w : In(signed(weight_bits))
        The weight.
    a : In(signed(act_bits) or unsigned(act_bits))
        The activation.
    prod : Out(signed(prod_bits))
        The product; ``prod_bits`` is ``weight_bits + act_bits``, plus 1 for an unsigned
        activation (see the module docstring).

    Raises
    ------
    TypeError
        A width is not an integer, or ``act_signed`` is not a bool.
    ValueError
        A width is outside 1 to 64.
    """

    def __init__(self, weight_bits: int, act_bits: int, act_signed: bool):
        self.weight_bits = check_bits("weight_bits", weight_bits)
        self.act_bits = check_bits("act_bits", act_bits)
        if not isinstance(act_signed, bool):
            raise TypeError(f"act_signed must be a bool, not {act_signed!r}")
        self.act_signed = act_signed
        self.prod_bits = weight_bits + act_bits + (0 if act_signed else 1)
        super().__init__({
            "w": In(signed(weight_bits)),
            "a": In(signed(act_bits) if act_signed else unsigned(act_bits)),
            "prod": Out(signed(self.prod_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.prod.eq(self.w * self.a)
        return m
