"""Sparse attention: cycles against sequence length, mixed lengths against padding, accuracy.

One head (max_len = 64, head_dim = 16, lanes = 4) in three masks — topk (k = 8), window (4 plus 2
global tokens) and dense — runs in the Verilator model with every token valid and the output
always ready; the testbench (sim/test_sparse_attention.py) checks every output row against the
golden model and holds the cycles to the analytic cycle model, which splits them into stages.
Printed:

1. cycles per sequence (first token to last output row) against L for each mask, and the
   exact-stage cycles (selection + exact scores, ``n_i + 1`` per row) from the cycle model;
   written as a plot to ``--plot`` (SVG);
2. the speedup of topk over dense at L = max_len;
3. a stream of sequences with skewed lengths back to back against the same count padded to
   max_len, and against the sum of the sequences' own compute cycles;
4. the output's cosine similarity to float dense attention for k in {8, 16, 32}, the window
   mask and the integer dense mask (golden model, which is bit-exact with the RTL), on random
   gaussian sequences and on "peaked" ones where each query has two strongly matching keys;
5. with ``--synth``: LUT/FF/DSP/BRAM and Fmax on ecp5-85k per mask.

Usage::

    python benchmarks/sparse_attention.py [--seed 1] [--plot attention_cycles.svg] [--synth]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

from hwgen.engines.sparse_attention import SparseAttentionConfig, golden
from hwgen.engines.sparse_attention.cycle_model import selected_counts, sequence_cycles
from hwgen.engines.sparse_attention.stimulus import draw_lengths, random_sequence
from hwgen.flows.sim import simulate
from hwgen.report.plot import line_plot_svg
from hwgen.report.table import format_table

BASE = SparseAttentionConfig(name="bench_attn", max_len=64, head_dim=16, topk=8, lanes=4,
                             window=4, global_tokens=2)
MASKS = ("topk", "window", "dense")
LENGTHS = (1, 8, 16, 32, 48, 64)
STREAM = 12          # sequences in the mixed-length stream


def mask_config(mask: str, **changes) -> SparseAttentionConfig:
    return dataclasses.replace(BASE, name=f"bench_attn_{mask}", mask=mask, **changes)


def run(cfg: SparseAttentionConfig, lengths: list[int], seed: int) -> dict:
    result = simulate(cfg, seed=seed, vectors=1,
                      options={"lengths": [int(n) for n in lengths], "phase2": False})
    if not result.passed:
        sys.exit(f"{cfg.name}: simulation failed: {result.message}")
    return result.details["throughput"]


def exact_stage(cfg: SparseAttentionConfig, length: int) -> int:
    return sum(n + 1 for n in selected_counts(cfg, length))


def peaked_sequence(cfg: SparseAttentionConfig, length: int, rng) -> tuple:
    """Q rows close to two K rows each (scaled to use the int8 range), V random."""
    lo, hi = cfg.data_range
    k = rng.normal(0, hi / 3, size=(length, cfg.head_dim))
    pairs = rng.integers(0, length, size=(length, 2))
    q = 0.6 * k[pairs[:, 0]] + 0.6 * k[pairs[:, 1]] + rng.normal(0, hi / 12, k.shape)
    v = rng.normal(0, hi / 3, size=k.shape)
    as_int = [np.clip(np.floor(x + 0.5), lo, hi).astype(np.int64) for x in (q, k, v)]
    return tuple(as_int)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--plot", type=Path, default=Path("attention_cycles.svg"))
    parser.add_argument("--synth", action="store_true", help="also synthesize for ecp5-85k")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)

    # 1. cycles against L
    cycles = {mask: run(mask_config(mask), list(LENGTHS), args.seed) for mask in MASKS}
    rows = []
    for n, length in enumerate(LENGTHS):
        row = [length]
        for mask in MASKS:
            row += [cycles[mask]["cycles_alone"][n], exact_stage(mask_config(mask), length)]
        rows.append(row)
    print(f"sparse attention, max_len={BASE.max_len} head_dim={BASE.head_dim} "
          f"lanes={BASE.lanes}; topk k={BASE.topk}; window {BASE.window} + "
          f"{BASE.global_tokens} global; seed {args.seed}")
    print("\n1. cycles per sequence alone (first token to last output row) and exact-stage cycles")
    print(format_table(["L"] + [f"{m} {what}" for m in MASKS for what in ("cycles", "exact")],
                       rows))
    args.plot.write_text(line_plot_svg(
        {mask: list(zip(LENGTHS, cycles[mask]["cycles_alone"])) for mask in MASKS},
        "sparse attention: cycles per sequence", "sequence length L", "cycles"))
    print(f"(plot: {args.plot})")

    # 2. speedup at max_len
    full = {mask: cycles[mask]["cycles_alone"][LENGTHS.index(BASE.max_len)] for mask in MASKS}
    print(f"\n2. at L = {BASE.max_len}: dense {full['dense']} cycles, topk {full['topk']}: "
          f"speedup {full['dense'] / full['topk']:.2f}x (window: "
          f"{full['dense'] / full['window']:.2f}x)")

    # 3. mixed lengths against padding
    lengths = [int(n) for n in draw_lengths(BASE, STREAM, rng)]
    rows = []
    for mask in MASKS:
        cfg = mask_config(mask)
        mixed = run(cfg, lengths, args.seed)["cycles_stream"]
        padded = run(cfg, [BASE.max_len] * STREAM, args.seed)["cycles_stream"]
        own = sum(sequence_cycles(cfg, n).compute for n in lengths)
        rows.append([mask, mixed, padded, round(padded / mixed, 2), own,
                     f"{100 * (mixed / own - 1):+.1f}%"])
    print(f"\n3. {STREAM} sequences back to back, lengths {lengths}")
    print(format_table(["mask", "mixed cycles", "padded cycles", "padded/mixed",
                        "sum of own compute", "mixed vs own"], rows))

    # 4. accuracy against float dense attention (golden model == RTL, bit for bit)
    rows = []
    for kind in ("gaussian", "peaked"):
        seqs = [random_sequence(BASE, BASE.max_len, rng, "gaussian") if kind == "gaussian"
                else peaked_sequence(BASE, BASE.max_len, rng) for _ in range(4)]
        row = [kind]
        for cfg in ([mask_config("topk", topk=k) for k in (8, 16, 32)]
                    + [mask_config("window"), mask_config("dense")]):
            sims = [golden.cosine_similarity(golden.attention(cfg, *s).out,
                                             golden.float_attention(cfg, *s)) for s in seqs]
            row.append(f"{np.mean(sims):.5f}")
        rows.append(row)
    print(f"\n4. cosine similarity to float dense attention, L = {BASE.max_len}, mean of 4 "
          "sequences")
    print(format_table(["inputs", "topk 8", "topk 16", "topk 32", "window", "dense"], rows))

    if args.synth:
        from hwgen.flows.synth import SynthError, synthesize
        rows = []
        for mask in MASKS:
            try:
                r = synthesize(mask_config(mask), "ecp5-85k")
            except SynthError as exc:
                rows.append([mask, None, None, None, None, None, f"failed: {exc}"])
                continue
            rows.append([mask, r.luts, r.ffs, r.dsps, r.brams,
                         round(r.fmax_mhz, 1) if r.fmax_mhz else None, "ok"])
        print("\n5. ecp5-85k (yowasp Yosys + nextpnr)")
        print(format_table(["mask", "LUTs", "FFs", "DSPs", "BRAMs", "Fmax MHz", "status"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
