"""Reading a VCD waveform (IEEE 1364 §18) back into per-cycle register values.

Only what Verilator writes is needed: ``$timescale``, nested ``$scope``s, ``$var`` lines, then
``#time`` stamps with scalar (``0!``) and vector (``b1010 !``) value changes. ``x``/``z`` bits
cannot occur in Verilator's two-state simulation; meeting one is an error rather than a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["VcdError", "VcdSignal", "Waveform", "read_vcd"]

_UNITS_PS = {"s": 10**12, "ms": 10**9, "us": 10**6, "ns": 10**3, "ps": 1, "fs": None}


class VcdError(ValueError):
    """The file is not a VCD this reader understands; one line saying where and why."""


@dataclass
class VcdSignal:
    """One variable: its width and every value it took, as (time, value) in time order."""

    width: int
    changes: list[tuple[int, int]] = field(default_factory=list)


@dataclass(frozen=True)
class Waveform:
    """Signals by dotted hierarchical name (``TOP.top_module.signal``), times in picoseconds."""

    signals: dict[str, VcdSignal]

    def find(self, scope: str, name: str) -> VcdSignal:
        """The signal ``name`` directly inside the scope whose last component is ``scope``."""
        hits = [s for full, s in self.signals.items()
                if full.endswith(f".{scope}.{name}") or full == f"{scope}.{name}"]
        if len(hits) != 1:
            raise VcdError(f"signal {scope}.{name}: {len(hits)} matches in the waveform")
        return hits[0]

    def per_cycle(self, signal: VcdSignal, edge0_ps: int, period_ps: int, cycles: int
                  ) -> np.ndarray:
        """The signal's value in cycles 0 .. cycles-1, where cycle t starts at the clock edge at
        ``edge0_ps + t * period_ps`` (a change at that edge belongs to cycle t). Unsigned bits.

        Changes after the last cycle are outside the window and ignored. Raises VcdError if the
        signal changes between edges (it is not a register of that clock) or to a nonzero value
        before cycle 0.
        """
        values = np.zeros(cycles, dtype=np.int64)
        for time, value in signal.changes:
            cycle, rest = divmod(time - edge0_ps, period_ps)
            if cycle >= cycles:
                break
            if rest or (cycle < 0 and value):
                raise VcdError(f"a change to {value} at {time} ps is not at a clock edge of "
                               f"cycles 0..{cycles - 1}")
            values[max(cycle, 0):] = value
        return values


def read_vcd(path: str | Path, wanted: set[str] | None = None) -> Waveform:
    """Parse ``path``; keep only variables whose leaf name is in ``wanted`` (all if None)."""
    path = Path(path)
    scale = 1
    scopes: list[str] = []
    by_code: dict[str, list[VcdSignal]] = {}
    signals: dict[str, VcdSignal] = {}
    time = 0
    with open(path, encoding="ascii") as handle:
        tokens = _tokens(handle)
        for token in tokens:
            if token == "$timescale":
                text = "".join(_until_end(tokens))
                match = re.fullmatch(r"(1|10|100)\s*(s|ms|us|ns|ps|fs)", text)
                if not match or _UNITS_PS[match[2]] is None:
                    raise VcdError(f"{path.name}: timescale {text!r} is not a multiple of 1 ps")
                scale = int(match[1]) * _UNITS_PS[match[2]]
            elif token == "$scope":
                scopes.append(_until_end(tokens)[1])
            elif token == "$upscope":
                scopes.pop()
                _until_end(tokens)
            elif token == "$var":
                _kind, width, code, name, *_ = _until_end(tokens)
                if wanted is None or name in wanted:
                    signal = VcdSignal(int(width))
                    signals[".".join([*scopes, name])] = signal
                    by_code.setdefault(code, []).append(signal)
            elif token in ("$dumpvars", "$dumpall", "$dumpon", "$dumpoff", "$end"):
                continue                     # value changes follow as usual, up to $end
            elif token.startswith("$"):
                _until_end(tokens)           # $date, $version, $comment, $enddefinitions
            elif token[0] == "#":
                time = int(token[1:]) * scale
            elif token[0] in "bB":
                _record(by_code.get(next(tokens)), time, token[1:], path)
            elif token[0] in "01xzXZ":
                _record(by_code.get(token[1:]), time, token[0], path)
            elif token[0] in "rR":
                next(tokens)                 # a real variable: never one of ours
            else:
                raise VcdError(f"{path.name}: unexpected token {token!r}")
    return Waveform(signals)


def _tokens(handle):
    for line in handle:
        yield from line.split()


def _until_end(tokens) -> list[str]:
    words = []
    for token in tokens:
        if token == "$end":
            return words
        words.append(token)
    raise VcdError("unterminated $ section")


def _record(signals: list[VcdSignal] | None, time: int, bits: str, path: Path) -> None:
    if not signals:
        return
    if any(b not in "01" for b in bits):
        raise VcdError(f"{path.name}: value {bits!r} at {time} ps has x/z bits")
    value = int(bits, 2)
    for signal in signals:
        signal.changes.append((time, value))
