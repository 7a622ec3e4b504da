"""Throughput of the MAC array, measured in simulation (and resources/Fmax with --synth).

For each design a 256-row activation stream runs through the Verilator model with every input
valid and the output always ready; the transfer cycles come from the testbench's cycle stamps,
which the testbench checks against the design's own ``perf.cycles`` counter. Printed per design:

* stream cycles: first to last activation transfer; total: first weight beat to last result
* MACs/cycle: executed multiply-accumulates per stream cycle (R*C*N per row) against the peak
* dense-eq MACs/mult: dense-equivalent MACs (K*C per row, K = R*M) per multiplier per cycle

Usage::

    python benchmarks/mac_array.py [--rows-streamed 256] [--seed 1] [--synth]
"""

from __future__ import annotations

import argparse
import sys

from hwgen.engines.mac_array import MacArrayConfig
from hwgen.flows.sim import simulate
from hwgen.report.table import format_table

DESIGNS = [
    MacArrayConfig(name="bench_dense_4x4", rows=4, cols=4),
    MacArrayConfig(name="bench_dense_8x8", rows=8, cols=8),
    MacArrayConfig(name="bench_2of4_8x8", rows=8, cols=8, sparsity="2:4"),
]


def measure(cfg: MacArrayConfig, rows: int, seed: int) -> dict:
    result = simulate(cfg, seed=seed, vectors=rows)
    if not result.passed:
        sys.exit(f"{cfg.name}: simulation failed: {result.message}")
    tp = result.details["throughput"]
    peak = cfg.multipliers
    macs_per_cycle = rows * peak / tp["cycles_stream"]
    return {
        "design": cfg.name,
        "multipliers": peak,
        "stream": tp["cycles_stream"],
        "total": tp["cycles_total"],
        "macs_per_cycle": macs_per_cycle,
        "peak": peak,
        "steady_pct": 100.0 * macs_per_cycle / peak,
        "end_to_end_pct": 100.0 * rows * peak / tp["cycles_total"] / peak,
        "dense_eq_per_mult": rows * cfg.k * cfg.cols / tp["cycles_stream"] / peak,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows-streamed", type=int, default=256)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--synth", action="store_true",
                        help="also synthesize each design for ecp5-85k (slow)")
    args = parser.parse_args(argv)

    rows = [measure(cfg, args.rows_streamed, args.seed) for cfg in DESIGNS]
    print(f"MAC array throughput, {args.rows_streamed}-row activation stream, seed {args.seed}")
    print(format_table(
        ["design", "mults", "stream cyc", "total cyc", "MACs/cyc", "peak", "steady %",
         "end-to-end %", "dense-eq MACs/mult"],
        [[r["design"], r["multipliers"], r["stream"], r["total"], round(r["macs_per_cycle"], 2),
          r["peak"], round(r["steady_pct"], 1), round(r["end_to_end_pct"], 1),
          round(r["dense_eq_per_mult"], 3)] for r in rows]))
    dense = next(r for r in rows if r["design"] == "bench_dense_8x8")
    sparse = next(r for r in rows if r["design"] == "bench_2of4_8x8")
    print(f"\n2:4 / dense dense-equivalent MACs per multiplier (8x8): "
          f"{sparse['dense_eq_per_mult'] / dense['dense_eq_per_mult']:.3f}")

    if args.synth:
        from hwgen.flows.synth import synthesize
        reports = [(cfg.name, synthesize(cfg, "ecp5-85k")) for cfg in DESIGNS]
        print("\necp5-85k (yowasp Yosys + nextpnr)")
        print(format_table(
            ["design", "LUTs", "FFs", "DSPs", "BRAMs", "Fmax MHz", "target MHz", "fits"],
            [[name, r.luts, r.ffs, r.dsps, r.brams,
              round(r.fmax_mhz, 1) if r.fmax_mhz else None, r.target_mhz, r.fits]
             for name, r in reports]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
