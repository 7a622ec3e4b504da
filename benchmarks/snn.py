"""SNN layer: FTP against sequential dataflow, laggy against fast join, at the LoAS sparsities.

For each of the three sparsity profiles of the LoAS evaluation (silent neurons after packing /
weight sparsity) two layer shapes (T = 4, equal PE count) run in the Verilator model in three
modes (ftp+fast, ftp+laggy, sequential+fast) with no stalls, back to back (throughput) and one
sample at a time (latency):

* ``input-bound``: K = 128, N = 16. Every sample enters as K dense spike words, one per cycle,
  while the join has only N / P = 4 neuron groups of K / chunk = 4 chunks to do: the input port
  sets the pace in every mode.
* ``join-bound``: K = 128, N = 128. 32 neuron groups per sample: the join is the work.

Cycles are the design's own ``perf.cycles`` deltas as recorded by the testbench (sim/test_snn.py),
which also checks every output word against the golden model. With ``--synth`` each mode of the
input-bound shape is synthesized for ecp5-85k (LUT/FF/BRAM/Fmax; LUTs per PE is the whole layer's
LUTs divided by P).

Usage::

    python benchmarks/snn.py [--samples 6] [--seed 1] [--synth]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from hwgen.engines.snn import SnnConfig
from hwgen.engines.snn.stimulus import LOAS_PROFILES
from hwgen.flows.sim import simulate
from hwgen.report.table import format_table

# chunk 32 rather than LoAS's 128 keeps the Verilator builds to about a minute each.
BASE = SnnConfig(name="bench_snn", timesteps=4, in_neurons=128, out_neurons=16, pes=4, chunk=32,
                 laggy_adders=8, threshold=16)
SHAPES = {"input-bound": {}, "join-bound": {"out_neurons": 128}}
MODES = {
    "ftp_fast": dict(dataflow="ftp", join="fast"),
    "ftp_laggy": dict(dataflow="ftp", join="laggy"),
    "seq_fast": dict(dataflow="sequential", join="fast"),
}


def mode_config(mode: str, shape: str = "input-bound") -> SnnConfig:
    tag = "" if shape == "input-bound" else "_" + shape.split("-")[0]
    return dataclasses.replace(BASE, name=f"bench_snn_{mode}{tag}", **MODES[mode], **SHAPES[shape])


def measure(cfg: SnnConfig, profile: str, samples: int, seed: int) -> dict[str, float]:
    """Cycles per sample alone (first spike word to last output word) and back to back."""
    result = simulate(cfg, seed=seed, vectors=samples,
                      options={"profile": profile, "phase2": False})
    if not result.passed:
        sys.exit(f"{cfg.name} / {profile}: simulation failed: {result.message}")
    tp = result.details["throughput"]
    alone = tp["cycles_per_sample"]
    return {"alone": sum(alone) / len(alone),
            "pipelined": tp["steady_state_cycles"] / (samples - 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--synth", action="store_true", help="also synthesize for ecp5-85k")
    args = parser.parse_args(argv)

    if args.samples < 2:
        parser.error("--samples must be at least 2 (back-to-back throughput needs two)")
    headers = ["shape", "profile", "silent", "w sparsity", "ftp fast", "ftp laggy", "seq fast",
               "seq/ftp", "laggy/fast"]
    tables = {"pipelined": [], "alone": []}
    for shape in SHAPES:
        for profile, (silent, weight_sparsity) in LOAS_PROFILES.items():
            cycles = {mode: measure(mode_config(mode, shape), profile, args.samples, args.seed)
                      for mode in MODES}
            for kind, rows in tables.items():
                c = {mode: cycles[mode][kind] for mode in MODES}
                rows.append([shape, profile, f"{100 * silent:.1f}%",
                             f"{100 * weight_sparsity:.2f}%",
                             round(c["ftp_fast"], 1), round(c["ftp_laggy"], 1),
                             round(c["seq_fast"], 1), round(c["seq_fast"] / c["ftp_fast"], 2),
                             round(c["ftp_laggy"] / c["ftp_fast"], 3)])
    print(f"SNN layer K={BASE.in_neurons} T={BASE.timesteps} P={BASE.pes} chunk={BASE.chunk} "
          f"laggy_adders={BASE.laggy_adders}; N: "
          + ", ".join(f"{shape} {mode_config('ftp_fast', shape).out_neurons}" for shape in SHAPES)
          + f"; {args.samples} samples, seed {args.seed}")
    print("\ncycles per sample, samples back to back (throughput)")
    print(format_table(headers, tables["pipelined"]))
    print("\ncycles per sample, one sample at a time (first spike word to last output word)")
    print(format_table(headers, tables["alone"]))

    if args.synth:
        from hwgen.flows.synth import SynthError, synthesize
        rows = []
        for mode in MODES:
            try:
                r = synthesize(mode_config(mode), "ecp5-85k")
            except SynthError as exc:     # reported per mode; the other modes still run
                rows.append([mode, None, None, None, None, None, None, f"failed: {exc}"])
                continue
            rows.append([mode, r.luts, round(r.luts / BASE.pes), r.ffs, r.brams, r.dsps,
                         round(r.fmax_mhz, 1) if r.fmax_mhz else None, "ok"])
        print("\necp5-85k (yowasp Yosys + nextpnr)")
        print(format_table(["mode", "LUTs", "LUTs/PE", "FFs", "BRAMs", "DSPs", "Fmax MHz",
                            "status"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
