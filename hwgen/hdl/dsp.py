"""A product registered once, in the FPGA's DSP block where the target has one
(docs/architecture.md §3, "Pipelining and DSP blocks").

Yosys maps a ``*`` to an ECP5 ``MULT18X18D`` with none of the block's own registers
(``techlibs/lattice/dsp_map_18x18.v``), and neither Yosys nor nextpnr moves a fabric register into
the block afterwards. The product register of a pipeline then sits in the fabric, and the path to
it runs through the whole multiplier and the routing out of the DSP column: about 3.9 ns of
multiplier plus 2-3 ns of routing on an ECP5-85K, the critical path of the attention engine.
With the block's output register on, the multiplier ends inside the block (nextpnr times it as a
3.5 ns setup at the DSP's inputs) and its output leaves from a register. With its input registers
on as well, the multiplier runs between two of the block's own registers (nextpnr's
``MULT18X18D_REGS_ALL`` timing: only a setup at the inputs, about 0.6 ns from clock to
output), so the routing into the DSP column gets a whole cycle to itself: a
product of two registered operands that spends its first register stage in the DSP's input
registers instead of in fabric registers in front of them (``input_registers=True``).

:class:`RegisteredProduct` is that product register. Its description depends on the platform it is
elaborated for (Amaranth hands every ``elaborate`` the platform given to the converter):

* no platform, or a family without primitives here (simulation, lint, iCE40, whose ``synth_ice40
  -dsp`` packs fabric registers into its ``SB_MAC16`` itself): ``p <= a * b`` in Amaranth;
* :class:`~hwgen.hdl.primitives.Primitives` for ``"ecp5"``: an instance of ``MULT18X18D`` with
  ``REG_OUTPUT_CLK = "CLK0"`` (and ``REG_INPUTA_CLK = REG_INPUTB_CLK = "CLK0"`` with input
  registers), its registers reset by the domain's synchronous reset like the generic ones.

Clock enables: ``en`` holds every register of the block (a pipeline stall; ``CE0`` of the
output and A input registers), and with input registers ``b_en`` holds the B input register on
its own (``CE1``, driven with ``en & b_en``), so an operand that changes rarely, such as a
stationary weight, can live in the DSP's B register and be reloaded only when wanted. Both are 1
unless driven.

Both give the same value in the same cycle, reset included. Yosys ships no simulation model of
``MULT18X18D`` (only a black box), so the ECP5 netlist is simulated with
``hwgen/data/ecp5_cells_sim.v`` (:func:`hwgen.hdl.primitives.cell_models`), a model of the cell
as the ECP5 sysDSP documentation (Lattice TN1267) describes it, restricted to the modes used
here; tests run the attention engine elaborated for ECP5 on that model against the golden
model.
"""

from __future__ import annotations

from amaranth import ClockSignal, Module, ResetSignal, Signal, signed
from amaranth.hdl import Instance, Shape, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwgen.hdl.primitives import Primitives

__all__ = ["DSP_BITS", "RegisteredProduct", "add_product", "fits_dsp", "registered_product"]

#: Width of the signed operands of one ECP5 ``MULT18X18D``.
DSP_BITS = 18


def fits_dsp(shape: Shape) -> bool:
    """A value of ``shape`` is an 18-bit signed DSP operand after sign or zero extension."""
    shape = Shape.cast(shape)
    return shape.width <= DSP_BITS - (not shape.signed)


class RegisteredProduct(wiring.Component):
    """``p = a * b`` of the previous cycle (0 after reset), exact; with ``input_registers``, of
    the cycle before that (0 for the two cycles after reset). Counted in cycles with ``en``
    high: the registers hold while it is low.

    In register terms, at a clock edge (reset first: every register becomes 0)::

        without input registers     p <= a * b              if en
        with input registers        a_reg <= a              if en
                                    b_reg <= b              if en & b_en
                                    p <= a_reg * b_reg      if en

    Parameters
    ----------
    a_shape, b_shape : Shape
        Shapes of the operands; each must fit an 18-bit signed DSP input (:func:`fits_dsp`).
    input_registers : bool
        Register the operands too (in the DSP's input registers on ECP5): two register stages.

    Attributes
    ----------
    a : In(a_shape)
    b : In(b_shape)
    en : In(1), 1 unless driven
        Clock enable of every register.
    b_en : In(1), 1 unless driven; with ``input_registers`` only
        Clock enable of the b input register, on top of ``en``.
    p : Out(shape of ``a * b`` in Amaranth)
        Registered; ``len(a) + len(b)`` bits, signed if either operand is.

    Raises
    ------
    ValueError
        An operand is too wide for the DSP.
    """

    def __init__(self, a_shape, b_shape, *, input_registers: bool = False):
        for name, shape in (("a_shape", a_shape), ("b_shape", b_shape)):
            if not fits_dsp(shape):
                self._MustUse__silence = True       # refused, so never elaborated
                raise ValueError(f"{name} must fit an 18-bit signed DSP input (at most 18 bits "
                                 f"signed or 17 unsigned), not {Shape.cast(shape)!r}")
        self.input_registers = bool(input_registers)
        a_shape, b_shape = Shape.cast(a_shape), Shape.cast(b_shape)
        p_shape = (Signal(a_shape) * Signal(b_shape)).shape()
        members = {"a": In(a_shape), "b": In(b_shape), "en": In(1, init=1), "p": Out(p_shape)}
        if self.input_registers:
            members["b_en"] = In(1, init=1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        if isinstance(platform, Primitives):
            platform.dsp_products += 1
        if getattr(platform, "family", None) == "ecp5":
            # Sign- or zero-extended to 18 bits and multiplied as signed, the 36-bit product is
            # exact, and so are its low len(p) bits.
            a, b = Signal(signed(DSP_BITS)), Signal(signed(DSP_BITS))
            product = Signal(2 * DSP_BITS)
            m.d.comb += [a.eq(self.a), b.eq(self.b), self.p.eq(product[:len(self.p)])]
            inputs = "CLK0" if self.input_registers else "NONE"
            b_en = self.en & self.b_en if self.input_registers else self.en
            m.submodules.mult18x18d = Instance(
                "MULT18X18D",
                p_REG_INPUTA_CLK=inputs, p_REG_INPUTA_CE="CE0", p_REG_INPUTA_RST="RST0",
                p_REG_INPUTB_CLK=inputs, p_REG_INPUTB_CE="CE1", p_REG_INPUTB_RST="RST0",
                p_REG_OUTPUT_CLK="CLK0", p_REG_OUTPUT_CE="CE0", p_REG_OUTPUT_RST="RST0",
                p_RESETMODE="SYNC", p_GSR="DISABLED",
                i_SIGNEDA=1, i_SIGNEDB=1, i_SOURCEA=0, i_SOURCEB=0,
                i_CLK0=ClockSignal(), i_CE0=self.en, i_CE1=b_en, i_RST0=ResetSignal(),
                **{f"i_A{n}": a[n] for n in range(DSP_BITS)},
                **{f"i_B{n}": b[n] for n in range(DSP_BITS)},
                **{f"i_C{n}": 0 for n in range(DSP_BITS)},
                **{f"o_P{n}": product[n] for n in range(2 * DSP_BITS)})
        else:
            a, b = self.a, self.b
            if self.input_registers:
                a, b = Signal.like(self.a, name="a_reg"), Signal.like(self.b, name="b_reg")
                with m.If(self.en):
                    m.d.sync += a.eq(self.a)
                    with m.If(self.b_en):
                        m.d.sync += b.eq(self.b)
            with m.If(self.en):
                m.d.sync += self.p.eq(a * b)
        return m


def registered_product(m: Module, a, b, name: str, *, input_registers: bool = False,
                       en=None, b_en=None) -> Value:
    """``a * b`` one cycle later, or two with ``input_registers`` (:class:`RegisteredProduct`,
    added to ``m`` as ``name``), with the clock enables ``en`` and ``b_en`` if given."""
    if b_en is not None and not input_registers:
        raise ValueError("b_en needs input_registers: without them there is no b register")
    a, b = Value.cast(a), Value.cast(b)
    product = RegisteredProduct(a.shape(), b.shape(), input_registers=input_registers)
    return add_product(m, product, name, a, b, en=en, b_en=b_en)


def add_product(m: Module, product: wiring.Component, name: str, a, b, *, en=None,
                b_en=None) -> Value:
    """Add a product block (:class:`RegisteredProduct` or
    :class:`hwgen.hdl.shift.ShiftProduct`: ports ``a``, ``b``, ``en``, ``b_en``, ``p``) to ``m``
    as ``name``, drive its operands and the clock enables given, and return its ``p``."""
    m.submodules[name] = product
    m.d.comb += [product.a.eq(a), product.b.eq(b)]
    if en is not None:
        m.d.comb += product.en.eq(en)
    if b_en is not None:
        m.d.comb += product.b_en.eq(b_en)
    return product.p
