"""HLS C++ of the snn_network engine: every layer's snn kernel, chained.

:mod:`hwgen.emit.hls` renders ``templates/hls/snn_network/*.j2`` with :func:`hls_context`. Each
layer is the snn engine's kernel (:mod:`hwgen.engines.snn.hls`, its templates rendered here for
the layer's config, named ``<name>_l<i>`` in namespace ``<name>_l<i>_hls``); the network's top
function calls them in order, each on the previous one's ``out`` stream.

The kernel
----------
``void <name>(hls::stream<int64_t> &weights, hls::stream<word_t> &spikes, hls::stream<word_t>
&out, int samples)`` with ``word_t`` the first layer's: one call is a weight load, then
``samples`` samples. ``weights`` is every layer's snn ``weights`` stream, layer 0 first (the
RTL's weight load, each set in the snn kernel's format); ``spikes`` is the first layer's input
and ``out`` the last layer's output, in the snn kernel's formats (``in_format``,
``out_format``). Between layers the spikes are fibers, as in the RTL.

Stimulus and expected files: those of the snn kernel (:mod:`hwgen.engines.snn.hls`), per segment
with the concatenated weight streams, and the segments of ``sim/test_snn_network.py``.
"""

from __future__ import annotations

import numpy as np

from hwgen.emit.templates import render_file
from hwgen.engines.base import HlsVectors, default_hls_templates
from hwgen.engines.snn import golden as layer_golden
from hwgen.engines.snn import hls as layer_hls

from . import golden
from .config import SnnNetworkConfig
from .stimulus import edge_networks, random_network

__all__ = ["hls_context", "hls_vectors", "segments"]


def _layer_context(cfg: SnnNetworkConfig, i: int) -> dict:
    lc = cfg.layer_configs[i]
    return {"name": lc.name, "top": lc.name, "header": f"{cfg.name}.h", "engine": "snn",
            **layer_hls.hls_context(lc)}


def hls_context(cfg: SnnNetworkConfig) -> dict:
    """The rendered snn kernel (header and source) of every layer, and the network's names."""
    if not isinstance(cfg, SnnNetworkConfig):
        raise TypeError(f"hls_context takes an SnnNetworkConfig, got {type(cfg).__name__}")
    snn = default_hls_templates("snn")
    headers, kernels, body = [], [], []
    for i in range(len(cfg.layers)):
        ctx = _layer_context(cfg, i)
        headers.append((i, ctx["top"], render_file(snn / "kernel.h.j2", **ctx)))
        kernels.append((i, ctx["top"], render_file(snn / "kernel.cpp.j2", **ctx)))
        # Layer i reads the previous layer's output, copied into its own stream type.
        source = "spikes" if i == 0 else f"in{i}"
        if i:
            body += [f"hls::stream<{ctx['ns']}::word_t> in{i};", f"pass_on(out{i - 1}, in{i});"]
        body += [f"hls::stream<{ctx['ns']}::word_t> out{i};",
                 f"::{ctx['top']}(weights, {source}, out{i}, samples);"]
    body.append(f"pass_on(out{len(cfg.layers) - 1}, out);")
    # The testbench is the snn kernel's, for a layer with the network's two outer ports.
    first, last = cfg.layer_configs[0], cfg.layer_configs[-1]
    outer = dict(_layer_context(cfg, 0), name=cfg.name, top=cfg.name, engine=cfg.kind,
                 out_format=last.out_format)
    return {
        "guard": f"HWGEN_{cfg.name.upper()}_HLS_H",
        "layer_count": len(cfg.layers),
        "layer_headers": headers,
        "layer_kernels": kernels,
        "top_body": body,
        "first_ns": outer["ns"],
        "in_format": first.in_format,
        "out_format": last.out_format,
        "testbench_text": render_file(snn / "testbench.cpp.j2", **outer),
    }


def segments(cfg: SnnNetworkConfig, seed: int, vectors: int) -> list[tuple[str, object, list]]:
    """``(name, a, weights)`` of every segment, drawn as ``sim/test_snn_network.py`` draws
    them."""
    rng = np.random.default_rng(seed)
    out = [("random", *random_network(cfg, rng, samples=vectors))]
    out += edge_networks(cfg, rng)
    out.append(("random_stress", *random_network(cfg, rng, samples=vectors, spike_density=0.5,
                                                 silent_fraction=0.3, weight_density=0.5)))
    return out


def hls_vectors(cfg: SnnNetworkConfig, seed: int, vectors: int) -> HlsVectors:
    """Stimulus and golden-model outputs of every segment, in the testbench's order."""
    if not isinstance(cfg, SnnNetworkConfig):
        raise TypeError(f"hls_vectors takes an SnnNetworkConfig, got {type(cfg).__name__}")
    first, last = cfg.layer_configs[0], cfg.layer_configs[-1]
    parts = segments(cfg, seed, vectors)
    stimulus: list[int] = [len(parts)]
    expected: list[int] = []
    for _, a, weights in parts:
        trace = golden.network(a, weights, cfg)
        stream = [v for lc, lt in zip(cfg.layer_configs, trace.layers)
                  for v in layer_hls.weight_stream(lc, lt)]
        stimulus += [a.shape[0], len(stream), *stream]
        head, tail = trace.layers[0], trace.layers[-1]
        for m in range(a.shape[0]):
            if first.in_format == "fiber":
                beats = layer_hls.fiber_stream(first, head.spike_fibers[m])
                stimulus += [len(beats), *beats]
            else:
                stimulus += [int(w) for w in head.words[m]]
            if last.out_format == "fiber":
                beats = layer_hls.fiber_stream(last, tail.out_fibers[m])
            else:
                beats = [int(w) for w in layer_golden.decompress(tail.out_fibers[m])]
            for i, beat in enumerate(beats):
                expected += [beat, int(i == len(beats) - 1)]
    return HlsVectors(stimulus=stimulus, expected=expected)
