"""The performance-counter check every streaming testbench runs per segment of its run.

:class:`CounterMonitor` records in which cycles ``perf__busy`` and ``perf__stall`` counted;
:class:`SegmentCounters` reads the counters around one segment (a stretch of transfers followed
by an idle tail) and lists every way they disagree with what the testbench observed:
``cycles`` must equal the clock, ``stall`` the cycles in which an output waited for ``ready``,
``busy`` must cover every transfer and stay within the cycles, and neither may move while idle.
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from .harness import read_counters, union_size
from .streams import CycleClock

__all__ = ["IDLE_TAIL", "CounterMonitor", "SegmentCounters"]

#: Idle cycles after a segment's last output beat before (and after) its counters are read;
#: ``busy`` must not move in any of them.
IDLE_TAIL = 6


class CounterMonitor:
    """Reads ``perf__busy`` and ``perf__stall`` every cycle: the cycles in which each counted.

    A counter read in the read-only phase of cycle c holds the conditions of cycles < c, so an
    increment between the reads of cycles c and c + 1 means the condition held in cycle c (the
    cycle a transfer seen in cycle c's read-only phase happens in). Reset clears the counters;
    a decrease is not an increment.
    """

    def __init__(self, dut, clock: CycleClock):
        self.dut, self.clock = dut, clock
        self.busy_cycles: set[int] = set()
        self.stall_cycles: set[int] = set()

    def start(self):
        return cocotb.start_soon(self._run())

    async def _run(self):
        prev = None
        while True:
            await RisingEdge(self.clock.clk)
            await ReadOnly()
            now = (int(self.dut.perf__busy.value), int(self.dut.perf__stall.value))
            if prev is not None:
                if now[0] == prev[0] + 1:
                    self.busy_cycles.add(self.clock.now - 1)
                if now[1] == prev[1] + 1:
                    self.stall_cycles.add(self.clock.now - 1)
            prev = now


class SegmentCounters:
    """The counters over one segment: :meth:`begin` before its first transfer, :meth:`end` once
    its last output arrived. ``sources`` are the input drivers, ``sink`` the output's
    (:mod:`.streams`): their transfers in between are the segment's."""

    def __init__(self, dut, clock: CycleClock, monitor: CounterMonitor, sources, sink):
        self.dut, self.clock, self.monitor = dut, clock, monitor
        self.sources, self.sink = sources, sink

    async def begin(self) -> None:
        await RisingEdge(self.dut.clk)      # leave the read-only phase of an earlier read
        self.start = await read_counters(self.dut)
        self.start_cycle = self.clock.now
        self.marks = [len(s.sent) for s in self.sources]
        self.sink_marks = (len(self.sink.received), len(self.sink.stall_cycles))

    async def end(self) -> tuple[list[str], dict]:
        """Wait the idle tail and check. Returns (errors, the segment's entry for the result
        file)."""
        received, stalled = self.sink_marks
        moves = [t.cycle for s, mark in zip(self.sources, self.marks) for t in s.sent[mark:]] \
            + [t.cycle for t in self.sink.received[received:]]
        stalls = self.sink.stall_cycles[stalled:]
        for _ in range(IDLE_TAIL):
            await RisingEdge(self.dut.clk)
        end = await read_counters(self.dut)
        end_cycle = self.clock.now
        for _ in range(IDLE_TAIL):
            await RisingEdge(self.dut.clk)
        after = await read_counters(self.dut)
        after_cycle = self.clock.now

        moving = union_size([(c, c) for c in moves])
        window = range(self.start_cycle, end_cycle)
        busy_at = {c for c in self.monitor.busy_cycles if c in window}
        stall_at = {c for c in self.monitor.stall_cycles if c in window}
        idle_moves = sorted(set(moves) - busy_at)
        stall_not_busy = sorted(set(stalls) - busy_at)
        delta = {key: end[key] - self.start[key] for key in ("cycles", "busy", "stall")}
        observed = {"cycles": end_cycle - self.start_cycle, "stall": len(stalls),
                    "transfer_cycles": moving}
        errs = []
        if delta["cycles"] != observed["cycles"]:
            errs.append(f"cycles: counter {delta['cycles']}, observed {observed['cycles']}")
        if delta["stall"] != observed["stall"]:
            errs.append(f"stall: counter {delta['stall']}, observed {observed['stall']}")
        if not moving <= delta["busy"] <= delta["cycles"]:
            errs.append(f"busy: counter {delta['busy']}, expected between {moving} (cycles with "
                        f"a transfer) and {delta['cycles']} (all cycles)")
        if stall_at != set(stalls):
            errs.append(f"stall counted in cycles {sorted(stall_at ^ set(stalls))[:8]} where the "
                        f"testbench saw the opposite")
        if stall_not_busy:
            errs.append(f"stall cycles not counted as busy: {stall_not_busy[:8]}")
        if idle_moves:
            errs.append(f"busy not counted in {len(idle_moves)} cycles with a transfer (first: "
                        f"{idle_moves[:8]})")
        last_move = max(moves, default=self.start_cycle)
        idle_busy = sorted(c for c in self.monitor.busy_cycles if last_move < c < after_cycle)
        if idle_busy or after["stall"] != end["stall"]:
            errs.append(f"busy/stall moved while idle after the last transfer (cycle {last_move}):"
                        f" busy in cycles {idle_busy[:8]}, stall {end['stall']} -> "
                        f"{after['stall']}")
        # hwgen.hdl.perf documents stall as "busy cycles in which the engine could not advance";
        # these stall cycles were not counted as busy.
        return errs, {"counters": delta, "observed": observed,
                      "stall_not_busy": len(stall_not_busy)}
