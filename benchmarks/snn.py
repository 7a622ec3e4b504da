"""SNN layer: FTP against sequential dataflow, laggy against fast join, at the LoAS sparsities,
beside numpy on the same layer.

For each of the three sparsity profiles of the LoAS evaluation (silent neurons after packing /
weight sparsity) two layer shapes (T = 4, K = 128, P = 4, chunk 128, spikes in and out as fibers,
so 4 LIF lanes) run in the Verilator model in three modes (ftp+fast, ftp+laggy,
sequential+fast), with no stalls, back to back (throughput) and one sample at a time (latency):

* ``input-bound``: N = 16. Each TPPE has 4 neurons of one chunk; the sample's fiber (its mask
  and kept words, one beat per cycle) sets the pace.
* ``join-bound``: N = 128: 32 neurons per TPPE, the join is the work.

Cycles are the design's own: the testbench (sim/test_snn.py) measures them from its transfers,
checks every output beat against the golden model and holds every sample to the cycle model
exactly. The numpy baseline is the same layer on one core: the integer matmul of the T spike
vectors with the weights (int32) and the LIF over the T steps, timed with ``timeit`` (best of 5)
in the same run, per sample: one sample per call (what a streaming core replaces) and in batches
of ``NUMPY_BATCH`` samples (numpy's best throughput). With ``--synth`` each mode of each shape
(``--synth-shapes``, ``--synth-modes``) is synthesized for ecp5-85k (3 placement seeds; Fmax is
their median) and **samples per second = Fmax / cycles per sample** is printed beside numpy's. The
syntheses run in ``--jobs`` processes of their own from the start, beside the simulations.

A 3-layer network (``snn_network``: K = 128 -> 64 -> 32 -> 10, T = 4, P = 4 per layer, chunk
128, fibers between the layers) runs end to end at each profile (the first layer's weights and
input at the profile's sparsities, the later layers' weights too), beside numpy running the same
three layers one after another; with ``--synth`` it is synthesized as well.

Usage::

    python benchmarks/snn.py [--samples 6] [--seed 1] [--synth] [--seeds 1,2,3] [--jobs 1]
        [--synth-shapes input-bound,join-bound,network] [--synth-modes ftp_fast,ftp_laggy,seq_fast]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import timeit
from concurrent.futures import ProcessPoolExecutor, wait

import numpy as np

from hwgen.engines.snn import SnnConfig, golden
from hwgen.engines.snn.stimulus import LOAS_PROFILES, random_layer
from hwgen.engines.snn_network import SnnNetworkConfig
from hwgen.engines.snn_network import golden as network_golden
from hwgen.engines.snn_network.stimulus import random_network
from hwgen.flows.sim import simulate
from hwgen.report.table import format_table

BASE = SnnConfig(name="bench_snn", timesteps=4, in_neurons=128, out_neurons=16, pes=4, chunk=128,
                 laggy_adders=16, threshold=16, in_format="fiber", out_format="fiber")
SHAPES = {"input-bound": {}, "join-bound": {"out_neurons": 128}}
MODES = {
    "ftp_fast": dict(dataflow="ftp", join="fast"),
    "ftp_laggy": dict(dataflow="ftp", join="laggy"),
    "seq_fast": dict(dataflow="sequential", join="fast"),
}


NETWORK = SnnNetworkConfig(name="bench_snn_net", timesteps=4, in_neurons=128, chunk=128,
                           in_format="fiber", out_format="fiber",
                           layers=[{"out_neurons": 64, "pes": 4, "threshold": 16},
                                   {"out_neurons": 32, "pes": 4, "threshold": 8},
                                   {"out_neurons": 10, "pes": 4, "threshold": 8}])


def mode_config(mode: str, shape: str = "input-bound") -> SnnConfig:
    tag = "" if shape == "input-bound" else "_" + shape.split("-")[0]
    return dataclasses.replace(BASE, name=f"bench_snn_{mode}{tag}", **MODES[mode], **SHAPES[shape])


def measure(cfg, profile: str, samples: int, seed: int) -> dict[str, float]:
    """Cycles per sample alone (first input beat to last output beat) and back to back."""
    result = simulate(cfg, seed=seed, vectors=samples,
                      options={"profile": profile, "phase2": False})
    if not result.passed:
        sys.exit(f"{cfg.name} / {profile}: simulation failed: {result.message}")
    tp = result.details["throughput"]
    alone = tp["cycles_per_sample"]
    return {"alone": sum(alone) / len(alone),
            "pipelined": tp["steady_state_cycles"] / (samples - 1)}


def numpy_layer(a: np.ndarray, b: np.ndarray, cfg: SnnConfig) -> np.ndarray:
    """The layer in numpy, for timing: O = the T spike vectors times the weights (int32), then
    the LIF over t (hard reset, subtract-shift leak, no overflow: the float-free reference
    a CPU would run)."""
    m, k, t = a.shape
    o = (a.transpose(0, 2, 1).reshape(m * t, k) @ b).reshape(m, t, -1)
    u = np.zeros((m, b.shape[1]), dtype=np.int32)
    out = np.empty((m, t, b.shape[1]), dtype=bool)
    for step in range(t):
        x = u + o[:, step]
        fire = x >= cfg.threshold
        u = np.where(fire, 0, x)
        u = u - (u >> cfg.leak_shift)
        out[:, step] = fire
    return out


#: Samples per call of the batched numpy baseline.
NUMPY_BATCH = 64


def numpy_seconds_per_sample(cfg: SnnConfig, profile: str, seed: int) -> tuple[float, float]:
    """numpy's seconds per sample, one sample per call and in batches of ``NUMPY_BATCH``."""
    silent, sparsity = LOAS_PROFILES[profile]
    a, b = random_layer(cfg, np.random.default_rng(seed), samples=NUMPY_BATCH,
                        silent_fraction=silent, weight_density=1.0 - sparsity)
    a32, b32 = a.astype(np.int32), b.astype(np.int32)
    # The numpy LIF agrees with the golden model where nothing overflows (checked, not assumed).
    trace = golden.layer(a, b, cfg)
    assert (numpy_layer(a32, b32, cfg).transpose(0, 2, 1) == trace.spikes.astype(bool)).all()
    one = a32[:1]
    single = min(timeit.repeat(lambda: numpy_layer(one, b32, cfg), number=200, repeat=5)) / 200
    batch = min(timeit.repeat(lambda: numpy_layer(a32, b32, cfg), number=20, repeat=5)) / 20
    return single, batch / NUMPY_BATCH


def numpy_network_seconds(profile: str, seed: int) -> tuple[float, float, int]:
    """numpy running the network's three layers one after another at a profile: seconds per
    sample (one sample, batches of ``NUMPY_BATCH``) and the kept words leaving layer 0 per
    sample."""
    silent, sparsity = LOAS_PROFILES[profile]
    a, weights = random_network(NETWORK, np.random.default_rng(seed), samples=NUMPY_BATCH,
                                silent_fraction=silent, weight_density=1.0 - sparsity)
    trace = network_golden.network(a, weights, NETWORK)
    cfgs = NETWORK.layer_configs

    def numpy_network(x):
        for lc, b in zip(cfgs, weights32):
            x = numpy_layer(x, b, lc).transpose(0, 2, 1).astype(np.int32)
        return x

    weights32 = [b.astype(np.int32) for b in weights]
    a32 = a.astype(np.int32)
    assert (numpy_network(a32) == trace.layers[-1].spikes).all()
    one = a32[:1]
    single = min(timeit.repeat(lambda: numpy_network(one), number=100, repeat=5)) / 100
    batch = min(timeit.repeat(lambda: numpy_network(a32), number=10, repeat=5)) / 10
    spikes = int(sum(trace.layers[0].out_words.astype(bool).sum(axis=1))) // NUMPY_BATCH
    return single, batch / NUMPY_BATCH, spikes


def start_syntheses(args, shapes: list[str], modes: list[str]) -> dict:
    """Start synthesizing the chosen designs for ecp5-85k in ``args.jobs`` processes; a future
    of each design's ``SynthReport`` by (shape, mode)."""
    from hwgen.flows.synth import synthesize
    seeds = [int(s) for s in args.seeds.split(",")]
    designs = {("network", "3 layers"): NETWORK} if "network" in shapes else {}  # longest first
    designs.update({(shape, mode): mode_config(mode, shape)
                    for shape in SHAPES if shape in shapes for mode in modes})
    pool = ProcessPoolExecutor(max_workers=args.jobs)
    futures = {key: pool.submit(synthesize, design, "ecp5-85k", seeds=seeds)
               for key, design in designs.items()}
    pool.shutdown(wait=False)     # the workers finish the queue; results are awaited in order
    return futures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--synth", action="store_true", help="also synthesize for ecp5-85k")
    parser.add_argument("--seeds", default="1,2,3", help="nextpnr placement seeds (--synth)")
    parser.add_argument("--synth-shapes", default=",".join([*SHAPES, "network"]),
                        help="what --synth synthesizes: shapes and/or 'network' (default: all)")
    parser.add_argument("--synth-modes", default=",".join(MODES),
                        help="the modes --synth synthesizes for each shape (default: all)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="processes that synthesize (--synth), beside the simulations")
    args = parser.parse_args(argv)
    synth_shapes = args.synth_shapes.split(",")
    for name in synth_shapes:
        if name not in [*SHAPES, "network"]:
            parser.error(f"--synth-shapes: {name!r} is not one of "
                         + ", ".join([*SHAPES, "network"]))
    synth_modes = args.synth_modes.split(",")
    for name in synth_modes:
        if name not in MODES:
            parser.error(f"--synth-modes: {name!r} is not one of " + ", ".join(MODES))
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, not {args.jobs}")

    if args.samples < 2:
        parser.error("--samples must be at least 2 (back-to-back throughput needs two)")
    syntheses = start_syntheses(args, synth_shapes, synth_modes) if args.synth else {}
    headers = ["shape", "profile", "silent", "w sparsity", "ftp fast", "ftp laggy", "seq fast",
               "seq/ftp", "laggy/fast", "numpy us", f"numpy us (x{NUMPY_BATCH})"]
    tables = {"pipelined": [], "alone": []}
    # The simulations first (beside the syntheses), then numpy, timed once the syntheses are done
    # so that it has a core to itself.
    cycles_at = {(shape, profile): {mode: measure(mode_config(mode, shape), profile, args.samples,
                                                  args.seed) for mode in MODES}
                 for shape in SHAPES for profile in LOAS_PROFILES}
    network_cycles = {profile: measure(NETWORK, profile, args.samples, args.seed)
                      for profile in LOAS_PROFILES}
    wait(syntheses.values())
    cpu_at = {(shape, profile): numpy_seconds_per_sample(mode_config("ftp_fast", shape), profile,
                                                         args.seed)
              for shape, profile in cycles_at}
    for (shape, profile), cycles in cycles_at.items():
        silent, weight_sparsity = LOAS_PROFILES[profile]
        cpu, cpu_batch = cpu_at[shape, profile]
        for kind, rows in tables.items():
            c = {mode: cycles[mode][kind] for mode in MODES}
            rows.append([shape, profile, f"{100 * silent:.1f}%", f"{100 * weight_sparsity:.2f}%",
                         round(c["ftp_fast"], 1), round(c["ftp_laggy"], 1),
                         round(c["seq_fast"], 1), round(c["seq_fast"] / c["ftp_fast"], 2),
                         round(c["ftp_laggy"] / c["ftp_fast"], 3), round(cpu * 1e6, 2),
                         round(cpu_batch * 1e6, 2)])
    print(f"SNN layer K={BASE.in_neurons} T={BASE.timesteps} P={BASE.pes} chunk={BASE.chunk} "
          f"laggy_adders={BASE.laggy_adders} in_format={BASE.in_format}; N: "
          + ", ".join(f"{shape} {mode_config('ftp_fast', shape).out_neurons}" for shape in SHAPES)
          + f"; {args.samples} samples, seed {args.seed}")
    print("\ncycles per sample, samples back to back (throughput); numpy: one sample, one core")
    print(format_table(headers, tables["pipelined"]))
    print("\ncycles per sample, one sample at a time (first input beat to last output beat)")
    print(format_table(headers, tables["alone"]))

    network = {profile: (network_cycles[profile], *numpy_network_seconds(profile, args.seed))
               for profile in LOAS_PROFILES}
    print(f"\n3-layer network K={NETWORK.in_neurons} -> "
          + " -> ".join(str(c.out_neurons) for c in NETWORK.layer_configs)
          + f", T={NETWORK.timesteps}, P=4 per layer, chunk {NETWORK.chunk}, fibers in, "
          "between and out; numpy: the three layers one after another, one core")
    print(format_table(
        ["profile", "cycles alone", "cycles back to back", "layer-0 kept words", "numpy us",
         f"numpy us (x{NUMPY_BATCH})"],
        [[profile, round(c["alone"], 1), round(c["pipelined"], 1), spikes, round(cpu * 1e6, 2),
          round(batch * 1e6, 2)] for profile, (c, cpu, batch, spikes) in network.items()]))

    if args.synth:
        from hwgen.flows.synth import SynthError
        rows, fmax = [], {}
        for (shape, mode), future in syntheses.items():
            pes = sum(c.pes for c in NETWORK.layer_configs) if shape == "network" else BASE.pes
            try:
                r = future.result()
            except SynthError as exc:     # reported per design; the others still run
                rows.append([shape, mode, None, None, None, None, None, None, None,
                             f"failed: {exc}"])
                continue
            fmax[shape, mode] = r.fmax_mhz
            per_seed = " / ".join(f"{f:.1f}" if f else "-" for f in r.seed_fmax_mhz or [])
            rows.append([shape, mode, r.luts, round(r.luts / pes), r.ffs, r.brams, r.dsps,
                         round(r.fmax_mhz, 1) if r.fmax_mhz else None, per_seed, "ok"])
        print("\necp5-85k (yowasp Yosys + nextpnr)")
        print(format_table(["shape", "mode", "LUTs", "LUTs/PE", "FFs", "BRAMs", "DSPs",
                            "Fmax MHz", "per seed", "status"], rows))
        rows = []
        for (shape, profile), cycles in cycles_at.items():
            cpu_batch = cpu_at[shape, profile][1]
            for mode in MODES:
                mhz = fmax.get((shape, mode))
                if not mhz:
                    continue
                rate = mhz * 1e6 / cycles[mode]["pipelined"]
                rows.append([shape, profile, mode, round(rate), round(1 / cpu_batch),
                             round(rate * cpu_batch, 2)])
        if fmax.get(("network", "3 layers")):
            for profile, (c, _, batch, _) in network.items():
                rate = fmax["network", "3 layers"] * 1e6 / c["pipelined"]
                rows.append(["network", profile, "3 layers", round(rate), round(1 / batch),
                             round(rate * batch, 2)])
        print("\nsamples per second back to back at the median Fmax of each design's "
              f"synthesis, beside numpy on one core in batches of {NUMPY_BATCH}")
        print(format_table(["shape", "profile", "mode", "RTL samples/s", "numpy samples/s",
                            "RTL / numpy"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
