"""cocotb testbench: the MAC array RTL against the numpy golden model, beat for beat.

Two phases in one simulation:

1. **Back to back** — a long random tile and a short one right behind it, every input valid and
   the output always ready. Every weight, activation and result transfer must happen in the cycle
   the analytic cycle model names (the short tile's weights load while the long one streams, its
   rows follow without a gap), and the design's ``busy`` counter must equal the model's cycles
   from the first weight beat to the last result.
2. **Stress** — the edge-case tiles (all-min/all-max operands, zero weights, one-row tile) and a
   random tile, with random valid gaps on both inputs and random ready backpressure on the output.
   Every activation row is offered at once; each tile's weights are offered early (right behind
   the previous tile's, so the array holds them back), during the previous tile's stream, or late
   (after its last result): see :func:`weight_timing`.

Every result beat is compared with the golden model; at the end the ``perf`` counters are checked
against what the testbench observed itself (cycles elapsed, stalled cycles, busy cycles).

With the option ``{"tiles": "<file.npz>"}`` (see :func:`hwgen.engines.mac_array.tiles.save_tiles`)
the testbench streams those tiles instead, in one phase: back to back as in phase 1 when there are
no gaps and no backpressure (``valid_prob = ready_prob = 1``), else as in phase 2.

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

    def send_weights(self, tile: golden.Tile) -> None:
        cfg = self.cfg
        for r in range(cfg.rows):
            values = tile.values[r].reshape(-1)                    # element c * N + j
            beat = ({"w": values.tolist()} if cfg.codebook is None else
                    {"code": encode(values, cfg.codebook).tolist()})
            if cfg.idx_bits:
                beat["idx"] = tile.indices[r].reshape(-1).tolist()
            self.weights.send(pack(self.w_layout, beat))

    def send_acts(self, tile: golden.Tile) -> None:
        rows = tile.acts.shape[0]
        for b in range(rows):
            self.acts.send(pack(self.a_layout, {"a": tile.acts[b].tolist(),
                                                "last": int(b == rows - 1)}))

    def send(self, tile: golden.Tile) -> None:
        self.send_weights(tile)
        self.send_acts(tile)


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


def _first_difference(name: str, measured: list[int], model: tuple[int, ...]) -> list[str]:
    """One line for the first transfer of a stream that is not where the model puts it."""
    for k, (got, want) in enumerate(zip(measured, model)):
        if got != want:
            return [f"{name} transfer {k}: cycle {got}, model {want}"]
    if len(measured) != len(model):
        return [f"{name}: {len(measured)} transfers, model {len(model)}"]
    return []


async def back_to_back(dut, cfg, driver, scoreboard, sink, weights, acts, tiles, numbers,
                       start: dict) -> dict:
    """No gaps, no backpressure: ``tiles`` (numbered ``numbers``) back to back. Every transfer
    cycle must be the cycle model's, and the ``busy`` counter read from ``start`` (the counters
    while the array is idle, before the first beat) to the end must equal the model's total."""
    marks = len(weights.sent), len(acts.sent), len(sink.received)
    for tile_no, tile in zip(numbers, tiles):
        driver.send(tile)
        scoreboard.expect(tile_no, tile)
    model = golden.cycle_model(cfg, [tile.acts.shape[0] for tile in tiles])
    finished = await wait_for_results(dut, sink, scoreboard, 10 * model.total + 100)
    end = await read_counters(dut)
    w_t = [t.cycle for t in weights.sent[marks[0]:]]
    origin = w_t[0] if w_t else 0            # the model counts from the first weight beat
    a_t = [t.cycle - origin for t in acts.sent[marks[1]:]]
    y_t = [t.cycle - origin for t in sink.received[marks[2]:]]
    errors = (_first_difference("weights", [t - origin for t in w_t], model.weight_cycles)
              + _first_difference("acts", a_t, model.act_cycles)
              + _first_difference("results", y_t, model.result_cycles))
    busy = end["busy"] - start["busy"]
    if busy != model.total:
        errors.append(f"busy: counter {busy}, model {model.total} cycles from the first weight "
                      f"beat to the last result")
    rows = len(model.act_cycles)
    stream = a_t[-1] - a_t[0] + 1 if a_t else None
    return {"finished": finished, "errors": errors, "throughput": {
        "tiles": [tile.acts.shape[0] for tile in tiles], "rows": rows,
        "cycles_total": y_t[-1] + 1 if y_t else None, "cycles_stream": stream,
        "latency": model.latency, "busy": busy, "model_total": model.total,
        "steady_state_utilization": rows / stream if stream else 0.0,
        "end_to_end_utilization": rows / busy if busy else 0.0,
    }}


#: When a tile's weights are offered in the stress phase, relative to the tile before it.
WEIGHT_TIMING = ("early", "during", "late")


def weight_timing(rng: np.random.Generator, tiles: int) -> list[str]:
    """The first tile's weights at once; after that every timing of :data:`WEIGHT_TIMING`
    equally often (up to one), in random order: ``early`` right behind the previous tile's
    weights, ``during`` once the previous tile's first row transferred (plus a random delay up
    to its row count), ``late`` once its last result arrived (plus up to 3 cycles)."""
    later = [WEIGHT_TIMING[i % len(WEIGHT_TIMING)] for i in range(tiles - 1)]
    rng.shuffle(later)
    return ["early", *later]


async def offer_weights(dut, driver, tiles, timing, acts, sink, rng) -> None:
    """Queue each tile's weights when its ``timing`` says (:func:`weight_timing`); ``acts`` and
    ``sink`` have transferred nothing of ``tiles`` yet."""
    first_row, last_result = len(acts.sent), len(sink.received)
    for prev, (tile, when) in enumerate(zip(tiles, timing), start=-1):
        if when != "early":
            rows = tiles[prev].acts.shape[0]
            if when == "during":
                while len(acts.sent) <= first_row:
                    await RisingEdge(dut.clk)
                delay = int(rng.integers(0, rows, endpoint=True))
            else:
                while len(sink.received) < last_result + rows:
                    await RisingEdge(dut.clk)
                delay = int(rng.integers(0, 3, endpoint=True))
            for _ in range(delay):
                await RisingEdge(dut.clk)
        driver.send_weights(tile)
        if prev >= 0:
            first_row += tiles[prev].acts.shape[0]
            last_result += tiles[prev].acts.shape[0]


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
    gaps = params.valid_prob < 1 or params.ready_prob < 1
    timeouts, timing_errors, throughput = [], [], None

    if given:
        # One phase: the given tiles, back to back without gaps, else stressed.
        order = list(range(len(tiles)))
        straight, stress = ([], tiles) if gaps else (tiles, [])
    else:
        # Phase 1 the long random tile and the short one; phase 2 the edge tiles.
        order = [0, len(tiles) - 1, *range(1, len(tiles) - 1)]
        straight, stress = [tiles[0], tiles[-1]], tiles[1:-1]

    if straight:
        phase = await back_to_back(dut, cfg, driver, scoreboard, sink, weights, acts, straight,
                                   order[:len(straight)], start)
        timing_errors, throughput = phase["errors"], phase["throughput"]
        for msg in timing_errors:
            dut._log.error("cycle model mismatch: %s", msg)
        if not phase["finished"]:
            timeouts.append("given tiles" if given else "back-to-back phase")

    timing = []
    if stress:
        weights.valid_prob = acts.valid_prob = params.valid_prob
        sink.ready_prob = params.ready_prob
        timing = weight_timing(data_rng, len(stress))
        for tile_no, tile in zip(order[len(straight):], stress):
            driver.send_acts(tile)
            scoreboard.expect(tile_no, tile)
        cocotb.start_soon(offer_weights(dut, driver, stress, timing, acts, sink, data_rng))
        stress_rows = sum(t.acts.shape[0] for t in stress)
        budget = int(50 * (stress_rows + len(stress) * (cfg.rows + cfg.latency + 3)) / (
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

    if throughput is None:        # given tiles with gaps: rows per cycle over the whole run
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
        extra={"weight_timing": timing, "run": {
            "tiles": str(run_dir / "tiles.npz"), "outputs": str(run_dir / "outputs.npz"),
            "cycles": end_cycle + 1, "weight_cycles": [t.cycle for t in weights.sent],
            "act_cycles": [t.cycle for t in acts.sent], "stall_cycles": sink.stall_cycles,
            "edge_cycle": start_cycle, "edge_ps": edge_ps,
            "period_ps": CLOCK_PERIOD_NS * 1000,
        }}))
