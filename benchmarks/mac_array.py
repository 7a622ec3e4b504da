"""Throughput of the MAC array on a multi-tile layer, measured in simulation (and resources/Fmax
with --synth), beside numpy.

For each design a layer Y = A @ W that cuts into 8 tiles (K = 2 R M reduction inputs, 4 C outputs,
``--rows-streamed`` activation rows) runs through the Verilator model with every input valid and
the output always ready (:func:`hwgen.power.layer.simulate_layer`): the outputs read back must
equal the numpy product, the testbench holds every transfer to the cycle model, and the cycles
come from the design's own ``perf.busy`` counter (every cycle from the first weight beat to the
last result, the testbench checks it equals the model's total). Printed per design:

* cycles: ``perf.busy`` over the layer; stream: first to last activation transfer
* steady %: activation rows per stream cycle; end-to-end %: useful MACs (R*C*N per row) per
  multiplier per busy cycle, i.e. of peak from the first weight beat to the last result
* dense-eq MACs/mult/cycle: dense-equivalent MACs (K*C per row, K = R*M) per multiplier per cycle
* numpy: the same layer as an int32 matmul (``A @ W``), best of ``--repeats`` timings in this run,
  its dense-equivalent GMAC/s, and the clock at which the array's cycles take as long (above
  it the array is faster; the ratio to numpy at clock f is f / that clock)

With ``--synth``, :data:`SYNTH_RUNS` are synthesized (Yosys, then nextpnr once per seed of
``--seeds``, default 1,2,3; Fmax is the lower median of the seeds): the DSP-product designs
against the same sizes with shift PEs (``weight_set = "pow2"``, hwgen/hdl/shift.py: no DSP),
on ecp5-85k and on ice40-up5k at the sizes that fit it, with LUT/FF/DSP and each seed's Fmax.
The shift arrays stream exactly as the DSP ones (same pipeline, same cycle model), so their
throughput is the table's for the same size.

Usage::

    python benchmarks/mac_array.py [--rows-streamed 256] [--seed 1] [--repeats 20]
                                   [--synth [--seeds 1,2,3]]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from hwgen.engines.mac_array import MacArrayConfig
from hwgen.engines.mac_array.golden import expand_nm, operand_ranges
from hwgen.engines.mac_array.stimulus import random_tile
from hwgen.power.layer import layer_tiles, simulate_layer
from hwgen.report.table import format_table

DESIGNS = [
    MacArrayConfig(name="bench_dense_4x4", rows=4, cols=4),
    MacArrayConfig(name="bench_dense_8x8", rows=8, cols=8),
    MacArrayConfig(name="bench_dense_12x12", rows=12, cols=12),
    MacArrayConfig(name="bench_2of4_8x8", rows=8, cols=8, sparsity="2:4"),
]

def _pow2(name: str, size: int) -> MacArrayConfig:
    """A size x size dense array of shift PEs (pow2 weights)."""
    return MacArrayConfig(name=name, rows=size, cols=size, weight_set="pow2")


#: What ``--synth`` synthesizes: (design, target). 8x8 with DSP products against 8x8 shift PEs on
#: ecp5-85k; on ice40-up5k (8 DSPs, 5280 LUTs) the DSP array that fits (2x2) and shift arrays.
SYNTH_RUNS = [
    (DESIGNS[1], "ecp5-85k"),
    (_pow2("bench_pow2_8x8", 8), "ecp5-85k"),
    (MacArrayConfig(name="bench_dense_2x2", rows=2, cols=2), "ice40-up5k"),
    (_pow2("bench_pow2_2x2", 2), "ice40-up5k"),
    (_pow2("bench_pow2_4x4", 4), "ice40-up5k"),
]

#: The layer: K = K_TILES * R * M reduction inputs, C_out = C_TILES * C outputs.
K_TILES, C_TILES = 2, 4


def layer(cfg: MacArrayConfig, rows: int, rng: np.random.Generator):
    """Random weights (K, C_out) in the array's N:M pattern, one tile's worth at a time, and
    random activations (B, K)."""
    def block():
        tile = random_tile(cfg, rng, 1)
        return expand_nm(tile.values, tile.indices, cfg.m)

    weights = np.block([[block() for _ in range(C_TILES)] for _ in range(K_TILES)])
    lo, hi = operand_ranges(cfg)["act"]
    return weights, rng.integers(lo, hi, size=(rows, K_TILES * cfg.k), endpoint=True)


def numpy_seconds(acts: np.ndarray, weights: np.ndarray, repeats: int) -> float:
    """Best wall time of ``acts @ weights`` in int32 over ``repeats`` runs."""
    a, w = acts.astype(np.int32), weights.astype(np.int32)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ w
        best = min(best, time.perf_counter() - start)
    return best


def measure(cfg: MacArrayConfig, rows: int, seed: int, repeats: int) -> dict:
    weights, acts = layer(cfg, rows, np.random.default_rng(seed))
    tiles = len(layer_tiles(cfg, weights, acts))
    run = simulate_layer(cfg, weights, acts, seed=seed)
    if not np.array_equal(run.outputs, acts @ weights):
        sys.exit(f"{cfg.name}: the array's layer outputs differ from numpy")
    tp = run.result.details["throughput"]
    busy, peak = tp["busy"], cfg.multipliers
    useful = tp["rows"] * peak                  # every tile is full: no padding MACs
    dense_eq = acts.shape[0] * weights.shape[0] * weights.shape[1]
    seconds = numpy_seconds(acts, weights, repeats)
    return {
        "design": cfg.name, "multipliers": peak, "tiles": tiles, "rows": tp["rows"],
        "busy": busy, "stream": tp["cycles_stream"],
        "steady_pct": 100.0 * tp["steady_state_utilization"],
        "end_to_end_pct": 100.0 * useful / (peak * busy),
        "dense_eq_per_mult": dense_eq / busy / peak,
        "numpy_us": seconds * 1e6, "numpy_gmacs": dense_eq / seconds / 1e9,
        "break_even_mhz": busy / seconds / 1e6,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows-streamed", type=int, default=256,
                        help="activation rows of the layer (rows per tile)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20, help="numpy timings, best one kept")
    parser.add_argument("--synth", action="store_true",
                        help="also synthesize " + ", ".join(f"{cfg.name} ({target})"
                                                           for cfg, target in SYNTH_RUNS)
                             + " (slow)")
    parser.add_argument("--seeds", default="1,2,3", help="nextpnr seeds for --synth")
    args = parser.parse_args(argv)

    rows = [measure(cfg, args.rows_streamed, args.seed, args.repeats) for cfg in DESIGNS]
    print(f"MAC array on a {K_TILES * C_TILES}-tile layer, {args.rows_streamed} activation rows "
          f"per tile, seed {args.seed}")
    print(format_table(
        ["design", "mults", "tiles", "rows", "cycles", "stream", "steady %", "end-to-end %",
         "dense-eq MACs/mult/cyc"],
        [[r["design"], r["multipliers"], r["tiles"], r["rows"], r["busy"], r["stream"],
          round(r["steady_pct"], 2), round(r["end_to_end_pct"], 2),
          round(r["dense_eq_per_mult"], 3)] for r in rows]))
    print("\nnumpy int32 matmul of the same layer, this run")
    print(format_table(
        ["design", "numpy us", "numpy GMAC/s", "array = numpy at MHz"],
        [[r["design"], round(r["numpy_us"], 1), round(r["numpy_gmacs"], 2),
          round(r["break_even_mhz"], 1)] for r in rows]))
    dense = next(r for r in rows if r["design"] == "bench_dense_8x8")
    sparse = next(r for r in rows if r["design"] == "bench_2of4_8x8")
    print(f"\n2:4 / dense dense-equivalent MACs per multiplier (8x8): "
          f"{sparse['dense_eq_per_mult'] / dense['dense_eq_per_mult']:.3f}")

    if args.synth:
        synth_table(tuple(int(s) for s in args.seeds.split(",")))
    return 0


def synth_table(seeds: tuple[int, ...]) -> None:
    """Synthesize :data:`SYNTH_RUNS` one after another and print their resources and Fmax."""
    from hwgen.flows.synth import synthesize

    table = []
    for cfg, target in SYNTH_RUNS:
        r = synthesize(cfg, target, seeds=seeds)
        per_seed = " / ".join("-" if f is None else f"{f:.1f}" for f in r.seed_fmax_mhz)
        table.append([cfg.name, "shift" if cfg.shift_pe else "DSP", target, r.luts, r.ffs,
                      r.dsps, round(r.fmax_mhz, 1) if r.fmax_mhz else None, per_seed, r.fits])
    print(f"\nsynthesis (yowasp Yosys + nextpnr), Fmax = lower median of seeds "
          f"{','.join(map(str, seeds))}")
    print(format_table(["design", "PE", "target", "LUTs", "FFs", "DSPs", "Fmax MHz",
                        "per seed", "fits"], table))


if __name__ == "__main__":
    sys.exit(main())
