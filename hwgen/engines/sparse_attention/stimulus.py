"""Random and edge-case sequences for the sparse attention testbench and benchmarks.

A sequence is ``(Q, K, V)``, three int64 ``(L, head_dim)`` arrays in the signed ``data_bits``
range with one runtime length ``1 <= L <= max_len``. Everything random is drawn from a
``numpy.random.Generator`` the caller seeds (``np.random.default_rng(seed)``), so a run is
reproduced by its seed alone.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .config import SparseAttentionConfig

__all__ = [
    "DISTRIBUTIONS",
    "draw_lengths",
    "edge_lengths",
    "edge_sequences",
    "mixed_lengths",
    "random_sequence",
    "test_sequences",
]

#: Value distributions of :func:`random_sequence`.
DISTRIBUTIONS = ("uniform", "gaussian", "peaked")

Sequence = tuple[np.ndarray, np.ndarray, np.ndarray]


def _check_length(cfg: SparseAttentionConfig, length) -> int:
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) \
            or not 1 <= length <= cfg.max_len:
        raise ValueError(f"length must be an integer from 1 to {cfg.max_len}, got {length!r}")
    return int(length)


def _to_data(cfg: SparseAttentionConfig, x: np.ndarray) -> np.ndarray:
    """Real values rounded half up and clipped to the data range (int64)."""
    lo, hi = cfg.data_range
    return np.clip(np.floor(x + 0.5), lo, hi).astype(np.int64)


def _values(cfg: SparseAttentionConfig, shape, rng: np.random.Generator, dist: str) -> np.ndarray:
    lo, hi = cfg.data_range
    if dist == "uniform":
        return rng.integers(lo, hi, size=shape, endpoint=True).astype(np.int64)
    # gaussian: sigma a quarter of the range, rounded half up, clipped to the range.
    return _to_data(cfg, rng.normal(0.0, (hi + 1) / 4, size=shape))


#: "peaked": most keys one query row is built from.
PEAKED_MATCHES = 3


def _peaked(cfg: SparseAttentionConfig, length: int, rng: np.random.Generator) -> Sequence:
    """K and V gaussian; each Q row is ``1.5 / sqrt(n)`` times the sum of ``n`` distinct K rows
    (``n`` uniform in ``1..min(PEAKED_MATCHES, length)``) plus gaussian noise of a sixteenth of
    the range, rounded half up and clipped to the data range."""
    hi = cfg.data_range[1]
    shape = (length, cfg.head_dim)
    k = _values(cfg, shape, rng, "gaussian")
    mix = np.zeros((length, length))
    for i in range(length):
        n = int(rng.integers(1, min(PEAKED_MATCHES, length), endpoint=True))
        mix[i, rng.choice(length, size=n, replace=False)] = 1.5 / np.sqrt(n)
    q = _to_data(cfg, mix @ k + rng.normal(0.0, (hi + 1) / 16, size=shape))
    return q, k, _values(cfg, shape, rng, "gaussian")


def random_sequence(cfg: SparseAttentionConfig, length: int, rng: np.random.Generator,
                    dist: str = "uniform") -> Sequence:
    """Random Q, K, V of ``length`` rows.

    ``"uniform"``: every value of the data range equally likely. ``"gaussian"``: normal with
    standard deviation ``2**(data_bits-1) / 4`` (peaked values, more realistic attention), rounded
    half up and clipped to the data range. ``"peaked"``: concentrated attention, each query row
    strongly matches a few keys: K and V are ``"gaussian"``, and Q row i is ``1.5 / sqrt(n_i)``
    times the sum of ``n_i`` distinct random K rows (``n_i`` uniform in
    ``1..min(PEAKED_MATCHES, length)``, 3) plus normal noise of standard deviation
    ``2**(data_bits-1) / 16``, rounded half up and clipped to the data range. Row i's exact
    scores on its n_i keys stand out from the others' by about ``sqrt(head_dim / n_i)`` standard
    deviations of those, and so do its estimates: a ``"threshold"`` mask keeps few keys where
    ``"topk"`` keeps k.
    """
    length = _check_length(cfg, length)
    if dist not in DISTRIBUTIONS:
        raise ValueError(f"dist must be one of {', '.join(map(repr, DISTRIBUTIONS))}, "
                         f"got {dist!r}")
    if dist == "peaked":
        return _peaked(cfg, length, rng)
    shape = (length, cfg.head_dim)
    q, k, v = (_values(cfg, shape, rng, dist) for _ in range(3))
    return q, k, v


def edge_lengths(cfg: SparseAttentionConfig) -> list[int]:
    """1, 2, k-1, k, k+1 and max_len, restricted to 1..max_len, without repeats, in that order."""
    k = cfg.topk
    out: list[int] = []
    for length in (1, 2, k - 1, k, k + 1, cfg.max_len):
        if 1 <= length <= cfg.max_len and length not in out:
            out.append(length)
    return out


def edge_sequences(cfg: SparseAttentionConfig) -> Iterator[tuple[str, np.ndarray, np.ndarray,
                                                                  np.ndarray]]:
    """Named edge cases ``(label, Q, K, V)``, deterministic (internal seed 0):

    ``length_<L>``
        uniform random values for every L of :func:`edge_lengths`.
    ``zeros``, ``zero_q``
        all three tensors zero; Q zero only (maxabs 0: every estimate 0, top-k keeps the lowest
        key indices, and every exact score is 0 too).
    ``all_max``, ``all_min``
        every element the data maximum / minimum (largest exact scores; all scores equal).
    ``tied_keys``
        every key row identical: every estimate and exact score of a row ties.
    ``near_ties``
        key j is key 0 with its first element ``max - j`` (wrapping back to max once the data
        range is used up): for wide data every key has the same estimate, so top-k breaks the
        ties by index while the exact scores still differ.
    ``single_nonzero``
        one nonzero element (the data minimum) in each of Q, K and V.
    ``crowded_keys``
        ``L = max_len``; every key row is one random row plus independent noise in -1..1
        (clipped), Q and V uniform: the estimates of a row crowd within a few units (mostly
        exact ties for wide data), so the ``"threshold"`` mask finds many more than k keys within
        its margin and the topk cap decides (whenever max_len > topk).
    ``dominant_key``
        Q uniform in ``ceil(max/2)..max`` (with ``Q[0, 0] = max``), the last key all max, every
        other key uniform in ``min//4..max//4``, V uniform: every quantized Q element is at least
        1, the last key's are all ``q_max`` and every other key's at most
        ``floor(q_max/3 + 1/2)`` (at most 0 for 2-bit data), so in every row the last key's
        estimate exceeds every other key's by at least ``head_dim`` (its exact score is the
        largest too); the ``"threshold"`` mask with a margin below ``head_dim`` keeps that key
        alone, for any est_bits and data_bits.

    The fixed-shape cases use ``L = min(max_len, topk + 1)`` so top-k drops at least one key
    whenever max_len allows. Cases are only ever appended, so the earlier ones keep their values.
    """
    rng = np.random.default_rng(0)
    lo, hi = cfg.data_range
    d = cfg.head_dim
    for length in edge_lengths(cfg):
        yield (f"length_{length}", *random_sequence(cfg, length, rng))
    length = min(cfg.max_len, cfg.topk + 1)
    shape = (length, d)
    zeros = np.zeros(shape, dtype=np.int64)
    q, k, v = random_sequence(cfg, length, rng)
    yield "zeros", zeros, zeros.copy(), zeros.copy()
    yield "zero_q", zeros.copy(), k, v
    yield "all_max", *(np.full(shape, hi, dtype=np.int64) for _ in range(3))
    yield "all_min", *(np.full(shape, lo, dtype=np.int64) for _ in range(3))
    q, k, v = random_sequence(cfg, length, rng)
    yield "tied_keys", q, np.repeat(k[:1], length, axis=0), v
    q, k, v = random_sequence(cfg, length, rng)
    near = np.repeat(k[:1], length, axis=0)
    near[:, 0] = hi - np.arange(length) % min(length, hi - lo + 1)
    yield "near_ties", q, near, v
    one = zeros.copy()
    one[length // 2, d // 2] = lo
    yield "single_nonzero", one, one.copy(), one.copy()
    n = cfg.max_len
    q, k, v = random_sequence(cfg, n, rng)
    crowded = np.clip(k[:1] + rng.integers(-1, 1, size=(n, d), endpoint=True), lo, hi)
    yield "crowded_keys", q, crowded.astype(np.int64), v
    q = rng.integers((hi + 1) // 2, hi, size=shape, endpoint=True).astype(np.int64)
    q[0, 0] = hi
    k = rng.integers(lo // 4, hi // 4, size=shape, endpoint=True).astype(np.int64)
    k[-1] = hi
    v = rng.integers(lo, hi, size=shape, endpoint=True).astype(np.int64)
    yield "dominant_key", q, k, v


def draw_lengths(cfg: SparseAttentionConfig, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` lengths from a skewed distribution: most short, some exactly max_len.

    With probability 1/8 a length is max_len; otherwise it is geometric with mean
    ``max(1, max_len / 8)`` clipped to ``1..max_len`` (int64 array).
    """
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(f"count must be an integer >= 0, got {count!r}")
    geometric = rng.geometric(min(1.0, 8.0 / cfg.max_len), size=count)
    full = rng.random(count) < 0.125
    return np.where(full, cfg.max_len, np.clip(geometric, 1, cfg.max_len)).astype(np.int64)


def mixed_lengths(cfg: SparseAttentionConfig, count: int, rng: np.random.Generator,
                  dist: str = "uniform") -> list[Sequence]:
    """``count`` random sequences (back to back in a test) with lengths from
    :func:`draw_lengths`."""
    return [random_sequence(cfg, int(length), rng, dist)
            for length in draw_lengths(cfg, count, rng)]


def test_sequences(cfg: SparseAttentionConfig, seed: int = 0,
                   count: int = 8) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """Every edge case, then ``count`` sequences of mixed lengths of each distribution of
    :data:`DISTRIBUTIONS` in turn (uniform, gaussian, peaked) drawn from
    ``np.random.default_rng(seed)``, labelled ``<dist>_<n>_L<length>``."""
    rng = np.random.default_rng(seed)
    cases = list(edge_sequences(cfg))
    for dist in DISTRIBUTIONS:
        for n, (q, k, v) in enumerate(mixed_lengths(cfg, count, rng, dist)):
            cases.append((f"{dist}_{n}_L{q.shape[0]}", q, k, v))
    return cases


# Not a pytest test, despite the name.
test_sequences.__test__ = False
