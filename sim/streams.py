"""Valid/ready stream driver and sink for cocotb testbenches of every engine.

Protocol (docs/architecture.md §3): a beat transfers on a rising edge where ``valid & ready``; the
driver never
waits for ``ready`` before raising ``valid`` and keeps the payload stable until the beat is taken.

Each cycle every coroutine writes its inputs just after the rising edge and then samples in the
read-only phase, when the combinational ``ready``/``valid`` of the design have settled; a
``valid & ready`` seen there is the transfer at the next edge. :class:`CycleClock` numbers the
cycles so the monitors can timestamp transfers.
"""

from __future__ import annotations

import random
from collections import deque

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

__all__ = ["AxisPayload", "CycleClock", "StreamDriver", "StreamSink", "TapMonitor", "Transfer"]


class CycleClock:
    """Counts rising edges of ``clk``; ``now`` is the index of the current cycle."""

    def __init__(self, clk):
        self.clk = clk
        self.now = 0

    async def run(self):
        while True:
            await RisingEdge(self.clk)
            self.now += 1


class Transfer:
    """One transferred beat: its payload bits and the cycle it transferred in."""

    __slots__ = ("bits", "cycle")

    def __init__(self, bits: int, cycle: int):
        self.bits = bits
        self.cycle = cycle


class AxisPayload:
    """A core stream's ``payload`` on the AXI4-Stream wrapper's ``tdata``/``tlast`` ports, with
    the ``value`` of a signal handle, so :class:`StreamDriver` and :class:`StreamSink` work
    unchanged on the wrapper (through :class:`sim.harness.AxisCoreView`).

    Writing ``value`` (a stream into the core) splits the payload into ``tdata`` and ``tlast``
    (:meth:`hwgen.emit.axis.AxisStream.split`); the bits the wrapper must ignore — the padding
    bits of ``tdata`` and the ``tlast`` of a stream without ``last`` — get random bits from
    ``rng`` (not the stimulus generator), so a wrapper that used them would fail the comparison.
    Reading ``value`` merges ``tdata`` and ``tlast`` back into the payload; on a stream out of
    the core it also checks the wrapper's promises: padding bits 0, and ``tlast`` 1 on a stream
    without ``last``.
    """

    def __init__(self, dut, stream, rng: random.Random):
        self.stream, self.rng = stream, rng
        self.tdata = getattr(dut, f"{stream.interface}_tdata")
        self.tlast = getattr(dut, f"{stream.interface}_tlast")

    @property
    def value(self) -> int:
        s = self.stream
        tdata, tlast = int(self.tdata.value), int(self.tlast.value)
        if s.direction == "m":
            if tdata >> s.data_width:
                raise AssertionError(f"{s.interface}_tdata padding bits are not 0: {tdata:#x}")
            if not s.has_last and tlast != 1:
                raise AssertionError(f"{s.interface}_tlast is 0 on a stream without last")
        return s.merge(tdata, tlast)

    @value.setter
    def value(self, bits) -> None:
        s = self.stream
        tdata, tlast = s.split(int(bits))
        if s.tdata_width > s.data_width:
            tdata |= self.rng.getrandbits(s.tdata_width - s.data_width) << s.data_width
        if not s.has_last:
            tlast = self.rng.getrandbits(1)
        self.tdata.value = tdata
        self.tlast.value = tlast


class _StreamPorts:
    """The ``<prefix>__valid/ready/payload`` handles of one stream and the randomness gating it."""

    def __init__(self, dut, prefix: str, clock: CycleClock, rng: random.Random):
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.clock, self.rng = clock, rng


class StreamDriver(_StreamPorts):
    """Sends queued payloads on ``<prefix>__valid/ready/payload``, with random valid gaps.

    Parameters
    ----------
    dut, prefix : the design handle and the stream's port prefix, e.g. ``"acts"``.
    clock : :class:`CycleClock` used to timestamp transfers.
    rng : ``random.Random`` deciding the gaps (seeded by the test).
    valid_prob : probability that a waiting beat is offered in a given cycle (1.0 = no gaps).
    """

    def __init__(self, dut, prefix: str, clock: CycleClock, rng: random.Random,
                 valid_prob: float = 1.0):
        super().__init__(dut, prefix, clock, rng)
        self.valid_prob = valid_prob
        self.queue: deque[int] = deque()
        self.sent: list[Transfer] = []
        self._beat: int | None = None     # the beat on the port, offered until taken
        self.valid.value = 0

    def send(self, bits: int) -> None:
        self.queue.append(bits)

    def start(self):
        return cocotb.start_soon(self._run())

    async def _run(self):
        while True:
            await RisingEdge(self.clock.clk)
            if self._beat is None and self.queue and self.rng.random() < self.valid_prob:
                self._beat = self.queue.popleft()
                self.payload.value = self._beat
            self.valid.value = int(self._beat is not None)
            await ReadOnly()
            if self._beat is not None and int(self.ready.value):
                self.sent.append(Transfer(self._beat, self.clock.now))
                self._beat = None


class StreamSink(_StreamPorts):
    """Accepts beats on ``<prefix>__valid/ready/payload`` with random ``ready`` backpressure.

    ``stall_cycles`` lists the cycles in which the design offered a beat and ``ready`` was low
    (``stalls`` counts them), which is exactly what an engine's ``perf.stall`` counter must report
    for its output stream.
    """

    def __init__(self, dut, prefix: str, clock: CycleClock, rng: random.Random,
                 ready_prob: float = 1.0):
        super().__init__(dut, prefix, clock, rng)
        self.ready_prob = ready_prob
        self.received: list[Transfer] = []
        self.stall_cycles: list[int] = []     # cycles with valid & ~ready
        self.ready.value = 0

    @property
    def stalls(self) -> int:
        return len(self.stall_cycles)

    def start(self):
        return cocotb.start_soon(self._run())

    async def _run(self):
        while True:
            await RisingEdge(self.clock.clk)
            ready = self.rng.random() < self.ready_prob
            self.ready.value = int(ready)
            await ReadOnly()
            if int(self.valid.value):
                if ready:
                    self.received.append(Transfer(int(self.payload.value), self.clock.now))
                else:
                    self.stall_cycles.append(self.clock.now)


class TapMonitor:
    """Records the transfers of a debug tap ``<prefix>__payload/valid/taken`` (a link between
    two blocks, seen from outside: ``taken`` is valid and the receiver's ready)."""

    def __init__(self, dut, prefix: str, clock: CycleClock):
        self.valid = getattr(dut, f"{prefix}__valid")
        self.taken = getattr(dut, f"{prefix}__taken")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.clock = clock
        self.received: list[Transfer] = []

    def start(self):
        return cocotb.start_soon(self._run())

    async def _run(self):
        while True:
            await RisingEdge(self.clock.clk)
            await ReadOnly()
            if int(self.taken.value):
                self.received.append(Transfer(int(self.payload.value), self.clock.now))
