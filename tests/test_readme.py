"""Every ``hwgen`` command README.md shows in a ```sh block works as shown: exit code 0.

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


def readme_commands(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """(command, setup commands) for every ``hwgen`` command of the ```sh blocks of ``text``.

    Lines continued with a backslash are joined, and a line may chain commands with ``&&``.
    The setup of a command is what its block runs before it to prepare files: the other
    commands (e.g. a ``python -c`` that writes the inputs) and the ``hwgen`` commands whose
    output goes to a file (``>``); not ``pip install``, which is the environment the tests run
    in.
    """
    found = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, re.M | re.S):
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


COMMANDS = readme_commands((ROOT / "README.md").read_text())


def marks(command: str) -> list:
    words = command.split()
    return ([pytest.mark.sim] if words[1] in ("sim", "flow") else []) + \
        ([pytest.mark.synth] if words[1] in ("synth", "flow") else [])


def test_the_readme_commands_are_found():
    names = {command.split()[1] for command, _ in COMMANDS}
    assert {"new", "generate", "sim", "synth", "flow", "doctor"} <= names
    setup = next(setup for command, setup in COMMANDS
                 if command.startswith("hwgen generate mac.toml"))
    assert any(line.startswith("hwgen new mac_array > mac.toml") for line in setup)


@pytest.mark.parametrize("command, setup", [
    pytest.param(command, setup, marks=marks(command), id=command.split("#")[0].strip())
    for command, setup in COMMANDS])
def test_readme_command(tmp_path, command, setup):
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = dict(os.environ, HWGEN_CACHE=str(cache_root()),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    for line in (*setup, command):
        proc = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, text=True,
                              capture_output=True, timeout=TIMEOUT_S)
        assert proc.returncode == 0, f"{line}\n{proc.stdout}\n{proc.stderr}"
        assert "Traceback" not in proc.stderr, proc.stderr
