"""Golden model of an SNN network: the snn layer's golden model (:mod:`hwgen.engines.snn.golden`,
rules 1-5) applied layer after layer (docs/architecture.md §4.2.1).

Rule 6 (a network): layer i's input spikes are layer i-1's output spikes *after its output
compressor* — a word with fewer than ``min_spikes`` spikes is dropped, i.e. 0 — which is exactly
what its output fiber carries. Every layer compresses its input with the same ``chunk`` and
``min_spikes``, so the fiber layer i+1 builds from those words is layer i's output fiber, beat
for beat, and a network needs no decompression between layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwgen.engines.snn import golden

from .config import SnnNetworkConfig

__all__ = ["NetworkTrace", "network", "layer_inputs"]


@dataclass(frozen=True, eq=False)
class NetworkTrace:
    """Every layer of one network run (M samples): ``layers[i]`` is layer i's
    :class:`~hwgen.engines.snn.golden.LayerTrace`."""

    layers: tuple[golden.LayerTrace, ...]

    @property
    def out_fibers(self) -> tuple[golden.Fiber, ...]:
        """The network's output fibers, per sample (the last layer's)."""
        return self.layers[-1].out_fibers

    @property
    def samples(self) -> int:
        return self.layers[0].words.shape[0]


def layer_inputs(trace: golden.LayerTrace, timesteps: int) -> np.ndarray:
    """The next layer's input spikes (M, N, T) 0/1: ``trace``'s output after its compressor."""
    words = np.array([golden.decompress(f) for f in trace.out_fibers], dtype=np.int64)
    return golden.unpack_spikes(words, timesteps)


def network(a, weights, cfg: SnnNetworkConfig) -> NetworkTrace:
    """Run the network: spikes ``a`` (M, K, T) 0/1 and one weight matrix (K_i, N_i) per layer.

    Raises
    ------
    ValueError
        One line naming the layer and what is wrong (a shape, a value out of range).
    """
    layer_cfgs = cfg.layer_configs
    if not isinstance(weights, (list, tuple)) or len(weights) != len(layer_cfgs):
        raise ValueError(f"weights: expected a list of {len(layer_cfgs)} matrices, one per layer")
    traces, x = [], a
    for i, (lc, b) in enumerate(zip(layer_cfgs, weights)):
        try:
            trace = golden.layer(x, b, lc)
        except ValueError as exc:
            raise ValueError(f"layer {i}: {exc}") from None
        traces.append(trace)
        x = layer_inputs(trace, cfg.timesteps)
    return NetworkTrace(tuple(traces))
