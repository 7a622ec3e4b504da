"""What every engine testbench shares: parameters from the runner, reset, counters, the result file.

:func:`hwgen.flows.sim.simulate` passes parameters through environment variables (the cocotb runner
starts the simulator as a subprocess) and reads back the JSON result file written here.

A testbench is written against the core's ports (``clk``, ``rst``, ``<stream>__payload/valid/
ready``, ``perf__*``). When the toplevel is the core's AXI4-Stream wrapper
(``simulate(..., axis=True)``), ``dut = core_view(dut, params)`` gives it those ports on top of
the wrapper's: see :class:`AxisCoreView`.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from hwgen.config import EngineConfig
from hwgen.emit.axis import axis_streams
from hwgen.engines.base import TestbenchResult
from hwgen.engines.registry import config_from_dict

from .streams import AxisPayload, CycleClock, StreamDriver, StreamSink

__all__ = ["TestParams", "AxisCoreView", "core_view", "start_clock_and_reset", "read_counters",
           "union_size", "finish"]

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
    axis: bool = False    # the toplevel is the AXI4-Stream wrapper <name>_axis (HWGEN_AXIS=1)

    @classmethod
    def from_env(cls) -> "TestParams":
        env = os.environ
        return cls(cfg=config_from_dict(json.loads(env["HWGEN_CONFIG"]), "HWGEN_CONFIG"),
                   seed=int(env["HWGEN_SEED"]), vectors=int(env["HWGEN_VECTORS"]),
                   valid_prob=float(env["HWGEN_VALID_PROB"]),
                   ready_prob=float(env["HWGEN_READY_PROB"]),
                   result_path=Path(env["HWGEN_RESULT"]),
                   options=json.loads(env.get("HWGEN_OPTIONS") or "{}"),
                   axis=env.get("HWGEN_AXIS", "0") == "1")


class _ActiveLow:
    """``rst`` on top of ``aresetn``: writing 1 drives ``aresetn`` low; reading inverts it."""

    def __init__(self, handle):
        self.handle = handle

    @property
    def value(self) -> int:
        return 1 - int(self.handle.value)

    @value.setter
    def value(self, bit) -> None:
        self.handle.value = 1 - int(bit)


class AxisCoreView:
    """The AXI4-Stream wrapper ``<name>_axis`` seen through the core's port names.

    ``clk`` is ``aclk``; ``rst`` is ``aresetn`` inverted (``rst.value = 1`` drives ``aresetn``
    low); ``<stream>__valid``/``__ready`` are ``s_axis_<stream>_tvalid``/``tready`` for a stream
    into the core and ``m_axis_<stream>_...`` for one out of it; ``<stream>__payload`` is an
    :class:`sim.streams.AxisPayload` that splits a payload into ``tdata``/``tlast`` and merges
    them back (with the stream's ``last`` offset from :func:`hwgen.emit.axis.axis_streams`). Every
    other name (``perf__*``, ``_log``) is the wrapper's own handle. ``rng`` fills the input bits
    the wrapper must ignore (see :class:`~sim.streams.AxisPayload`).
    """

    def __init__(self, dut, streams, rng: random.Random):
        self._dut = dut
        self.clk = dut.aclk
        self.rst = _ActiveLow(dut.aresetn)
        for s in streams:
            setattr(self, f"{s.name}__valid", getattr(dut, f"{s.interface}_tvalid"))
            setattr(self, f"{s.name}__ready", getattr(dut, f"{s.interface}_tready"))
            setattr(self, f"{s.name}__payload", AxisPayload(dut, s, rng))

    def __getattr__(self, name):
        # Only called for names not set in __init__.
        if name == "_dut":
            raise AttributeError(name)
        return getattr(self._dut, name)


def core_view(dut, params: TestParams):
    """``dut`` itself for a core, an :class:`AxisCoreView` of it for the AXI4-Stream wrapper:
    the first line of a testbench, after reading ``params``."""
    if not params.axis:
        return dut
    return AxisCoreView(dut, axis_streams(params.cfg), random.Random(params.seed ^ 0xA415))


async def start_clock_and_reset(dut, cycles: int = 3) -> None:
    """Start ``clk`` and hold the synchronous ``rst`` high for ``cycles`` rising edges (on an
    :class:`AxisCoreView`: ``aclk``, and ``aresetn`` low)."""
    Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns").start()
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


@dataclass(frozen=True)
class Bench:
    """What every engine testbench starts from (:func:`open_bench`).

    dut : the design, or the AXI4-Stream wrapper seen under the core's port names
    params : the run's :class:`TestParams`
    clock : numbers the cycles after reset
    gaps : seeded by the test seed; decides every valid gap and ready backpressure, in the order
        the streams were opened
    """

    dut: object
    params: TestParams
    clock: CycleClock
    gaps: random.Random

    def source(self, name: str) -> StreamDriver:
        """A started driver of input stream ``name``."""
        driver = StreamDriver(self.dut, name, self.clock, self.gaps)
        driver.start()
        return driver

    def sink(self, name: str) -> StreamSink:
        """A started sink of output stream ``name``."""
        sink = StreamSink(self.dut, name, self.clock, self.gaps)
        sink.start()
        return sink


async def open_bench(dut) -> Bench:
    """Read the parameters, reset the design and start counting cycles."""
    params = TestParams.from_env()
    dut = core_view(dut, params)
    await start_clock_and_reset(dut)
    clock = CycleClock(dut.clk)
    cocotb.start_soon(clock.run())
    return Bench(dut, params, clock, random.Random(params.seed))


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


def finish(params: TestParams, result: TestbenchResult) -> None:
    """Write ``result`` where :func:`hwgen.flows.sim.simulate` reads it, then fail the cocotb
    test if the run did not pass (the result file is written either way)."""
    result.write(params.result_path)
    assert not result.timeouts, f"results missing after {', '.join(result.timeouts)}"
    assert result.errors == 0, f"{result.errors} result beats differ from the golden model"
    assert result.beats == result.expected_beats, \
        f"{result.beats} of {result.expected_beats} expected result beats arrived"
    assert not result.timing_errors, "; ".join(result.timing_errors)
    assert not result.counter_errors, "; ".join(result.counter_errors)
