"""Sparse attention: throughput against numpy, query-row parallelism, masks and accuracy.

Every cycle count comes from the Verilator model (sim/test_sparse_attention.py, which also holds
every output row to the golden model and the cycles to the analytic cycle model); every Fmax from
nextpnr as the median over placement seeds (``--synth``). Printed:

1. **Throughput** for the two head shapes of the issue — (max_len 64, d 16, k 8, lanes 4: at
   L = 64 the estimate's 16 blocks no longer bound a group, since it streams the next group
   while a top-k unit finishes a set, so 8 lanes would save at most 4 cycles per sequence
   back to back, 292.5 against 296.5 at rows 4, for twice the estimate logic) and (max_len 256, d 32, k 16, lanes 8: the estimate of
   256 keys bounds a row at 33 cycles; 16 lanes would halve that, but rows 1 then packs into
   85k LUT4, 102% of an ECP5-85K) — with rows in {1, 2, 3, 4} and L in {16, 64, 256}:
   cycles of one sequence alone, steady-state cycles per sequence back to back (a stream of
   ``2 + --stream`` equal sequences minus a stream of 2), and numpy float32 attention
   ``softmax(Q K^T s) V`` of the same shape timed in this run (``timeit``, best of 7). With
   ``--synth``: LUT/FF/DSP/BRAM and Fmax on ecp5-85k, and
   throughput = Fmax / (cycles per sequence) in sequences per second beside numpy's, as a ratio.
2. **Masks** at the example size (max_len 64, d 16, k 8, lanes 4, rows 1), L = 64: cycles per
   sequence back to back; with ``--synth`` the DSPs, LUTs and Fmax of each mask.
3. **Accuracy**: cosine similarity of the output to float dense attention (golden model, which
   is bit-exact with the RTL) on gaussian and peaked inputs, L = 64, for fixed top-k, the
   threshold mask at several margins (with the average keys it keeps per row, and fixed top-k
   at that average cost), the window and the integer dense mask.

Usage::

    python benchmarks/sparse_attention.py [--seed 1] [--stream 8] [--synth [--reuse]]
        [--seeds 1,2,3] [--only 64] [--rows 4] [--tables 1,2,3]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import timeit

import numpy as np

from hwgen.engines.sparse_attention import SparseAttentionConfig, golden
from hwgen.engines.sparse_attention.stimulus import random_sequence
from hwgen.flows.sim import simulate
from hwgen.report.table import format_table

#: The two head shapes of the throughput table, by max_len.
SHAPES = {
    64: SparseAttentionConfig(name="bench_attn64", max_len=64, head_dim=16, topk=8, lanes=4),
    256: SparseAttentionConfig(name="bench_attn256", max_len=256, head_dim=32, topk=16, lanes=8),
}
ROWS = (1, 2, 3, 4)
LENGTHS = (16, 64, 256)
EXAMPLE = SparseAttentionConfig(name="bench_mask", max_len=64, head_dim=16, topk=8, lanes=4,
                                window=4, global_tokens=2, margin=96)
MASKS = ("topk", "threshold", "window", "dense")


def _stream(cfg: SparseAttentionConfig, length: int, count: int, seed: int) -> dict:
    result = simulate(cfg, seed=seed, vectors=1,
                      options={"lengths": [length] * count, "phase2": False, "dist": "gaussian"})
    if not result.passed:
        sys.exit(f"{cfg.name}: simulation failed: {result.message}")
    return result.details["throughput"]


def measure(cfg: SparseAttentionConfig, length: int, count: int, seed: int) -> tuple[int, float]:
    """(cycles of one sequence alone, steady-state cycles per sequence back to back), from the
    RTL simulation (the testbench fails unless its cycles equal the cycle model's): the steady
    state is the difference between streams of ``2 + count`` and 2 sequences over ``count``, so
    the first sequence's load and prepare, which nothing overlaps, do not count."""
    short = _stream(cfg, length, 2, seed)
    long = _stream(cfg, length, 2 + count, seed)
    return short["cycles_alone"][0], (long["cycles_stream"] - short["cycles_stream"]) / count


def numpy_seconds(cfg: SparseAttentionConfig, length: int, rng) -> float:
    """Best of 7 ``timeit`` runs of float32 dense attention of one (L, d) head."""
    q, k, v = (rng.normal(size=(length, cfg.head_dim)).astype(np.float32) for _ in range(3))
    scale = np.float32(cfg.logit_scale)

    def attention():
        s = (q @ k.T) * scale
        w = np.exp(s - s.max(axis=1, keepdims=True))
        return (w / w.sum(axis=1, keepdims=True)) @ v

    number = 200
    return min(timeit.repeat(attention, number=number, repeat=7)) / number


def synth(cfg: SparseAttentionConfig, seeds, reuse: bool = False):
    """Synthesize ``cfg`` for ecp5-85k into its default folder; with ``reuse``, an earlier
    report there is taken instead if its Verilog is byte-identical to this design's and it ran
    the same seeds (so a long synthesis need not repeat to retime numpy on an idle machine)."""
    from hwgen.emit.design import as_design
    from hwgen.flows.synth import REPORT, SynthError, SynthReport, default_out_dir, synthesize
    out = default_out_dir(cfg, "ecp5-85k")
    if reuse and (out / REPORT).is_file() and (out / f"{cfg.name}.v").is_file():
        try:
            report = SynthReport.from_json((out / REPORT).read_text())
        except (KeyError, TypeError, ValueError):
            report = None        # written by an older hwgen, without today's fields
        same = (out / f"{cfg.name}.v").read_text() == as_design(cfg).verilog
        if report is not None and same and list(report.seeds) == list(seeds):
            print(f"   {cfg.name}: report reused from {out}", file=sys.stderr)
            return report
    try:
        return synthesize(cfg, "ecp5-85k", seeds=seeds)
    except SynthError as exc:
        print(f"   {cfg.name}: synthesis failed: {exc}", file=sys.stderr)
        return None


def fmt_resources(r) -> list:
    if r is None:
        return [None] * 6
    fmax = round(r.fmax_mhz, 1) if r.fmax_mhz else None
    spread = "/".join(f"{f:.0f}" if f else "-" for f in r.seed_fmax_mhz)
    return [r.luts, r.ffs, r.dsps, r.brams, fmax if r.fits else "does not fit", spread]


def throughput_table(args, rng) -> None:
    print(f"1. throughput: cycles from the RTL simulation, steady state over {args.stream} "
          f"sequences back to back; "
          f"numpy float32 on one core (best of 7)")
    headers = ["max_len", "d", "k", "rows", "L", "cycles alone", "cycles/seq steady", "numpy us"]
    if args.synth:
        headers += ["LUTs", "FFs", "DSPs", "BRAMs", "Fmax MHz", "seeds", "seq/s", "x numpy"]
    rows = []
    for max_len, shape in SHAPES.items():
        if args.only and max_len not in args.only:
            continue
        for r in ROWS:
            if args.rows and r not in args.rows:
                continue
            cfg = dataclasses.replace(shape, name=f"{shape.name}_r{r}", rows=r)
            report = synth(cfg, args.seeds, args.reuse) if args.synth else None
            for length in LENGTHS:
                if length > max_len:
                    continue
                alone, per_seq = measure(cfg, length, args.stream, args.seed)
                cpu = numpy_seconds(cfg, length, rng)
                row = [max_len, cfg.head_dim, cfg.topk, r, length, alone, per_seq,
                       round(cpu * 1e6, 1)]
                if args.synth:
                    row += fmt_resources(report)
                    fmax = report.fmax_mhz if report is not None and report.fits else None
                    rate = fmax * 1e6 / per_seq if fmax else None
                    row += [f"{rate:.3g}" if rate else None,
                            f"{rate * cpu:.2f}" if rate else None]
                rows.append(row)
                print(f"   {row}", file=sys.stderr)
    print(format_table(headers, rows))


def mask_table(args) -> None:
    print(f"\n2. masks at max_len 64, d 16, k 8, lanes 4, rows 1 (threshold margin "
          f"{EXAMPLE.margin}; window {EXAMPLE.window} + {EXAMPLE.global_tokens} global), L = 64")
    headers = ["mask", "cycles alone", "cycles/seq steady"]
    if args.synth:
        headers += ["LUTs", "FFs", "DSPs", "BRAMs", "Fmax MHz", "seeds"]
    rows = []
    for mask in MASKS:
        cfg = dataclasses.replace(EXAMPLE, name=f"bench_mask_{mask}", mask=mask)
        alone, per_seq = measure(cfg, 64, args.stream, args.seed)
        row = [mask, alone, per_seq]
        if args.synth:
            row += fmt_resources(synth(cfg, args.seeds, args.reuse))
        rows.append(row)
    print(format_table(headers, rows))


def accuracy_table(rng) -> None:
    cfg0 = EXAMPLE
    seqs = {dist: [random_sequence(cfg0, 64, rng, dist) for _ in range(4)]
            for dist in ("gaussian", "peaked")}

    def score(cfg, dist):
        sims, kept = [], []
        for s in seqs[dist]:
            trace = golden.attention(cfg, *s)
            sims.append(golden.cosine_similarity(trace.out, golden.float_attention(cfg, *s)))
            kept.append(np.mean([len(sel) for sel in trace.selected]))
        return float(np.mean(sims)), float(np.mean(kept))

    print("\n3. cosine similarity to float dense attention and keys kept per row, L = 64, mean "
          "of 4 sequences")
    rows = []
    for dist in seqs:
        for k in (4, 8, 16, 32):
            sim, kept = score(dataclasses.replace(cfg0, topk=k), dist)
            rows.append([dist, f"topk k={k}", f"{sim:.5f}", f"{kept:.1f}", ""])
        for margin in (4, 8, 16, 32, 64):
            cfg = dataclasses.replace(cfg0, mask="threshold", topk=32, margin=margin)
            sim, kept = score(cfg, dist)
            same = max(1, int(round(kept)))
            fixed, _ = score(dataclasses.replace(cfg0, topk=same), dist)
            rows.append([dist, f"threshold margin={margin} cap 32", f"{sim:.5f}", f"{kept:.1f}",
                         f"topk k={same}: {fixed:.5f}"])
        for mask in ("window", "dense"):
            sim, kept = score(dataclasses.replace(cfg0, mask=mask), dist)
            rows.append([dist, mask, f"{sim:.5f}", f"{kept:.1f}", ""])
    print(format_table(["inputs", "mask", "cosine", "keys/row", "fixed top-k, same cost"],
                       rows))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1, help="stimulus seed (default 1)")
    parser.add_argument("--stream", type=int, default=8,
                        help="sequences the steady state is measured over (default 8)")
    parser.add_argument("--synth", action="store_true", help="also synthesize for ecp5-85k")
    parser.add_argument("--reuse", action="store_true",
                        help="with --synth, take a report already in rtl_out/<name>/synth-ecp5-85k "
                             "whose Verilog and seeds are this run's")
    parser.add_argument("--seeds", type=lambda s: tuple(int(x) for x in s.split(",")),
                        default=(1, 2, 3), help="nextpnr seeds with --synth (default 1,2,3)")
    parser.add_argument("--only", type=lambda s: {int(x) for x in s.split(",")}, default=None,
                        help="only these head shapes of table 1, by max_len (64, 256)")
    parser.add_argument("--rows", type=lambda s: {int(x) for x in s.split(",")}, default=None,
                        help="only these rows of table 1 (1, 2, 3, 4)")
    parser.add_argument("--tables", default="1,2,3", help="tables to print (default 1,2,3)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    tables = set(args.tables.split(","))
    if "1" in tables:
        throughput_table(args, rng)
    if "2" in tables:
        mask_table(args)
    if "3" in tables:
        accuracy_table(rng)
    return 0


if __name__ == "__main__":
    sys.exit(main())
