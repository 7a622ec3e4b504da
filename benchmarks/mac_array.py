"""Throughput of the MAC array on a multi-tile layer, measured in simulation, beside numpy; with
--synth, resources, Fmax and GMAC/s on ecp5-85k and ice40-up5k.

For each design a layer Y = A @ W that cuts into 8 tiles (K = 2 R M reduction inputs, 4 C outputs,
``--rows-streamed`` activation rows) runs through the Verilator model with every input valid and
the output always ready (:func:`hwgen.power.layer.simulate_layer`): the outputs read back must
equal the numpy product, the testbench holds every transfer to the cycle model, and the cycles
come from the design's own ``perf.busy`` counter (every cycle from the first weight beat to the
last result, the testbench checks it equals the model's total). Printed per design:

* cycles: ``perf.busy`` over the layer; stream: first to last activation transfer
* steady %: activation rows per stream cycle; end-to-end %: useful MACs (R*C*N per row) per
  multiplier per busy cycle, i.e. of peak from the first weight beat to the last result
* dense-eq MACs/cyc: dense-equivalent MACs of the layer (K*C_out per row, K = 2*R*M) per busy
  cycle; dense-eq MACs/mult/cyc: the same per multiplier (R*C*N of them)
* numpy: the same layer as an int32 matmul (``A @ W``), best of ``--repeats`` timings in this run,
  its dense-equivalent GMAC/s, and the clock at which the array's cycles take as long (above
  it the array is faster; the ratio to numpy at clock f is f / that clock)

With ``--synth``, the entries of :data:`SYNTH_RUNS` are synthesized one after another (Yosys,
then nextpnr once per seed of ``--seeds``, default 1,2,3; :func:`hwgen.flows.synth.synthesize`,
whose folders land in ``rtl_out/<design>/synth-<target>/``). ``--synth-only NAME[,NAME]`` (which
implies ``--synth``) runs part of the list: each NAME is a design name or a target of the list,
and an entry runs if its design is named (or no design is) and its target is named (or no
target is); ``--synth-only bench_dense_4x4,ice40-up5k`` is the 4x4 on ice40-up5k only. The list
holds the designs above on ecp5-85k, the DSP arrays that fit ice40-up5k's 8 DSP blocks (and the
4x4 that does not), and shift-PE arrays (``weight_set = "pow2"``, hwgen/hdl/shift.py: no DSP)
at 8x8 and at growing sizes up to one that should not fit each part; each entry's comment says
why it is there. An entry whose tools fail (:class:`hwgen.flows.synth.SynthError`, not a design
that does not fit) prints its error as it happens and a row with fits "error", and the list goes
on. Printed per entry:

* design, PE (DSP: every product in a DSP block; shift: shift PEs, no DSP), target
* LUT, FF, DSP, BRAM: the synthesis report's counts (ECP5: TRELLIS_COMB, TRELLIS_FF,
  MULT18X18D, DP16KD; iCE40: ICESTORM_LC, SB_DFF cells, SB_MAC16, SB_RAM40_4K). For a design
  that does not fit they are what was counted before stopping (fits says by whom; from Yosys
  the LUT count is a lower bound)
* Fmax MHz: the lower median of the seeds' Fmax (one a seed reached); per seed: each seed's Fmax
  in the order of ``--seeds`` ('-': none, e.g. the design does not fit)
* fits: yes, or no with the resources that overflow and who counted them (yosys: nextpnr did
  not run; nextpnr: it could not place the design)
* dense-eq MACs/cyc: as above, from the simulation in this run of the same rows, cols and
  sparsity: the first table's if it has that size (shift arrays stream exactly as the DSP ones:
  same pipeline, same cycle model, so 8x8 pow2 takes 8x8 dense's), else the entry's own design is
  simulated here, after synthesis and only if it fits (without an Fmax there is no GMAC/s)
* GMAC/s: dense-eq MACs/cyc x Fmax
* DSP ceiling GMAC/s: the target's DSP blocks x the Fmax of the entry (156 on ecp5-85k, 8 on
  ice40-up5k): every DSP of the device doing one MAC per cycle at the clock this design reached.
  Shift rows get the same number, the device's DSP ceiling at the shift array's Fmax: it bounds
  nothing there (shift PEs are LUTs), and a shift array above it does more at that clock than
  the device's DSPs could. An N:M array's dense-eq GMAC/s can exceed it too: it skips MACs.
* numpy GMAC/s: the numpy int32 matmul of the same layer, timed in this run (first table's, or
  the entry's own simulation's)

After the table, per target and PE kind: the largest array (most multipliers) that fits among
the entries run, and the next larger one run that does not fit.

Usage::

    python benchmarks/mac_array.py [--rows-streamed 256] [--seed 1] [--repeats 20]
                                   [--synth] [--seeds 1,2,3] [--synth-only NAME[,NAME]]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from hwgen.config import ConfigError
from hwgen.engines.mac_array import MacArrayConfig
from hwgen.engines.mac_array.golden import expand_nm, operand_ranges
from hwgen.engines.mac_array.stimulus import random_tile
from hwgen.flows.synth import TARGETS, check_seeds
from hwgen.power.layer import layer_tiles, simulate_layer
from hwgen.report.table import format_table

DESIGNS = [
    MacArrayConfig(name="bench_dense_4x4", rows=4, cols=4),
    MacArrayConfig(name="bench_dense_8x8", rows=8, cols=8),
    MacArrayConfig(name="bench_dense_12x12", rows=12, cols=12),
    MacArrayConfig(name="bench_2of4_8x8", rows=8, cols=8, sparsity="2:4"),
]


def _dense(rows: int, cols: int) -> MacArrayConfig:
    """A rows x cols dense array of DSP products."""
    return MacArrayConfig(name=f"bench_dense_{rows}x{cols}", rows=rows, cols=cols)


def _pow2(size: int) -> MacArrayConfig:
    """A size x size dense array of shift PEs (pow2 weights)."""
    return MacArrayConfig(name=f"bench_pow2_{size}x{size}", rows=size, cols=size,
                          weight_set="pow2")


#: What ``--synth`` synthesizes, in this order: (design, target).
SYNTH_RUNS = [
    # The throughput table's designs on the large part: 156 MULT18X18D hold them all (12x12
    # dense uses 144, 8x8 2:4 128).
    *[(cfg, "ecp5-85k") for cfg in DESIGNS],
    # Shift PEs against the 8x8 DSP array, then larger squares up to one that should not fit.
    # 8x8 took 6200 of 83640 LUTs (about 97 per PE), so about 25k at 16x16, 56k at 24x24, 76k at
    # 28x28 and 99k at 32x32 (above the part: Yosys' count should say so before nextpnr runs).
    (_pow2(8), "ecp5-85k"),
    (_pow2(16), "ecp5-85k"),
    (_pow2(24), "ecp5-85k"),
    (_pow2(28), "ecp5-85k"),
    (_pow2(32), "ecp5-85k"),
    # ice40-up5k has 8 SB_MAC16, one per product: 2x2 uses 4, 2x4 all 8 (rows and cols need not
    # be equal); 4x4, the smallest design above, needs 16 and is here to show it does not fit.
    (_dense(2, 2), "ice40-up5k"),
    (_dense(2, 4), "ice40-up5k"),
    (DESIGNS[0], "ice40-up5k"),
    # Shift PEs on its 5280 logic cells: 2x2 against the 2x2 DSP array; 4x4 took 2081 (595 at
    # 2x2: about 124 per PE), so about 3200 at 5x5, 4600 at 6x6 and 6200 at 7x7 (should not
    # fit); 8x8 because the shift arrays are compared at 8x8 on both parts.
    (_pow2(2), "ice40-up5k"),
    (_pow2(4), "ice40-up5k"),
    (_pow2(5), "ice40-up5k"),
    (_pow2(6), "ice40-up5k"),
    (_pow2(7), "ice40-up5k"),
    (_pow2(8), "ice40-up5k"),
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
        "dense_eq_per_cycle": dense_eq / busy,
        "dense_eq_per_mult": dense_eq / busy / peak,
        "numpy_us": seconds * 1e6, "numpy_gmacs": dense_eq / seconds / 1e9,
        "break_even_mhz": busy / seconds / 1e6,
    }


def size_key(cfg: MacArrayConfig) -> tuple:
    """What the cycles depend on: shift and DSP PEs stream alike (see the module doc)."""
    return cfg.rows, cfg.cols, cfg.sparsity


def gmacs(macs_per_cycle: float | None, fmax_mhz: float | None) -> float | None:
    """GMAC/s of ``macs_per_cycle`` MACs every cycle at ``fmax_mhz``; None if either is."""
    if macs_per_cycle is None or fmax_mhz is None:
        return None
    return macs_per_cycle * fmax_mhz / 1e3


def dsp_ceiling_gmacs(target: str, fmax_mhz: float | None) -> float | None:
    """Every DSP block of ``target`` doing one MAC per cycle at ``fmax_mhz``, in GMAC/s."""
    return gmacs(TARGETS[target].capacity["dsps"], fmax_mhz)


def pick_runs(names: str, runs=SYNTH_RUNS) -> list:
    """The entries of ``runs`` that ``--synth-only names`` selects (module doc); ValueError with
    a one-line message for a name that is neither a design nor a target of ``runs``, or a
    selection of no entry."""
    designs = list(dict.fromkeys(cfg.name for cfg, _ in runs))
    targets = list(dict.fromkeys(target for _, target in runs))
    wanted = [name.strip() for name in names.split(",")]
    for name in wanted:
        if name not in designs and name not in targets:
            raise ValueError(f"--synth-only: unknown name {name!r} (expected design names or "
                             f"targets of the synth list: {', '.join(designs + targets)})")
    want_designs = [name for name in wanted if name in designs] or designs
    want_targets = [name for name in wanted if name in targets] or targets
    picked = [(cfg, target) for cfg, target in runs
              if cfg.name in want_designs and target in want_targets]
    if not picked:
        raise ValueError(f"--synth-only {names}: no entry of the synth list has one of these "
                         f"designs on one of these targets")
    return picked


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows-streamed", type=int, default=256,
                        help="activation rows of the layer (rows per tile)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20, help="numpy timings, best one kept")
    parser.add_argument("--synth", action="store_true",
                        help=f"also synthesize the {len(SYNTH_RUNS)} entries of SYNTH_RUNS "
                             f"(hours; see --synth-only)")
    parser.add_argument("--seeds", default="1,2,3", help="nextpnr seeds for --synth")
    parser.add_argument("--synth-only", metavar="NAME[,NAME]",
                        help="synthesize only these designs and/or targets of the list "
                             "(implies --synth)")
    args = parser.parse_args(argv)
    runs = SYNTH_RUNS
    if args.synth_only is not None:
        try:
            runs = pick_runs(args.synth_only)
        except ValueError as exc:
            parser.error(str(exc))
    try:
        seeds = check_seeds([int(s) for s in args.seeds.split(",")])
    except (ValueError, ConfigError) as exc:
        parser.error(f"--seeds {args.seeds}: {exc}")

    rows = [measure(cfg, args.rows_streamed, args.seed, args.repeats) for cfg in DESIGNS]
    print(f"MAC array on a {K_TILES * C_TILES}-tile layer, {args.rows_streamed} activation rows "
          f"per tile, seed {args.seed}")
    print(format_table(
        ["design", "mults", "tiles", "rows", "cycles", "stream", "steady %", "end-to-end %",
         "dense-eq MACs/cyc", "dense-eq MACs/mult/cyc"],
        [[r["design"], r["multipliers"], r["tiles"], r["rows"], r["busy"], r["stream"],
          round(r["steady_pct"], 2), round(r["end_to_end_pct"], 2),
          round(r["dense_eq_per_cycle"], 2), round(r["dense_eq_per_mult"], 3)] for r in rows]))
    print("\nnumpy int32 matmul of the same layer, this run")
    print(format_table(
        ["design", "numpy us", "numpy GMAC/s", "array = numpy at MHz"],
        [[r["design"], round(r["numpy_us"], 1), round(r["numpy_gmacs"], 2),
          round(r["break_even_mhz"], 1)] for r in rows]))
    dense = next(r for r in rows if r["design"] == "bench_dense_8x8")
    sparse = next(r for r in rows if r["design"] == "bench_2of4_8x8")
    print(f"\n2:4 / dense dense-equivalent MACs per multiplier (8x8): "
          f"{sparse['dense_eq_per_mult'] / dense['dense_eq_per_mult']:.3f}")

    if args.synth or args.synth_only is not None:
        measured = {size_key(cfg): r for cfg, r in zip(DESIGNS, rows)}
        synth_table(runs, seeds, measured,
                    lambda cfg: measure(cfg, args.rows_streamed, args.seed, args.repeats))
    return 0


def synth_table(runs, seeds: tuple[int, ...], measured: dict, simulate) -> None:
    """Synthesize ``runs`` one after another, simulate the sizes that fit and are not in
    ``measured`` yet (``simulate(cfg)`` -> a :func:`measure` dict) and print the table."""
    from hwgen.flows.synth import SynthError, synthesize

    results = []
    for cfg, target in runs:
        print(f"synthesizing {cfg.name} on {target} ...", file=sys.stderr, flush=True)
        try:
            results.append((cfg, target, synthesize(cfg, target, seeds=seeds)))
        except SynthError as exc:
            # The list takes hours: one failed run should not cost the others' table.
            print(f"{cfg.name} on {target}: {exc}", file=sys.stderr, flush=True)
            results.append((cfg, target, None))
    table = []
    for cfg, target, r in results:
        pe = "shift" if cfg.shift_pe else "DSP"
        if r is None:
            table.append([cfg.name, pe, target] + [None] * 6 + ["error"] + [None] * 4)
            continue
        if r.fits and size_key(cfg) not in measured:
            measured[size_key(cfg)] = simulate(cfg)
        m = measured.get(size_key(cfg))
        per_cycle = m["dense_eq_per_cycle"] if m else None
        per_seed = " / ".join("-" if f is None else f"{f:.1f}" for f in r.seed_fmax_mhz)
        fits = "yes" if r.fits else f"no: {', '.join(r.overflow)} ({r.counted_by})"
        table.append([
            cfg.name, pe, target, r.luts, r.ffs, r.dsps, r.brams,
            _round(r.fmax_mhz, 1), per_seed, fits, _round(per_cycle, 2),
            _round(gmacs(per_cycle, r.fmax_mhz), 2),
            _round(dsp_ceiling_gmacs(target, r.fmax_mhz), 2),
            _round(m["numpy_gmacs"] if m else None, 2)])
    print(f"\nsynthesis (yowasp Yosys + nextpnr), Fmax = lower median of seeds "
          f"{','.join(map(str, seeds))}; GMAC/s = dense-eq MACs/cyc x Fmax; DSP ceiling = "
          f"the target's DSPs x Fmax")
    print(format_table(["design", "PE", "target", "LUT", "FF", "DSP", "BRAM", "Fmax MHz",
                        "per seed", "fits", "dense-eq MACs/cyc", "GMAC/s",
                        "DSP ceiling GMAC/s", "numpy GMAC/s"], table))
    for line in largest_fits([(cfg, target, r.fits) for cfg, target, r in results
                              if r is not None]):
        print(line)


def largest_fits(results) -> list[str]:
    """Per target and PE kind of ``results`` ((design, target, fits) tuples): the design with
    the most multipliers that fits, and the smallest larger one that does not."""
    lines = []
    groups = dict.fromkeys((target, cfg.shift_pe) for cfg, target, _ in results)
    for target, shift in groups:
        group = [(cfg, fits) for cfg, t, fits in results if t == target and cfg.shift_pe == shift]
        best = max((cfg for cfg, fits in group if fits), key=lambda c: c.multipliers,
                   default=None)
        floor = best.multipliers if best else 0
        miss = min((cfg for cfg, fits in group if not fits and cfg.multipliers > floor),
                   key=lambda c: c.multipliers, default=None)
        kind = "shift" if shift else "DSP"
        text = f"largest {kind} array that fits {target}: " \
               f"{best.name if best else 'none of those run'}"
        text += f" ({miss.name} does not)" if miss else " (no larger one was run)"
        lines.append(text)
    return lines


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


if __name__ == "__main__":
    sys.exit(main())
