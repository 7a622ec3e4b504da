"""hwgen/hdl/pipeline.py: ``pipelined_product`` (DSP and LUT pieces), ``pipelined_dot_product``
and ``replicated_register`` in Amaranth's simulator; in Yosys the copies, which must keep every one
(a copy it merges away puts the high-fanout net back), and the dot product, which must use no DSP
and fewer LUTs than the products it replaces."""

from __future__ import annotations

import json
import random

import pytest
from amaranth import Elaboratable, Module, Signal, signed, unsigned
from amaranth.back import verilog
from amaranth.sim import Simulator

from hwgen.flows.toolchain import run_tool
from hwgen.hdl.arith import partial_products
from hwgen.hdl.pipeline import (
    PRODUCT_STAGES,
    dot_product_stages,
    pipelined_dot_product,
    pipelined_product,
    pipelined_tree,
    pulse_copies,
    replicated_register,
)

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


def _flip_flops(dut, ports, name, tmp_path) -> int:
    """ECP5 flip-flops of ``dut`` after ``synth_ecp5`` up to LUT mapping, when every
    optimization that could merge registers has run."""
    (tmp_path / f"{name}.v").write_text(verilog.convert(dut, ports=ports, name=name))
    script = (f"read_verilog {name}.v; synth_ecp5 -top {name} -run :map_luts; "
              f"tee -q -o stat.json stat -json")
    proc = run_tool("yosys", ["-q", "-p", script], cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    stat = json.loads((tmp_path / "stat.json").read_text())
    return stat["modules"][f"\\{name}"]["num_cells_by_type"].get("TRELLIS_FF")


def test_yosys_keeps_every_copy(tmp_path):
    dut = _Copies(12, 6)
    assert _flip_flops(dut, [dut.value, dut.load, *dut.outs], "copies", tmp_path) == 6 * 12


class _Pulses(Elaboratable):
    """``pulse_copies`` of ``pulse``, loading ``replicated_register`` copies of ``value``."""

    def __init__(self, copies):
        self.pulse, self.value = Signal(), Signal(8)
        self.outs = [Signal(name=f"out{n}") for n in range(copies)]
        self.held = [Signal(8, name=f"held{n}") for n in range(copies)]
        self.copies = copies

    def elaborate(self, platform):
        m = Module()
        pulses = pulse_copies(m, self.pulse, self.copies, name="p")
        held = replicated_register(m, self.value, pulses, self.copies, name="h")
        m.d.comb += [o.eq(p) for o, p in zip(self.outs, pulses)]
        m.d.comb += [o.eq(h) for o, h in zip(self.held, held)]
        return m


def test_pulse_copies_are_the_pulse_a_cycle_later_and_load_the_copies():
    rng = random.Random(SEED)
    dut = _Pulses(4)
    errors, pulses = [], 0

    async def testbench(ctx):
        nonlocal pulses
        before, loaded = 0, None
        for _ in range(400):
            # Never high in two consecutive cycles (the rule pulse_copies states).
            pulse = int(not before and rng.random() < 0.3)
            value = rng.randrange(256)
            ctx.set(dut.pulse, pulse)
            ctx.set(dut.value, value)
            await ctx.tick()
            pulses += pulse
            got = [ctx.get(o) for o in dut.outs]
            if got != [pulse] * dut.copies:
                errors.append(("pulse", pulse, got))
            if before:              # the copies load the value of the cycle after the pulse
                loaded = value
            held = [ctx.get(h) for h in dut.held]
            if loaded is not None and held != [loaded] * dut.copies:
                errors.append(("held", loaded, held))
            before = pulse

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert errors == [] and pulses > 50


def test_yosys_keeps_every_pulse_copy(tmp_path):
    dut = _Pulses(6)
    # The held copies are not ports here, so only the pulse copies remain.
    assert _flip_flops(dut, [dut.pulse, dut.value, *dut.outs], "pulses", tmp_path) == 6


def test_yosys_keeps_every_copy_with_a_load_of_its_own(tmp_path):
    """Copies loaded by pulse copies hold their own value (no ring between them) and still are
    not merged: 6 pulse copies and 6 copies of 8 bits."""
    dut = _Pulses(6)
    ports = [dut.pulse, dut.value, *dut.outs, *dut.held]
    assert _flip_flops(dut, ports, "held", tmp_path) == 6 + 6 * 8


def test_replicated_register_refuses_a_wrong_number_of_loads():
    with pytest.raises(ValueError, match=r"^load must be one signal or 3, not 2$"):
        replicated_register(Module(), Signal(4), [Signal(), Signal()], 3)


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


def _extremes(shape):
    lo = -(1 << (shape.width - 1)) if shape.signed else 0
    hi = (1 << (shape.width - 1)) - 1 if shape.signed else (1 << shape.width) - 1
    return lo, hi


class _Dot(Elaboratable):
    """``sum(a[c] * b[c])`` by :func:`pipelined_dot_product`, or (``planes=False``) as the
    registered LUT products and their pipelined sum it replaced in the attention estimate."""

    def __init__(self, n, a_shape, b_shape, planes=True):
        self.a = [Signal(a_shape, name=f"a{c}") for c in range(n)]
        self.b = [Signal(b_shape, name=f"b{c}") for c in range(n)]
        self.out = Signal(32)
        self.planes = planes

    def elaborate(self, platform):
        m = Module()
        if self.planes:
            value, self.stages = pipelined_dot_product(m, self.a, self.b, name="dot")
        else:
            prods = []
            for c, (x, y) in enumerate(zip(self.a, self.b)):
                p = Signal(signed(len(x) + len(y)), name=f"p{c}")
                terms = partial_products(x, y)
                m.d.sync += p.eq(sum(terms[1:], terms[0]))
                prods.append(p)
            value, _ = pipelined_tree(m, prods, name="sum")
        m.d.comb += self.out.eq(value)
        return m


@pytest.mark.parametrize("n, a_shape, b_shape", [
    (16, signed(4), signed(4)),       # the attention estimate at head_dim 16
    (32, signed(4), signed(4)),       # head_dim 32
    (1, signed(4), signed(4)),        # one pair: only the planes' combination
    (6, signed(3), unsigned(3)),      # an unsigned b: no plane subtracted
    (5, signed(5), signed(1)),        # a lone sign plane: negated, one more stage
    (3, unsigned(8), signed(2)),      # an unsigned a
    (7, signed(4), signed(8)),        # est_bits 8: three combining levels
])
def test_pipelined_dot_product_is_exact_after_its_stages(n, a_shape, b_shape):
    rng = random.Random(SEED)
    dut = _Dot(n, a_shape, b_shape)
    (alo, ahi), (blo, bhi) = _extremes(a_shape), _extremes(b_shape)
    vectors = [([x] * n, [y] * n) for x in (alo, ahi) for y in (blo, bhi)]
    vectors += [([rng.randint(alo, ahi) for _ in range(n)], [rng.randint(blo, bhi) for _ in range(n)])
                for _ in range(300)]
    sim = Simulator(dut)
    errors, checked = [], []

    async def testbench(ctx):
        stages = dut.stages
        history = []
        for xs, ys in vectors + [([0] * n, [0] * n)] * (stages - 1):
            for sig, v in zip(dut.a + dut.b, xs + ys):
                ctx.set(sig, v)
            history.append(sum(x * y for x, y in zip(xs, ys)))
            await ctx.tick()
            if len(history) >= stages:      # the dot product of ``stages`` ticks ago
                got = ctx.get(dut.out)
                got -= (1 << 32) if got >> 31 else 0
                checked.append(got)
                if got != history[-stages]:
                    errors.append((history[-stages], got))

    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert dut.stages == dot_product_stages(n, b_shape.width, b_shape.signed)
    assert errors == [] and len(checked) == len(vectors)


@pytest.mark.parametrize("n, width, signed_, stages", [
    (16, 4, True, 3), (32, 4, True, 4), (1, 4, True, 1), (1, 1, False, 1), (1, 1, True, 2),
    (5, 1, True, 3), (2, 8, True, 2),
])
def test_dot_product_stages(n, width, signed_, stages):
    # Levels: ceil(log2 n) for the planes plus ceil(log2 width) to combine them, two per stage.
    assert dot_product_stages(n, width, signed_) == stages


def test_pipelined_dot_product_refuses_mismatched_operands():
    with pytest.raises(ValueError, match=r"^a and b must hold the same number of operands "
                                         r"\(at least one\), not 2 and 3$"):
        pipelined_dot_product(Module(), [Signal(4)] * 2, [Signal(4)] * 3)
    with pytest.raises(ValueError, match=r"^the operands of b must all have the same shape$"):
        pipelined_dot_product(Module(), [Signal(4)] * 2, [Signal(4), Signal(signed(4))])


def _ecp5_cells(dut, tmp_path, name):
    ports = [*dut.a, *dut.b, dut.out]
    (tmp_path / f"{name}.v").write_text(verilog.convert(dut, ports=ports, name=name))
    script = f"read_verilog {name}.v; synth_ecp5 -top {name}; tee -q -o {name}.json stat -json"
    proc = run_tool("yosys", ["-q", "-p", script], cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads((tmp_path / f"{name}.json").read_text())["modules"][f"\\{name}"][
        "num_cells_by_type"]


def test_dot_product_is_lut_logic_smaller_than_summed_products(tmp_path):
    # One lane of the attention estimate (16 pairs of 4 x 4 bits) on ECP5: LUT4 plus the two
    # LUT4s of each carry cell (CCU2C), as the synthesis report counts them.
    def luts(cells):
        return cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0)

    planes = _ecp5_cells(_Dot(16, signed(4), signed(4)), tmp_path, "planes")
    products = _ecp5_cells(_Dot(16, signed(4), signed(4), planes=False), tmp_path, "products")
    assert "MULT18X18D" not in planes and "MULT18X18D" not in products
    assert luts(planes) < 0.92 * luts(products), (planes, products)
