"""cocotb testbench: the sparse attention RTL against the numpy golden model, row for row.

Phases in one simulation:

1. **Alone** — each sequence of the throughput set (``options["lengths"]``, default every edge
   length 1, 2, k-1, k, k+1, max_len plus ``vectors`` lengths from the skewed distribution of
   :func:`~hwgen.engines.sparse_attention.stimulus.draw_lengths`) on its own, every token valid
   and the output always ready: first token to last output row must equal
   :func:`~hwgen.engines.sparse_attention.cycle_model.sequence_cycles` exactly.
2. **Back to back** — the same sequences streamed without gaps: the whole stream must take exactly
   :func:`~hwgen.engines.sparse_attention.cycle_model.stream_cycles` (no padding: a sequence costs
   its own cycles, loading overlapping the previous one's compute).
3. **Stress** (unless ``options["phase2"]`` is false) — every edge case of
   :func:`~hwgen.engines.sparse_attention.stimulus.edge_sequences` (zero tensors, all-max,
   all-min, tied keys, ...) and mixed-length random sequences, back to back, with random valid
   gaps on ``tokens`` and random ready backpressure on ``out``.

Every output row and its ``last`` bit are compared with the golden model. The ``perf`` counters
are checked against the testbench's own observations: ``cycles`` and ``stall`` exactly (stall =
cycles with ``out.valid & ~out.ready``), ``busy`` between the cycles with a transfer and all
cycles, and not moving while the design is idle after the last row.
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from hwgen.engines.base import TestbenchResult
from hwgen.engines.sparse_attention import golden
from hwgen.engines.sparse_attention.cycle_model import sequence_cycles, stream_cycles
from hwgen.engines.sparse_attention.rtl import out_layout, token_layout
from hwgen.engines.sparse_attention.stimulus import (
    draw_lengths,
    edge_lengths,
    edge_sequences,
    mixed_lengths,
    random_sequence,
)
from hwgen.hdl.payload import pack

from .harness import finish, open_bench, read_counters
from .scoreboard import InOrderScoreboard
from .streams import StreamDriver

#: Idle cycles after the last row in which ``busy`` must not move.
IDLE_TAIL = 20


def key_counts(cfg, sequence) -> list[int]:
    """Keys each row of ``sequence`` selects, from the golden model (the cycle model's input:
    the threshold mask's counts depend on the data)."""
    return [len(sel) for sel in golden.attention(cfg, *sequence).selected]


class SequenceDriver:
    """Turns (Q, K, V) sequences into token beats."""

    def __init__(self, cfg, tokens: StreamDriver):
        self.cfg, self.tokens, self.layout = cfg, tokens, token_layout(cfg)

    def send(self, q, k, v) -> None:
        length = q.shape[0]
        for j in range(length):
            self.tokens.send(pack(self.layout, {
                "q": q[j].tolist(), "k": k[j].tolist(), "v": v[j].tolist(),
                "last": int(j == length - 1)}))


class Scoreboard(InOrderScoreboard):
    """Expected output rows of every sequence from the golden model."""

    def __init__(self, cfg, log):
        super().__init__(out_layout(cfg), log)
        self.cfg = cfg

    def expect(self, label: str, q, k, v) -> None:
        trace = golden.attention(self.cfg, q, k, v)
        length = q.shape[0]
        for i in range(length):
            self.add({"o": trace.out[i].tolist(), "last": int(i == length - 1)},
                     f"{label} row {i} of L={length} (keys {trace.selected[i].tolist()})")


@cocotb.test()
async def sparse_attention_matches_golden(dut):
    bench = await open_bench(dut)
    dut, params, clock = bench.dut, bench.params, bench.clock
    cfg = params.cfg
    options = params.options
    data_rng = np.random.default_rng(params.seed)
    tokens, sink = bench.source("tokens"), bench.sink("out")
    driver = SequenceDriver(cfg, tokens)
    scoreboard = Scoreboard(cfg, dut._log)
    timeouts: list[str] = []
    timing_errors: list[str] = []

    async def run(label: str, sequences, budget: int) -> tuple[int, int] | None:
        """Send ``sequences``, wait for their rows; (first token cycle, last row cycle)."""
        t0, r0 = len(tokens.sent), len(sink.received)
        for n, (q, k, v) in enumerate(sequences):
            driver.send(q, k, v)
            scoreboard.expect(f"{label} #{n}", q, k, v)
        for _ in range(budget):
            await RisingEdge(dut.clk)
            scoreboard.check(sink.received)
            if len(sink.received) >= len(scoreboard.expected):
                return tokens.sent[t0].cycle, sink.received[-1].cycle
        timeouts.append(label)
        dut._log.error("timeout: %s (%d of %d rows)", label, len(sink.received) - r0,
                       len(scoreboard.expected) - r0)
        return None

    await RisingEdge(dut.clk)
    start = await read_counters(dut)
    start_cycle = clock.now

    # Phases 1 and 2: no gaps, no backpressure.
    lengths = options.get("lengths") or (
        edge_lengths(cfg) + [int(n) for n in draw_lengths(cfg, params.vectors, data_rng)])
    dist = options.get("dist", "uniform")
    sequences = [random_sequence(cfg, n, data_rng, dist) for n in lengths]
    counts = [key_counts(cfg, seq) for seq in sequences]
    modeled = [sequence_cycles(cfg, n, c).total for n, c in zip(lengths, counts)]
    alone = []
    for n, seq, model in zip(lengths, sequences, modeled):
        span = await run(f"alone L={n}", [seq], 4 * model + 100)
        if span is None:
            break
        alone.append(span[1] - span[0] + 1)
        if alone[-1] != model:
            timing_errors.append(f"alone L={n}: {alone[-1]} cycles, model {model}")
    stream = None
    if not timeouts:
        model = stream_cycles(cfg, lengths, counts)
        span = await run("back to back", sequences, 4 * model + 100)
        if span is not None:
            stream = span[1] - span[0] + 1
            if stream != model:
                timing_errors.append(f"back to back: {stream} cycles, model {model}")

    # Phase 3: edge cases and mixed lengths with gaps and backpressure.
    if options.get("phase2", True) and not timeouts:
        tokens.valid_prob, sink.ready_prob = params.valid_prob, params.ready_prob
        stress = [seq[1:] for seq in edge_sequences(cfg)]
        stress += mixed_lengths(cfg, params.vectors, data_rng, "gaussian")
        budget = sum(4 * sequence_cycles(cfg, seq[0].shape[0], key_counts(cfg, seq)).total
                     for seq in stress)
        slow = 1.0 / min(params.valid_prob, params.ready_prob)
        await run("stress", stress, int(budget * slow) + 1000)
        tokens.valid_prob = sink.ready_prob = 1.0

    # Idle tail, then the counters against the testbench's observations.
    last_move = max([t.cycle for t in tokens.sent] + [t.cycle for t in sink.received])
    for _ in range(IDLE_TAIL):
        await RisingEdge(dut.clk)
    mid = await read_counters(dut)
    for _ in range(IDLE_TAIL):
        await RisingEdge(dut.clk)
    end = await read_counters(dut)
    counters = {key: end[key] - start[key] for key in ("cycles", "busy", "stall")}
    moving = len({t.cycle for t in tokens.sent} | {t.cycle for t in sink.received})
    counter_errors = []
    if counters["cycles"] != clock.now - start_cycle:
        counter_errors.append(f"cycles: counter {counters['cycles']}, observed "
                              f"{clock.now - start_cycle}")
    if counters["stall"] != sink.stalls:
        counter_errors.append(f"stall: counter {counters['stall']}, observed {sink.stalls}")
    if not moving <= counters["busy"] <= counters["cycles"]:
        counter_errors.append(f"busy: counter {counters['busy']}, expected between {moving} "
                              f"(cycles with a transfer) and {counters['cycles']}")
    if end["busy"] != mid["busy"] or end["stall"] != mid["stall"]:
        counter_errors.append(f"busy/stall moved while idle after cycle {last_move}")
    for msg in counter_errors:
        dut._log.error("performance counter mismatch: %s", msg)

    # Utilization: exact-score dot products per cycle in the back-to-back run (each row unit's
    # exact stage handles one selected key per cycle).
    keys = sum(sum(c) for c in counts)
    finish(params, TestbenchResult(
        beats=scoreboard.checked, expected_beats=len(scoreboard.expected),
        errors=scoreboard.errors, timeouts=timeouts, timing_errors=timing_errors,
        counter_errors=counter_errors, counters=counters,
        throughput={
            "lengths": lengths,
            "cycles_alone": alone,
            "model_alone": modeled,
            "cycles_stream": stream,
            "model_stream": stream_cycles(cfg, lengths, counts),
            "exact_keys": keys,
            "steady_state_utilization": keys / (cfg.rows * stream) if stream else 0.0,
            "utilization_definition": "selected keys (exact dot products) per cycle and row "
                                      "unit in the back-to-back run",
        }))
