"""Performance counters every engine exposes (docs/architecture.md §3).

The counters are free-running 32-bit registers cleared by reset. They wrap after 2**32 cycles, which
a simulation never reaches; a host that polls them on hardware takes differences modulo 2**32.
"""

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["PerfSignature", "PerfCounters", "COUNTER_BITS"]

COUNTER_BITS = 32

#: The ``perf`` port of an engine: ``perf__cycles``, ``perf__busy``, ``perf__stall`` in Verilog.
PerfSignature = wiring.Signature({
    "cycles": Out(COUNTER_BITS),   # clock cycles since reset
    "busy": Out(COUNTER_BITS),     # cycles in which the engine held or accepted work
    "stall": Out(COUNTER_BITS),    # busy cycles in which the engine could not advance
})


class PerfCounters(wiring.Component):
    """Counts cycles, and the cycles in which ``busy`` and ``stall`` are asserted.

    Attributes
    ----------
    busy, stall : Signal, in
        Per-cycle conditions from the engine.
    perf : :data:`PerfSignature`, out
        The three counters.
    """

    busy: In(1)
    stall: In(1)
    perf: Out(PerfSignature)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.perf.cycles.eq(self.perf.cycles + 1)
        with m.If(self.busy):
            m.d.sync += self.perf.busy.eq(self.perf.busy + 1)
        with m.If(self.stall):
            m.d.sync += self.perf.stall.eq(self.perf.stall + 1)
        return m
