"""Synthesis with the real YoWASP Yosys and nextpnr (hwgen/flows/synth.py). No tool is mocked
(one test feeds Yosys a broken script to make it fail); tests that run the tools are marked
``synth``.

Designs are the smallest that show each behaviour: a 2x2 mac_array (4 multipliers) fits both
targets; a 4x4 (16 multipliers) does not fit the 8 DSPs of an iCE40 UP5K. The 2x2 runs nextpnr
with two placement seeds on ECP5 and with the default seed on iCE40.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from amaranth import Module, Signal
from amaranth.back import verilog

from hwgen import cli
from hwgen.config import ConfigError
from hwgen.emit.folders import MARKER, FolderError, publish_folder
from hwgen.engines.mac_array import MacArrayConfig
from hwgen.flows import synth
from hwgen.flows.synth import TARGETS, SynthError, SynthReport, default_out_dir, synthesize
from hwgen.hdl.pipeline import register_copies

SMALL = MacArrayConfig(name="m2", rows=2, cols=2)

# ecp5 runs at its default clock, ice40 at an explicit one, so both paths are covered.
FREQ = {"ecp5-85k": None, "ice40-up5k": 30.0}
# ecp5 runs two nextpnr seeds (the lower first: the reported seed need not be the first one),
# ice40 the default seed.
SEEDS = {"ecp5-85k": (3, 2), "ice40-up5k": None}


@pytest.fixture(scope="module", params=sorted(TARGETS))
def small(request, tmp_path_factory):
    target = request.param
    out = tmp_path_factory.mktemp(f"synth-{target}") / "out"
    messages: list[str] = []
    seeds = {} if SEEDS[target] is None else {"seeds": SEEDS[target]}
    report = synthesize(SMALL, target, out_dir=out, progress=messages.append,
                        freq_mhz=FREQ[target], **seeds)
    return target, out, report, messages


def lower_median(values):
    """The documented median: the middle value, the lower middle one for an even count."""
    return sorted(values)[(len(values) - 1) // 2]


@pytest.mark.synth
def test_small_design_report(small):
    target, out, rep, _ = small
    tgt = TARGETS[target]
    assert rep.target == target
    assert rep.fits is True and rep.overflow == [] and rep.counted_by == "nextpnr"
    # One multiplier per PE, each in its own DSP block on both families; no memories.
    assert rep.dsps == SMALL.multipliers == 4
    assert rep.brams == 0
    assert 0 < rep.luts < rep.capacity["luts"]
    # At least the three 32-bit performance counters are plain flip-flops.
    assert 3 * 32 <= rep.ffs < rep.capacity["ffs"]
    assert rep.fmax_mhz is not None and 10 < rep.fmax_mhz < 1000
    expected_mhz = tgt.default_mhz if FREQ[target] is None else FREQ[target]
    assert rep.target_mhz == expected_mhz
    # The device capacities nextpnr reported are the ones the pre-check uses.
    assert rep.capacity == tgt.capacity
    assert rep.tools["yosys"].startswith("Yosys ")
    assert "nextpnr" in rep.tools[tgt.nextpnr]


@pytest.mark.synth
def test_small_design_seeds(small):
    """Fmax is the lower median over the seeds, reported with the seed that reached it; every
    seed's run is kept, and the files without a seed in their name are the reported seed's."""
    target, out, rep, messages = small
    seeds = list(SEEDS[target] or synth.DEFAULT_SEEDS)
    assert rep.seeds == seeds and len(rep.seed_fmax_mhz) == len(seeds)
    assert all(10 < fmax < 1000 for fmax in rep.seed_fmax_mhz)
    assert rep.fmax_mhz == lower_median(rep.seed_fmax_mhz)
    # The first seed to reach the median is the reported one.
    assert rep.reported_seed == seeds[rep.seed_fmax_mhz.index(rep.fmax_mhz)]
    saved = json.loads((out / "report.json").read_text())
    assert (saved["seeds"], saved["seed_fmax_mhz"], saved["reported_seed"]) == \
        (rep.seeds, rep.seed_fmax_mhz, rep.reported_seed)
    assert SynthReport.from_json((out / "report.json").read_text()) == rep
    assert [m.split(" (log: ")[0] for m in messages if " place & route " in m] == \
        [f"{TARGETS[target].nextpnr} place & route at {rep.target_mhz:g} MHz, router1, "
         f"seed {seed}" for seed in seeds]
    # A small design is routed with nextpnr's router1, as its log says.
    assert rep.router == "router1"
    assert "Info: Router1 time" in (out / synth.NEXTPNR_LOG).read_text()
    if len(seeds) == 1:
        assert not list(out.glob("*seed*"))
        return
    for seed, fmax in zip(seeds, rep.seed_fmax_mhz):
        raw = json.loads((out / f"report_nextpnr-seed{seed}.json").read_text())
        assert synth._clock_fmax(raw["fmax"]) == fmax
        assert (out / f"nextpnr-seed{seed}.log").stat().st_size > 0
    for name, copy in [(f"report_nextpnr-seed{rep.reported_seed}.json", synth.NEXTPNR_REPORT),
                       (f"nextpnr-seed{rep.reported_seed}.log", synth.NEXTPNR_LOG)]:
        assert (out / name).read_bytes() == (out / copy).read_bytes()


@pytest.mark.synth
def test_small_design_numbers_come_from_nextpnr(small):
    target, out, rep, _ = small
    tgt = TARGETS[target]
    raw = json.loads((out / synth.NEXTPNR_REPORT).read_text())
    util = raw["utilization"]
    assert rep.luts == util[tgt.bels["luts"]]["used"]
    assert rep.dsps == util[tgt.bels["dsps"]]["used"]
    if target == "ecp5-85k":
        assert rep.ffs == util["TRELLIS_FF"]["used"]
    else:
        # iCE40 flip-flops come from Yosys; each one occupies a logic cell.
        stat = json.loads((out / synth.YOSYS_STAT).read_text())["design"]["num_cells_by_type"]
        assert rep.ffs == sum(n for cell, n in stat.items() if cell.startswith("SB_DFF"))
        assert rep.ffs <= rep.luts
    # Only clk and rst use package pins (out-of-context implementation).
    io = util["TRELLIS_IO" if target == "ecp5-85k" else "SB_IO"]["used"]
    assert io == 2
    # The one clock is the clk port's net, constrained at the frequency we asked for.
    (net, clock), = raw["fmax"].items()
    assert "clk" in net.split("$")
    assert clock["constraint"] == pytest.approx(rep.target_mhz)
    assert rep.fmax_mhz == round(clock["achieved"], 2)


@pytest.mark.synth
def test_small_design_files(small):
    target, out, rep, messages = small
    text = (out / "report.json").read_text()
    assert text == rep.to_json()
    assert text.endswith("}\n") and json.loads(text)["target"] == target
    assert SynthReport.from_json(text) == rep
    # The folder was published whole: no staging folder next to it, the marker inside.
    assert [p.name for p in out.parent.iterdir()] == ["out"]
    assert json.loads((out / MARKER).read_text())["command"] == "synth"
    for name in ("m2.v", "manifest.json", "synth.ys", "yosys.log", "nextpnr.log", "netlist.json"):
        assert (out / name).stat().st_size > 0, name
    assert any(m.startswith("yosys ") for m in messages)
    assert any(m.startswith(f"{TARGETS[target].nextpnr} place & route") for m in messages)
    assert all("\n" not in m for m in messages)


def tree(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def previous_result(parent: Path, name: str = "out") -> dict[str, bytes]:
    """A synthesis folder from an earlier run (as publish_folder leaves it); its content."""
    publish_folder(parent, name, lambda f: (f / "report.json").write_text('{"earlier": 1}\n'),
                   marker={"command": "synth"})
    return tree(parent / name)


@pytest.mark.synth
def test_too_big_for_ice40_is_a_report_that_says_so(tmp_path):
    big = MacArrayConfig(name="big", rows=4, cols=4)
    out = tmp_path / "out"
    rep = synthesize(big, "ice40-up5k", out_dir=out)
    assert (rep.fits, rep.overflow, rep.counted_by) == (False, ["dsps"], "yosys")
    assert (rep.dsps, rep.capacity["dsps"], rep.brams) == (16, 8, 0)
    assert rep.fmax_mhz is None
    assert 0 < rep.luts <= rep.capacity["luts"] and rep.ffs >= 3 * 32
    assert list(rep.tools) == ["yosys"]
    assert (rep.seeds, rep.seed_fmax_mhz, rep.reported_seed) == ([1], [None], None)
    # The folder is the valid result of a failed check: published, with its report.
    assert (out / "report.json").read_text() == rep.to_json()
    # Caught from Yosys' cell counts, before nextpnr ran ...
    assert not (out / synth.NEXTPNR_LOG).exists()
    # ... and nextpnr on the same netlist agrees: it cannot place it, and its packing says why.
    # Packing decides that whatever the seed, so only the first seed runs.
    cells = json.loads((out / synth.YOSYS_STAT).read_text())["design"]["num_cells_by_type"]
    pnr = synth._place_and_route("big", TARGETS["ice40-up5k"], out, 48.0, cells, (4, 9))
    assert "Unable to place cell" in (out / synth.NEXTPNR_LOG).read_text()
    assert (out / synth.NEXTPNR_LOG).read_bytes() == (out / "nextpnr-seed4.log").read_bytes()
    assert not (out / "nextpnr-seed9.log").exists()
    assert (pnr.seeds, pnr.seed_fmax_mhz, pnr.reported_seed) == ([4, 9], [None, None], 4)
    assert (pnr.fits, pnr.overflow, pnr.counted_by) == (False, ["dsps"], "nextpnr")
    assert (pnr.dsps, pnr.capacity["dsps"], pnr.fmax_mhz) == (16, 8, None)
    assert (pnr.ffs, pnr.brams) == (rep.ffs, 0) and pnr.luts >= rep.luts


@pytest.mark.synth
def test_a_design_that_does_not_fit_keeps_the_results_of_one_that_does(tmp_path):
    # Yosys alone finds the 4x4 array too big for the iCE40 (16 DSPs of 8): no nextpnr runs.
    big = MacArrayConfig(name="big", rows=4, cols=4)
    publish_folder(tmp_path, "fit", lambda f: (f / "report.json").write_text('{"fits": true}\n'),
                   marker={"command": "synth"})
    before = tree(tmp_path / "fit")
    said = []
    rep = synthesize(big, "ice40-up5k", out_dir=tmp_path / "fit", progress=said.append)
    assert (rep.fits, rep.overflow) == (False, ["dsps"])
    assert tree(tmp_path / "fit") == before
    assert said[-1] == f"kept {tmp_path / 'fit'}: it holds the results of a design that fits, " \
                       f"and big does not"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit"]
    # Over the results of a design that did not fit either, the new report is published.
    publish_folder(tmp_path, "nofit", lambda f: (f / "report.json").write_text('{"fits": false}'),
                   marker={"command": "synth"})
    synthesize(big, "ice40-up5k", out_dir=tmp_path / "nofit")
    assert (tmp_path / "nofit" / "report.json").read_text() == rep.to_json()


@pytest.mark.synth
def test_a_tool_failure_keeps_the_previous_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HWGEN_CACHE", str(tmp_path / "cache"))
    before = previous_result(tmp_path)
    monkeypatch.setattr(synth, "render", lambda *args, **kwargs: "read_verilog no_such.v\n")
    with pytest.raises(SynthError) as info:
        synthesize(SMALL, "ice40-up5k", out_dir=tmp_path / "out")
    # The log the message names outlives the work folder: it is kept in the cache.
    kept = tmp_path / "cache" / "synth-failed" / "m2-ice40-up5k" / synth.YOSYS_LOG
    message = str(info.value)
    assert message.startswith("yosys failed on m2 for ice40-up5k: ERROR: ")
    assert "no_such.v" in message and message.endswith(f" (see {kept})")
    assert "\n" not in message and "no_such.v" in kept.read_text()
    assert tree(tmp_path / "out") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "out"]


def test_a_folder_hwgen_did_not_write_is_refused_before_any_tool(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "netlist.json").write_text("{}\n")
    with pytest.raises(FolderError, match=r"mine: exists and was not written by hwgen"):
        synthesize(SMALL, "ice40-up5k", out_dir=tmp_path / "mine")
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["netlist.json"]


def processes() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, command line, working folder) of every process we may inspect."""
    found = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                cwd = os.readlink(proc / "cwd")
            except OSError:
                continue      # gone, or not ours to inspect
            found[int(proc.name)] = (ppid, cmdline, cwd)
    return found


def descendants(pid: int) -> dict[int, str]:
    """pid -> command line of every process below ``pid``."""
    table = processes()
    found, todo = {}, [pid]
    while todo:
        parent = todo.pop()
        for child, (ppid, cmdline, _) in table.items():
            if ppid == parent:
                found[child] = cmdline
                todo.append(child)
    return found


@pytest.mark.synth
@pytest.mark.parametrize("log", [synth.YOSYS_LOG, synth.NEXTPNR_LOG])
def test_sigterm_stops_the_tools_and_keeps_the_previous_folder(tmp_path, log):
    """What a scheduler's cancel or `timeout` does: SIGTERM to hwgen while Yosys or nextpnr runs.
    hwgen exits 143 with one error line, its tools are gone, the previous folder is intact and
    no staging folder is left."""
    (tmp_path / "m2.toml").write_text('engine = "mac_array"\nname = "m2"\nrows = 2\ncols = 2\n')
    before = previous_result(tmp_path)
    hwgen = subprocess.Popen([sys.executable, "-m", "hwgen.cli", "synth", "m2.toml", "--target",
                              "ice40-up5k", "-o", "out"], cwd=tmp_path, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    children = {}
    # The tool's run (not its version query) is the process writing this log.
    while not any(f" {log} " in cmd for cmd in children.values()):
        assert hwgen.poll() is None, hwgen.communicate()
        assert time.monotonic() < deadline, children
        time.sleep(0.05)
        children = descendants(hwgen.pid)
    time.sleep(0.5)
    hwgen.send_signal(signal.SIGTERM)
    _, err = hwgen.communicate(timeout=60)
    assert hwgen.returncode == 143, err
    assert err.splitlines()[-2:] == ["[1/1] synthesize for ice40-up5k ... failed",
                                     "hwgen: error: interrupted (SIGTERM)"]
    assert "Traceback" not in err
    assert [pid for pid in children if Path(f"/proc/{pid}").exists()] == []
    assert [cmd for _, cmd, cwd in processes().values()
            if cwd.startswith(str(tmp_path))] == []
    assert tree(tmp_path / "out") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m2.toml", "out"]


# Two registers named "v" and "v[1]": Amaranth emits such pairs (an array View "x.wvals" next to its
# elements "x.wvals[3]"). Yosys 0.70's ABC9 calls bit 1 of "v" "v[1]" too; without the rename in
# templates/synth/yosys.ys.j2 it shorts that bit to bit 0 of the register "v[1]" (in bigger designs
# it aborts on `GetSize(conn.first) == GetSize(conn.second)` instead).
BRACKETED_NAMES_V = """\
module top(input clk, input [7:0] a, input [7:0] b, output [7:0] y);
  reg [15:0] \\v ;
  reg [7:0] \\v[1] ;
  always @(posedge clk) begin
    \\v <= {a, b};
    \\v[1] <= a + b;
  end
  assign y = (\\v [15:8] & \\v [7:0]) ^ \\v[1] ;
endmodule
"""

# One net driven by two flip-flops.
TWO_DRIVERS_V = """\
module top(input clk, input a, input b, output y);
  reg r1, r2;
  wire w;
  always @(posedge clk) begin
    r1 <= a;
    r2 <= b;
  end
  assign w = r1;
  assign w = r2;
  assign y = w;
endmodule
"""


@pytest.mark.synth
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_bracketed_wire_names_survive_abc9(tmp_path, target):
    (tmp_path / "top.v").write_text(BRACKETED_NAMES_V)
    cells = synth._yosys("top", TARGETS[target], tmp_path, "top.v", ["clk", "a", "b", "y"])
    assert sum(n for cell, n in cells.items() if "DFF" in cell or "_FF" in cell) == 24
    log = (tmp_path / synth.YOSYS_LOG).read_text()
    assert "conflicting drivers" not in log
    script = (tmp_path / synth.SCRIPT).read_text()
    assert "rename -unescape top/w:*[[]*" in script
    assert f"-run {TARGETS[target].proc_label}:{synth.ABC9_LABEL}" in script
    assert f"-run {synth.ABC9_LABEL}:" in script


def _copies_verilog(kept: bool) -> str:
    """Four registered copies of an 8-bit input, each to an output of its own: by
    ``register_copies`` (kept), or as plain identical registers."""
    m = Module()
    d = Signal(8)
    if kept:
        copies = register_copies(m, d, 4)
    else:
        copies = [Signal(8, name=f"copy{n}") for n in range(4)]
        m.d.sync += [c.eq(d) for c in copies]
    outs = [Signal(8, name=f"y{n}") for n in range(4)]
    m.d.comb += [o.eq(c) for o, c in zip(outs, copies)]
    return verilog.convert(m, name="top", ports=[d, *outs])


@pytest.mark.synth
@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("kept", [True, False])
def test_register_copies_survive_synthesis(tmp_path, target, kept):
    # Identical registers are merged by Yosys; the copies of register_copies stay four.
    (tmp_path / "top.v").write_text(_copies_verilog(kept))
    ports = ["clk", "rst", "d", *(f"y{n}" for n in range(4))]
    cells = synth._yosys("top", TARGETS[target], tmp_path, "top.v", ports)
    ffs = sum(n for cell, n in cells.items() if "DFF" in cell or "_FF" in cell)
    assert ffs == (32 if kept else 8)


@pytest.mark.synth
def test_conflicting_drivers_are_an_error(tmp_path):
    (tmp_path / "top.v").write_text(TWO_DRIVERS_V)
    with pytest.raises(SynthError) as info:
        synth._yosys("top", TARGETS["ecp5-85k"], tmp_path, "top.v", ["clk", "a", "b", "y"])
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("yosys produced a wrong netlist for top on ecp5-85k: multiple "
                              "conflicting drivers for top.\\r2 (see ")


def test_unknown_target(tmp_path):
    out = tmp_path / "never"
    with pytest.raises(ConfigError) as info:
        synthesize(SMALL, "xc7a35t", out_dir=out)
    message = str(info.value)
    assert message.startswith('target = "xc7a35t"')
    assert '"ecp5-85k"' in message and '"ice40-up5k"' in message
    assert not out.exists()


@pytest.mark.parametrize("freq", [0, -5.0, True, "100", 1e6])
def test_bad_frequency(tmp_path, freq):
    out = tmp_path / "never"
    with pytest.raises(ConfigError, match=r"^freq_mhz = "):
        synthesize(SMALL, "ecp5-85k", out_dir=out, freq_mhz=freq)
    assert not out.exists()


@pytest.mark.parametrize("values, index", [
    ([3.0, 1.0, 2.0], 2), ([1.0, 2.0], 0), ([2.0, 1.0], 1), ([5.0, 5.0], 0),
    ([1.0, 2.0, 2.0, 3.0], 1), ([4.0, 2.0, 3.0, 1.0], 1), ([None, None], 0), ([None, 3.0, 2.0], 2),
    ([7.5], 0)])
def test_lower_median(values, index):
    assert synth._lower_median(values) == index


@pytest.mark.parametrize("seeds, message", [
    ([], "seeds = []: expected a non-empty list of distinct integers from 1 to 2147483647"),
    (5, "seeds = 5: expected a non-empty list of distinct integers from 1 to 2147483647"),
    ("12", 'seeds = "12": expected a non-empty list of distinct integers from 1 to 2147483647'),
    ([1, 0], "seeds[1] = 0: expected an integer from 1 to 2147483647"),
    ((2**31,), "seeds[0] = 2147483648: expected an integer from 1 to 2147483647"),
    ([True], "seeds[0] = true: expected an integer from 1 to 2147483647"),
    ([1.0], "seeds[0] = 1.0: expected an integer from 1 to 2147483647"),
    ([1, 2, 1], "seeds = [1, 2, 1]: expected distinct seeds (1 is given more than once)")])
def test_bad_seeds(tmp_path, seeds, message):
    out = tmp_path / "never"
    with pytest.raises(ConfigError) as info:
        synthesize(SMALL, "ecp5-85k", out_dir=out, seeds=seeds)
    assert str(info.value) == message
    assert not out.exists()


def test_check_seeds():
    assert synth.check_seeds([2, 1, 2**31 - 1]) == (2, 1, 2**31 - 1)
    assert synth.check_seeds(range(1, 4)) == (1, 2, 3)
    # The CLI checks --seeds against its own copy of the range (it does not import the flow).
    assert cli.PNR_SEED_RANGE == synth.SEED_RANGE


@pytest.mark.parametrize("command", ["synth", "flow"])
@pytest.mark.parametrize("text, why", [
    ("0", "0 is out of range"), ("1,2147483648", "2147483648 is out of range"),
    ("-3", "-3 is out of range"), ("1,2,1", "1 is given twice"), ("1,x", "'x' is not an integer"),
    ("", "'' is not an integer"), ("1,,2", "'' is not an integer")])
def test_bad_seeds_on_the_command_line(tmp_path, monkeypatch, capsys, command, text, why):
    (tmp_path / "m2.toml").write_text('engine = "mac_array"\nname = "m2"\nrows = 2\ncols = 2\n')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        cli.main([command, "m2.toml", "--target", "ecp5-85k", "--seeds", text])
    captured = capsys.readouterr()
    assert info.value.code == 2 and captured.out == ""
    assert captured.err == (f"hwgen: error: argument --seeds: expected comma-separated distinct "
                            f"integers from 1 to 2147483647, got {text!r} ({why})\n")
    assert [p.name for p in tmp_path.iterdir()] == ["m2.toml"]


def test_seeds_option_parses():
    parser = cli.build_parser()
    args = parser.parse_args(["synth", "m.toml", "--target", "ecp5-85k", "--seeds", "3, 1,2"])
    assert args.seeds == (3, 1, 2)
    assert parser.parse_args(["synth", "m.toml", "--target", "ecp5-85k"]).seeds is None
    # flow keeps --seed for the simulation next to --seeds for nextpnr.
    args = parser.parse_args(["flow", "--seed", "7", "--seeds", "5,6"])
    assert (args.seed, args.seeds) == (7, (5, 6))


def summary_report(seeds, seed_fmax, reported, fmax):
    return SynthReport(target="ecp5-85k", luts=100, ffs=200, dsps=4, brams=0, fmax_mhz=fmax,
                       target_mhz=100.0, fits=True, overflow=[], counted_by="nextpnr",
                       capacity=dict(TARGETS["ecp5-85k"].capacity), tools={}, seeds=seeds,
                       seed_fmax_mhz=seed_fmax, reported_seed=reported, router="router1")


def test_summary_shows_the_seeds_when_more_than_one_ran():
    rep = summary_report([1, 2, 3], [120.04, 131.26, 125.5], 3, 125.5)
    fmax = dict(cli._synth_pairs(rep))["Fmax"]
    assert fmax == ("125.5 MHz (median of seeds 1,2,3: 120.0 / 131.3 / 125.5, from seed 3; "
                    "target 100.0 MHz)")
    assert SynthReport.from_json(rep.to_json()) == rep
    one = summary_report([1], [125.5], 1, 125.5)
    assert dict(cli._synth_pairs(one))["Fmax"] == "125.5 MHz (target 100.0 MHz)"


def test_the_router_follows_the_design_size():
    ecp5, ice40 = TARGETS["ecp5-85k"], TARGETS["ice40-up5k"]
    small_ecp5 = {"LUT4": synth.ROUTER2_FROM_LUTS - 3, "CCU2C": 1, "TRELLIS_FF": 50_000}
    assert synth.nextpnr_router(ecp5, small_ecp5) == "router1"
    # A CCU2C carry cell takes two LUT4 sites.
    assert synth.nextpnr_router(ecp5, {**small_ecp5, "CCU2C": 2}) == "router2"
    assert synth.nextpnr_router(ice40, {"SB_LUT4": 100, "SB_DFF": 200}) == "router1"


def test_default_out_dir():
    assert default_out_dir(SMALL, "ice40-up5k") == Path("rtl_out") / "m2" / "synth-ice40-up5k"
