"""Random and edge-case networks for the snn_network testbench and benchmarks.

A network stimulus is ``(a, weights)``: spikes ``a`` (M, K, T) of 0/1 for the first layer and one
weight matrix (K_i, N_i) per layer, drawn from a ``numpy.random.Generator`` the caller seeds.
"""

from __future__ import annotations

import numpy as np

from hwgen.engines.snn import stimulus as layer_stimulus
from hwgen.engines.snn.stimulus import fiber_beats, random_layer, random_weights, weight_beats
from hwgen.fixedpoint import signed_range

from .config import SnnNetworkConfig
from .golden import NetworkTrace

__all__ = ["random_network", "edge_networks", "network_weight_beats", "network_spike_beats",
           "network_out_beats", "link_beats"]


def random_network(cfg: SnnNetworkConfig, rng: np.random.Generator, samples: int = 4,
                   spike_density: float = 0.3, silent_fraction: float = 0.5,
                   weight_density: float = 0.3) -> tuple[np.ndarray, list[np.ndarray]]:
    """Random spikes for the first layer and random weights for every layer (the first layer's
    as :func:`hwgen.engines.snn.stimulus.random_layer` draws them, then each later layer's with
    the same density)."""
    cfgs = cfg.layer_configs
    a, b0 = random_layer(cfgs[0], rng, samples=samples, spike_density=spike_density,
                         silent_fraction=silent_fraction, weight_density=weight_density)
    return a, [b0] + [random_weights(lc, rng, weight_density) for lc in cfgs[1:]]


def edge_networks(cfg: SnnNetworkConfig, rng: np.random.Generator) -> list[tuple[str, np.ndarray,
                                                                                   list]]:
    """Named edge-case networks ``(name, a, weights)``:

    ``silent_then_saturated``
        a silent sample (every layer's input and output fiber is empty chunks only), a sample
        with every neuron firing at every step, then a random one; every weight of every layer
        is the maximum, so the firing sample makes every layer fire at every step.
    ``weight_extremes``
        random samples; each layer's columns alternate all-minimum and all-maximum weights.
    """
    cfgs = cfg.layer_configs
    k, t = cfg.in_neurons, cfg.timesteps
    a = np.zeros((3, k, t), dtype=np.int64)
    a[1] = 1
    a[2] = layer_stimulus.random_layer(cfgs[0], rng, samples=1, silent_fraction=0.3)[0][0]
    cases = [("silent_then_saturated", a,
              [np.full((lc.in_neurons, lc.out_neurons), signed_range(lc.weight_bits)[1],
                       dtype=np.int64) for lc in cfgs])]
    a = layer_stimulus.random_layer(cfgs[0], rng, samples=2, spike_density=0.5,
                                    silent_fraction=0.2)[0]
    weights = []
    for lc in cfgs:
        lo, hi = signed_range(lc.weight_bits)
        b = np.empty((lc.in_neurons, lc.out_neurons), dtype=np.int64)
        b[:, 0::2], b[:, 1::2] = hi, lo
        weights.append(b)
    cases.append(("weight_extremes", a, weights))
    return cases


def network_weight_beats(cfg: SnnNetworkConfig, trace: NetworkTrace) -> list[dict]:
    """A weight load on the ``weights`` port: every layer's weight set in order."""
    return [beat for lc, lt in zip(cfg.layer_configs, trace.layers)
            for beat in weight_beats(lc, lt)]


def network_spike_beats(cfg: SnnNetworkConfig, trace: NetworkTrace, m: int) -> list[dict]:
    """Sample m on the ``spikes`` port (the first layer's ``in_format``)."""
    return layer_stimulus.spike_beats(cfg.layer_configs[0], trace.layers[0], m)


def network_out_beats(cfg: SnnNetworkConfig, trace: NetworkTrace, m: int) -> list[dict]:
    """What ``out`` carries for sample m (the last layer's ``out_format``)."""
    return layer_stimulus.out_beats(cfg.layer_configs[-1], trace.layers[-1], m)


def link_beats(cfg: SnnNetworkConfig, trace: NetworkTrace, i: int, m: int) -> list[dict]:
    """What link i (layer i's output fiber) carries for sample m."""
    return fiber_beats(trace.layers[i].out_fibers[m], cfg.timesteps)
