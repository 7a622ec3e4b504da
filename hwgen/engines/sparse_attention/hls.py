"""HLS C++ of the sparse attention engine: the template context and the C-simulation vectors.

:func:`hls_context` gives every value ``templates/hls/sparse_attention/*.j2`` print, computed here
from the config's derived properties and from :mod:`.softmax` (the exp table is the *same* array
object the RTL memory and the golden model read, printed as a C initializer), so the templates hold
no arithmetic. :func:`hls_vectors` draws the sequences and runs the golden model on them.

The kernel (``<name>.cpp``) processes one sequence per call, as the RTL's ``tokens`` / ``out``
streams do: it reads tokens (the Q, K and V rows of one position) until ``last`` (or ``max_len``
tokens), so L comes from the stream, then writes L output rows, ``last`` on row L-1.

Stimulus order (what ``<name>_tb.cpp`` reads, all integers)::

    S                                   number of sequences
    per sequence, S times:
        L                               its length, 1 <= L <= max_len
        per position 0..L-1:
            Q[pos, 0..d-1]  K[pos, 0..d-1]  V[pos, 0..d-1]

Expected / output order: per sequence, per output row i < L, ``out[i, 0..d-1]`` (``out_bits``
signed values), i.e. each sequence's golden ``out`` flattened row-major, sequences in stimulus
order.

Sequences: every edge case of :func:`.stimulus.edge_sequences` (each edge length 1, 2, k-1, k,
k+1, max_len; all-zero tensors, Q zero, all-max, all-min, tied keys, near ties, a single nonzero,
crowded keys, a dominant key), then K zero alone (max|K| = 0), then ``vectors`` random sequences of
skewed mixed lengths from ``np.random.default_rng(seed)`` (:func:`.stimulus.mixed_lengths`:
``(vectors + 2) // 3`` uniform, then ``(vectors + 1) // 3`` gaussian, then ``vectors // 3``
peaked). ``vectors`` therefore counts the random sequences, as ``hwgen sim --vectors`` does for
this engine; the edge cases are always included.
"""

from __future__ import annotations

import numpy as np

from hwgen.engines.base import HlsVectors

from . import golden
from .config import SparseAttentionConfig
from .stimulus import edge_sequences, mixed_lengths

__all__ = ["hls_context", "hls_vectors", "sequences", "stimulus_order"]

_LUT_PER_LINE = 8


def _c_array(values, per_line: int = _LUT_PER_LINE) -> str:
    """``values`` as the lines of a C array initializer (4-space indent, trailing commas)."""
    items = [str(int(v)) for v in values]
    lines = [", ".join(items[i:i + per_line]) + "," for i in range(0, len(items), per_line)]
    return "\n".join("    " + line for line in lines)


def hls_context(cfg: SparseAttentionConfig) -> dict:
    """Every value the sparse attention templates print (all computed here, none in Jinja)."""
    lut = cfg.exp_lut                      # the one table object of softmax.exp_lut
    s = cfg.recip_shift
    rs = cfg.row_recip_shift
    pb = cfg.prob_bits
    return {
        "guard": f"HWGEN_{cfg.name.upper()}_H",
        "ns": f"{cfg.name}_cfg",
        "token_type": f"{cfg.name}_token",
        "row_type": f"{cfg.name}_row",
        # shape and selection
        "max_len": cfg.max_len,
        "head_dim": cfg.head_dim,
        "lanes": cfg.lanes,
        "est_steps": -(-cfg.max_len // cfg.lanes),   # ceil(max_len / lanes)
        "mask": cfg.mask,
        "estimated": cfg.estimated,           # topk, threshold: quantize and estimate scores
        "topk": cfg.topk,
        "margin": cfg.margin,
        "window": cfg.window,
        "global_tokens": cfg.global_tokens,
        "max_selected": cfg.max_selected,
        "sel_bits": cfg.sel_bits,
        # stage 1-2: inputs and quantization
        "data_bits": cfg.data_bits,
        "maxabs_bits": cfg.maxabs_bits,
        "est_bits": cfg.est_bits,
        "q_max": cfg.q_max,
        "recip_shift": s,
        "recip_bits": cfg.recip_bits,
        "quant_numerator": cfg.q_max << s,
        "quant_half": 1 << (s - 1),
        # stage 3, 5: scores
        "est_score_bits": cfg.est_score_bits,
        "score_bits": cfg.score_bits,
        # stage 6: softmax
        "z_bits": cfg.z_bits,
        "exp_mult": cfg.exp_mult,
        "exp_shift": cfg.exp_shift,
        "exponent_bits": cfg.exponent_bits,
        "exp_frac_bits": cfg.exp_frac_bits,
        "exp_bits": cfg.exp_bits,
        "exp_int_limit": cfg.exp_bits + 1,
        "exp_value_bits": cfg.exp_value_bits,
        "lut_size": cfg.lut_size,
        "exp_lut_init": _c_array(lut),
        "sum_bits": cfg.sum_bits,
        "row_recip_shift": rs,
        "row_recip_numerator": 1 << rs,
        "row_recip_bits": cfg.row_recip_bits,
        "prob_bits": pb,
        "prob_shift": rs - pb,
        "prob_value_bits": cfg.prob_value_bits,
        # stage 7: output
        "acc_bits": cfg.acc_bits,
        "out_bits": cfg.out_bits,
        "rounding": cfg.rounding,
        "round_add": (1 << (pb - 1)) if cfg.rounding == "half_up" else 0,
        "out_overflow": cfg.out_overflow,
        "overflow_fn": "saturate_signed" if cfg.out_overflow == "saturate" else "wrap_signed",
        "stimulus_order": stimulus_order(cfg),
    }


def stimulus_order(cfg: SparseAttentionConfig) -> str:
    """One line describing the stimulus file, printed into the testbench comment."""
    last = cfg.head_dim - 1
    return (f"S, then per sequence: L (1..{cfg.max_len}), then per position "
            f"Q[pos, 0..{last}], K[pos, 0..{last}], V[pos, 0..{last}]")


def sequences(cfg: SparseAttentionConfig, seed: int, vectors: int
              ) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """The labelled ``(label, Q, K, V)`` sequences of :func:`hls_vectors`, in stimulus order."""
    cases = list(edge_sequences(cfg))
    length = min(cfg.max_len, cfg.topk + 1)
    rng = np.random.default_rng(seed)
    lo, hi = cfg.data_range
    q = rng.integers(lo, hi, size=(length, cfg.head_dim), endpoint=True).astype(np.int64)
    v = rng.integers(lo, hi, size=(length, cfg.head_dim), endpoint=True).astype(np.int64)
    cases.append(("zero_k", q, np.zeros_like(q), v))
    counts = {"uniform": (vectors + 2) // 3, "gaussian": (vectors + 1) // 3,
              "peaked": vectors // 3}
    for dist, count in counts.items():
        for n, (q, k, v) in enumerate(mixed_lengths(cfg, count, rng, dist)):
            cases.append((f"{dist}_{n}_L{q.shape[0]}", q, k, v))
    return cases


def hls_vectors(cfg: SparseAttentionConfig, seed: int, vectors: int) -> HlsVectors:
    """Stimulus and golden outputs in the order of the module docstring."""
    stimulus: list[int] = []
    expected: list[int] = []
    cases = sequences(cfg, seed, vectors)
    stimulus.append(len(cases))
    for _, q, k, v in cases:
        length = q.shape[0]
        stimulus.append(length)
        stimulus.extend(int(x) for x in np.concatenate([q, k, v], axis=1).ravel())
        expected.extend(int(x) for x in golden.attention(cfg, q, k, v).out.ravel())
    return HlsVectors(stimulus=stimulus, expected=expected)
