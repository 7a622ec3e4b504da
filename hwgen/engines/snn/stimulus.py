"""Random and edge-case layers for the snn testbench and benchmarks.

A layer stimulus is ``(a, b)``: spikes ``a`` (M, K, T) of 0/1 and weights ``b`` (K, N), with K, N
and T from the config. Everything is drawn from a ``numpy.random.Generator`` the caller seeds, so a
run is reproduced by its seed alone.
"""

from __future__ import annotations

import numpy as np

from hwgen.fixedpoint import signed_range

from . import golden
from .config import SnnConfig

__all__ = ["LOAS_PROFILES", "loas_profile", "random_layer", "random_weights", "edge_layers",
           "fiber_beats", "weight_beats", "spike_beats", "out_beats"]

#: LoAS evaluation workloads (MICRO 2024): (fraction of silent input neurons after packing,
#: weight sparsity). The names are descriptive labels of the three profiles.
LOAS_PROFILES: dict[str, tuple[float, float]] = {
    "vgg16": (0.713, 0.9826),
    "resnet19": (0.741, 0.9823),
    "alexnet": (0.596, 0.9691),
}


def loas_profile(name: str) -> tuple[float, float]:
    """(silent_fraction, weight_sparsity) of a LoAS profile; ``weight_density = 1 - sparsity``."""
    try:
        return LOAS_PROFILES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown LoAS profile {name!r}: expected one of "
                         + ", ".join(repr(k) for k in LOAS_PROFILES)) from None


def _fraction(label: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{label} must be a number from 0 to 1, got {value!r}")
    return float(value)


def _nonzero_weights(cfg: SnnConfig, rng: np.random.Generator, shape) -> np.ndarray:
    """Nonzero weights with the extremes (min, max, -1, 1) over-represented: they find overflow
    and sign bugs."""
    lo, hi = signed_range(cfg.weight_bits)
    values = rng.integers(lo, hi, size=shape, endpoint=True)
    pick = rng.random(shape)
    for (start, stop), v in (((0.0, 0.1), lo), ((0.1, 0.2), hi), ((0.2, 0.25), -1),
                             ((0.25, 0.3), 1)):
        values = np.where((pick >= start) & (pick < stop), v, values)
    return np.where(values == 0, hi, values).astype(np.int64)


def random_weights(cfg: SnnConfig, rng: np.random.Generator, density: float) -> np.ndarray:
    """(K, N) weights with exactly round(density * K * N) nonzeros at uniform positions."""
    k, n = cfg.in_neurons, cfg.out_neurons
    b = np.zeros(k * n, dtype=np.int64)
    where = rng.choice(k * n, size=int(round(density * k * n)), replace=False)
    b[where] = _nonzero_weights(cfg, rng, where.shape)
    return b.reshape(k, n)


def _active_spikes(cfg: SnnConfig, rng: np.random.Generator, shape, density: float) -> np.ndarray:
    """Spikes (..., T) at ``density`` per step, every neuron spiking at least once."""
    a = (rng.random(tuple(shape) + (cfg.timesteps,)) < density).astype(np.int64)
    empty = np.nonzero(a.sum(axis=-1) == 0)
    a[empty + (rng.integers(0, cfg.timesteps, size=empty[0].shape),)] = 1
    return a


def random_layer(cfg: SnnConfig, rng: np.random.Generator, samples: int = 4,
                 spike_density: float = 0.3, silent_fraction: float = 0.5,
                 weight_density: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Random spikes ``a`` (samples, K, T) and weights ``b`` (K, N).

    In every sample exactly ``round(silent_fraction * K)`` neurons are silent (packed word 0);
    the others spike at each step with probability ``spike_density`` and at least once. Exactly
    ``round(weight_density * K * N)`` weights are nonzero; their values over-represent the
    extremes of ``weight_bits``.
    """
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be an integer >= 1, got {samples!r}")
    spike_density = _fraction("spike_density", spike_density)
    silent_fraction = _fraction("silent_fraction", silent_fraction)
    weight_density = _fraction("weight_density", weight_density)
    k = cfg.in_neurons
    a = _active_spikes(cfg, rng, (samples, k), spike_density)
    silent = int(round(silent_fraction * k))
    for m in range(samples):
        a[m, rng.choice(k, size=silent, replace=False), :] = 0
    return a, random_weights(cfg, rng, weight_density)


def _chunk_ids(cfg: SnnConfig) -> np.ndarray:
    return np.arange(cfg.in_neurons) // cfg.chunk


def _with_popcount(cfg: SnnConfig, rng: np.random.Generator, counts: np.ndarray) -> np.ndarray:
    """Spikes (len(counts), T) where row i spikes at exactly counts[i] random timesteps."""
    keys = rng.random((len(counts), cfg.timesteps))
    order = np.argsort(keys, axis=1)
    a = np.zeros((len(counts), cfg.timesteps), dtype=np.int64)
    rows = np.arange(len(counts))
    for j in range(cfg.timesteps):
        on = counts > j
        a[rows[on], order[on, j]] = 1
    return a


def _sum_to(target: int, wmax: int) -> list[int]:
    """Positive weights of at most wmax summing to ``target``: wmax as often as it fits, then
    the rest."""
    q, r = divmod(target, wmax)
    return [wmax] * q + ([r] if r else [])


def _sum_length(target: int, wmax: int) -> int:
    """``len(_sum_to(target, wmax))``, without building the list."""
    q, r = divmod(target, wmax)
    return q + (1 if r else 0)


def edge_layers(cfg: SnnConfig, rng: np.random.Generator) -> list[tuple[str, np.ndarray,
                                                                         np.ndarray]]:
    """Named edge-case layers ``(name, a, b)``:

    ``silent_chunks``
        a fully silent sample, then samples whose even / odd chunks are silent; weight columns
        with all-zero (even) chunks.
    ``firing_chunks``
        every neuron firing at every step, then even chunks all firing and odd chunks silent;
        every weight nonzero (full masks).
    ``at_threshold``
        sample 0 drives ``O[0, n, t] = theta`` (column 0), ``theta - 1`` (column 1) and
        ``theta + 1`` (column 2) at every step, so the membrane X equals theta at t = 0 in column 0
        (fires for ``fire = "ge"``, not for ``"gt"``). Left out when theta + 1 is not a reachable
        sum of K weights or does not fit ``acc_bits``.
    ``weight_extremes``
        columns of all-minimum and all-maximum weights (and a mix of both), dense spikes.
    ``min_spikes_boundary``
        neurons alternating between exactly ``min_spikes - 1`` spikes (dropped) and exactly
        ``min_spikes`` spikes (kept), every weight nonzero.
    ``paper_overflow``
        all-minimum (even columns) and all-maximum (odd columns) weights with every neuron kept:
        sample 0 fires at steps 0 .. min_spikes-1 only, sample 1 at every step. The pseudo sums
        reach K * weight and, for t >= min_spikes, so do the correction sums, beyond LoAS's 12-bit
        pseudo and 10-bit correction accumulators once K >= 17 (8-bit weights; corrections need
        min_spikes < T).
    """
    k, n, t_steps = cfg.in_neurons, cfg.out_neurons, cfg.timesteps
    lo, hi = signed_range(cfg.weight_bits)
    chunk_id = _chunk_ids(cfg)
    even = chunk_id % 2 == 0
    cases = []

    # silent chunks
    a = _active_spikes(cfg, rng, (3, k), 0.5)
    a[0] = 0
    a[1, even] = 0
    a[2, ~even] = 0
    b = random_weights(cfg, rng, 0.5)
    b[:, 0] = 0
    if n > 1:
        b[even, 1] = 0
    cases.append(("silent_chunks", a, b))

    # all-firing chunks
    a = np.ones((2, k, t_steps), dtype=np.int64)
    a[1, ~even] = 0
    cases.append(("firing_chunks", a, _nonzero_weights(cfg, rng, (k, n))))

    # membrane exactly at threshold
    theta, acc_hi = cfg.threshold, signed_range(cfg.acc_bits)[1]
    targets = (theta, theta - 1, theta + 1)[:n]
    # Counted before any list is built: a wide membrane allows a threshold of 2**47 - 1, which
    # would take ~2**40 weights, far more than the K that fit.
    used = max(_sum_length(target, hi) for target in targets)
    if theta + 1 <= acc_hi and used <= k:
        columns = [_sum_to(target, hi) for target in targets]
        a = np.zeros((2, k, t_steps), dtype=np.int64)
        a[0, :used] = 1
        a[1] = _active_spikes(cfg, rng, (k,), 0.5)
        b = random_weights(cfg, rng, 0.5)
        for col, values in enumerate(columns):
            b[:, col] = 0
            b[:len(values), col] = values
        cases.append(("at_threshold", a, b))

    # weight extremes
    a = np.ones((2, k, t_steps), dtype=np.int64)
    a[1] = _active_spikes(cfg, rng, (k,), 0.5)
    b = np.where(rng.random((k, n)) < 0.5, lo, hi).astype(np.int64)
    b[:, 0::3] = lo
    b[:, 1::3] = hi
    cases.append(("weight_extremes", a, b))

    # exactly min_spikes - 1 and min_spikes spikes
    counts = np.where(np.arange(k) % 2 == 0, cfg.min_spikes - 1, cfg.min_spikes)
    a = np.stack([_with_popcount(cfg, rng, counts), _with_popcount(cfg, rng, counts[::-1])])
    cases.append(("min_spikes_boundary", a, _nonzero_weights(cfg, rng, (k, n))))

    # beyond the paper widths
    a = np.ones((2, k, t_steps), dtype=np.int64)
    a[0, :, cfg.min_spikes:] = 0
    b = np.empty((k, n), dtype=np.int64)
    b[:, 0::2] = lo
    b[:, 1::2] = hi
    cases.append(("paper_overflow", a, b))
    return cases


def fiber_beats(fiber: golden.Fiber, value_bits: int, last: bool = True) -> list[dict]:
    """``fiber`` in the fiber format of :mod:`hwgen.engines.snn.fiber`: per chunk its mask beat,
    then its kept values (two's complement in ``value_bits``); ``last`` on the final beat unless
    ``last`` is false."""
    beats = []
    for mask, values in zip(fiber.masks, fiber.values):
        beats.append({"data": int(mask), "mask": 1, "last": 0})
        beats += [{"data": int(v) & ((1 << value_bits) - 1), "mask": 0, "last": 0}
                  for v in values]
    beats[-1]["last"] = int(last)
    return beats


def weight_beats(cfg: SnnConfig, trace: golden.LayerTrace) -> list[dict]:
    """The layer's weight set on the ``weights`` port: the weight fibers of n = 0..N-1 in order,
    ``last`` on the set's final beat."""
    fibers = trace.weight_fibers
    return [beat for n, fiber in enumerate(fibers)
            for beat in fiber_beats(fiber, cfg.weight_bits, last=n == len(fibers) - 1)]


def spike_beats(cfg: SnnConfig, trace: golden.LayerTrace, m: int) -> list[dict]:
    """Sample m on the ``spikes`` port (``in_format``): K dense words, or its spike fiber."""
    if cfg.in_format == "fiber":
        return fiber_beats(trace.spike_fibers[m], cfg.timesteps)
    k = cfg.in_neurons
    return [{"word": int(w), "last": int(i == k - 1)} for i, w in enumerate(trace.words[m])]


def out_beats(cfg: SnnConfig, trace: golden.LayerTrace, m: int) -> list[dict]:
    """What the ``out`` port carries for sample m (``out_format``): the output spike words
    after the compressor of golden rule 5, dense (dropped words as 0) or as its fiber."""
    if cfg.out_format == "fiber":
        return fiber_beats(trace.out_fibers[m], cfg.timesteps)
    n = cfg.out_neurons
    return [{"word": int(w), "last": int(i == n - 1)}
            for i, w in enumerate(golden.decompress(trace.out_fibers[m]))]
