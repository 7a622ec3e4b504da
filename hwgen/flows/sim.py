"""Running an engine's cocotb testbench under Verilator (docs/architecture.md §5).

One Verilator build per (emitted Verilog, waves, axis) is kept in a cache folder keyed by the
Verilog's hash and shared by every run of that config: tests with different seeds or gap
probabilities reuse it, and a file lock makes that safe under pytest-xdist. Each run gets its own
folder for the log, the cocotb results file, the testbench's JSON result and the waveform.

With ``axis=True`` the simulator is built from the core and its AXI4-Stream wrapper
(:mod:`hwgen.emit.axis`) with the wrapper ``<name>_axis`` as toplevel (its own cache entry), and
the engine's unchanged testbench drives the wrapper's ports: ``sim.harness.core_view`` presents
them under the core's names (``HWGEN_AXIS=1`` tells the testbench).
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Callable

from hwgen.config import EngineConfig, check_int, check_probability, config_to_dict, invalid
from hwgen.emit.axis import render_axis_wrapper, wrapper_name
from hwgen.emit.design import Design, as_design
from hwgen.emit.verilog import write_design
from hwgen.engines.base import TestbenchResult
from hwgen.engines.registry import ENGINES
from hwgen.flows.cache import cache_root, file_lock
from hwgen.flows.toolchain import activate_verilator
from hwgen.hdl.primitives import cell_models

__all__ = ["SimResult", "SimError", "simulate", "build", "run_testbench"]


class SimError(RuntimeError):
    """The simulation could not run (build failure, crash); one line for the user."""


@dataclass(frozen=True)
class SimResult:
    """Outcome of one simulation.

    passed : every beat equal to the golden model, cycle model and counters consistent
    beats : result beats compared; errors : beats that differed
    cycles, busy, stall : ``perf`` counter deltas over the checked run
    utilization : steady-state MACs per cycle / peak, measured in the no-stall phase
    details : the testbench's full JSON result
    """

    passed: bool
    beats: int
    errors: int
    cycles: int
    busy: int
    stall: int
    utilization: float
    message: str
    log_path: Path
    waves_path: Path | None
    details: dict


def _runner():
    activate_verilator()
    from cocotb_tools.runner import get_runner
    return get_runner("verilator")


def _runtime() -> str:
    """What a Verilator build depends on besides its sources: the Python environment whose
    cocotb libraries the simulator links to (by path), and the cocotb and Verilator versions."""
    return f"\n// {sys.prefix} cocotb {version('cocotb')} verilator {version('verilator')}"


def build(design: Design | EngineConfig, waves: bool = False, axis: bool = False) -> Path:
    """Verilate ``design`` (elaborated here if given a config) once and return the build folder;
    with ``axis`` the core and its AXI4-Stream wrapper, toplevel ``<name>_axis``.

    A design elaborated for an FPGA family (``design.family``) is simulated on the models of the
    primitives it instantiates (:func:`hwgen.hdl.primitives.cell_models`). The cache key is the hash of
    the emitted Verilog (and wrapper and cell models), not of the config, so a change to the RTL
    generator never reuses a stale simulator, and of the Python environment (:func:`_runtime`):
    the simulator loads cocotb's library from it, so one built by a removed environment fails.
    """
    design = as_design(design)
    cfg = design.cfg
    wrapper = render_axis_wrapper(design) if axis else ""
    models = cell_models(design.family)
    text = (design.verilog + wrapper + "".join(path.read_text() for path in models)
            + _runtime())
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    build_dir = cache_root() / "sim" / (f"{cfg.name}-{digest}{'-axis' if axis else ''}"
                                        f"{'-waves' if waves else ''}")
    stamp = build_dir / "hwgen-build.ok"
    with file_lock(build_dir.with_suffix(".lock")):
        if stamp.is_file():
            return build_dir
        build_dir.mkdir(parents=True, exist_ok=True)
        artifacts = write_design(design, build_dir, axis=axis)
        sources = ([artifacts.verilog] + ([artifacts.axis_verilog] if axis else [])
                   + models)
        try:
            _runner().build(sources=sources, hdl_toplevel=wrapper_name(cfg) if axis else cfg.name,
                            build_dir=build_dir, build_args=["-Wno-fatal", "-O3"], waves=waves,
                            always=True, log_file=build_dir / "build.log")
        except RuntimeError:
            raise SimError(f"Verilator build of {cfg.name} failed; see {build_dir / 'build.log'}"
                           ) from None
        stamp.write_text(digest + "\n")
    return build_dir


def simulate(design: Design | EngineConfig, seed: int = 1, vectors: int = 64, waves: bool = False,
             valid_prob: float = 0.7, ready_prob: float = 0.7,
             progress: Callable[[str], None] | None = None,
             options: dict | None = None, axis: bool = False) -> SimResult:
    """Build (cached) and run the engine's testbench for ``design`` (elaborated here if given a
    config); return what it measured.

    ``vectors`` is the engine's unit of stimulus (mac_array: activation rows of the long random
    tile; snn: samples); ``valid_prob`` and ``ready_prob`` set the random gaps and backpressure of
    the stress phase. ``options`` are testbench-specific settings (JSON-serializable), e.g.
    ``{"profile": "vgg16", "phase2": False}`` for snn; see the engine's ``sim/test_*.py``.
    ``axis`` simulates the AXI4-Stream wrapper ``<name>_axis`` around the core instead of the core
    (same testbench, same checks; see the module docstring).
    """
    check_int("vectors", vectors, 1, 100_000)
    check_probability("valid_prob", valid_prob, 0.05)
    check_probability("ready_prob", ready_prob, 0.05)
    say = progress or (lambda line: None)
    if options is not None:
        try:
            if not isinstance(options, dict):
                raise TypeError
            json.dumps(options)
        except (TypeError, ValueError, RecursionError):
            raise invalid("options", options, "a JSON-serializable dict or None") from None
    design = as_design(design)
    top = wrapper_name(design.cfg) if axis else design.name
    say(f"verilator build of {top} (cached per config)")
    build_dir = build(design, waves, axis=axis)
    return run_testbench(design.cfg, build_dir, seed=seed, vectors=vectors, waves=waves,
                         valid_prob=valid_prob, ready_prob=ready_prob, progress=say,
                         options=options, axis=axis)


def run_testbench(testbench_cfg: EngineConfig, build_dir: Path, seed: int, vectors: int,
                  waves: bool, valid_prob: float, ready_prob: float,
                  progress: Callable[[str], None], options: dict | None = None,
                  axis: bool = False) -> SimResult:
    """Run the testbench of ``testbench_cfg`` on the simulator built in ``build_dir``.

    The testbench computes its expectations from ``testbench_cfg``; :func:`simulate` passes the
    config the simulator was built from. (Tests pass a different one to prove that a wrong
    expectation is caught.) ``options`` reach the testbench as JSON in ``HWGEN_OPTIONS``
    (``TestParams.options``). ``axis``: ``build_dir`` holds the AXI4-Stream wrapper build.
    """
    engine = ENGINES[testbench_cfg.kind]
    run_dir = Path(tempfile.mkdtemp(prefix=f"run-seed{seed}-", dir=build_dir))
    result_path = run_dir / "result.json"
    log_path = run_dir / "sim.log"
    env = {
        "HWGEN_CONFIG": json.dumps(config_to_dict(testbench_cfg)),
        "HWGEN_SEED": str(seed),
        "HWGEN_VECTORS": str(vectors),
        "HWGEN_VALID_PROB": str(valid_prob),
        "HWGEN_READY_PROB": str(ready_prob),
        "HWGEN_RESULT": str(result_path),
        "HWGEN_OPTIONS": json.dumps(options or {}),
        "HWGEN_AXIS": "1" if axis else "0",
    }
    progress(f"cocotb {engine.testbench} seed={seed} vectors={vectors}")
    started = time.monotonic()
    try:
        # The runner hands this process's sys.path to the simulator as PYTHONPATH, so the
        # testbench module is found there as it is here.
        _runner().test(test_module=engine.testbench,
                       hdl_toplevel=wrapper_name(testbench_cfg) if axis else testbench_cfg.name,
                       hdl_toplevel_lang="verilog", build_dir=build_dir, test_dir=run_dir,
                       extra_env=env, waves=waves, results_xml=str(run_dir / "results.xml"),
                       log_file=log_path, seed=seed)
    except (SystemExit, RuntimeError):
        pass    # a failing testbench still writes its result file; judged below
    if not result_path.is_file():
        raise SimError(f"simulation of {testbench_cfg.name} crashed before writing results; "
                       f"see {log_path}")
    try:
        result = TestbenchResult.read(result_path)
    except (ValueError, TypeError) as exc:
        raise SimError(f"simulation of {testbench_cfg.name}: {exc}; see {log_path}") from None
    problems = result.problems
    message = (f"{result.beats} beats equal to the golden model" if result.passed else
               f"{result.errors} of {result.beats} beats differ (expected "
               f"{result.expected_beats})" + (f"; {'; '.join(problems)}" if problems else "")
               + f"; see {log_path}")
    progress(f"simulation finished in {time.monotonic() - started:.1f} s")
    waves_path = run_dir / "dump.vcd"
    counters = result.counters
    return SimResult(passed=result.passed, beats=result.beats, errors=result.errors,
                     cycles=counters["cycles"], busy=counters["busy"], stall=counters["stall"],
                     utilization=result.utilization, message=message, log_path=log_path,
                     waves_path=waves_path if waves and waves_path.is_file() else None,
                     details=result.to_dict())
