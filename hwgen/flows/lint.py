"""``verilator --lint-only -Wall`` on an emitted design, with the one waiver file (DESIGN.md §5)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from hwgen.flows.toolchain import run_tool

__all__ = ["WAIVER_FILE", "LintResult", "lint"]

#: Every lint waiver hwgen applies, each documented in the file itself.
WAIVER_FILE = Path(__file__).resolve().parents[1] / "data" / "verilator_waivers.vlt"


@dataclass(frozen=True)
class LintResult:
    clean: bool
    messages: tuple[str, ...]   # first line of every warning/error Verilator printed

    def summary(self) -> str:
        return "clean" if self.clean else f"{len(self.messages)} issue(s): {self.messages[0]}"


def lint(verilog: Path, top: str) -> LintResult:
    """Lint ``verilog`` with top module ``top``; clean means exit 0 and no messages at all."""
    proc = run_tool("verilator", ["--lint-only", "-Wall", "--top-module", top, str(WAIVER_FILE),
                                  str(verilog)], timeout=600)
    messages = tuple(ln for ln in proc.stderr.splitlines() if re.match(r"%(Warning|Error)", ln))
    return LintResult(clean=proc.returncode == 0 and not messages, messages=messages)
