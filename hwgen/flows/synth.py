"""Synthesis, place and route with the YoWASP Yosys and nextpnr builds (docs/architecture.md §1,
§6).

``synthesize(cfg, target)`` writes the design into a work folder, runs Yosys (``synth_ecp5`` or
``synth_ice40 -dsp``) and nextpnr, and returns a :class:`SynthReport` that is also written as
``report.json``::

    from hwgen.engines.mac_array import MacArrayConfig
    from hwgen.flows.synth import synthesize
    rep = synthesize(MacArrayConfig(name="m4", rows=4, cols=4), "ecp5-85k", seeds=(1, 2, 3))
    rep.fits, rep.luts, rep.ffs, rep.dsps, rep.fmax_mhz, rep.seed_fmax_mhz, rep.reported_seed

What the numbers mean
---------------------
* **Out of context.** An hwgen core is an IP block: a 2x2 ``mac_array`` already has 182 port bits,
  more than the 39 I/O pins of an iCE40 UP5K in the SG48 package, and an 8x8 has more port bits than
  the ECP5 CABGA381 package has pins. So Yosys synthesizes the core with all its ports (nothing is
  trimmed), then every port except ``clk`` and ``rst`` loses its port flag before place and route
  (``templates/synth/yosys.ys.j2``). Those nets stay in the netlist, undriven or unloaded: all their
  logic is placed and counted, but paths from or to them are not timed. ``clk`` and ``rst`` keep a
  real pin, so the clock uses a global buffer as it would in a full design. No I/O harness is
  added, so nothing in the counts belongs to a wrapper.
* **fmax_mhz** is nextpnr's achieved frequency for the clock net driven by the ``clk`` port (nextpnr
  names it ``$glbnet$clk$TRELLIS_IO_IN`` on ECP5 and ``clk$SB_IO_IN_$glb_clk`` on iCE40), i.e.
  register to register; ``None`` if the design has no clocked path. nextpnr runs with
  ``--timing-allow-fail``: missing ``target_mhz`` is reported, not an error.
* **Router** (``router`` in the report): nextpnr's default router1 for a design of fewer than
  :data:`ROUTER2_FROM_LUTS` LUT4 sites after Yosys, router2 from there on. On small designs
  router1 gives about 10% more Fmax (mac_array_4x4 on ECP5-85K, seeds 1-5: median 136.8 MHz,
  router2 123.2), but it had not routed the attention example (20k LUT4) after 36 minutes,
  which router2 places and routes in about 6.
* **Seeds.** nextpnr's Fmax moves by about 10% with its placement seed (docs/architecture.md §6),
  so Yosys runs once and nextpnr once per seed of ``seeds`` (``--seed N``, default seed 1 only),
  each on the same netlist. ``fmax_mhz`` is the *lower median* of the seeds' Fmax (the middle
  value of an odd count, the lower of the two middle values of an even count: with two seeds the
  smaller), so it is an Fmax one seed actually reached. That seed is ``reported_seed``; ties go
  to the seed listed first. Everything else nextpnr reports (utilization, capacity, the critical
  path in ``report_nextpnr.json``) is that seed's run too; utilization is the same for every
  seed in practice, as packing does not depend on the seed. ``seed_fmax_mhz`` lists every seed's
  Fmax in the order of ``seeds``.
* **ECP5** (``nextpnr --report`` utilization): ``luts`` = TRELLIS_COMB (LUT4 sites, including the two
  per CCU2C carry cell and route-through LUTs nextpnr inserts), ``ffs`` = TRELLIS_FF, ``dsps`` =
  MULT18X18D, ``brams`` = DP16KD.
* **iCE40**: ``luts`` = ICESTORM_LC, the logic cells used. Every iCE40 flip-flop sits behind its
  cell's LUT, so a flip-flop-only cell spends its LUT as a route-through; ICESTORM_LC is therefore
  both the LUT4 sites occupied and the number to compare with the device's 5280. nextpnr does not
  report flip-flops separately, so ``ffs`` is the number of ``SB_DFF*`` cells in Yosys' final
  netlist (checked equal to the ICESTORM_LC cells with ``DFF_ENABLE`` in nextpnr's placed netlist;
  each needs its own logic cell, so ``capacity["ffs"]`` is 5280 too). ``dsps`` = ICESTORM_DSP
  (SB_MAC16), ``brams`` = ICESTORM_RAM (SB_RAM40_4K); SPRAM is not used.

ABC9 and bracketed wire names
-----------------------------
Both synth commands map LUTs with ABC9 (label ``map_luts``). Yosys 0.70 rebuilds the mapped netlist
by wire *name*, calling bit i of wire ``w`` "w[i]"; a wire whose own name is ``w[i]`` (Amaranth emits
``x.wvals`` and ``x.wvals[3]`` for an array View) is then confused with that bit, and Yosys either
aborts (``Assert `GetSize(conn.first) == GetSize(conn.second)' failed``, in
``abc_ops_reintegrate``) or silently shorts the two signals (upstream issue YosysHQ/yosys#4349).
``templates/synth/yosys.ys.j2`` therefore stops the synth command before ``map_luts``, gives the
top module's non-port wires with a ``[`` in their name plain names (``rename -unescape``, Yosys
0.55 or later) and resumes: only names change, ABC9 still maps the design. As a guard, a Yosys log
that reports a net with multiple conflicting drivers is an error (below).

Copied registers
----------------
A design may copy a register on purpose, one copy per group of far-apart sinks
(``hwgen.hdl.pipeline.register_copies``); the copies are identical, and Yosys's ``opt_merge``
would fold them back into one. Their wires carry the ``keep`` attribute, and the script (after
the synth command has turned processes into cells: ``Target.proc_label``) sets ``keep`` on every
flip-flop that drives such a wire, which ``opt_merge`` leaves alone.

Does-not-fit
------------
A design that does not fit is a result, not an error: its report has ``fits = False``,
``fmax_mhz = None`` and ``overflow``, the report keys (``"luts"``, ``"dsps"``, ...) of the
resources it needs more of than the device has. After Yosys the cell counts are checked against
the device: hard blocks (DSP, block RAM) and flip-flops need exactly one site each, and LUT4 sites
are bounded from below (ECP5: LUT4 + 2 per CCU2C; iCE40: max of LUTs, flip-flops and carries,
since a logic cell holds one of each). A design that cannot fit is reported from these counts
(``counted_by = "yosys"``, ``luts`` then a lower bound) and nextpnr does not run
(``reported_seed`` None). If nextpnr itself fails to place, the "Device utilisation" table it
logged after packing gives the numbers (``counted_by = "nextpnr"``); a resource nextpnr could not
place although the table shows room for it is listed in ``overflow`` with its (not exceeded)
count. Packing decides this, whatever the seed, so only the first seed runs then and is the
``reported_seed``. Either way ``seed_fmax_mhz`` is None for every seed.

Its folder is published like any other, except over the results of a design that fits: a run
that does not fit never replaces a folder whose ``report.json`` says ``fits``. The report is
returned all the same, and ``progress`` says that the earlier folder was kept.

Errors
------
Everything else that goes wrong in the tools raises :class:`SynthError` with one line: a tool
failed (its last ``ERROR`` line and its log), Yosys' ``check`` found a net with multiple
conflicting drivers (the netlist is not the design), or a tool is missing (the
:class:`~hwgen.flows.toolchain.ToolError` message, converted so callers catch one exception type).
A nextpnr failure names the seed it ran with; the seeds after it do not run.
The log named in the message is kept in ``<cache>/synth-failed/<name>-<target>/`` (the cache of
:func:`hwgen.flows.cache.cache_root`), since the work folder it was written in is removed. An
unknown target, a bad frequency or bad seeds (:func:`check_seeds`) raise
:class:`~hwgen.config.ConfigError` before any file is written.

Files
-----
``out_dir`` (default ``rtl_out/<name>/synth-<target>/``) holds the design (``<name>.v``,
``manifest.json``, ``<name>.core``), the Verilog Yosys read if it differs (``<name>_<family>.v``:
the design elaborated with the family's DSP primitives, :func:`hwgen.emit.design.for_family`),
``synth.ys``, ``yosys.log``, ``yosys_stat.json``,
``netlist.json``, ``nextpnr.log`` and ``report_nextpnr.json`` (when nextpnr ran: the run of
``reported_seed``) and ``report.json``. With more than one seed, every seed's run is also kept as
``nextpnr-seed<N>.log`` and ``report_nextpnr-seed<N>.json`` (those of seeds that ran), and the
two files without a seed in their name are copies of the reported seed's. The tools run in a
staging folder that is published as ``out_dir`` (:func:`hwgen.emit.folders.publish_folder`) only
when the report is written, so ``out_dir`` is always a complete run: a tool failure or an
interruption leaves the previous ``out_dir`` as it was, and a folder that hwgen did not write is
never replaced (:class:`~hwgen.emit.folders.FolderError` before any tool runs).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from hwgen.config import ConfigError, EngineConfig, check_choice, check_int, config_hash, invalid
from hwgen.emit.design import Design, as_design, for_family
from hwgen.emit.folders import RESULT_PREFIX, FolderError, publish_folder
from hwgen.emit.templates import render
from hwgen.emit.verilog import write_design
from hwgen.flows.cache import cache_root
from hwgen.flows.toolchain import ToolError, run_tool, tool_version

__all__ = ["SynthReport", "SynthError", "Target", "TARGETS", "RESOURCES", "KEEP_PORTS",
           "SEED_RANGE", "DEFAULT_SEEDS", "check_seeds", "default_out_dir", "synthesize"]

#: Report keys, in the order tables show them.
RESOURCES = ("luts", "ffs", "dsps", "brams")

#: Ports that keep a package pin; every other port becomes an internal net (see module doc).
KEEP_PORTS = ("clk", "rst")

#: The clock port whose net's fmax is reported.
CLOCK_PORT = "clk"

#: The label of ``synth_ecp5`` and ``synth_ice40`` whose script runs ABC9 (LUT mapping). The Yosys
#: script stops the synth command before it, renames wires ABC9 would confuse, then resumes there
#: (see ``templates/synth/yosys.ys.j2``).
ABC9_LABEL = "map_luts"

#: Smallest and largest nextpnr placement seed (``--seed``): positive and within a C ``int``.
SEED_RANGE = (1, 2**31 - 1)

#: The seeds nextpnr runs with when none are given.
DEFAULT_SEEDS = (1,)

#: Designs of at least this many LUT4 sites (Yosys' count, as checked against the device) are
#: routed with nextpnr's router2, smaller ones with router1 (see "Router" in the module doc).
ROUTER2_FROM_LUTS = 10_000

#: Upper bound on one Yosys or nextpnr run, in seconds.
TOOL_TIMEOUT_S = 3600.0

REPORT = "report.json"
NEXTPNR_REPORT = "report_nextpnr.json"
NETLIST = "netlist.json"
YOSYS_STAT = "yosys_stat.json"
YOSYS_LOG = "yosys.log"
NEXTPNR_LOG = "nextpnr.log"
SCRIPT = "synth.ys"

#: Folder of the cache that keeps the log of a failed run (see "Errors" in the module doc).
FAILED_LOGS = "synth-failed"


class SynthError(RuntimeError):
    """Synthesis or place and route failed; the message is one line for the user.

    ``reason`` is the message without the log; ``log``, if not None, the tool log that explains
    the failure (the message ends with ``(see <log>)``).
    """

    def __init__(self, reason: str, log: Path | None = None):
        super().__init__(reason if log is None else f"{reason} (see {log})")
        self.reason = reason
        self.log = log


@dataclass(frozen=True)
class Target:
    """One FPGA part hwgen can implement a design on.

    proc_label : the label of ``synth_command``'s script before which its processes have become
        cells (``proc``): where the synthesis script marks copied registers ``keep``
    bels : report key -> nextpnr bel type counted for it
    capacity : report key -> sites on the device (as nextpnr 0.11 reports them; the report takes
        the numbers from nextpnr's own output, these are for the check before nextpnr runs)
    """

    name: str
    family: str
    nextpnr: str
    device_args: tuple[str, ...]
    synth_command: str
    proc_label: str
    default_mhz: float
    bels: dict
    capacity: dict
    description: str


TARGETS: dict[str, Target] = {
    "ecp5-85k": Target(
        name="ecp5-85k", family="ecp5", nextpnr="nextpnr-ecp5",
        device_args=("--85k", "--package", "CABGA381"), synth_command="synth_ecp5",
        proc_label="coarse", default_mhz=100.0,
        bels={"luts": "TRELLIS_COMB", "ffs": "TRELLIS_FF", "dsps": "MULT18X18D",
              "brams": "DP16KD"},
        capacity={"luts": 83640, "ffs": 83640, "dsps": 156, "brams": 208},
        description="Lattice ECP5 LFE5U-85F, CABGA381"),
    "ice40-up5k": Target(
        name="ice40-up5k", family="ice40", nextpnr="nextpnr-ice40",
        device_args=("--up5k", "--package", "sg48"), synth_command="synth_ice40 -dsp",
        proc_label="flatten", default_mhz=48.0,
        bels={"luts": "ICESTORM_LC", "ffs": "ICESTORM_LC", "dsps": "ICESTORM_DSP",
              "brams": "ICESTORM_RAM"},
        capacity={"luts": 5280, "ffs": 5280, "dsps": 8, "brams": 30},
        description="Lattice iCE40 UltraPlus UP5K, SG48"),
}


@dataclass(frozen=True)
class SynthReport:
    """Resources and Fmax of one design on one target (see the module doc for each number).

    fits : the design fits the device; if not, ``fmax_mhz`` is None and ``overflow`` lists the
        report keys of the resources that do not fit
    counted_by : ``"nextpnr"`` (its utilization after packing, placed and routed if it fits) or
        ``"yosys"`` (final cell counts of a design found too big before nextpnr; ``luts`` is
        then a lower bound)
    tools : version of each tool that ran
    seeds : the nextpnr placement seeds asked for, in the order given
    seed_fmax_mhz : each seed's Fmax, in the order of ``seeds``; None for a seed whose run gave
        none (no clocked path, the design does not fit, or the seed did not run because the
        design does not fit)
    reported_seed : the seed whose nextpnr run gives ``fmax_mhz`` (the lower median of
        ``seed_fmax_mhz``, see "Seeds" in the module doc), the utilization and the kept
        ``nextpnr.log`` / ``report_nextpnr.json``; None if nextpnr did not run
    router : the nextpnr router that ran (``"router1"`` or ``"router2"``, see "Router" in the
        module doc); None if nextpnr did not run
    """

    target: str
    luts: int
    ffs: int
    dsps: int
    brams: int
    fmax_mhz: float | None
    target_mhz: float
    fits: bool
    overflow: list[str]
    counted_by: str
    capacity: dict
    tools: dict
    seeds: list[int]
    seed_fmax_mhz: list[float | None]
    reported_seed: int | None
    router: str | None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "SynthReport":
        data = json.loads(text)
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})


def default_out_dir(cfg: EngineConfig, target: str) -> Path:
    """``rtl_out/<name>/synth-<target>``: next to the design ``hwgen generate`` writes, which
    keeps it while the Verilog stays the same (:func:`hwgen.emit.folders.copy_results`)."""
    return Path("rtl_out") / cfg.name / f"{RESULT_PREFIX}{target}"


def _target(target) -> Target:
    check_choice("target", target, tuple(TARGETS))
    return TARGETS[target]


def _frequency(freq_mhz, tgt: Target) -> float:
    if freq_mhz is None:
        return tgt.default_mhz
    if isinstance(freq_mhz, bool) or not isinstance(freq_mhz, (int, float)) \
            or not 0 < freq_mhz <= 2000:
        raise ConfigError(f"freq_mhz = {freq_mhz!r}: expected a clock frequency in MHz, "
                          f"above 0 and at most 2000")
    return float(freq_mhz)


def check_seeds(seeds) -> tuple[int, ...]:
    """Return ``seeds`` as a tuple if it is a non-empty sequence of distinct integers in
    :data:`SEED_RANGE`, else raise :class:`ConfigError` naming the bad value."""
    lo, hi = SEED_RANGE
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or not seeds:
        raise invalid("seeds", seeds, f"a non-empty list of distinct integers from {lo} to {hi}")
    for index, seed in enumerate(seeds):
        check_int(f"seeds[{index}]", seed, lo, hi)
    repeated = next((seed for index, seed in enumerate(seeds) if seed in seeds[:index]), None)
    if repeated is not None:
        raise invalid("seeds", list(seeds), f"distinct seeds ({repeated} is given more than once)")
    return tuple(seeds)


def _lower_median(values: list[float | None]) -> int:
    """Index of the lower median of ``values`` (None below any number), the first of equals."""
    ranked = sorted(values, key=lambda v: -math.inf if v is None else v)
    return values.index(ranked[(len(values) - 1) // 2])


def _run(tool: str, args: list[str], cwd: Path):
    try:
        return run_tool(tool, args, cwd=cwd, timeout=TOOL_TIMEOUT_S)
    except ToolError as exc:
        raise SynthError(str(exc)) from exc


@functools.cache
def _version(tool: str) -> str:
    try:
        return tool_version(tool)
    except ToolError as exc:
        raise SynthError(str(exc)) from exc


def _last_error(proc, log: Path) -> str:
    """The last ``ERROR`` line the tool printed or logged, else its last output line."""
    text = proc.stdout + "\n" + proc.stderr
    if log.is_file():
        text = log.read_text(errors="replace") + "\n" + text
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR")]
    return (errors or lines or [f"exit status {proc.returncode}"])[-1]


def _yosys_counts(tgt: Target, cells: dict[str, int]) -> dict[str, int]:
    """Report key -> sites implied by Yosys' final cell counts (``luts`` a lower bound)."""
    def count(prefix):
        return sum(n for cell, n in cells.items() if cell.startswith(prefix))

    if tgt.family == "ecp5":
        return {"luts": count("LUT4") + 2 * count("CCU2C"), "ffs": count("TRELLIS_FF"),
                "dsps": count("MULT18X18D"), "brams": count("DP16KD")}
    return {"luts": max(count("SB_LUT4"), count("SB_DFF"), count("SB_CARRY")),
            "ffs": count("SB_DFF"), "dsps": count("SB_MAC16"), "brams": count("SB_RAM40_4K")}


def _ice40_ffs(cells: dict[str, int]) -> int:
    # nextpnr packs iCE40 flip-flops into logic cells without counting them: see module doc.
    return sum(n for cell, n in cells.items() if cell.startswith("SB_DFF"))


def _report(tgt: Target, used: dict[str, int], capacity: dict[str, int], freq: float,
            counted_by: str, tools: tuple[str, ...], seeds: tuple[int, ...],
            seed: int | None = None, fmax_mhz: float | None = None,
            unplaced: tuple[str, ...] = (), router: str | None = None) -> SynthReport:
    """The report of ``used`` resources of ``capacity``, from the nextpnr run with ``seed`` (None:
    from Yosys) of those for ``seeds``; ``unplaced``: report keys nextpnr could not place
    whatever the counts say. ``seed_fmax_mhz`` holds this run's Fmax only (see
    :func:`_place_and_route`)."""
    overflow = [key for key in RESOURCES if used[key] > capacity[key] or key in unplaced]
    fmax = None if overflow else fmax_mhz
    return SynthReport(
        target=tgt.name, luts=used["luts"], ffs=used["ffs"], dsps=used["dsps"],
        brams=used["brams"], fmax_mhz=fmax, target_mhz=freq,
        fits=not overflow, overflow=overflow, counted_by=counted_by, capacity=capacity,
        tools={tool: _version(tool) for tool in tools}, seeds=list(seeds),
        seed_fmax_mhz=[fmax if s == seed else None for s in seeds], reported_seed=seed,
        router=router)


def nextpnr_router(tgt: Target, cells: dict[str, int]) -> str:
    """The nextpnr router for a design of Yosys' final cell counts ``cells`` on ``tgt``."""
    return "router2" if _yosys_counts(tgt, cells)["luts"] >= ROUTER2_FROM_LUTS else "router1"


#: What Yosys' ``check`` pass logs for a net driven by more than one cell port.
_CONFLICT = re.compile(r"^Warning: multiple conflicting drivers for (.+?):\s*$", re.M)

_UTIL_LINE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%\s*$")
_NO_BELS = re.compile(r"Unable to place cell .*cell type '(\w+)'")


def _nextpnr_utilisation(log: Path) -> tuple[dict[str, tuple[int, int]], str | None]:
    """Bel type -> (used, available) from the last "Device utilisation" table of a nextpnr log,
    and the bel type named by an "Unable to place cell" error, if any."""
    if not log.is_file():
        return {}, None
    table: dict[str, tuple[int, int]] = {}
    unplaced = None
    for line in log.read_text(errors="replace").splitlines():
        if "Device utilisation" in line:
            table = {}
        match = _UTIL_LINE.match(line)
        if match:
            table[match[1]] = (int(match[2]), int(match[3]))
        match = _NO_BELS.search(line)
        if match:
            unplaced = match[1]
    return table, unplaced


def _clock_fmax(fmax: dict) -> float | None:
    """Achieved MHz of the clock net(s) derived from the ``clk`` port (nextpnr decorates the port
    name with ``$``-separated buffer names)."""
    achieved = [float(v["achieved"]) for net, v in fmax.items()
                if CLOCK_PORT in net.split("$")]
    return round(max(achieved), 2) if achieved else None


def _keep_log(exc: SynthError, name: str, tgt: Target) -> SynthError:
    """``exc`` naming a copy of its log in the cache, which outlives the work folder (without
    the log if it cannot be kept: the tool's failure is the error to report)."""
    if exc.log is None or not exc.log.is_file():
        return exc
    try:
        folder = cache_root() / FAILED_LOGS
        publish_folder(folder, f"{name}-{tgt.name}", lambda work: shutil.copy2(exc.log, work),
                       marker={"command": "synth", "failed": exc.reason})
    except (ConfigError, OSError, FolderError):
        return SynthError(exc.reason)
    return SynthError(exc.reason, folder / f"{name}-{tgt.name}" / exc.log.name)


def synthesize(design: Design | EngineConfig, target: str, out_dir: Path | str | None = None,
               progress: Callable[[str], None] | None = None,
               freq_mhz: float | None = None,
               seeds: Sequence[int] = DEFAULT_SEEDS) -> SynthReport:
    """Synthesize, place and route ``design`` on ``target``; write and return its report.

    The run works in a staging folder that becomes ``out_dir`` (default
    :func:`default_out_dir`) when the report is written, replacing a previous run's folder; until
    then, and if the run fails or is interrupted, the previous folder stays as it was.

    Parameters
    ----------
    design : the design (elaborated here if given a config)
    target : a key of :data:`TARGETS`
    out_dir : the folder to publish (see the module doc for its files)
    progress : receives a one-line description before each long step
    freq_mhz : the clock nextpnr optimizes for (default: the target's ``default_mhz``)
    seeds : nextpnr placement seeds, distinct integers in :data:`SEED_RANGE`; nextpnr runs once
        per seed on the one Yosys netlist, and ``fmax_mhz`` is the lower median over them (see
        "Seeds" in the module doc)

    Returns
    -------
    SynthReport
        Also for a design that does not fit (``fits`` False): its folder is published too,
        unless ``out_dir`` holds the results of a design that fits (kept, see "Does-not-fit").

    Raises
    ------
    ConfigError
        Unknown target, bad frequency or bad seeds, before anything is written.
    hwgen.emit.folders.FolderError
        ``out_dir`` exists and hwgen did not write it, before any tool runs.
    SynthError
        A tool is missing or failed (see "Errors" in the module doc).
    """
    tgt = _target(target)
    freq = _frequency(freq_mhz, tgt)
    seeds = check_seeds(seeds)
    design = as_design(design)
    cfg = design.cfg
    out = Path(out_dir) if out_dir is not None else default_out_dir(cfg, target)
    say = progress or (lambda message: None)

    def fill(work: Path) -> SynthReport:
        say(f"generate {cfg.name}.v in {work} (becomes {out} when done)")
        written = write_design(design, work)
        verilog = written.verilog.name
        family_design = for_family(design, tgt.family)
        if family_design is not design:
            verilog = f"{cfg.name}_{tgt.family}.v"
            (work / verilog).write_text(family_design.verilog)
            say(f"{verilog}: {cfg.name} with {tgt.family} primitives "
                f"({design.dsp_products} registered products, {design.bram_reads} block-RAM "
                f"read ports with the output register)")
        say(f"yosys {tgt.synth_command} -top {cfg.name} (log: {work / YOSYS_LOG})")
        try:
            cells = _yosys(cfg.name, tgt, work, verilog, [p.name for p in written.ports])
            report = _report(tgt, _yosys_counts(tgt, cells), dict(tgt.capacity), freq, "yosys",
                             ("yosys",), seeds)
            if report.fits:
                report = _place_and_route(cfg.name, tgt, work, freq, cells, seeds, say)
        except SynthError as exc:
            raise _keep_log(exc, cfg.name, tgt) from None
        if not report.fits and _holds_a_fit(out):
            raise _NotPublished(report)
        (work / REPORT).write_text(report.to_json())
        return report

    try:
        return publish_folder(out.parent, out.name, fill, marker={
            "command": "synth", "config_hash": config_hash(cfg), "target": tgt.name})
    except _NotPublished as kept:
        say(f"kept {out}: it holds the results of a design that fits, and {cfg.name} does not")
        return kept.report


class _NotPublished(Exception):
    """Raised from a staging folder's ``fill`` to discard it; carries the run's report."""

    def __init__(self, report: SynthReport):
        super().__init__(report.target)
        self.report = report


def _holds_a_fit(folder: Path) -> bool:
    """``folder`` holds a synthesis report of a design that fits."""
    try:
        return json.loads((folder / REPORT).read_text()).get("fits") is True
    except (OSError, ValueError, AttributeError):
        return False


def _yosys(top: str, tgt: Target, out: Path, verilog: str, ports: list[str]) -> dict[str, int]:
    """Write ``synth.ys`` for the Verilog file ``out/verilog`` (top module ``top``, its port names
    ``ports``), run Yosys in ``out`` and return its final cell counts by type."""
    script = render("synth/yosys.ys.j2", top=top, target=tgt.name, verilog=verilog,
                    synth_command=tgt.synth_command, proc_label=tgt.proc_label,
                    abc9_label=ABC9_LABEL,
                    stat_file=YOSYS_STAT, netlist=NETLIST,
                    unport=[p for p in ports if p not in KEEP_PORTS])
    (out / SCRIPT).write_text(script)
    yosys_log = out / YOSYS_LOG
    proc = _run("yosys", ["-q", "-l", YOSYS_LOG, "-s", SCRIPT], out)
    if proc.returncode != 0 or not (out / NETLIST).is_file() or not (out / YOSYS_STAT).is_file():
        raise SynthError(f"yosys failed on {top} for {tgt.name}: "
                         f"{_last_error(proc, yosys_log)}", yosys_log)
    # A net with two drivers means Yosys merged two signals (an ABC9 naming bug did this, see
    # templates/synth/yosys.ys.j2): the netlist is not the design, so its numbers are not reported.
    # (``check`` runs more than once, so a net can be listed more than once.)
    conflicts = list(dict.fromkeys(_CONFLICT.findall(yosys_log.read_text(errors="replace"))))
    if conflicts:
        more = f" and {len(conflicts) - 1} more" if len(conflicts) > 1 else ""
        raise SynthError(f"yosys produced a wrong netlist for {top} on {tgt.name}: multiple "
                         f"conflicting drivers for {conflicts[0]}{more}", yosys_log)
    stat = json.loads((out / YOSYS_STAT).read_text())
    return {str(k): int(v) for k, v in stat["design"]["num_cells_by_type"].items()}


def _seed_files(seed: int, several: bool) -> tuple[str, str]:
    """The nextpnr log and report of the run with ``seed`` (of ``several`` seeds or just one)."""
    if not several:
        return NEXTPNR_LOG, NEXTPNR_REPORT
    return f"nextpnr-seed{seed}.log", f"report_nextpnr-seed{seed}.json"


def _place_and_route(top: str, tgt: Target, out: Path, freq: float, cells: dict[str, int],
                     seeds: tuple[int, ...] = DEFAULT_SEEDS,
                     progress: Callable[[str], None] | None = None) -> SynthReport:
    """nextpnr on ``out/netlist.json`` (Yosys' final cell counts ``cells``) once per seed of
    ``seeds``; the report of the lower-median seed with every seed's Fmax (module doc, "Seeds").

    A design nextpnr cannot place gives a report with ``fits`` False from the utilisation table
    the first seed's run logged after packing; any other failure raises :class:`SynthError`.
    """
    say = progress or (lambda message: None)
    several = len(seeds) > 1
    router = nextpnr_router(tgt, cells)
    runs: list[SynthReport] = []
    for seed in seeds:
        log, _ = _seed_files(seed, several)
        say(f"{tgt.nextpnr} place & route at {freq:g} MHz, {router}, seed {seed} "
            f"(log: {out / log})")
        runs.append(_nextpnr(top, tgt, out, freq, cells, seeds, seed, router))
        if not runs[-1].fits:
            break
    fmax = [run.fmax_mhz for run in runs] + [None] * (len(seeds) - len(runs))
    report = runs[_lower_median(fmax[:len(runs)])]
    if several:
        for name, copy in zip(_seed_files(report.reported_seed, True),
                              (NEXTPNR_LOG, NEXTPNR_REPORT)):
            if (out / name).is_file():
                shutil.copyfile(out / name, out / copy)
    return dataclasses.replace(report, seed_fmax_mhz=fmax)


def _nextpnr(top: str, tgt: Target, out: Path, freq: float, cells: dict[str, int],
             seeds: tuple[int, ...], seed: int, router: str) -> SynthReport:
    """One nextpnr run with ``seed`` (one of ``seeds``) and ``router``; its report."""
    log, report_file = _seed_files(seed, len(seeds) > 1)
    pnr_log = out / log
    proc = _run(tgt.nextpnr, [*tgt.device_args, "--json", NETLIST, "--freq", repr(freq),
                              "--seed", str(seed), "--timing-allow-fail", "--router", router,
                              "--report", report_file, "-l", log, "-q"], out)
    tools = ("yosys", tgt.nextpnr)
    if proc.returncode != 0 or not (out / report_file).is_file():
        table, unplaced = _nextpnr_utilisation(pnr_log)
        if all(bel in table for bel in tgt.bels.values()):
            used = {key: table[bel][0] for key, bel in tgt.bels.items()}
            if tgt.family == "ice40":
                used["ffs"] = _ice40_ffs(cells)
            # The first key of a bel type is the resource it counts (iCE40 "luts", not "ffs").
            stuck = next((key for key, bel in tgt.bels.items() if bel == unplaced), None)
            report = _report(tgt, used, {key: table[bel][1] for key, bel in tgt.bels.items()},
                             freq, "nextpnr", tools, seeds, seed,
                             unplaced=(stuck,) if stuck else (), router=router)
            if not report.fits:
                return report
        raise SynthError(f"{tgt.nextpnr} failed on {top} with --seed {seed}: "
                         f"{_last_error(proc, pnr_log)}", pnr_log)

    raw = json.loads((out / report_file).read_text())
    util = raw["utilization"]
    used = {key: int(util.get(bel, {}).get("used", 0)) for key, bel in tgt.bels.items()}
    capacity = {key: int(util.get(bel, {}).get("available", tgt.capacity[key]))
                for key, bel in tgt.bels.items()}
    if tgt.family == "ice40":
        used["ffs"] = _ice40_ffs(cells)
    return _report(tgt, used, capacity, freq, "nextpnr", tools, seeds, seed,
                   fmax_mhz=_clock_fmax(raw.get("fmax", {})), router=router)
