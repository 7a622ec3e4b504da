"""Every ``hwgen`` command README.md shows works as shown, and so does its Python API example.

Commands of the ```sh blocks must exit with code 0; a transcript (a plain block of ``$ hwgen
...`` lines, each followed by what it prints) must also print exactly that.

Each command runs through bash, as a user types it, in a fresh folder where ``examples/`` is the
repository's, with this environment's ``hwgen`` first on PATH. The lines of its block that
prepare files run first (``hwgen new mac_array > mac.toml`` before ``hwgen generate mac.toml``,
the ``python -c`` that writes ``W.npy`` before ``hwgen select``), so every command is a test of
its own. ``HWGEN_CACHE`` is this test session's cache, so Verilator builds are shared with the other
tests and with earlier sessions. Commands that simulate or synthesize carry the ``sim`` and
``synth`` marks.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hwgen.flows.cache import cache_root

ROOT = Path(__file__).resolve().parents[1]

#: Upper bound on one README command, in seconds.
TIMEOUT_S = 1800


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(info string, body) of every ``` block of ``text``, fences paired in order."""
    return [(m[1], m[2]) for m in re.finditer(r"^```(\w*)\n(.*?)^```\n", text, re.M | re.S)]


def readme_commands(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """(command, setup commands) for every ``hwgen`` command of the ```sh blocks of ``text``.

    Lines continued with a backslash are joined, and a line may chain commands with ``&&``.
    The setup of a command is what its block runs before it to prepare files: the other
    commands (e.g. a ``python -c`` that writes the inputs) and the ``hwgen`` commands whose
    output goes to a file (``>``); not ``pip install``, which is the environment the tests run
    in.
    """
    found = []
    for block in (body for info, body in fenced_blocks(text) if info == "sh"):
        setup: list[str] = []
        for line in block.replace("\\\n", "").splitlines():
            for part in line.split("&&"):
                command = part.strip()
                if command == "hwgen" or command.startswith("hwgen "):
                    found.append((command, tuple(setup)))
                    if ">" in command.split("#")[0]:
                        setup.append(command)
                elif command and not command.startswith(("#", "pip install")):
                    setup.append(command)
    return found


def readme_transcripts(text: str) -> list[tuple[str, str]]:
    """(command, printed output) for every ``$ hwgen`` line of the plain ``` blocks of ``text``:
    the output is the lines up to the next ``$`` line or the end of the block."""
    found = []
    for block in (body for info, body in fenced_blocks(text) if info == ""):
        for part in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, _, output = part.partition("\n")
            if command.startswith("hwgen "):
                found.append((command, output))
    return found


def python_api_example(text: str) -> str:
    """The ```python block of the "Python API" section."""
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    return next(body for info, body in fenced_blocks(section) if info == "python")


README = (ROOT / "README.md").read_text()
COMMANDS = readme_commands(README)
TRANSCRIPTS = readme_transcripts(README)


def marks(command: str) -> list:
    words = command.split()
    return ([pytest.mark.sim] if words[1] in ("sim", "flow") else []) + \
        ([pytest.mark.synth] if words[1] in ("synth", "flow") else [])


def test_the_readme_commands_are_found():
    assert [command for command, _ in TRANSCRIPTS] == [
        "hwgen hls examples/attention_topk.toml --csim"]
    names = {command.split()[1] for command, _ in COMMANDS}
    assert {"new", "generate", "sim", "synth", "flow", "doctor"} <= names
    setup = next(setup for command, setup in COMMANDS
                 if command.startswith("hwgen generate mac.toml"))
    assert any(line.startswith("hwgen new mac_array > mac.toml") for line in setup)


def _user_folder(tmp_path: Path) -> dict[str, str]:
    """A fresh folder where ``examples/`` is the repository's; the environment to run in."""
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    return dict(os.environ, HWGEN_CACHE=str(cache_root()),
                PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


@pytest.mark.parametrize("command, setup", [
    pytest.param(command, setup, marks=marks(command), id=command.split("#")[0].strip())
    for command, setup in COMMANDS])
def test_readme_command(tmp_path, command, setup):
    env = _user_folder(tmp_path)
    for line in (*setup, command):
        proc = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, text=True,
                              capture_output=True, timeout=TIMEOUT_S)
        assert proc.returncode == 0, f"{line}\n{proc.stdout}\n{proc.stderr}"
        assert "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("command, output", TRANSCRIPTS, ids=[c for c, _ in TRANSCRIPTS])
def test_readme_transcript(tmp_path, command, output):
    proc = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=_user_folder(tmp_path),
                          text=True, capture_output=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, f"{command}\n{proc.stdout}\n{proc.stderr}"
    assert proc.stdout == output


@pytest.mark.sim
@pytest.mark.synth
def test_readme_python_api_example(tmp_path):
    script = tmp_path / "api.py"
    script.write_text(python_api_example(README))
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=_user_folder(tmp_path),
                          text=True, capture_output=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    # print(result.passed, result.utilization, report.luts, report.fmax_mhz)
    passed, utilization, luts, fmax = proc.stdout.split()
    assert passed == "True" and 0 < float(utilization) <= 1 and int(luts) > 0 and float(fmax) > 0
