"""cocotb testbench: the MAC array RTL against the numpy golden model, beat for beat.

Two phases in one simulation:

1. **Throughput** — a long random tile and a short one behind it, every input valid and the output
   always ready. The transfer cycles must match the analytic cycle model exactly (load, one
   activation row per cycle, fixed latency, turnaround between tiles) and give the steady-state
   utilization.
2. **Stress** — the edge-case tiles (all-min/all-max operands, zero weights, one-row tile) and a random
   tile, with random valid gaps on both inputs and random ready backpressure on the output.

Every result beat is compared with the golden model; at the end the ``perf`` counters are checked
against what the testbench observed itself (cycles elapsed, stalled cycles, busy cycles).

With the option ``{"tiles": "<file.npz>"}`` (see :func:`hwgen.engines.mac_array.tiles.save_tiles`)
the testbench streams those tiles instead, in one phase with the configured gaps and backpressure.

Either way it records the run for the energy model: ``tiles.npz`` (the tiles it sent) and
``outputs.npz`` (``y<i>``: the result beats of tile i as the RTL produced them) beside the result
file, and in the result the schedule of every transfer and stall and the simulation time of one
clock edge, which align the golden register trace with the waveform.
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge
from cocotb.utils import get_sim_time

from hwgen.engines.base import TestbenchResult
from hwgen.engines.mac_array import golden
from hwgen.engines.mac_array.rtl import act_layout, result_layout, weight_layout
from hwgen.engines.mac_array.stimulus import test_tiles
from hwgen.engines.mac_array.tiles import load_tiles, save_tiles
from hwgen.engines.mac_array.weight_set import encode
from hwgen.hdl.payload import pack, unpack

from .harness import CLOCK_PERIOD_NS, finish, open_bench, read_counters, union_size
from .scoreboard import InOrderScoreboard
from .streams import StreamDriver, StreamSink


class TileDriver:
    """Turns golden-model tiles into weight and activation beats."""

    def __init__(self, cfg, weights: StreamDriver, acts: StreamDriver):
        self.cfg, self.weights, self.acts = cfg, weights, acts
        self.w_layout, self.a_layout = weight_layout(cfg), act_layout(cfg)

    def send(self, tile: golden.Tile) -> None:
        cfg = self.cfg
        for r in range(cfg.rows):
            values = tile.values[r].reshape(-1)                    # element c * N + j
            beat = ({"w": values.tolist()} if cfg.codebook is None else
                    {"code": encode(values, cfg.codebook).tolist()})
            if cfg.idx_bits:
                beat["idx"] = tile.indices[r].reshape(-1).tolist()
            self.weights.send(pack(self.w_layout, beat))
        rows = tile.acts.shape[0]
        for b in range(rows):
            self.acts.send(pack(self.a_layout, {"a": tile.acts[b].tolist(),
                                                "last": int(b == rows - 1)}))


class Scoreboard(InOrderScoreboard):
    """Expected result beats of every tile from the golden model."""

    def __init__(self, cfg, log):
        super().__init__(result_layout(cfg), log)
        self.cfg = cfg

    def expect(self, tile_no: int, tile: golden.Tile) -> None:
        trace = golden.run(self.cfg, tile)
        rows = trace.y.shape[0]
        for b in range(rows):
            self.add({"y": trace.y[b].tolist(), "last": int(b == rows - 1)},
                     f"tile {tile_no} row {b} (psums by PE row: {trace.psums[b].tolist()})")


async def wait_for_results(dut, sink: StreamSink, scoreboard: Scoreboard, budget: int) -> bool:
    """Wait until every expected beat arrived; False if ``budget`` cycles pass first."""
    for _ in range(budget):
        await RisingEdge(dut.clk)
        scoreboard.check(sink.received)
        if len(sink.received) >= len(scoreboard.expected):
            return True
    return False


async def throughput_phase(dut, cfg, driver, scoreboard, sink, weights, acts, tiles) -> dict:
    """No gaps, no backpressure: the long tile, then a short one right behind it to measure the
    turnaround between tiles. Returns the measured timing, the model's and any timeout."""
    long_tile, short_tile = tiles[0], tiles[-1]
    rows = long_tile.acts.shape[0]
    model = golden.cycle_model(cfg, rows)
    for tile_no, tile in ((0, long_tile), (len(tiles) - 1, short_tile)):
        driver.send(tile)
        scoreboard.expect(tile_no, tile)
    budget = 10 * (model.total + golden.cycle_model(cfg, short_tile.acts.shape[0]).total) + 100
    finished = await wait_for_results(dut, sink, scoreboard, budget)
    w_t = [t.cycle for t in weights.sent[:cfg.rows + 1]]
    a_t = [t.cycle for t in acts.sent[:rows]]
    y_t = [t.cycle for t in sink.received[:rows]]
    measured = {
        "rows": len(a_t),
        "total": y_t[-1] - w_t[0] + 1 if y_t else None,
        "stream": a_t[-1] - a_t[0] + 1 if a_t else None,
        "latency": sorted({y - a for y, a in zip(y_t, a_t)}),
        "load": w_t[cfg.rows - 1] - w_t[0] + 1 if len(w_t) > cfg.rows else None,
        # idle cycles between the last result of one tile and the next tile's first weight beat
        "turnaround": w_t[cfg.rows] - y_t[-1] - 1 if len(w_t) > cfg.rows and y_t else None,
    }
    expected = {"rows": rows, "total": model.total, "stream": model.stream,
                "latency": [model.latency], "load": model.load, "turnaround": model.turnaround}
    errors = [f"{key}: measured {measured[key]}, model {expected[key]}"
              for key in expected if measured[key] != expected[key]]
    return {"measured": measured, "model": model, "errors": errors, "finished": finished}


@cocotb.test()
async def mac_array_matches_golden(dut):
    bench = await open_bench(dut)
    dut, params, clock = bench.dut, bench.params, bench.clock
    cfg = params.cfg
    data_rng = np.random.default_rng(params.seed)
    weights, acts, sink = bench.source("weights"), bench.source("acts"), bench.sink("results")
    driver = TileDriver(cfg, weights, acts)
    scoreboard = Scoreboard(cfg, dut._log)

    await RisingEdge(dut.clk)
    start = await read_counters(dut)
    start_cycle = clock.now
    edge_ps = int(get_sim_time("ps"))     # the clock edge that began cycle start_cycle

    given = params.options.get("tiles")
    tiles = load_tiles(given) if given else test_tiles(cfg, data_rng, params.vectors)
    timeouts, timing_errors, throughput = [], [], None

    if not given:
        # Phase 1: throughput (the long random tile and the short one).
        timing = await throughput_phase(dut, cfg, driver, scoreboard, sink, weights, acts, tiles)
        timing_errors = timing["errors"]
        for msg in timing_errors:
            dut._log.error("cycle model mismatch: %s", msg)
        if not timing["finished"]:
            timeouts.append("throughput phase")
        measured, model = timing["measured"], timing["model"]
        throughput = {
            "rows": model.stream, "cycles_total": measured["total"],
            "cycles_stream": measured["stream"], "latency": model.latency,
            "steady_state_utilization": (model.stream / measured["stream"]
                                         if measured["stream"] else 0.0),
            "end_to_end_utilization": (model.stream / measured["total"]
                                       if measured["total"] else 0.0),
        }

    # Phase 2: edge cases and a random tile (or the given tiles) with random gaps and
    # backpressure.
    stress = tiles if given else tiles[1:-1]
    order = list(range(len(tiles))) if given else [0, len(tiles) - 1, *range(1, len(tiles) - 1)]
    weights.valid_prob = acts.valid_prob = params.valid_prob
    sink.ready_prob = params.ready_prob
    for tile_no, tile in enumerate(stress, start=0 if given else 1):
        driver.send(tile)
        scoreboard.expect(tile_no, tile)
    stress_rows = sum(t.acts.shape[0] for t in stress)
    budget = int(50 * (stress_rows + len(tiles) * (cfg.rows + cfg.latency)) / (
        min(params.valid_prob, params.ready_prob) or 1)) + 1000
    if not await wait_for_results(dut, sink, scoreboard, budget):
        timeouts.append("given tiles" if given else "stress phase")

    await RisingEdge(dut.clk)
    end = await read_counters(dut)
    end_cycle = clock.now

    # Counters against the testbench's own observations over [start_cycle, end_cycle).
    in_flight = [(a.cycle, y.cycle) for a, y in zip(acts.sent, sink.received)]
    in_flight += [(w.cycle, w.cycle) for w in weights.sent]
    observed = {"cycles": end_cycle - start_cycle, "stall": sink.stalls,
                "busy": union_size(in_flight)}
    counter_errors = [f"{key}: counter {end[key] - start[key]}, observed {observed[key]}"
                      for key in observed if end[key] - start[key] != observed[key]]
    for msg in counter_errors:
        dut._log.error("performance counter mismatch: %s", msg)

    if throughput is None:        # given tiles: rows per cycle over the whole run
        throughput = {"rows": stress_rows, "cycles_total": end_cycle - start_cycle,
                      "steady_state_utilization": stress_rows / (end_cycle - start_cycle)}
    throughput["peak_macs_per_cycle"] = cfg.rows * cfg.cols * cfg.n

    # The run as the energy model replays it: the tiles in the order they were sent, what the
    # RTL returned for each, and when every transfer and stall happened.
    run_dir = params.result_path.parent
    sent = [tiles[i] for i in order]
    save_tiles(run_dir / "tiles.npz", sent)
    beats = [unpack(result_layout(cfg), t.bits) for t in sink.received]
    outputs, b = {}, 0
    for i, tile in enumerate(sent):
        rows = tile.acts.shape[0]
        outputs[f"y{i}"] = np.array([list(beat["y"]) for beat in beats[b:b + rows]],
                                    dtype=np.int64).reshape(-1, cfg.cols)
        b += rows
    np.savez(run_dir / "outputs.npz", **outputs)

    finish(params, TestbenchResult(
        beats=scoreboard.checked, expected_beats=len(scoreboard.expected),
        errors=scoreboard.errors, timeouts=timeouts, timing_errors=timing_errors,
        counter_errors=counter_errors,
        counters={key: end[key] - start[key] for key in ("cycles", "busy", "stall")},
        throughput=throughput,
        extra={"run": {
            "tiles": str(run_dir / "tiles.npz"), "outputs": str(run_dir / "outputs.npz"),
            "cycles": end_cycle + 1, "weight_cycles": [t.cycle for t in weights.sent],
            "act_cycles": [t.cycle for t in acts.sent], "stall_cycles": sink.stall_cycles,
            "edge_cycle": start_cycle, "edge_ps": edge_ps,
            "period_ps": CLOCK_PERIOD_NS * 1000,
        }}))
