"""hwgen/hdl/dsp.py: the registered product in Amaranth's simulator (the generic description),
and in Yosys for ECP5, where it must become a MULT18X18D with its output register on. The ECP5
netlist's behaviour on the cell model is checked with the whole attention engine in
tests/test_attention_sim.py and with the MAC array (clock enables included) in
tests/test_sim.py."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest
from amaranth import ClockDomain, Module, Shape, Signal, signed, unsigned
from amaranth.sim import Simulator

from hwgen.emit.design import elaborate, for_family
from hwgen.emit.verilog import write_design
from hwgen.engines.mac_array import MacArrayConfig
from hwgen.engines.sparse_attention import SparseAttentionConfig
from hwgen.flows import synth
from hwgen.flows.synth import synthesize
from hwgen.hdl.dsp import RegisteredProduct, fits_dsp, registered_product
from hwgen.hdl.primitives import Primitives, cell_models

SEED = 1130
SMALL = SparseAttentionConfig(name="attn_dsp", max_len=8, head_dim=4, topk=2, lanes=2)


def _extremes(shape: Shape) -> tuple[int, int]:
    if shape.signed:
        return -(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1
    return 0, (1 << shape.width) - 1


@pytest.mark.parametrize("a_shape, b_shape", [
    (signed(18), signed(18)),         # the widest signed operands
    (unsigned(17), signed(18)),       # the widest unsigned one, zero-extended
    (unsigned(17), unsigned(17)),
    (signed(8), unsigned(1)),
    (signed(1), signed(1)),           # -1 * -1 = 1 needs the product's extra bit
])
@pytest.mark.parametrize("input_registers", [False, True])
def test_the_product_of_one_or_two_cycles_ago_and_zero_after_reset(a_shape, b_shape,
                                                                  input_registers):
    rng = random.Random(SEED)
    dut = RegisteredProduct(a_shape, b_shape, input_registers=input_registers)
    latency = 1 + input_registers
    top, sync = Module(), ClockDomain("sync")
    top.domains.sync = sync
    top.submodules.dut = dut
    (alo, ahi), (blo, bhi) = _extremes(a_shape), _extremes(b_shape)
    pairs = [(x, y) for x in (alo, ahi, 0) for y in (blo, bhi, 0)]
    pairs += [(rng.randint(alo, ahi), rng.randint(blo, bhi)) for _ in range(200)]
    errors, checked = [], []

    async def testbench(ctx):
        for n, (x, y) in enumerate(pairs + [(0, 0)] * (latency - 1)):
            ctx.set(dut.a, x)
            ctx.set(dut.b, y)
            await ctx.tick()
            if n >= latency - 1:
                x, y = pairs[n - (latency - 1)]
                got = ctx.get(dut.p)
                checked.append(got)
                if got != x * y:
                    errors.append((x, y, got))
        # A reset clears the registers, whatever the operands: zero for `latency` cycles.
        ctx.set(dut.a, alo)
        ctx.set(dut.b, blo)
        ctx.set(sync.rst, 1)
        await ctx.tick()
        ctx.set(sync.rst, 0)
        for _ in range(latency):
            if ctx.get(dut.p) != 0:
                errors.append(("reset", ctx.get(dut.p)))
            await ctx.tick()
        if ctx.get(dut.p) != alo * blo:
            errors.append(("after reset", ctx.get(dut.p)))

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert errors == [] and len(checked) == len(pairs)


@pytest.mark.parametrize("input_registers", [False, True])
def test_the_clock_enables_hold_the_registers(input_registers):
    """``en`` holds every register, ``b_en`` (with input registers) the b register on top: the
    registers of the class docstring, step by step, under random enables and operands."""
    rng = random.Random(SEED + input_registers)
    top, sync = Module(), ClockDomain("sync")
    top.domains.sync = sync
    dut = top.submodules.dut = RegisteredProduct(signed(8), unsigned(7),
                                                 input_registers=input_registers)
    assert ("b_en" in dut.signature.members) == input_registers
    steps = [(rng.randint(-128, 127), rng.randint(0, 127), rng.random() < 0.7,
              rng.random() < 0.3) for _ in range(300)]
    errors = []

    async def testbench(ctx):
        a_reg = b_reg = p = 0
        for x, y, en, b_en in steps:
            ctx.set(dut.a, x)
            ctx.set(dut.b, y)
            ctx.set(dut.en, en)
            if input_registers:
                ctx.set(dut.b_en, b_en)
            await ctx.tick()
            if en:
                p = a_reg * b_reg if input_registers else x * y
                a_reg, b_reg = x, y if b_en else b_reg
            if ctx.get(dut.p) != p:
                errors.append((x, y, en, b_en, ctx.get(dut.p), p))

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert errors == []


def test_b_en_needs_input_registers():
    m = Module()
    with pytest.raises(ValueError, match="b_en needs input_registers"):
        registered_product(m, Signal(signed(4)), Signal(signed(4)), "mul", b_en=1)
    m._MustUse__silence = True          # refused, so never elaborated


@pytest.mark.parametrize("a_shape, b_shape, message", [
    (unsigned(18), signed(8), "a_shape must fit an 18-bit signed DSP input (at most 18 bits "
                              "signed or 17 unsigned), not unsigned(18)"),
    (signed(8), signed(19), "b_shape must fit an 18-bit signed DSP input (at most 18 bits "
                            "signed or 17 unsigned), not signed(19)"),
])
def test_an_operand_too_wide_for_the_dsp_is_refused(a_shape, b_shape, message):
    with pytest.raises(ValueError) as info:
        RegisteredProduct(a_shape, b_shape)
    assert str(info.value) == message
    assert not fits_dsp(unsigned(18)) and fits_dsp(unsigned(17)) and fits_dsp(signed(18))


def test_families():
    with pytest.raises(ValueError, match="family must be one of ecp5, not 'ice40'"):
        Primitives("ice40")
    with pytest.raises(ValueError, match="family must be one of ecp5, not 'gowin'"):
        cell_models("gowin")
    assert cell_models(None) == []
    assert all(path.is_file() for path in cell_models("ecp5"))


def test_synthesis_elaborates_again_only_when_the_family_changes_the_verilog():
    generic = elaborate(SMALL)
    assert generic.family is None and generic.dsp_products > 0
    ecp5 = for_family(generic, "ecp5")
    assert ecp5.family == "ecp5" and ecp5.dsp_products == generic.dsp_products
    assert ecp5.verilog != generic.verilog and for_family(ecp5, "ecp5") is ecp5
    assert for_family(generic, "ice40") is generic
    assert for_family(ecp5, "ice40").verilog == generic.verilog
    # A MAC array's PE products are DSP products, one per multiplier.
    macs = elaborate(MacArrayConfig(name="m2", rows=2, cols=2, sparsity="1:2"))
    assert macs.dsp_products == 4 and macs.bram_reads == 0
    assert for_family(macs, "ecp5").verilog.count("MULT18X18D #(") == 4
    # A design without DSP products or block-memory reads: the same Verilog everywhere, so no
    # second elaboration.
    plain = dataclasses.replace(macs, dsp_products=0)
    assert for_family(plain, "ecp5") is plain


def _dsp_cells(folder) -> list[dict]:
    netlist = json.loads((folder / synth.NETLIST).read_text())
    cells = netlist["modules"][SMALL.name]["cells"].values()
    return [c for c in cells if c["type"] == "MULT18X18D"]


@pytest.mark.synth
def test_for_ecp5_every_product_register_is_the_dsps_own(tmp_path):
    """Synthesized for ECP5, the design's registered products are MULT18X18D blocks with their
    output register on (and their input registers in three-stage products), one per product,
    from the Verilog elaborated for ECP5 (kept beside the generic one, which stays what the
    folder's design is). The generic Verilog gives blocks without registers: the product
    register would stay in the fabric."""
    generic, ecp5 = elaborate(SMALL), elaborate(SMALL, "ecp5")
    out = tmp_path / "out"
    report = synthesize(generic, "ecp5-85k", out_dir=out)
    assert (out / f"{SMALL.name}.v").read_text() == generic.verilog
    assert (out / f"{SMALL.name}_ecp5.v").read_text() == ecp5.verilog
    assert f"read_verilog {SMALL.name}_ecp5.v" in (out / synth.SCRIPT).read_text()
    blocks = _dsp_cells(out)
    assert len(blocks) == report.dsps == ecp5.verilog.count("MULT18X18D #(") == 14
    assert {c["parameters"]["REG_OUTPUT_CLK"] for c in blocks} == {"CLK0"}
    # The three-stage products also register their operands in the block (exact scores and
    # weighted sum, whose operands come from block RAM output registers, and the quantizer's
    # DSP pieces: 4 + 4 + 4); the two-stage ones (the exponent, the probability) do not.
    inputs = [(c["parameters"].get("REG_INPUTA_CLK", "NONE"),
               c["parameters"].get("REG_INPUTB_CLK", "NONE")) for c in blocks]
    assert inputs.count(("CLK0", "CLK0")) == 12 and inputs.count(("NONE", "NONE")) == 2

    (tmp_path / "generic").mkdir()
    written = write_design(generic, tmp_path / "generic")
    synth._yosys(SMALL.name, synth.TARGETS["ecp5-85k"], tmp_path / "generic",
                 written.verilog.name, [p.name for p in written.ports])
    blocks = _dsp_cells(tmp_path / "generic")
    assert len(blocks) == 14
    assert {c["parameters"].get("REG_OUTPUT_CLK", "NONE") for c in blocks} == {"NONE"}
