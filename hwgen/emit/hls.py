"""HLS C++ for every engine: rendering the Jinja templates and C simulation (docs/architecture.md
§1, §2).

``render_hls(cfg)`` writes ``<out_dir>/<name>/``:

``<name>.h``, ``<name>.cpp``
    the kernel: a top function ``<name>(...)`` with ``hls::stream`` arguments, fixed-width
    integers in ``int64_t`` with explicit masking, pipeline and array-partition pragmas
    (``templates/hls/<engine>/kernel.h.j2`` and ``kernel.cpp.j2``);
``<name>_tb.cpp``
    a self-checking testbench: ``<name>_tb STIMULUS EXPECTED OUTPUT`` reads the stimulus, runs
    the kernel, writes its outputs and compares them with the expected values
    (``templates/hls/<engine>/testbench.cpp.j2``);
``hwgen_hls.h``
    the shared support header (streams, masking, file I/O);
``run_hls.tcl``
    a Vitis HLS script (C simulation, then synthesis) for users who have the tool.

Each engine (:class:`hwgen.engines.base.Engine`) supplies ``hls_context(cfg) -> dict`` (every
value its templates print, computed in Python from the same objects the RTL and the golden model
use: the templates hold no arithmetic), ``hls_vectors(cfg, seed, vectors) -> HlsVectors`` (the
stimulus and the golden model's expected outputs, as integers in the order its testbench reads and
writes them) and the folder of its three templates (``templates/hls/<kind>/`` for the built-in
engines).

``csim(cfg, folder)`` compiles kernel and testbench with the system C++ compiler (``g++``,
``-DHWGEN_NATIVE_CSIM``) and runs them on ``hls_vectors``: the outputs must equal the golden model
bit for bit.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hwgen.config import EngineConfig, check_int, config_hash
from hwgen.emit.folders import publish_folder
from hwgen.emit.templates import render, render_file
from hwgen.engines.registry import ENGINES

__all__ = ["HlsArtifacts", "CsimResult", "CsimError", "render_files", "render_hls",
           "csim", "HLS_PART", "HLS_CLOCK_NS", "CXX_FLAGS"]

#: The part and clock period the Vitis script targets (a user edits them for their board).
HLS_PART = "xcu50-fsvh2104-2-e"
HLS_CLOCK_NS = 4.0

#: How `csim` compiles: warnings are errors, except for the HLS pragmas g++ does not know and
#: the loop labels HLS reports name loops by.
CXX_FLAGS = ("-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas",
             "-Wno-unused-label", "-DHWGEN_NATIVE_CSIM")


class CsimError(RuntimeError):
    """The C simulation could not run (no compiler, compile error, crash); one line."""


@dataclass(frozen=True)
class HlsArtifacts:
    directory: Path
    header: Path
    kernel: Path
    testbench: Path
    support: Path
    script: Path


@dataclass(frozen=True)
class CsimResult:
    """passed: outputs equal the golden model; message: the testbench's verdict line."""

    passed: bool
    outputs: int
    message: str
    log_path: Path


def _paths(cfg: EngineConfig, directory: Path) -> HlsArtifacts:
    name = cfg.name
    return HlsArtifacts(directory, directory / f"{name}.h", directory / f"{name}.cpp",
                        directory / f"{name}_tb.cpp", directory / "hwgen_hls.h",
                        directory / "run_hls.tcl")


def render_files(cfg: EngineConfig) -> dict[str, str]:
    """File name -> text of every HLS file for ``cfg`` (deterministic)."""
    engine = ENGINES[cfg.kind]
    paths = _paths(cfg, Path("."))
    context = {"name": cfg.name, "top": cfg.name, "header": paths.header.name,
               "engine": cfg.kind, **engine.hls_context(cfg)}
    kind = cfg.kind
    folder = engine.hls_templates
    return {
        paths.header.name: render_file(folder / "kernel.h.j2", **context),
        paths.kernel.name: render_file(folder / "kernel.cpp.j2", **context),
        paths.testbench.name: render_file(folder / "testbench.cpp.j2", **context),
        paths.support.name: render("hls/hwgen_hls.h.j2"),
        paths.script.name: render("hls/run_hls.tcl.j2", top=cfg.name, engine=kind,
                                  kernel=paths.kernel.name, testbench=paths.testbench.name,
                                  part=HLS_PART, clock_ns=HLS_CLOCK_NS),
    }


def render_hls(cfg: EngineConfig, out_dir: str | Path = "hls_out") -> HlsArtifacts:
    """Write ``<out_dir>/<cfg.name>/`` (replacing a previous version; never half-written; never
    over a folder hwgen did not write, see :func:`hwgen.emit.folders.publish_folder`)."""
    files = render_files(cfg)

    def fill(folder: Path) -> None:
        for name, text in files.items():
            (folder / name).write_text(text)

    publish_folder(out_dir, cfg.name, fill,
                   marker={"command": "hls", "config_hash": config_hash(cfg)})
    return _paths(cfg, Path(out_dir) / cfg.name)


def _compiler() -> str:
    found = shutil.which("g++")
    if not found:
        raise CsimError("g++ not found: the C simulation needs a C++17 compiler on PATH "
                        "(e.g. Debian's g++ package)")
    return found


def csim(cfg: EngineConfig, directory: str | Path, seed: int = 1, vectors: int = 8
         ) -> CsimResult:
    """Compile and run the testbench in ``directory`` (written by :func:`render_hls` for
    ``cfg``) on the golden model's stimulus; ``stimulus.txt``, ``expected.txt``,
    ``output.txt`` and ``csim.log`` are left in the folder."""
    check_int("vectors", vectors, 1, 10_000)
    paths = _paths(cfg, Path(directory).resolve())
    data = ENGINES[cfg.kind].hls_vectors(cfg, seed, vectors)
    (paths.directory / "stimulus.txt").write_text(" ".join(map(str, data.stimulus)) + "\n")
    (paths.directory / "expected.txt").write_text("\n".join(map(str, data.expected)) + "\n")
    log = paths.directory / "csim.log"
    shown_log = Path(directory) / "csim.log"     # as the caller named the folder
    exe = paths.directory / f"{cfg.name}_csim"
    build = subprocess.run([_compiler(), *CXX_FLAGS, "-I", str(paths.directory),
                            str(paths.kernel), str(paths.testbench), "-o", str(exe)],
                           capture_output=True, text=True)
    log.write_text(build.stdout + build.stderr)
    if build.returncode != 0:
        first = next((ln for ln in build.stderr.splitlines() if "error" in ln), "see the log")
        raise CsimError(f"g++ failed on {paths.kernel.name}: {first.strip()} (see {shown_log})")
    run = subprocess.run([str(exe), "stimulus.txt", "expected.txt", "output.txt"],
                         cwd=paths.directory, capture_output=True, text=True, timeout=600)
    log.write_text(log.read_text() + run.stdout + run.stderr)
    verdict = [ln for ln in run.stdout.splitlines() if ln.startswith("hwgen csim: ")]
    if not verdict or run.returncode not in (0, 1):
        raise CsimError(f"the C simulation of {cfg.name} crashed (exit code {run.returncode}); "
                        f"see {shown_log}")
    message = verdict[-1][len("hwgen csim: "):]
    return CsimResult(passed=run.returncode == 0 and message.startswith("PASS"),
                      outputs=len(data.expected), message=message, log_path=shown_log)
