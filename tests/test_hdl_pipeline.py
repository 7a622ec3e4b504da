"""hwgen/hdl/pipeline.py: ``replicated_register`` in Amaranth's simulator, and in Yosys, which
must keep every copy (a copy it merges away puts the high-fanout net back)."""

from __future__ import annotations

import json
import random

from amaranth import Elaboratable, Module, Signal
from amaranth.back import verilog
from amaranth.sim import Simulator

from hwgen.flows.toolchain import run_tool
from hwgen.hdl.pipeline import replicated_register

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
