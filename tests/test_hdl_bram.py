"""hwgen/hdl/bram.py: the block memory in Amaranth's simulator against the documented timing, its
ECP5 netlist (DP16KD blocks with the output register, a registered write port's TRELLIS_FF
flip-flops, on hwgen's cell models) against the generic one under Verilator, and in Yosys, where
every read port must become blocks with REGMODE_B OUTREG and every copy keep its own write
registers.
"""

from __future__ import annotations

import json
import random
import subprocess

import pytest
from amaranth import Elaboratable, Module
from amaranth.back import verilog
from amaranth.sim import Simulator

from hwgen.emit.design import elaborate
from hwgen.engines.sparse_attention import SparseAttentionConfig
from hwgen.flows import synth
from hwgen.flows.synth import synthesize
from hwgen.flows.toolchain import run_tool
from hwgen.hdl.bram import BlockMemory, block_width
from hwgen.hdl.primitives import Primitives, cell_models

SEED = 1130
SMALL = SparseAttentionConfig(name="attn_bram", max_len=8, head_dim=4, topk=2, lanes=2)


class _Ports(Elaboratable):
    """A BlockMemory with its write port and read ports of 1 and 2 registers as top ports."""

    def __init__(self, width, depth, registered=False):
        self.mem = BlockMemory(width, depth)
        self.w = self.mem.write_port(registered)
        self.reads = [self.mem.read_port(1, "r1"), self.mem.read_port(2, "r2")]

    def ports(self):
        return [self.w.addr, self.w.data, self.w.en,
                *[s for r in self.reads for s in (r.addr, r.en, r.data)]]

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = self.mem
        return m


def _addresses(rng: random.Random, depth: int) -> int:
    """Mostly a few words at both ends (so reads hit recent writes), sometimes any word."""
    if rng.random() < 0.125:
        return rng.randrange(depth)
    low = rng.randrange(min(8, depth))
    return low if rng.random() < 0.5 else depth - 1 - low


@pytest.mark.parametrize("registered", [False, True])
@pytest.mark.parametrize("width, depth", [(20, 16), (1, 1), (7, 2048)])
def test_reads_follow_the_documented_timing(width, depth, registered):
    """Data of a read in cycle t appears in t + 1 + registers and holds while en is low; a word
    written in the cycle it is read gives its old value; a registered write port's word is
    written a cycle after its address, data and enable. The expected values come from a dict of
    the words, not from the unit."""
    rng = random.Random(SEED)
    dut = _Ports(width, depth, registered)
    errors, checked = [], [0]

    async def testbench(ctx):
        words = {}
        pending = None                   # a registered port's write, landing this cycle
        latched = [0, 0]                 # what each port's last read fetched
        history = [[], []]               # per port: latched value after each cycle
        for _ in range(400):
            waddr, wdata, wen = _addresses(rng, depth), rng.getrandbits(width), rng.random() < 0.5
            ctx.set(dut.w.addr, waddr)
            ctx.set(dut.w.data, wdata)
            ctx.set(dut.w.en, wen)
            for p, port in enumerate(dut.reads):
                addr, en = _addresses(rng, depth), rng.random() < 0.7
                ctx.set(port.addr, addr)
                ctx.set(port.en, en)
                if en:
                    latched[p] = words.get(addr, 0)
                history[p].append(latched[p])
            if registered:
                if pending:
                    words[pending[0]] = pending[1]
                pending = (waddr, wdata) if wen else None
            elif wen:
                words[waddr] = wdata
            await ctx.tick()
            for p, port in enumerate(dut.reads):
                # After the edge ending cycle t, data shows the latch as the edge ending
                # t - registers left it.
                back = port.registers
                if len(history[p]) > back:
                    expected = history[p][-1 - back]
                    got = ctx.get(port.data)
                    checked[0] += 1
                    if got != expected:
                        errors.append((p, expected, got))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert errors == [] and checked[0] > 700


#: (width, depth) pairs that use every DP16KD arrangement: 18-bit slices with a partial one, then
#: 9, 4, 2 and 1 bits per block.
ARRANGEMENTS = [(20, 16), (11, 1025), (5, 2049), (3, 4097), (2, 8193)]


def test_block_width_is_the_widest_that_is_deep_enough():
    assert [block_width(d) for _, d in ARRANGEMENTS] == [18, 9, 4, 2, 1]
    assert block_width(1024) == 18 and block_width(16384) == 1
    with pytest.raises(ValueError, match="^depth must be at most 16384, not 16385$"):
        block_width(16385)


def _testbench(pairs, seed: int, cycles: int) -> str:
    """A SystemVerilog bench that drives each generic/ECP5 pair with the same random stimulus
    and counts every cycle their read data differ."""
    decls, insts, drive, check = [], [], [], []
    for n, (width, depth) in enumerate(pairs):
        abits = max((depth - 1).bit_length(), 1)
        decls.append(f"  logic [{abits - 1}:0] wa{n}, ra{n}_1, ra{n}_2;\n"
                     f"  logic [{width - 1}:0] wd{n}, g{n}_1, g{n}_2, e{n}_1, e{n}_2;\n"
                     f"  logic we{n}, re{n}_1, re{n}_2;")
        for kind, out in (("generic", "g"), ("ecp5", "e")):
            insts.append(
                f"  {kind}{n} {kind}{n}_i(.clk(clk), .rst(rst), .write_addr(wa{n}), "
                f".write_data(wd{n}), .write_en(we{n}), .r1_addr(ra{n}_1), .r1_en(re{n}_1), "
                f".r1_data({out}{n}_1), .r2_addr(ra{n}_2), .r2_en(re{n}_2), "
                f".r2_data({out}{n}_2));")

        def addr():
            return (f"(($urandom % 8) == 0) ? {abits}'($urandom % {depth}) : "
                    f"(($urandom % 2) == 0) ? {abits}'($urandom % {min(8, depth)}) : "
                    f"{abits}'({depth - 1} - ($urandom % {min(8, depth)}))")
        drive.append(f"    wa{n} = {addr()}; wd{n} = {width}'($urandom); "
                     f"we{n} = ($urandom % 2) == 0;\n"
                     f"    ra{n}_1 = {addr()}; re{n}_1 = ($urandom % 10) < 7;\n"
                     f"    ra{n}_2 = {addr()}; re{n}_2 = ($urandom % 10) < 7;")
        check.append(f"      if (g{n}_1 !== e{n}_1 || g{n}_2 !== e{n}_2) begin\n"
                     f"        errors++;\n"
                     f"        if (errors < 10) $display(\"pair {n} cycle %0d: generic %h %h, "
                     f"ecp5 %h %h\", cycle, g{n}_1, g{n}_2, e{n}_1, e{n}_2);\n"
                     f"      end\n"
                     f"      if (g{n}_2 != 0) nonzero++;")
    nl = "\n"
    return f"""module tb(input logic clk);
  logic rst = 1;
{nl.join(decls)}
  integer cycle = 0, errors = 0, nonzero = 0;
{nl.join(insts)}
  initial void'($urandom({seed}));
  always @(negedge clk) begin
    if (cycle == {cycles}) begin
      $display("checked %0d cycles, %0d errors, %0d nonzero", cycle, errors, nonzero);
      if (errors != 0) $fatal(1, "mismatch");
      $finish;
    end
{nl.join(check)}
    rst = cycle < 2;
{nl.join(drive)}
    cycle = cycle + 1;
  end
endmodule
"""


#: The bench's clock: toggled by hand, so Verilator needs no timing support (C++20 coroutines).
_MAIN = """#include "Vtb.h"
#include "verilated.h"
int main(int argc, char **argv) {
    VerilatedContext context;
    context.commandArgs(argc, argv);
    Vtb top(&context);
    while (!context.gotFinish()) {
        top.clk = !top.clk;
        top.eval();
        context.timeInc(1);
    }
    top.final();
    return 0;
}
"""


@pytest.mark.sim
@pytest.mark.parametrize("registered", [False, True])
def test_ecp5_blocks_read_what_the_generic_memory_reads(tmp_path, registered):
    """The ECP5 elaboration (DP16KD blocks, REGMODE_B OUTREG, a registered write port's
    TRELLIS_FF flip-flops per copy, on the cell models) and the generic one, driven alike for
    3000 cycles from a reset, give the same data on every port in every cycle, for every block
    arrangement. Seed recorded: SEED."""
    sources = []
    for n, (width, depth) in enumerate(ARRANGEMENTS):
        for kind, family in (("generic", None), ("ecp5", "ecp5")):
            dut = _Ports(width, depth, registered)
            platform = Primitives(family)
            text = verilog.convert(dut, ports=dut.ports(), name=f"{kind}{n}", platform=platform,
                                   emit_src=False)
            assert platform.bram_reads == 2
            assert text.count("DP16KD #(") == (2 * -(-width // block_width(depth))
                                               if family else 0)
            abits = max((depth - 1).bit_length(), 1)
            assert text.count("TRELLIS_FF #(") == (2 * (abits + width + 1)
                                                   if family and registered else 0)
            path = tmp_path / f"{kind}{n}.v"
            path.write_text(text)
            sources.append(path.name)
    (tmp_path / "tb.sv").write_text(_testbench(ARRANGEMENTS, SEED, 3000))
    (tmp_path / "main.cpp").write_text(_MAIN)
    models = [str(p) for p in cell_models("ecp5")]
    build = run_tool("verilator", ["--cc", "--exe", "--build", "-Wno-fatal", "-Wno-lint",
                                   "-Wno-style", "--top-module", "tb", "-o", "tb", "main.cpp",
                                   "tb.sv", *sources, *models], cwd=tmp_path, timeout=900)
    assert build.returncode == 0, build.stderr[-3000:]
    proc = subprocess.run([str(tmp_path / "obj_dir" / "tb")], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    line = [s for s in proc.stdout.splitlines() if s.startswith("checked")][0]
    checked, errors, nonzero = (int(w) for w in line.replace(",", "").split()[1::2])
    assert (checked, errors) == (3000, 0) and nonzero > 1000, line


def test_refusals():
    with pytest.raises(ValueError, match="^depth must be an integer from 1 to 16384, not 0$"):
        BlockMemory(8, 0)
    with pytest.raises(ValueError, match="^depth must be an integer from 1 to 16384, not 16385$"):
        BlockMemory(8, 16385)
    mem = BlockMemory(8, 4)
    mem._MustUse__silence = True        # only its port methods are tried
    with pytest.raises(ValueError, match="^registers must be an integer of at least 1, not 0$"):
        mem.read_port(0)
    with pytest.raises(ValueError, match="^registered must be True or False, not 1$"):
        mem.write_port(1)
    mem.write_port()
    with pytest.raises(ValueError, match="^a BlockMemory has one write port$"):
        mem.write_port()


def test_the_attention_engine_counts_its_block_ram_read_ports():
    """Q (prepare and exact), K (prepare and exact) and V (weighted sum): 5 at rows 1; q4 (the
    estimate) 1 per row unit and k4 1 per lane: 8 at rows 1 and 2 lanes."""
    assert elaborate(SMALL).bram_reads == 5 + 1 + SMALL.lanes


@pytest.mark.synth
def test_for_ecp5_every_read_port_uses_the_blocks_output_register(tmp_path):
    """Synthesized for ECP5, the attention engine's token, q4 and k4 memories are DP16KD
    blocks with REGMODE_B OUTREG, one per 18-bit slice per read port."""
    out = tmp_path / "out"
    report = synthesize(elaborate(SMALL), "ecp5-85k", out_dir=out)
    netlist = json.loads((out / synth.NETLIST).read_text())
    cells = netlist["modules"][SMALL.name]["cells"].values()
    blocks = [c for c in cells if c["type"] == "DP16KD"]
    # Q/K/V rows of d = 4 elements of 8 bits: 32 bits, two 18-bit slices for each of 5 read
    # ports; q4 / k4 rows of 4 x 4 bits: one slice for each of 1 + 2 read ports.
    assert len(blocks) == report.brams == 5 * 2 + 3
    assert {c["parameters"]["REGMODE_B"] for c in blocks} == {"OUTREG"}
    # The token and k4 memories' writes are registered per copy: each of the 5 token copies and
    # of the k4 lanes keeps its own write-enable flip-flop (Yosys merges identical registers, not
    # these instances).
    enables = [name for name, c in netlist["modules"][SMALL.name]["cells"].items()
               if c["type"] == "TRELLIS_FF" and "write_en_ff" in name]
    assert len(enables) == 5 + SMALL.lanes, enables
