"""Reading a VCD waveform (IEEE 1364 §18) back into per-cycle register values.

The file is tokenized by pyvcd (:func:`vcd.reader.tokenize`); this module keeps the scopes, the
variables asked for and their value changes, with times in picoseconds. ``x``/``z`` bits cannot
occur in Verilator's two-state simulation; meeting one in a kept variable is an error rather
than a guess.

pyvcd before 0.5 refuses scope and variable names that start with ``$``, which Verilator
(``$rootio``) and Amaranth's Verilog (``$1``) both produce, and Amaranth 0.5 requires
``pyvcd < 0.5``. Such names are handed to pyvcd as IEEE 1364 escaped identifiers (``\\$rootio``),
which it reads back as the same names; only the declarations before ``$enddefinitions`` are
rewritten, the value changes are streamed to pyvcd as they are.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from vcd.common import TimescaleUnit
from vcd.reader import TokenKind, VCDParseError, tokenize

__all__ = ["VcdError", "VcdSignal", "Waveform", "read_vcd"]

# Femtoseconds are missing on purpose: times are kept as whole picoseconds.
_UNITS_PS = {TimescaleUnit.second: 10**12, TimescaleUnit.millisecond: 10**9,
             TimescaleUnit.microsecond: 10**6, TimescaleUnit.nanosecond: 10**3,
             TimescaleUnit.picosecond: 1}

#: A scope or variable declaration up to a name that starts with "$" (and is not "$end").
_DOLLAR_NAME = re.compile(rb"(\$scope\s+\S+\s+|\$var\s+\S+\s+\d+\s+\S+\s+)(?=\$(?!end\s))")


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
    """Parse ``path``; keep only variables whose leaf name is in ``wanted`` (all if None).

    Raises
    ------
    VcdError
        The file is not valid VCD, its timescale is not a whole number of picoseconds, or a kept
        variable takes an ``x`` or ``z`` bit.
    OSError
        The file cannot be read.
    """
    path = Path(path)
    scale = 1
    scopes: list[str] = []
    by_code: dict[str, list[VcdSignal]] = {}
    signals: dict[str, VcdSignal] = {}
    time = 0
    with open(path, "rb") as handle:
        try:
            for token in tokenize(_EscapedNames(handle)):
                kind, data = token.kind, token.data
                if kind is TokenKind.CHANGE_TIME:
                    time = data * scale
                elif kind in (TokenKind.CHANGE_VECTOR, TokenKind.CHANGE_SCALAR):
                    _record(by_code.get(data.id_code), time, data.value, path)
                elif kind is TokenKind.VAR:
                    if wanted is None or data.reference in wanted:
                        signal = VcdSignal(data.size)
                        signals[".".join([*scopes, data.reference])] = signal
                        by_code.setdefault(data.id_code, []).append(signal)
                elif kind is TokenKind.SCOPE:
                    scopes.append(data.ident)
                elif kind is TokenKind.UPSCOPE:
                    if not scopes:
                        raise VcdError(f"{path.name}: $upscope without an open $scope")
                    scopes.pop()
                elif kind is TokenKind.TIMESCALE:
                    if data.unit not in _UNITS_PS:
                        raise VcdError(f"{path.name}: timescale {data} is not a multiple of 1 ps")
                    scale = data.magnitude.value * _UNITS_PS[data.unit]
                # Anything else (real and string changes, $date, $comment, $dumpvars ... $end)
                # never belongs to a register.
        except VCDParseError as exc:
            raise VcdError(f"{path.name}: not a valid VCD file: {exc}") from None
    return Waveform(signals)


class _EscapedNames(io.RawIOBase):
    """``handle`` with every ``$`` name in its declarations escaped (see the module doc)."""

    def __init__(self, handle: BinaryIO):
        super().__init__()
        declarations = bytearray()
        for line in handle:
            declarations += line
            if b"$enddefinitions" in line:
                break
        self._head = io.BytesIO(_DOLLAR_NAME.sub(rb"\1\\", bytes(declarations)))
        self._rest = handle

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        return self._head.readinto(buffer) or self._rest.readinto(buffer)


def _record(signals: list[VcdSignal] | None, time: int, value: int | str, path: Path) -> None:
    if not signals:
        return
    if not isinstance(value, int):
        # pyvcd gives a vector made of 0 and 1 bits as an int, anything else as its text.
        if any(b not in "01" for b in value):
            raise VcdError(f"{path.name}: value {value!r} at {time} ps has x/z bits")
        value = int(value, 2)
    for signal in signals:
        signal.changes.append((time, value))
