"""Bit-exact numpy model of the sparse attention engine (docs/architecture.md §4.3), never from the
RTL.

One sequence of runtime length ``1 <= L <= max_len``: Q, K, V are ``(L, d)`` integers in the
signed ``data_bits`` range (anything else is a ``ValueError`` naming the tensor). All arithmetic is
int64 (every intermediate fits for every valid config, see the widths of
:class:`~hwgen.engines.sparse_attention.config.SparseAttentionConfig`). Stages, each exposed in
:class:`AttentionTrace`:

1. ``maxabs`` of Q and of K: ``max |x|`` over the whole tensor, up to ``2**(data_bits-1)``.
2. :func:`quantize` to ``est_bits``: one integer division per tensor (a sequential divider)
   ``r = floor((q_max << S) / maxabs)`` with ``S = recip_shift = 16 + data_bits``, then per
   element ``x4 = clamp((x * r + (1 << (S-1))) >> S, -q_max, q_max)`` (``>>`` is the arithmetic
   shift, i.e. floor). This is ``floor(x * q_max / maxabs + 1/2)`` (round half up of the
   reference ``x * 7 / max|x|``) for every x except exact positive ties ``x * q_max / maxabs =
   n + 1/2`` where r is inexact, which give ``n``; it is always within 1 of the reference, and the
   clamp never acts on valid inputs. ``maxabs = 0`` (an all-zero tensor) defines ``r = 0``, so
   every ``x4 = 0``.
3. Estimated scores ``est[i, j] = sum_d q4[i, d] * k4[j, d]`` for all ``i, j < L``
   (``est_score_bits`` signed). They are computed for every mask; only ``"topk"`` and
   ``"threshold"`` use them.
4. :func:`select` per query row i, as increasing key indices:
   ``"topk"`` the ``min(topk, L)`` keys with the largest ``est[i, j]``, ties to the lower j (a
   stable sort; with Q or K all zero every estimate is 0 and row i keeps keys 0..min(k, L)-1);
   ``"threshold"`` those of the ``"topk"`` keys with ``est[i, j] >= max_j est[i, j] - margin``
   (the max over all ``j < L``, which the top key attains, so at least one key is kept; since
   the kept set is an upper set of the estimates, this is also the ``min(topk, |C|)`` best of
   ``C = {j : est[i, j] >= max - margin}``);
   ``"window"`` keys ``j < L`` with ``|i - j| <= window`` or ``j < global_tokens`` or
   ``i < global_tokens``; ``"dense"`` every ``j < L``. Every row selects at least one key (topk:
   ``k >= 1``; window: ``j = i``). The RTL visits selected keys in increasing index order.
5. Exact scores ``s[i, j] = sum_d Q[i, d] * K[j, d]`` for the selected j only.
6. The integer softmax of :mod:`~hwgen.engines.sparse_attention.softmax` per row: exps,
   ``row_sum``, ``row_recip`` and probabilities ``p`` with ``prob_bits`` fraction bits.
7. ``acc[i, c] = sum_j p[i, j] * V[j, c]`` (``acc_bits`` signed, never overflows) and
   ``out[i, c] = overflow(round(acc / 2**prob_bits), out_bits)``: ``"floor"`` is
   ``acc >> prob_bits``, ``"half_up"`` is ``(acc + 2**(prob_bits-1)) >> prob_bits``; overflow is
   ``out_overflow`` (:func:`hwgen.fixedpoint.overflow`). Since the probabilities sum to at most
   1.0, the rounded value lies in the data range, so only ``out_bits < data_bits`` overflows.

:func:`float_attention` is the float64 dense reference ``softmax(Q K^T * logit_scale) @ V`` in
the same output units, for accuracy reports with :func:`cosine_similarity`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwgen.fixedpoint import overflow

from . import softmax
from .config import SparseAttentionConfig

__all__ = [
    "AttentionTrace",
    "attention",
    "check_sequence",
    "check_tensor",
    "cosine_similarity",
    "estimate",
    "exact_scores",
    "float_attention",
    "quantize",
    "requantize",
    "select",
]


# --- input checks ----------------------------------------------------------------------------

def check_tensor(cfg: SparseAttentionConfig, x, what: str) -> np.ndarray:
    """``x`` as an int64 ``(L, d)`` array with ``1 <= L <= max_len`` and data_bits values."""
    arr = np.asarray(x)
    if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
        raise ValueError(f"{what} must be an integer array, got dtype {arr.dtype}")
    if arr.ndim != 2 or not 1 <= arr.shape[0] <= cfg.max_len or arr.shape[1] != cfg.head_dim:
        raise ValueError(f"{what} of shape {arr.shape}: expected (L, {cfg.head_dim}) with "
                         f"1 <= L <= {cfg.max_len}")
    lo, hi = cfg.data_range
    if arr.min() < lo or arr.max() > hi:
        raise ValueError(f"{what} values must lie in {lo}..{hi} (data_bits = {cfg.data_bits})")
    return arr.astype(np.int64)


def check_sequence(cfg: SparseAttentionConfig, q, k, v) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray]:
    """Q, K, V checked by :func:`check_tensor`, all with the same length L."""
    q, k, v = (check_tensor(cfg, x, what) for x, what in ((q, "Q"), (k, "K"), (v, "V")))
    if not q.shape[0] == k.shape[0] == v.shape[0]:
        raise ValueError(f"Q, K, V have lengths {q.shape[0]}, {k.shape[0]}, {v.shape[0]}: "
                         f"expected one length L")
    return q, k, v


# --- stages ----------------------------------------------------------------------------------

def quantize(cfg: SparseAttentionConfig, x, what: str = "x") -> tuple[int, int, np.ndarray]:
    """Stages 1-2 for one tensor: ``(maxabs, r, x4)``, see the module docstring."""
    x = check_tensor(cfg, x, what)
    maxabs = int(np.abs(x).max())
    shift = cfg.recip_shift
    recip = (cfg.q_max << shift) // maxabs if maxabs else 0
    x4 = (x * np.int64(recip) + np.int64(1 << (shift - 1))) >> np.int64(shift)
    return maxabs, recip, np.clip(x4, -cfg.q_max, cfg.q_max)


def estimate(q4, k4) -> np.ndarray:
    """Stage 3: ``est = q4 @ k4.T`` (L x L, int64)."""
    return np.asarray(q4, dtype=np.int64) @ np.asarray(k4, dtype=np.int64).T


def select(cfg: SparseAttentionConfig, est, length: int) -> tuple[np.ndarray, ...]:
    """Stage 4: the selected keys of each of the ``length`` rows, increasing (int64 arrays).

    ``est`` is the ``(length, length)`` matrix of estimated scores (read by ``"topk"`` and
    ``"threshold"`` only).
    """
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) \
            or not 1 <= length <= cfg.max_len:
        raise ValueError(f"length must be an integer from 1 to {cfg.max_len}, got {length!r}")
    length = int(length)
    est = np.asarray(est)
    if est.shape != (length, length):
        raise ValueError(f"est of shape {est.shape}: expected ({length}, {length})")
    keys = np.arange(length, dtype=np.int64)
    rows = []
    for i in range(length):
        if cfg.estimated:
            # Largest first, equal estimates in increasing key order (stable sort).
            row = est[i].astype(np.int64)
            order = np.argsort(-row, kind="stable")[:min(cfg.topk, length)]
            if cfg.mask == "threshold":
                order = order[row[order] >= row.max() - cfg.margin]
            sel = np.sort(order).astype(np.int64)
        elif cfg.mask == "window":
            g = cfg.global_tokens
            sel = keys[(np.abs(keys - i) <= cfg.window) | (keys < g) | (i < g)]
        else:
            sel = keys.copy()
        sel.flags.writeable = False
        rows.append(sel)
    return tuple(rows)


def exact_scores(q, k, selected) -> tuple[np.ndarray, ...]:
    """Stage 5: ``s[i] = K[selected[i]] @ Q[i]`` per row (int64)."""
    q, k = np.asarray(q, dtype=np.int64), np.asarray(k, dtype=np.int64)
    return tuple(k[sel] @ q[i] for i, sel in enumerate(selected))


def requantize(cfg: SparseAttentionConfig, acc) -> np.ndarray:
    """Stage 7: ``overflow(round(acc / 2**prob_bits), out_bits)`` with the configured rounding."""
    acc = np.asarray(acc, dtype=np.int64)
    pb = cfg.prob_bits
    if cfg.rounding == "half_up":
        acc = acc + np.int64(1 << (pb - 1))
    return overflow(acc >> np.int64(pb), cfg.out_bits, cfg.out_overflow)


@dataclass(frozen=True, eq=False)
class AttentionTrace:
    """Every stage of one sequence of length L (per-row tuples follow ``selected``)."""

    maxabs_q: int
    maxabs_k: int
    recip_q: int                       # r of Q (0 when maxabs_q = 0)
    recip_k: int
    q4: np.ndarray                     # (L, d) in -q_max..q_max
    k4: np.ndarray
    est: np.ndarray                    # (L, L) estimated scores
    selected: tuple[np.ndarray, ...]   # per row: selected key indices, increasing
    scores: tuple[np.ndarray, ...]     # per row: exact scores of the selected keys
    row_max: np.ndarray                # (L,) max exact score per row
    exponents: tuple[np.ndarray, ...]  # per row: e_j = (z_j * C_mult) >> C_shift
    exps: tuple[np.ndarray, ...]       # per row: exp_j (exp_bits fraction bits)
    row_sum: np.ndarray                # (L,) sum of exps
    row_recip: np.ndarray              # (L,) floor(2**RS / row_sum)
    probs: tuple[np.ndarray, ...]      # per row: p_j (prob_bits fraction bits)
    acc: np.ndarray                    # (L, d) sum_j p_j * V[j]
    out: np.ndarray                    # (L, d) requantized to out_bits

    @property
    def length(self) -> int:
        return self.q4.shape[0]


def attention(cfg: SparseAttentionConfig, q, k, v) -> AttentionTrace:
    """Run one sequence (Q, K, V each ``(L, d)``) through every stage."""
    q, k, v = check_sequence(cfg, q, k, v)
    length = q.shape[0]
    maxabs_q, recip_q, q4 = quantize(cfg, q, "Q")
    maxabs_k, recip_k, k4 = quantize(cfg, k, "K")
    est = estimate(q4, k4)
    selected = select(cfg, est, length)
    scores = exact_scores(q, k, selected)
    rows = [softmax.softmax_row(s, cfg) for s in scores]
    probs = tuple(r.probs for r in rows)
    acc = np.stack([p @ v[sel] for p, sel in zip(probs, selected)]).astype(np.int64)
    return AttentionTrace(
        maxabs_q=maxabs_q, maxabs_k=maxabs_k, recip_q=recip_q, recip_k=recip_k, q4=q4, k4=k4,
        est=est, selected=selected, scores=scores,
        row_max=np.array([r.row_max for r in rows], dtype=np.int64),
        exponents=tuple(r.exponents for r in rows), exps=tuple(r.exps for r in rows),
        row_sum=np.array([r.total for r in rows], dtype=np.int64),
        row_recip=np.array([r.recip for r in rows], dtype=np.int64),
        probs=probs, acc=acc, out=requantize(cfg, acc))


# --- float reference -------------------------------------------------------------------------

def float_attention(cfg: SparseAttentionConfig, q, k, v) -> np.ndarray:
    """Dense float64 attention ``softmax(Q K^T * logit_scale) @ V`` in output units (L x d).

    Same inputs as :func:`attention`; no quantization, no mask, no requantization.
    """
    q, k, v = (x.astype(np.float64) for x in check_sequence(cfg, q, k, v))
    logits = (q @ k.T) * cfg.logit_scale
    w = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (w / w.sum(axis=1, keepdims=True)) @ v


def cosine_similarity(a, b) -> float:
    """Cosine of the angle between ``a`` and ``b`` flattened (float64).

    Defined as 1.0 when both are all zero and 0.0 when exactly one is.
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"cannot compare arrays of {a.size} and {b.size} elements")
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 1.0 if na == nb else 0.0
    return float(np.dot(a, b) / (na * nb))
