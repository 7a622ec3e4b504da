"""Power-aware weight sets on a small real network: energy proxy against accuracy.

A 64 -> H -> 10 ReLU MLP is trained here, in plain numpy, on scikit-learn's bundled 8x8 digits
(1797 images, shipped inside the scikit-learn wheel: nothing is downloaded), quantized to int8 and
run with integer-only inference whose two matrix products are computed by the MAC array
(``layer_outputs``: the sums exactly as the generated array computes them). For each weight-set
size (all, then ``--sizes``) :func:`select_weight_sets` picks one set per layer from the layers'
*training-set* activations; the *test set* then gives the accuracy with the projected weights and
the energy proxy of both layers (``layer_energy``: register toggles of the full cycle trace plus
calibrated multiplier toggles). Two rows are budget-driven (output-error budget 0.02 and 0.05, no
size cap). Both layers' int8 weights projected onto the ``pow2`` set (nearest value, ties toward
0) then run on the same array with multiplier PEs (``pe = "multiply"``) and with shift PEs
(``pe = "shift"``, hwgen/hdl/shift.py), each with its own calibrated product: same outputs and
accuracy, the energy proxy of each. Unless ``--no-sim``, the unconstrained network and the 16-value sets also run on the
first ``--sim-samples`` test images through the Verilator model of the generated array; the
outputs read back from the RTL must equal the golden model exactly, and the register toggles
counted from the waveform must equal the golden trace's.

Network and integer recipe (all rules explicit, no numpy round-half-even anywhere):

* data: pixels x in 0..16; fixed-seed split of 1297 training / 500 test images.
* float model: input x / 16, h = relu(x/16 @ W1 + b1), logits = h @ W2 + b2; Adam, minibatch 32,
  softmax cross-entropy, 60 epochs, weight decay 1e-4, He initialization, all from ``--seed``.
* input activations: a0 = 15 * x, unsigned 8-bit (0..240, exact; real value a0 / 240).
* weights: per-layer symmetric int8, s_w = max|W| / 127, q = clamp(floor(W / s_w + 1/2), -127,
  127) (half_up; -128 is never used, so the range is symmetric).
* biases: b_q = floor(b / (s_in * s_w) + 1/2) as int64 (they fit int32), added to the array's
  int64 sums *outside* the array (a 32-bit add after the last partial sum).
* hidden requantization to unsigned 8-bit: with z = array sum + b_q and S = 16,
  h_q = min(255, (max(z, 0) * M + 2**(S-1)) >> S)   (half_up; z >= 0 after the ReLU),
  M = (255 * 2**S + zmax // 2) // zmax, zmax = the largest training-set hidden pre-activation,
  so the largest training activation maps to 255. M, S and b_q are fixed by the unconstrained
  int8 network and kept for every weight set (a set only changes the weight values).
* prediction: argmax of the int64 logits (first index on ties).

Accuracy changes are in percentage points against the unconstrained int8 network ("all"). The
energy proxy is a switching-activity proxy in toggles (register bit toggles plus calibrated
gate-output toggles of the multipliers, see :mod:`hwgen.power.energy`), not joules.

Usage::

    pip install -e ".[bench]"
    python benchmarks/weight_selection.py [--seed 1] [--hidden 32] [--sizes 64,32,16,8]
                                          [--sim-samples 64] [--no-sim]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from dataclasses import dataclass

import numpy as np

from hwgen.engines.mac_array import MacArrayConfig
from hwgen.engines.mac_array.weight_set import project
from hwgen.fixedpoint import signed_range
from hwgen.power.layer import layer_energy, layer_outputs, simulate_layer
from hwgen.power.select import (
    Layer,
    SelectionError,
    layer_config,
    select_weight_sets,
)
from hwgen.report.table import format_table

try:
    from sklearn.datasets import load_digits
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit('benchmarks/weight_selection.py needs scikit-learn: pip install -e ".[bench]"')

#: The array every layer runs on. acc_bits = 22 holds every sum without wrapping: see
#: :func:`check_accumulator` (|sum| <= K * 127 * 255 = 2,072,640 < 2**21 for K = 64).
CFG = MacArrayConfig(name="bench_ws", rows=16, cols=16, act_bits=8, act_signed=False,
                     weight_bits=8, acc_bits=22)

TRAIN, TEST = 1297, 500
INPUT_GAIN = 15          # a0 = 15 * x: pixels 0..16 -> 0..240
W_MAX = 127              # symmetric int8 weights: -127..127
REQUANT_SHIFT = 16       # S of the hidden requantization
ACT_MAX = (1 << CFG.act_bits) - 1
PAPER = "paper: up to 58.6% energy reduction at 2-3% accuracy drop"


def log(t0: float, message: str) -> None:
    print(f"[{time.perf_counter() - t0:6.1f} s] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Data and float training


def load_data(seed: int) -> dict[str, np.ndarray]:
    digits = load_digits()
    x = np.asarray(digits.data, dtype=np.int64)         # pixels 0..16
    y = np.asarray(digits.target, dtype=np.int64)
    assert x.shape == (TRAIN + TEST, 64) and 0 <= x.min() and x.max() <= 16
    perm = np.random.default_rng(seed).permutation(len(y))
    train, test = perm[:TRAIN], perm[TRAIN:]
    return {"x_train": x[train], "y_train": y[train], "x_test": x[test], "y_test": y[test]}


def train_float(x: np.ndarray, y: np.ndarray, hidden: int, seed: int, epochs: int = 60,
                batch: int = 32, lr: float = 3e-3, weight_decay: float = 1e-4) -> list:
    """Adam on softmax cross-entropy; returns [W1 (64, H), b1, W2 (H, 10), b2] (float64)."""
    rng = np.random.default_rng(seed + 1)
    xf = x / 16.0
    params = [rng.normal(0.0, np.sqrt(2 / 64), (64, hidden)), np.zeros(hidden),
              rng.normal(0.0, np.sqrt(2 / hidden), (hidden, 10)), np.zeros(10)]
    m1 = [np.zeros_like(p) for p in params]
    m2 = [np.zeros_like(p) for p in params]
    beta1, beta2, step = 0.9, 0.999, 0
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            xb, yb = xf[idx], y[idx]
            w1, b1, w2, b2 = params
            z1 = xb @ w1 + b1
            h = np.maximum(z1, 0.0)
            z2 = h @ w2 + b2
            p = np.exp(z2 - z2.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(len(yb)), yb] -= 1.0
            g2 = p / len(yb)
            gh = (g2 @ w2.T) * (z1 > 0)
            grads = [xb.T @ gh + weight_decay * w1, gh.sum(axis=0),
                     h.T @ g2 + weight_decay * w2, g2.sum(axis=0)]
            step += 1
            for i, g in enumerate(grads):
                m1[i] = beta1 * m1[i] + (1 - beta1) * g
                m2[i] = beta2 * m2[i] + (1 - beta2) * g * g
                params[i] -= lr * (m1[i] / (1 - beta1 ** step)) / (
                    np.sqrt(m2[i] / (1 - beta2 ** step)) + 1e-8)
    return params


def float_accuracy(params: list, x: np.ndarray, y: np.ndarray) -> float:
    w1, b1, w2, b2 = params
    h = np.maximum(x / 16.0 @ w1 + b1, 0.0)
    return float(np.mean(np.argmax(h @ w2 + b2, axis=1) == y))


# --------------------------------------------------------------------------------------------
# Integer network


def half_up(x: np.ndarray) -> np.ndarray:
    """Round to nearest, ties up (floor(x + 1/2)), as int64."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.int64)


@dataclass(frozen=True)
class IntNet:
    """The int8 network: weights (K, C) int64, biases int64 (in the sum's scale), requant M."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    m: int


def quantize(params: list, x_train: np.ndarray) -> IntNet:
    w1f, b1f, w2f, b2f = params
    s_in = 1.0 / (16 * INPUT_GAIN)                        # real input = a0 * s_in
    s_w1 = float(np.abs(w1f).max()) / W_MAX
    s_w2 = float(np.abs(w2f).max()) / W_MAX
    w1 = np.clip(half_up(w1f / s_w1), -W_MAX, W_MAX)
    w2 = np.clip(half_up(w2f / s_w2), -W_MAX, W_MAX)
    b1 = half_up(b1f / (s_in * s_w1))
    # The hidden scale comes from the integer sums of the training set (largest -> 255).
    z1 = layer_outputs(CFG, w1, input_acts(x_train)) + b1
    zmax = int(z1.max())
    m = (ACT_MAX * (1 << REQUANT_SHIFT) + zmax // 2) // zmax
    s_h = s_in * s_w1 * (1 << REQUANT_SHIFT) / m          # real hidden value = h_q * s_h
    b2 = half_up(b2f / (s_h * s_w2))
    lo, hi = signed_range(32)
    for b in (b1, b2):
        assert lo <= b.min() and b.max() <= hi, "bias does not fit int32"
    return IntNet(w1=w1, b1=b1, w2=w2, b2=b2, m=m)


def input_acts(x: np.ndarray) -> np.ndarray:
    """Pixels 0..16 -> unsigned 8-bit activations 0..240 (exact)."""
    return INPUT_GAIN * np.asarray(x, dtype=np.int64)


def requantize(sums: np.ndarray, bias: np.ndarray, m: int) -> np.ndarray:
    """Hidden layer: ReLU, fixed-point scale M / 2**S with half_up rounding, clamp to 0..255."""
    z = np.maximum(sums + bias, 0)
    return np.minimum((z * m + (1 << (REQUANT_SHIFT - 1))) >> REQUANT_SHIFT, ACT_MAX)


def predict(logit_sums: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return np.argmax(logit_sums + bias, axis=1)


def check_accumulator(k: int) -> int:
    """Largest |partial sum| a K-input layer can reach; fail unless acc_bits holds it."""
    bound = k * W_MAX * ACT_MAX
    assert bound <= signed_range(CFG.acc_bits)[1], f"acc_bits = {CFG.acc_bits} can wrap"
    return bound


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    hidden: np.ndarray           # requantized hidden activations (input of layer 2)
    energy: list                 # EnergyProxy of layer 1 and layer 2


def evaluate(net: IntNet, w1: np.ndarray, w2: np.ndarray, cfgs: tuple, x: np.ndarray,
             y: np.ndarray) -> Evaluation:
    """Integer inference with weights w1, w2 on arrays cfgs; accuracy and energy proxy."""
    a0 = input_acts(x)
    hidden = requantize(layer_outputs(cfgs[0], w1, a0), net.b1, net.m)
    pred = predict(layer_outputs(cfgs[1], w2, hidden), net.b2)
    energy = [layer_energy(cfgs[0], w1, a0), layer_energy(cfgs[1], w2, hidden)]
    return Evaluation(accuracy=float(np.mean(pred == y)), hidden=hidden, energy=energy)


# --------------------------------------------------------------------------------------------
# Simulation of one point through the generated array


def simulate_point(label: str, net: IntNet, weights: tuple, cfgs: tuple, x: np.ndarray,
                   y: np.ndarray) -> tuple[list[str], bool, float]:
    """Both layers through Verilator on samples x.

    Returns the report lines, whether every check passed and the energy proxy of the two runs.
    """
    lines, ok = [], True
    acts = input_acts(x)
    golden_hidden = requantize(layer_outputs(cfgs[0], weights[0], acts), net.b1, net.m)
    golden_pred = predict(layer_outputs(cfgs[1], weights[1], golden_hidden), net.b2)
    sims = []
    for i, (cfg, w) in enumerate(zip(cfgs, weights)):
        sim = simulate_layer(cfg, w, acts, waves=True)
        sims.append(sim)
        same_out = np.array_equal(sim.outputs, layer_outputs(cfg, w, acts))
        golden_regs = dict(sim.energy_golden.register_toggles)
        vcd_regs = dict(sim.register_toggles_vcd)
        same_regs = vcd_regs == golden_regs
        # The run streams without gaps or backpressure: its toggles are the table's layer_energy
        # (the multiplier part is a float sum, added up in a different order there).
        table = layer_energy(cfg, w, acts)
        same_energy = (sim.energy_golden.register_toggles == table.register_toggles
                       and math.isclose(sim.energy_golden.multiplier_toggles,
                                        table.multiplier_toggles, rel_tol=1e-12))
        ok &= same_out and same_regs and same_energy
        lines.append(
            f"  {label} fc{i + 1}: set {describe_size(cfg)}, {len(acts)} samples, "
            f"outputs == golden: {'yes' if same_out else 'NO'}; register toggles VCD "
            f"{sum(vcd_regs.values())} vs golden {sum(golden_regs.values())}: "
            f"{'equal per category' if same_regs else 'DIFFERENT'}; cycles "
            f"{sim.energy_golden.cycles}, energy proxy {sim.energy_golden.total:.0f} "
            f"(toggles == layer_energy: {'yes' if same_energy else 'NO'})")
        if not same_regs:
            lines.append(f"    VCD {vcd_regs}\n    golden {golden_regs}")
        if i == 0:
            # Layer 2 is fed with the requantized outputs the RTL produced.
            acts = requantize(sim.outputs, net.b1, net.m)
    sim_pred = predict(sims[1].outputs, net.b2)
    lines.append(f"  {label}: accuracy on these {len(y)} samples: simulated "
                 f"{100 * np.mean(sim_pred == y):.2f}%, golden model "
                 f"{100 * np.mean(golden_pred == y):.2f}%; predictions identical: "
                 f"{'yes' if np.array_equal(sim_pred, golden_pred) else 'NO'}")
    ok &= bool(np.array_equal(sim_pred, golden_pred))
    return lines, ok, sum(sim.energy_golden.total for sim in sims)


def print_pe_kinds(net: IntNet, base: Evaluation, x: np.ndarray, y: np.ndarray,
                   e_base: float) -> None:
    """pow2-projected weights on multiplier PEs and on shift PEs: energy proxy of each."""
    book = dataclasses.replace(CFG, weight_set="pow2").codebook
    weights = (project(net.w1, book), project(net.w2, book))
    table = []
    for pe in ("multiply", "shift"):
        cfg = dataclasses.replace(CFG, weight_set="pow2", pe=pe)
        ev = evaluate(net, *weights, (cfg, cfg), x, y)
        total = sum(e.total for e in ev.energy)
        table.append([pe, round(total), round(100 * (1 - total / e_base), 1),
                      sum(e.registers for e in ev.energy),
                      sum(e.register_toggles["weight"] for e in ev.energy),
                      round(sum(e.multiplier_toggles for e in ev.energy)),
                      round(100 * ev.accuracy, 2),
                      round(100 * (ev.accuracy - base.accuracy), 2)])
    print("\npow2 weights (both layers projected onto the 16 values), multiplier PEs against "
          "shift PEs, each product with its own calibration")
    print(format_table(["PE", "energy", "reduction % vs all", "registers", "of which weight",
                        "products", "test acc %", "acc change pts"], table))


def describe_size(cfg: MacArrayConfig) -> str:
    return "all" if cfg.codebook is None else f"{len(cfg.codebook)} values"


# --------------------------------------------------------------------------------------------


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers") from None
    if not sizes or any(not 2 <= v <= 256 for v in sizes):
        raise argparse.ArgumentTypeError(f"{text!r}: expected sizes from 2 to 256")
    return sizes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hidden", type=int, default=32, help="hidden units H (default 32)")
    parser.add_argument("--sizes", type=parse_sizes, default=[64, 32, 16, 8],
                        help="weight-set sizes after 'all' (default 64,32,16,8)")
    parser.add_argument("--sim-samples", type=int, default=64,
                        help="test images run through Verilator (default 64)")
    parser.add_argument("--no-sim", action="store_true", help="skip the Verilator runs")
    args = parser.parse_args(argv)
    if not 1 <= args.hidden <= 256:
        parser.error("--hidden must be from 1 to 256")
    if not 1 <= args.sim_samples <= TEST:
        parser.error(f"--sim-samples must be from 1 to {TEST}")

    t0 = time.perf_counter()
    data = load_data(args.seed)
    params = train_float(data["x_train"], data["y_train"], args.hidden, args.seed)
    log(t0, "trained the float network")
    net = quantize(params, data["x_train"])
    bounds = [check_accumulator(64), check_accumulator(args.hidden)]
    x_tr, y_tr, x_te, y_te = data["x_train"], data["y_train"], data["x_test"], data["y_test"]

    base = evaluate(net, net.w1, net.w2, (CFG, CFG), x_te, y_te)
    base_train_hidden = requantize(layer_outputs(CFG, net.w1, input_acts(x_tr)), net.b1, net.m)
    observed = max(int(np.abs(layer_outputs(CFG, net.w1, input_acts(x_te))).max()),
                   int(np.abs(layer_outputs(CFG, net.w2, base.hidden)).max()))
    log(t0, "evaluated the int8 network")

    print(f"Power-aware weight sets on a 64-{args.hidden}-10 MLP, sklearn digits "
          f"({TRAIN} train / {TEST} test images), seed {args.seed}")
    print(f"array: {CFG.rows}x{CFG.cols}, int8 weights x uint8 activations, acc_bits "
          f"{CFG.acc_bits} (bound |sum| <= {max(bounds)} < 2**{CFG.acc_bits - 1}; largest seen "
          f"{observed}), hidden requant M = {net.m} / 2**{REQUANT_SHIFT}")
    print(f"float accuracy: test {100 * float_accuracy(params, x_te, y_te):.2f}%, "
          f"train {100 * float_accuracy(params, x_tr, y_tr):.2f}%")
    print(f"int8 accuracy (array sums): test {100 * base.accuracy:.2f}%")

    layers = [Layer("fc1", net.w1, input_acts(x_tr)), Layer("fc2", net.w2, base_train_hidden)]
    distinct = [len(np.unique(net.w1)), len(np.unique(net.w2))]
    rows = [{"label": "all", "sizes": f"{distinct[0]}/{distinct[1]} used", "error": 0.0,
             "eval": base}]
    selections = {}
    budgets = [(f"{v}", None, v) for v in args.sizes] + \
        [(f"err<={e}", e, None) for e in (0.02, 0.05)]
    for label, max_error, max_values in budgets:
        try:
            sel = select_weight_sets(CFG, layers, max_error=max_error, max_values=max_values)
        except SelectionError as exc:
            rows.append({"label": label, "failed": str(exc)})
            continue
        selections[label] = sel
        cfgs = tuple(layer_config(CFG, ls) for ls in sel.layers)
        projected = [ls.projected for ls in sel.layers]
        rows.append({"label": label,
                     "sizes": "/".join(str(len(ls.values)) for ls in sel.layers),
                     "error": sel.error,
                     "eval": evaluate(net, projected[0], projected[1], cfgs, x_te, y_te)})
        log(t0, f"weight sets {label}: selected and evaluated")

    e_base = sum(e.total for e in base.energy)
    table = []
    for row in rows:
        if "failed" in row:
            table.append([row["label"], "-", None, None, None, None, None, None, None])
            continue
        ev = row["eval"]
        total = sum(e.total for e in ev.energy)
        row["reduction"] = 100 * (1 - total / e_base)
        row["drop"] = 100 * (base.accuracy - ev.accuracy)
        table.append([row["label"], row["sizes"], round(total),
                      round(row["reduction"], 1),
                      sum(e.registers for e in ev.energy),
                      round(sum(e.multiplier_toggles for e in ev.energy)),
                      round(row["error"], 4), round(100 * ev.accuracy, 2),
                      round(100 * (ev.accuracy - base.accuracy), 2)])
    print(f"\nweight sets chosen on the training activations; accuracy and energy proxy on the "
          f"{TEST} test images (both layers, toggles)")
    print(format_table(["set", "sizes fc1/fc2", "energy", "reduction %", "registers",
                        "multipliers", "sel. error", "test acc %", "acc change pts"], table))
    for row in rows:
        if "failed" in row:
            print(f"  {row['label']}: selection failed: {row['failed']}")
    print_pe_kinds(net, base, x_te, y_te, e_base)

    ok = True
    if not args.no_sim:
        n = args.sim_samples
        x_s, y_s = x_te[:n], y_te[:n]
        point = "16" if "16" in selections else next(
            (label for label in reversed(list(selections)) if not label.startswith("err")), None)
        points = [("all", (net.w1, net.w2), (CFG, CFG))]
        if point is not None:
            sel = selections[point]
            points.append((f"set {point}", tuple(ls.projected for ls in sel.layers),
                           tuple(layer_config(CFG, ls) for ls in sel.layers)))
        print(f"\nVerilator, first {n} test images, both layers through the generated array:")
        energies = []
        for label, weights, cfgs in points:
            lines, passed, energy = simulate_point(label, net, weights, cfgs, x_s, y_s)
            ok &= passed
            energies.append(energy)
            print("\n".join(lines), flush=True)
            log(t0, f"simulated {label}")
        if len(points) == 2:
            print(f"  simulated runs: energy proxy {points[1][0]} / all = "
                  f"{energies[1]:.0f} / {energies[0]:.0f}, a "
                  f"{100 * (1 - energies[1] / energies[0]):.1f}% reduction on these {n} images")

    done = [r for r in rows if "failed" not in r and r["label"] != "all"]
    within = [r for r in done if r["drop"] <= 3.0]
    if within:
        best = max(within, key=lambda r: r["reduction"])
        why = "the largest reduction with an accuracy drop of at most 3 points"
    elif done:
        best = min(done, key=lambda r: r["drop"])
        why = "no row within 3 points; the smallest accuracy drop"
    if done:
        print(f"\n{PAPER}; here: {best['reduction']:.1f}% at {best['drop']:.1f} points drop "
              f"(set {best['label']}, sizes {best['sizes']}: {why}, against int8 "
              f"{100 * base.accuracy:.2f}%; a negative drop is a gain)")
    log(t0, "done")
    if not ok:
        print("simulation check FAILED", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
