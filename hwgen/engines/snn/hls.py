"""HLS C++ of the snn engine: the template context and the C-simulation vectors.

:mod:`hwgen.emit.hls` renders ``templates/hls/snn/{kernel.h,kernel.cpp,testbench.cpp}.j2`` with
:func:`hls_context` and checks the compiled testbench against :func:`hls_vectors`.

The kernel
----------
``void <name>(hls::stream<int64_t> &weights, hls::stream<word_t> &spikes,
hls::stream<word_t> &out, int samples)`` — one call is one *segment* of the RTL testbench: the
layer's weights, then ``samples`` samples. ``word_t`` is ``{uint64_t word; bool last;}`` (T spike
bits, bit t = spike at step t, and the RTL's ``last`` payload bit).

``weights``
    The compressed weights, neuron-major as the RTL's ``weights`` stream (n = 0..N-1, chunk
    c = 0..chunks-1 inside), one 64-bit value per beat: for each (n, c) the ``mask_words`` words
    of the chunk's bitmask (bit b of word j = neuron ``c*chunk + 64*j + b`` has a nonzero weight;
    the 64 bits as a two's-complement int64), then ``popcount(mask)`` nonzero weights in
    increasing neuron order (``weight_bits`` wide: the kernel keeps their low ``weight_bits`` bits
    as a signed number). This is the RTL's weight set (``hwgen/engines/snn/weights.py``) with
    each mask beat split into 64-bit words and without the ``mask`` flag (the kernel counts).
    The kernel keeps the weights in static per-PE memories, reloaded by every call (the RTL
    takes a new weight set between samples too).
``spikes``
    ``in_format = "dense"``: K words per sample, neuron k = 0..K-1. ``in_format = "fiber"``: per
    sample the spike fiber of the K input neurons, chunk c = 0..chunks-1: the ``mask_words`` words
    of the chunk's bitmask (bit b of beat j = neuron ``c*chunk + 64*j + b`` is kept; bits beyond
    the chunk's neurons are ignored and no word follows for them), then ``popcount(mask)`` beats
    each carrying one kept neuron's word, in increasing neuron order: the weights stream's
    serialization, one sample at a time (the RTL's fiber beats with each mask split into
    64-bit words). The kernel decompresses the fiber (dropped neurons are
    0) and then drops a word with fewer than ``min_spikes`` spikes as it does for dense input, so
    a fiber and the dense words it came from give the same result. ``last`` (on neuron K-1 when
    dense, on the sample's final beat when a fiber) is carried for AXI-Stream users and ignored:
    the kernel counts.
``out``
    The LIF output spikes after the output compressor, ``last`` on the sample's final beat.
    ``out_format = "dense"``: N words per sample (a word with fewer than ``min_spikes`` spikes
    becomes 0), ``last`` on neuron N-1 — exactly the RTL's ``out`` stream. ``out_format =
    "fiber"``: the sample's N output words compressed as ``golden.compress_spikes`` compresses
    them (same ``chunk`` and ``min_spikes``, ``ceil(N/chunk)`` chunks, the last one partial) and
    serialized as a ``spikes`` fiber; ``last`` is on the last kept word of the last chunk, or on
    that chunk's final mask beat when it keeps nothing. A layer's fiber output is the next
    layer's fiber input.

Stimulus file (``hls_vectors(...).stimulus``, read in this order by the testbench)
-----------------------------------------------------------------------------------
::

    S                                  segments (kernel calls)
    per segment:
      M                                samples
      W                                values of the weights stream
      W values                         the weights stream, as above
      in_format "dense":
        M*K words                      the spike words, sample-major (neuron k = 0..K-1)
      in_format "fiber", per sample:
        B                              beats of the sample's spike fiber
        B values                       the fiber's beats, as above (``trace.spike_fibers[m]``)

Mask beats are the 64 bits as a two's-complement int64, as in the weights stream. The segments
are those of ``sim/test_snn.py`` (a fresh ``numpy.random.default_rng(seed)``): the random layer
of ``vectors`` samples (``stimulus.random_layer``), every layer of ``stimulus.edge_layers`` the
golden model accepts, and a denser random layer of ``vectors`` samples.

Expected file (``hls_vectors(...).expected``, written in this order by the testbench)
---------------------------------------------------------------------------------------
Per segment, per sample, per beat of ``out``: ``word`` then ``last`` (0 or 1). ``out_format =
"dense"``: N beats, the words of ``golden.decompress(trace.out_fibers[m])``, what the RTL
testbench compares. ``out_format = "fiber"``: the beats of ``trace.out_fibers[m]`` (mask beats as
int64, as in the stimulus).
"""

from __future__ import annotations

import numpy as np

from hwgen.config import config_to_dict, format_value
from hwgen.engines.base import HlsVectors

from . import golden
from .config import SnnConfig
from .stimulus import edge_layers, random_layer

__all__ = ["WORD_BITS", "hls_context", "hls_vectors", "fiber_stream", "weight_stream",
           "segments"]

#: Bits per word of a chunk bitmask in the kernel (and in the weights stream).
WORD_BITS = 64

#: The C++ helper of hwgen_hls.h for each overflow rule.
_OVERFLOW_FN = {"wrap": "wrap_signed", "saturate": "saturate_signed"}


def _ctype(bits: int, signed: bool) -> str:
    """The narrowest <cstdint> type holding ``bits`` bits (the kernel's storage types)."""
    for width in (8, 16, 32, 64):
        if bits <= width:
            return f"{'' if signed else 'u'}int{width}_t"
    raise ValueError(f"{bits} bits do not fit a 64-bit integer")


def _hex(value: int) -> str:
    return f"0x{value:016X}ULL"


def _mask_words(width: int, words: int) -> list[str]:
    """The 64-bit words of a mask with the low ``width`` bits set, as C++ literals."""
    full = (1 << width) - 1
    return [_hex((full >> (WORD_BITS * j)) & ((1 << WORD_BITS) - 1)) for j in range(words)]


def hls_context(cfg: SnnConfig) -> dict:
    """Every value the snn templates print, from the config properties the RTL and the golden
    model use (``acc_bits``, ``correction_bits``, ``u_bits``, ``chunks``, ...)."""
    if not isinstance(cfg, SnnConfig):
        raise TypeError(f"hls_context takes an SnnConfig, got {type(cfg).__name__}")
    mask_words = -(-cfg.chunk // WORD_BITS)
    groups = -(-cfg.out_neurons // cfg.pes)
    out_chunks = -(-cfg.out_neurons // cfg.chunk)
    last_chunk = cfg.in_neurons - (cfg.chunks - 1) * cfg.chunk
    # The golden model (rule 3): the sequential dataflow makes the additions of the fast join
    # whatever `join` says, so `join` only matters for the FTP dataflow.
    join_impl = "sequential" if cfg.dataflow == "sequential" else cfg.join
    config_lines = [f"{key} = {format_value(value)}"
                    for key, value in config_to_dict(cfg).items() if key != "name"]
    derived = {
        "acc_bits (pseudo-accumulator and O[t])": cfg.acc_bits,
        "correction_bits (laggy correction accumulators)": cfg.correction_bits,
        "u_bits (membrane)": cfg.u_bits,
        "chunks per sample": cfg.chunks,
        "PE groups per sample": groups,
    }
    if cfg.out_format == "fiber":
        derived["chunks of the output fiber"] = out_chunks
    return {
        "ns": f"{cfg.name}_hls",
        "guard": f"HWGEN_{cfg.name.upper()}_HLS_H",
        "config_lines": config_lines,
        "derived_lines": [f"{key}: {value}" for key, value in derived.items()],
        "timesteps": cfg.timesteps,
        "in_neurons": cfg.in_neurons,
        "out_neurons": cfg.out_neurons,
        "last_neuron": cfg.out_neurons - 1,
        "chunk": cfg.chunk,
        "chunks": cfg.chunks,
        "last_chunk": cfg.chunks - 1,
        "last_chunk_neurons": last_chunk,
        "pes": cfg.pes,
        "groups": groups,
        "rows": groups * cfg.chunks,
        "word_bits": WORD_BITS,
        "mask_words": mask_words,
        "chunk_mask": _mask_words(cfg.chunk, mask_words),
        "last_chunk_mask": _mask_words(last_chunk, mask_words),
        "out_chunks": out_chunks,
        "min_spikes": cfg.min_spikes,
        "in_format": cfg.in_format,
        "out_format": cfg.out_format,
        "weight_bits": cfg.weight_bits,
        "weight_t": _ctype(cfg.weight_bits, signed=True),
        "spike_t": _ctype(cfg.timesteps, signed=False),
        "acc_bits": cfg.acc_bits,
        "corr_bits": cfg.correction_bits,
        "u_bits": cfg.u_bits,
        "acc_overflow": cfg.acc_overflow,
        "acc_overflow_fn": _OVERFLOW_FN[cfg.acc_overflow],
        "membrane_overflow": cfg.membrane_overflow,
        "membrane_overflow_fn": _OVERFLOW_FN[cfg.membrane_overflow],
        "join": cfg.join,
        "dataflow": cfg.dataflow,
        "join_impl": join_impl,
        "laggy_adders": cfg.adders,
        "preset": "none" if cfg.preset is None else cfg.preset,
        "threshold": cfg.threshold,
        "fire": cfg.fire,
        "fire_op": {"ge": ">=", "gt": ">"}[cfg.fire],
        "reset": cfg.reset,
        "leak": cfg.leak,
        "leak_shift": cfg.leak_shift,
        "rounding": cfg.rounding,
        # shr(x) = floor((x + leak_round) / 2**s): half_up adds half an LSB (golden._shr); s = 0
        # is the identity either way.
        "leak_round": (1 << (cfg.leak_shift - 1)) if cfg.rounding == "half_up"
        and cfg.leak_shift > 0 else 0,
    }


def _int64(word: int) -> int:
    """A 64-bit pattern as the signed int64 the stimulus file carries."""
    return word - (1 << WORD_BITS) if word >> (WORD_BITS - 1) else word


def fiber_stream(cfg: SnnConfig, fiber: golden.Fiber) -> list[int]:
    """The beats of one fiber as the kernel's streams carry it: per chunk the ``mask_words``
    words of its bitmask (as int64), then its kept values (see the module docstring)."""
    mask_words = -(-cfg.chunk // WORD_BITS)
    out: list[int] = []
    for c in range(fiber.chunks):
        mask = fiber.masks[c]
        out += [_int64((mask >> (WORD_BITS * j)) & ((1 << WORD_BITS) - 1))
                for j in range(mask_words)]
        out += [int(v) for v in fiber.values[c]]
    return out


def weight_stream(cfg: SnnConfig, trace: golden.LayerTrace) -> list[int]:
    """The kernel's ``weights`` stream for a layer: its weight fibers, neuron after neuron."""
    return [beat for fiber in trace.weight_fibers for beat in fiber_stream(cfg, fiber)]


def segments(cfg: SnnConfig, seed: int, vectors: int) -> list[tuple[str, np.ndarray,
                                                                     np.ndarray]]:
    """``(name, a, b)`` of every segment, drawn as ``sim/test_snn.py`` draws them."""
    rng = np.random.default_rng(seed)
    out = [("random", *random_layer(cfg, rng, samples=vectors))]
    for name, a, b in edge_layers(cfg, rng):
        try:
            golden.layer(a, b, cfg)
        except ValueError:          # as the RTL testbench: an edge layer the model rejects
            continue
        out.append((name, a, b))
    out.append(("random_stress", *random_layer(cfg, rng, samples=vectors, spike_density=0.5,
                                               silent_fraction=0.3, weight_density=0.5)))
    return out


def hls_vectors(cfg: SnnConfig, seed: int, vectors: int) -> HlsVectors:
    """Stimulus and golden-model outputs of every segment, in the testbench's order."""
    if not isinstance(cfg, SnnConfig):
        raise TypeError(f"hls_vectors takes an SnnConfig, got {type(cfg).__name__}")
    layers = segments(cfg, seed, vectors)
    stimulus: list[int] = [len(layers)]
    expected: list[int] = []
    for _, a, b in layers:
        trace = golden.layer(a, b, cfg)
        weights = weight_stream(cfg, trace)
        stimulus += [a.shape[0], len(weights), *weights]
        for m in range(a.shape[0]):
            if cfg.in_format == "fiber":
                beats = fiber_stream(cfg, trace.spike_fibers[m])
                stimulus += [len(beats), *beats]
            else:
                stimulus += [int(w) for w in trace.words[m]]
            if cfg.out_format == "fiber":
                beats = fiber_stream(cfg, trace.out_fibers[m])
            else:
                beats = [int(w) for w in golden.decompress(trace.out_fibers[m])]
            for i, beat in enumerate(beats):
                expected += [beat, int(i == len(beats) - 1)]
    return HlsVectors(stimulus=stimulus, expected=expected)

