"""What every engine testbench shares: parameters from the runner, reset, counters, the result file.

:func:`hwgen.flows.sim.simulate` passes parameters through environment variables (the cocotb runner
starts the simulator as a subprocess) and reads back the JSON result file written here.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from hwgen.config import EngineConfig, config_from_dict

__all__ = ["TestParams", "start_clock_and_reset", "read_counters", "union_size", "write_result"]

CLOCK_PERIOD_NS = 10


@dataclass(frozen=True)
class TestParams:
    __test__ = False   # not a pytest class

    cfg: EngineConfig
    seed: int
    vectors: int
    valid_prob: float     # chance a waiting input beat is offered in a cycle
    ready_prob: float     # chance the output is ready in a cycle
    result_path: Path
    options: dict = field(default_factory=dict)   # testbench-specific, from HWGEN_OPTIONS

    @classmethod
    def from_env(cls) -> "TestParams":
        env = os.environ
        return cls(cfg=config_from_dict(json.loads(env["HWGEN_CONFIG"]), "HWGEN_CONFIG"),
                   seed=int(env["HWGEN_SEED"]), vectors=int(env["HWGEN_VECTORS"]),
                   valid_prob=float(env["HWGEN_VALID_PROB"]),
                   ready_prob=float(env["HWGEN_READY_PROB"]),
                   result_path=Path(env["HWGEN_RESULT"]),
                   options=json.loads(env.get("HWGEN_OPTIONS") or "{}"))


async def start_clock_and_reset(dut, cycles: int = 3) -> None:
    """Start ``clk`` and hold the synchronous ``rst`` high for ``cycles`` rising edges."""
    Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns").start()
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


async def read_counters(dut) -> dict[str, int]:
    """The ``perf`` counters as seen in the current cycle (call right after a rising edge)."""
    await ReadOnly()
    return {name: int(getattr(dut, f"perf__{name}").value) for name in ("cycles", "busy", "stall")}


def union_size(intervals: list[tuple[int, int]]) -> int:
    """Number of integers covered by inclusive ``(start, end)`` intervals."""
    total, reach = 0, None
    for start, end in sorted(intervals):
        if reach is None or start > reach:
            total += end - start + 1
            reach = end
        elif end > reach:
            total += end - reach
            reach = end
    return total


def write_result(path: Path, result: dict) -> None:
    path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
