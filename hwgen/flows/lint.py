"""``verilator --lint-only -Wall`` on an emitted design, with the one waiver file
(docs/architecture.md §5)."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
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


def _scoped_waivers(files: Sequence[Path]) -> str:
    """The rules of :data:`WAIVER_FILE`, each limited to ``files``
    (``lint_off -rule R -file "F"``)."""
    lines = []
    for line in WAIVER_FILE.read_text().splitlines():
        rule = re.fullmatch(r"lint_off -rule (\w+)", line.strip())
        if rule is None:
            lines.append(line)
            continue
        for path in files:
            if '"' in str(path):
                raise ValueError(f"lint: cannot scope waivers to a path with a quote: {path}")
            lines.append(f'lint_off -rule {rule.group(1)} -file "{path}"')
    return "\n".join(lines) + "\n"


def lint(verilog: Path | Sequence[Path], top: str,
         waived: Sequence[Path] | None = None) -> LintResult:
    """Lint ``verilog`` (one file, or several read together, e.g. a core and its AXI-Stream
    wrapper) with top module ``top``; clean means exit 0 and no messages at all.

    The waivers of :data:`WAIVER_FILE` apply to every file, or only to the files in ``waived``
    (they are for Amaranth's output): ``lint([core, wrapper], "<name>_axis", waived=[core])``
    holds hwgen's own hand-written Verilog to plain ``-Wall``.
    """
    files = [Path(verilog)] if isinstance(verilog, (str, Path)) else [Path(v) for v in verilog]
    with tempfile.TemporaryDirectory(prefix="hwgen-lint-") as tmp:
        waivers = WAIVER_FILE
        if waived is not None:
            files = [f.resolve() for f in files]
            waivers = Path(tmp) / "waivers.vlt"
            waivers.write_text(_scoped_waivers([Path(w).resolve() for w in waived]))
        proc = run_tool("verilator", ["--lint-only", "-Wall", "--top-module", top, str(waivers),
                                      *map(str, files)], timeout=600)
    messages = tuple(ln for ln in proc.stderr.splitlines() if re.match(r"%(Warning|Error)", ln))
    return LintResult(clean=proc.returncode == 0 and not messages, messages=messages)
