"""A throwaway engine that proves the engine contract: adding an engine is its own folder(s)
plus one registration.

``passthrough`` adds 1 (modulo 2**width) to every value of its input stream and forwards it, one
register stage, with the ``perf`` counters every engine has. Everything an engine supplies is
here — config, component, golden model, stimulus, cycle model, HLS context and vectors, the
cocotb testbench — plus its HLS templates in ``tests/passthrough_hls/``. The tests register it
for as long as they need it (so other tests see only the built-in engines); in the simulator the
testbench registers it before it reads its parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cocotb
import numpy as np
from amaranth import Module, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from cocotb.triggers import RisingEdge
from hwgen.testbench.harness import finish, open_bench, read_counters
from hwgen.testbench.scoreboard import InOrderScoreboard

from hwgen.config import EngineConfig, check_int, check_name
from hwgen.engines.base import Engine, HlsVectors, TestbenchResult
from hwgen.engines.registry import register
from hwgen.hdl.payload import pack
from hwgen.hdl.perf import PerfCounters, PerfSignature


@dataclass(frozen=True)
class PassthroughConfig(EngineConfig):
    """A one-stage stream that adds 1 to every value."""

    kind = "passthrough"

    name: str = field(default="passthrough", metadata={"doc": "Verilog module name"})
    width: int = field(default=8, metadata={"doc": "bits per value, 1..32"})

    def validate(self) -> None:
        check_name("name", self.name)
        check_int("width", self.width, 1, 32)


def beat_layout(cfg: PassthroughConfig) -> data.StructLayout:
    return data.StructLayout({"value": unsigned(cfg.width), "last": 1})


class Passthrough(wiring.Component):
    """``out.value = in.value + 1`` (wrapping), one register stage with a full-rate handshake."""

    def __init__(self, cfg: PassthroughConfig):
        self.cfg = cfg
        super().__init__({
            "inp": In(stream.Signature(beat_layout(cfg))),
            "out": Out(stream.Signature(beat_layout(cfg))),
            "perf": Out(PerfSignature),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.perf = perf = PerfCounters()
        wiring.connect(m, wiring.flipped(self.perf), perf.perf)
        # The output register takes a new beat whenever it is empty or being emptied.
        m.d.comb += self.inp.ready.eq(~self.out.valid | self.out.ready)
        with m.If(self.inp.ready):
            m.d.sync += [self.out.valid.eq(self.inp.valid),
                         self.out.payload.value.eq(self.inp.payload.value + 1),
                         self.out.payload.last.eq(self.inp.payload.last)]
        m.d.comb += [perf.busy.eq(self.inp.valid | self.out.valid),
                     perf.stall.eq(self.out.valid & ~self.out.ready)]
        return m


def golden(cfg: PassthroughConfig, values) -> np.ndarray:
    """The specification: every value plus one, modulo 2**width."""
    return (np.asarray(values, dtype=np.int64) + 1) % (1 << cfg.width)


def stimulus(cfg: PassthroughConfig, rng: np.random.Generator, vectors: int) -> np.ndarray:
    """``vectors`` random values after the edge cases 0 and the maximum (which wraps to 0)."""
    edges = np.array([0, (1 << cfg.width) - 1], dtype=np.int64)
    return np.concatenate([edges, rng.integers(0, 1 << cfg.width, vectors, dtype=np.int64)])


def cycle_model(cfg: PassthroughConfig, beats: int) -> int:
    """Cycles from the first input transfer to the last output transfer, back to back."""
    return beats + 1 if beats else 0


def hls_context(cfg: PassthroughConfig) -> dict:
    return {"width": cfg.width, "modulus": 1 << cfg.width}


def hls_vectors(cfg: PassthroughConfig, seed: int, vectors: int) -> HlsVectors:
    values = stimulus(cfg, np.random.default_rng(seed), vectors)
    return HlsVectors(stimulus=[len(values), *values.tolist()],
                      expected=golden(cfg, values).tolist())


ENGINE = Engine(
    kind="passthrough",
    config_class=PassthroughConfig,
    component=Passthrough,
    golden=golden,
    stimulus=stimulus,
    cycle_model=cycle_model,
    hls_context=hls_context,
    hls_vectors=hls_vectors,
    testbench=__name__,
    hls_templates=Path(__file__).resolve().parent / "passthrough_hls",
)


@cocotb.test()
async def passthrough(dut):
    """Back to back (exact cycle count), then with random gaps and backpressure."""
    register(ENGINE)                   # this process knows only the built-in engines
    bench = await open_bench(dut)
    cfg, params = bench.params.cfg, bench.params
    layout = beat_layout(cfg)
    source, sink = bench.source("inp"), bench.sink("out")
    scoreboard = InOrderScoreboard(layout, dut._log)
    timing_errors, timeouts = [], []
    start = await read_counters(bench.dut)
    values = stimulus(cfg, np.random.default_rng(params.seed), params.vectors)
    for phase, (valid_prob, ready_prob) in enumerate([(1.0, 1.0),
                                                     (params.valid_prob, params.ready_prob)]):
        source.valid_prob, sink.ready_prob = valid_prob, ready_prob
        first = len(source.sent)
        for i, (value, want) in enumerate(zip(values, golden(cfg, values))):
            last = int(i == len(values) - 1)
            source.send(pack(layout, {"value": int(value), "last": last}))
            scoreboard.add({"value": int(want), "last": last}, f"phase {phase} value {i}")
        for _ in range(20 * len(values) + 100):
            await RisingEdge(bench.dut.clk)
            if len(sink.received) == len(scoreboard.expected):
                break
        else:
            timeouts.append(f"phase {phase}")
        scoreboard.check(sink.received)
        if phase == 0 and not timeouts:
            took = sink.received[-1].cycle - source.sent[first].cycle
            if took != cycle_model(cfg, len(values)) - 1:
                timing_errors.append(f"back to back: {took + 1} cycles, model "
                                     f"{cycle_model(cfg, len(values))}")
    end = await read_counters(bench.dut)
    counters = {key: end[key] - start[key] for key in ("cycles", "busy", "stall")}
    counter_errors = [] if counters["stall"] == sink.stalls else [
        f"stall: counter {counters['stall']}, observed {sink.stalls}"]
    finish(params, TestbenchResult(
        beats=scoreboard.checked, expected_beats=len(scoreboard.expected),
        errors=scoreboard.errors, timeouts=timeouts, timing_errors=timing_errors,
        counter_errors=counter_errors, counters=counters,
        throughput={"steady_state_utilization": len(values) / cycle_model(cfg, len(values)),
                    "utilization_definition": "values per cycle back to back"}))

