"""hwgen/hdl/pipeline.py: ``pipelined_product`` (DSP and LUT pieces) and ``replicated_register``
in Amaranth's simulator, and the copies in Yosys, which must keep every one (a copy it merges away
puts the high-fanout net back)."""

from __future__ import annotations

import json
import random

import pytest
from amaranth import Elaboratable, Module, Signal, signed, unsigned
from amaranth.back import verilog
from amaranth.sim import Simulator

from hwgen.flows.toolchain import run_tool
from hwgen.hdl.pipeline import PRODUCT_STAGES, pipelined_product, replicated_register

SEED = 1207


class _Copies(Elaboratable):
    def __init__(self, width, copies):
        self.value, self.load = Signal(width), Signal()
        self.outs = [Signal(width, name=f"out{n}") for n in range(copies)]
        self.copies = copies

    def elaborate(self, platform):
        m = Module()
        regs = replicated_register(m, self.value, self.load, self.copies, name="r")
        m.d.comb += [o.eq(r) for o, r in zip(self.outs, regs)]
        return m


def test_every_copy_holds_the_last_loaded_value():
    rng = random.Random(SEED)
    dut = _Copies(12, 5)
    errors = []

    async def testbench(ctx):
        expected = None
        for _ in range(200):
            load = rng.random() < 0.2
            ctx.set(dut.value, rng.randrange(1 << 12))
            ctx.set(dut.load, load)
            if load:
                expected = ctx.get(dut.value)
            await ctx.tick()
            if expected is not None:
                got = [ctx.get(o) for o in dut.outs]
                if got != [expected] * dut.copies:
                    errors.append((expected, got))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert errors == []


def test_yosys_keeps_every_copy(tmp_path):
    dut = _Copies(12, 6)
    ports = [dut.value, dut.load, *dut.outs]
    (tmp_path / "copies.v").write_text(verilog.convert(dut, ports=ports, name="copies"))
    # synth_ecp5 up to LUT mapping: every optimization that could merge registers has run.
    script = ("read_verilog copies.v; synth_ecp5 -top copies -run :map_luts; "
              "tee -q -o stat.json stat -json")
    proc = run_tool("yosys", ["-q", "-p", script], cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    stat = json.loads((tmp_path / "stat.json").read_text())
    cells = stat["modules"]["\\copies"]["num_cells_by_type"]
    assert cells.get("TRELLIS_FF") == 6 * 12, cells


class _Product(Elaboratable):
    def __init__(self, a_shape, b_shape, stages):
        self.a, self.b = Signal(a_shape), Signal(b_shape)
        self.stages = stages

    def elaborate(self, platform):
        m = Module()
        self.p = pipelined_product(m, self.a, self.b, name="p", stages=self.stages)
        return m


@pytest.mark.parametrize("a_shape, b_shape", [
    (signed(8), unsigned(27)),        # the quantizer: one DSP piece and a 10-bit LUT piece
    (unsigned(16), unsigned(20)),     # prob = exp * rr: a 3-bit LUT piece
    (signed(16), signed(20)),         # a signed LUT piece (the sign bit's term negated)
    (signed(4), unsigned(27)),        # a LUT piece wider than the other factor
    (signed(9), signed(8)),           # one DSP piece only
    (signed(18), signed(45)),         # two DSP pieces and a signed 11-bit DSP piece
])
@pytest.mark.parametrize("stages", [PRODUCT_STAGES, PRODUCT_STAGES + 1])
def test_pipelined_product_is_exact_after_its_stages(a_shape, b_shape, stages):
    rng = random.Random(SEED)
    dut = _Product(a_shape, b_shape, stages)
    sim = Simulator(dut)
    errors, checked = [], []

    def extremes(shape):
        lo = -(1 << (shape.width - 1)) if shape.signed else 0
        hi = (1 << (shape.width - 1)) - 1 if shape.signed else (1 << shape.width) - 1
        return lo, hi

    (alo, ahi), (blo, bhi) = extremes(a_shape), extremes(b_shape)
    pairs = [(x, y) for x in (alo, ahi, 0, -1 if a_shape.signed else 1)
             for y in (blo, bhi, 0, -1 if b_shape.signed else 1)]
    pairs += [(rng.randint(alo, ahi), rng.randint(blo, bhi)) for _ in range(300)]

    async def testbench(ctx):
        history = []
        for x, y in pairs + [(0, 0)] * (stages - 1):
            ctx.set(dut.a, x)
            ctx.set(dut.b, y)
            history.append(x * y)
            await ctx.tick()
            if len(history) >= stages:      # the product of ``stages`` ticks ago
                expected = history[-stages]
                got = ctx.get(dut.p)
                checked.append(got)
                if got != expected:
                    errors.append((expected, got))

    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert errors == [] and len(checked) == len(pairs)


@pytest.mark.parametrize("stages", [1, 4, "3"])
def test_pipelined_product_refuses_other_stage_counts(stages):
    with pytest.raises(ValueError, match=rf"^stages must be 2 or 3, not {stages!r}$"):
        pipelined_product(Module(), Signal(8), Signal(27), stages=stages)
