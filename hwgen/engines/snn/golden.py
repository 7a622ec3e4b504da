"""Bit-exact numpy model of the snn engine, written from notes/snn_spec.md (never from the RTL).

Every stage of docs/architecture.md §4.2 is a function with its own result, so a mismatch in
simulation
points at one stage:

1. :func:`pack_spikes` — the T spike bits of a neuron become one word, bit t = spike at step t.
2. :func:`compress_spikes` / :func:`compress_weights` — a vector of K entries becomes a
   :class:`Fiber`: per chunk of ``chunk`` neurons a bitmask (bit i = neuron ``c*chunk + i`` kept)
   plus the kept values in increasing neuron order. Spike words with fewer than ``min_spikes``
   spikes and zero weights are dropped.
3. :func:`join` — the inner join of one sample's spike fiber with one output neuron's weight
   fiber, giving ``O[t]`` for every t (:class:`JoinTrace`). Matched pairs are visited chunk by
   chunk, in increasing position inside a chunk; every accumulator applies ``acc_overflow`` after
   every pair, exactly as the hardware does:

   - ``join = "fast"`` (FTP): ``O[t] = ovf(O[t] + w * bit_t(s), acc_bits)`` for every t.
   - ``join = "laggy"`` (LoAS): ``pseudo = ovf(pseudo + w, acc_bits)`` and
     ``corr[t] = ovf(corr[t] + w * (1 - bit_t(s)), correction_bits)``; after the last pair
     ``O[t] = ovf(pseudo - corr[t], acc_bits)``.
   - ``dataflow = "sequential"``: one timestep at a time with the per-timestep spike mask
     ``keep & bit_t(word)``, ``O[t] = ovf(O[t] + w)`` per match. The additions are those of the
     fast FTP join, so O is identical; ``join`` then only changes timing, not numbers.

   Without overflow every mode gives ``O[t] = sum over kept k of A[k, t] * B[k, n]``.
4. :func:`lif` — the unrolled leaky integrate-and-fire neuron over t (:class:`LifTrace`).
5. :func:`layer` — all of the above for M samples and N output neurons; the output spikes are
   packed and compressed again with the same ``chunk`` and ``min_spikes``, so layers chain.

Numbers are int64 throughout; :func:`hwgen.fixedpoint.overflow` implements wrap and saturate.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np

from hwgen.fixedpoint import overflow, signed_range

from .config import SnnConfig

__all__ = [
    "MAX_TIMESTEPS", "pack_spikes", "unpack_spikes", "popcount", "Fiber", "compress",
    "compress_spikes", "compress_weights", "decompress", "JoinTrace", "join", "LifTrace", "lif",
    "LayerTrace", "layer", "float_reference", "weight_range",
]

#: Words are int64, so a word holds at most this many timesteps (the config allows 16).
MAX_TIMESTEPS = 62


# --- input checks ----------------------------------------------------------------------------

def _int_array(x, what: str) -> np.ndarray:
    """``x`` as an int64 array; integer and boolean arrays only (no silent float truncation)."""
    arr = np.asarray(x)
    if arr.dtype == np.bool_:
        return arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{what} must be an integer or boolean array, got dtype {arr.dtype}")
    if arr.dtype == np.uint64 and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{what} values do not fit in int64")
    return arr.astype(np.int64)


def _check_spike_bits(a: np.ndarray, what: str) -> None:
    if a.size and not np.isin(a, (0, 1)).all():
        bad = a[~np.isin(a, (0, 1))].flat[0]
        raise ValueError(f"{what} must be 0 or 1, found {bad}")


def _check_timesteps(timesteps) -> int:
    if isinstance(timesteps, bool) or not isinstance(timesteps, (int, np.integer)) \
            or not 1 <= timesteps <= MAX_TIMESTEPS:
        raise ValueError(f"timesteps must be an integer from 1 to {MAX_TIMESTEPS}, "
                         f"got {timesteps!r}")
    return int(timesteps)


def _check_words(words: np.ndarray, timesteps: int, what: str = "spike words") -> None:
    hi = (1 << timesteps) - 1
    if words.size and (words.min() < 0 or words.max() > hi):
        raise ValueError(f"{what} must lie in 0..{hi} ({timesteps} timesteps)")


def weight_range(cfg: SnnConfig) -> tuple[int, int]:
    """Inclusive (min, max) of a ``weight_bits``-bit two's-complement weight."""
    return signed_range(cfg.weight_bits)


def _check_weights(b: np.ndarray, cfg: SnnConfig) -> None:
    lo, hi = weight_range(cfg)
    if b.size and (b.min() < lo or b.max() > hi):
        raise ValueError(f"weights must lie in {lo}..{hi} (weight_bits = {cfg.weight_bits})")


# --- rule 1: packed words ------------------------------------------------------------------

def pack_spikes(a) -> np.ndarray:
    """Pack spikes ``a[..., T]`` (0/1) into words ``[...]`` with bit t = ``a[..., t]``."""
    a = _int_array(a, "spikes")
    if a.ndim < 1 or a.shape[-1] < 1:
        raise ValueError(f"spikes of shape {a.shape}: expected a last axis of T >= 1 timesteps")
    timesteps = a.shape[-1]
    if timesteps > MAX_TIMESTEPS:
        raise ValueError(f"spikes have {timesteps} timesteps, at most {MAX_TIMESTEPS} fit a word")
    _check_spike_bits(a, "spikes")
    return (a << np.arange(timesteps, dtype=np.int64)).sum(axis=-1)


def unpack_spikes(words, timesteps: int) -> np.ndarray:
    """Inverse of :func:`pack_spikes`: ``[..., T]`` int64 0/1 with ``[..., t]`` = bit t."""
    timesteps = _check_timesteps(timesteps)
    words = _int_array(words, "spike words")
    _check_words(words, timesteps)
    return (words[..., None] >> np.arange(timesteps, dtype=np.int64)) & 1


def popcount(words) -> np.ndarray:
    """Spikes per packed word (words are non-negative and below 2**MAX_TIMESTEPS)."""
    words = np.asarray(words, dtype=np.int64)
    return ((words[..., None] >> np.arange(MAX_TIMESTEPS, dtype=np.int64)) & 1).sum(axis=-1)


# --- rule 2: fibers ------------------------------------------------------------------------

def _set_bits(mask: int) -> list[int]:
    """Positions of the set bits of ``mask``, increasing."""
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


@dataclass(frozen=True, eq=False)
class Fiber:
    """One compressed vector of ``length`` entries (a sample's spike words or a weight column).

    Chunk c covers entries ``c*chunk .. min(length, (c+1)*chunk) - 1``; ``masks[c]`` has bit i set
    when entry ``c*chunk + i`` is kept, and ``values[c]`` holds the kept entries in increasing
    order (read-only int64). Fibers compare equal when every field is equal.
    """

    masks: tuple[int, ...]
    values: tuple[np.ndarray, ...]
    length: int
    chunk: int

    def __post_init__(self):
        length, chunk = self.length, self.chunk
        for label, v, lo in (("length", length, 0), ("chunk", chunk, 1)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"fiber {label} must be an integer >= {lo}, got {v!r}")
        chunks = -(-int(length) // int(chunk))
        masks = tuple(int(operator.index(m)) for m in self.masks)
        if len(masks) != chunks or len(self.values) != chunks:
            raise ValueError(f"fiber of length {length} in chunks of {chunk} needs {chunks} masks "
                             f"and value arrays, got {len(masks)} and {len(self.values)}")
        values = []
        for c, (mask, vals) in enumerate(zip(masks, self.values)):
            vals = _int_array(vals, f"fiber values of chunk {c}").copy()
            width = self.span(c)[1] - self.span(c)[0]
            if mask < 0 or mask >> width:
                raise ValueError(f"fiber mask of chunk {c} is {mask:#x}: expected {width} bits")
            if vals.shape != (mask.bit_count(),):
                raise ValueError(f"fiber chunk {c} keeps {mask.bit_count()} entries but holds "
                                 f"values of shape {vals.shape}")
            vals.flags.writeable = False
            values.append(vals)
        object.__setattr__(self, "length", int(length))
        object.__setattr__(self, "chunk", int(chunk))
        object.__setattr__(self, "masks", masks)
        object.__setattr__(self, "values", tuple(values))

    def span(self, c: int) -> tuple[int, int]:
        """(first entry, one past the last entry) of chunk ``c``."""
        return c * self.chunk, min(self.length, (c + 1) * self.chunk)

    @property
    def chunks(self) -> int:
        return len(self.masks)

    @property
    def kept(self) -> int:
        """Kept entries over all chunks."""
        return sum(m.bit_count() for m in self.masks)

    def __eq__(self, other):
        if not isinstance(other, Fiber):
            return NotImplemented
        return (self.length, self.chunk, self.masks) == (other.length, other.chunk, other.masks) \
            and all(np.array_equal(a, b) for a, b in zip(self.values, other.values))

    def __hash__(self):
        return hash((self.length, self.chunk, self.masks,
                     tuple(tuple(v.tolist()) for v in self.values)))


def compress(values, keep, chunk: int) -> Fiber:
    """Compress ``values`` (K,) keeping the entries where ``keep`` (K,) bool is true (rule 2)."""
    values = _int_array(values, "values")
    keep = np.asarray(keep)
    if values.ndim != 1:
        raise ValueError(f"values of shape {values.shape}: expected one vector (K,)")
    if keep.shape != values.shape:
        raise ValueError(f"keep of shape {keep.shape} does not match values of shape "
                         f"{values.shape}")
    if keep.dtype != np.bool_:
        raise ValueError(f"keep must be a boolean array, got dtype {keep.dtype}")
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ValueError(f"chunk must be an integer >= 1, got {chunk!r}")
    k = values.shape[0]
    masks, kept = [], []
    for lo in range(0, k, chunk):
        hi = min(k, lo + chunk)
        masks.append(sum(1 << i for i in range(hi - lo) if keep[lo + i]))
        kept.append(values[lo:hi][keep[lo:hi]])
    return Fiber(tuple(masks), tuple(kept), k, int(chunk))


def compress_spikes(words, cfg: SnnConfig) -> Fiber:
    """Spike fiber of one sample: words (K,) of ``cfg.timesteps`` bits; a word is kept when it
    holds at least ``cfg.min_spikes`` spikes. K is not tied to ``cfg.in_neurons``: a layer's
    output words (K = out_neurons) are compressed the same way (rule 5)."""
    words = _int_array(words, "spike words")
    if words.ndim != 1:
        raise ValueError(f"spike words of shape {words.shape}: expected one sample's words (K,)")
    _check_words(words, cfg.timesteps)
    return compress(words, popcount(words) >= cfg.min_spikes, cfg.chunk)


def compress_weights(column, cfg: SnnConfig) -> Fiber:
    """Weight fiber of one output neuron: column (K,) of ``weight_bits``-bit weights, nonzero
    weights kept."""
    column = _int_array(column, "weight column")
    if column.ndim != 1:
        raise ValueError(f"weight column of shape {column.shape}: expected (K,)")
    _check_weights(column, cfg)
    return compress(column, column != 0, cfg.chunk)


def decompress(fiber: Fiber) -> np.ndarray:
    """The (K,) vector of a fiber, dropped entries 0."""
    out = np.zeros(fiber.length, dtype=np.int64)
    for c, (mask, vals) in enumerate(zip(fiber.masks, fiber.values)):
        lo = fiber.span(c)[0]
        for rank, i in enumerate(_set_bits(mask)):
            out[lo + i] = vals[rank]
    return out


# --- rule 3: the inner join ----------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class JoinTrace:
    """One (sample, output neuron) join.

    o : (T,) O[t] after the join, ``acc_bits`` wide
    matches : matched (kept spike neuron, nonzero weight) pairs over all chunks (every mode)
    matches_per_chunk : the same per chunk
    pseudo : laggy FTP only: the final pseudo-accumulator (``acc_bits``)
    corr : laggy FTP only: the final correction accumulators (T,) (``correction_bits``)
    step_matches : sequential only: (T,) matches per timestep (pairs whose spike fired at t)
    """

    o: np.ndarray
    matches: int
    matches_per_chunk: tuple[int, ...]
    pseudo: int | None = None
    corr: np.ndarray | None = None
    step_matches: np.ndarray | None = None


def _matched_pairs(spike_fiber: Fiber, weight_fiber: Fiber, c: int) -> tuple[list[int],
                                                                              np.ndarray,
                                                                              np.ndarray]:
    """Matched positions of chunk ``c`` in increasing order with their spike words and weights.

    Literally rule 3: a position i of ``spike_mask & weight_mask`` takes the spike value at rank
    ``popcount(spike_mask & ((1 << i) - 1))`` and the weight at rank
    ``popcount(weight_mask & ((1 << i) - 1))`` (the prefix sums of the hardware).
    """
    sm, wm = spike_fiber.masks[c], weight_fiber.masks[c]
    positions = _set_bits(sm & wm)
    s_rank = [(sm & ((1 << i) - 1)).bit_count() for i in positions]
    w_rank = [(wm & ((1 << i) - 1)).bit_count() for i in positions]
    return (positions, spike_fiber.values[c][s_rank].astype(np.int64),
            weight_fiber.values[c][w_rank].astype(np.int64))


def _accumulate(acc: np.ndarray, addends: np.ndarray, bits: int, mode: str) -> np.ndarray:
    """``acc = ovf(acc + addends[p], bits, mode)`` for p = 0, 1, ... in order.

    With ``wrap`` every intermediate result is congruent modulo 2**bits to the exact sum, so one
    overflow after the whole chunk equals one after every pair. ``saturate`` clamps after every
    pair: while no running sum leaves the range every clamp is the identity, otherwise the pairs
    are applied one at a time.
    """
    if mode == "wrap":
        return overflow(acc + addends.sum(axis=0), bits, mode)
    lo, hi = signed_range(bits)
    running = acc + np.cumsum(addends, axis=0)
    if running.size == 0:
        return acc
    if running.min() >= lo and running.max() <= hi:
        return running[-1]
    for p in range(addends.shape[0]):
        acc = overflow(acc + addends[p], bits, mode)
    return acc


def _check_join_inputs(spike_fiber: Fiber, weight_fiber: Fiber, cfg: SnnConfig) -> None:
    if not isinstance(spike_fiber, Fiber) or not isinstance(weight_fiber, Fiber):
        raise ValueError("join takes a spike Fiber and a weight Fiber")
    if spike_fiber.length != weight_fiber.length:
        raise ValueError(f"spike fiber has {spike_fiber.length} neurons, weight fiber "
                         f"{weight_fiber.length}")
    for label, f in (("spike", spike_fiber), ("weight", weight_fiber)):
        if f.chunk != cfg.chunk:
            raise ValueError(f"{label} fiber is chunked by {f.chunk}, config chunk is {cfg.chunk}")
    for c, vals in enumerate(spike_fiber.values):
        _check_words(vals, cfg.timesteps, f"spike words of chunk {c}")
    for vals in weight_fiber.values:
        _check_weights(vals, cfg)


def join(spike_fiber: Fiber, weight_fiber: Fiber, cfg: SnnConfig) -> JoinTrace:
    """Join one sample's spike fiber with one output neuron's weight fiber (spec rule 3)."""
    _check_join_inputs(spike_fiber, weight_fiber, cfg)
    steps = np.arange(cfg.timesteps, dtype=np.int64)
    acc_bits, mode = cfg.acc_bits, cfg.acc_overflow
    pairs = [_matched_pairs(spike_fiber, weight_fiber, c) for c in range(spike_fiber.chunks)]
    per_chunk = tuple(len(pos) for pos, _, _ in pairs)
    o = np.zeros(cfg.timesteps, dtype=np.int64)

    if cfg.dataflow == "sequential":
        step_matches = np.zeros(cfg.timesteps, dtype=np.int64)
        for t in range(cfg.timesteps):
            ot = np.int64(0)
            for c in range(spike_fiber.chunks):
                sm, wm = spike_fiber.masks[c], weight_fiber.masks[c]
                # Per-timestep spike mask: kept neurons whose word has bit t set.
                mask_t = sum(1 << i for rank, i in enumerate(_set_bits(sm))
                             if (int(spike_fiber.values[c][rank]) >> t) & 1)
                positions = _set_bits(mask_t & wm)
                w = np.array([weight_fiber.values[c][(wm & ((1 << i) - 1)).bit_count()]
                              for i in positions], dtype=np.int64)
                step_matches[t] += len(positions)
                ot = _accumulate(ot, w, acc_bits, mode)
            o[t] = ot
        return JoinTrace(o=o, matches=sum(per_chunk), matches_per_chunk=per_chunk,
                         step_matches=step_matches)

    if cfg.join == "fast":
        for _, s, w in pairs:
            fired = (s[:, None] >> steps) & 1                       # (pairs, T)
            o = _accumulate(o, w[:, None] * fired, acc_bits, mode)
        return JoinTrace(o=o, matches=sum(per_chunk), matches_per_chunk=per_chunk)

    # laggy: every matched weight goes into the pseudo-accumulator at once (as if the neuron fired
    # at every t); corr[t] collects it where the neuron did not fire at t.
    pseudo = np.int64(0)
    corr = np.zeros(cfg.timesteps, dtype=np.int64)
    for _, s, w in pairs:
        silent = 1 - ((s[:, None] >> steps) & 1)                    # (pairs, T)
        pseudo = _accumulate(pseudo, w, acc_bits, mode)
        corr = _accumulate(corr, w[:, None] * silent, cfg.correction_bits, mode)
    o = overflow(pseudo - corr, acc_bits, mode)
    return JoinTrace(o=o, matches=sum(per_chunk), matches_per_chunk=per_chunk,
                     pseudo=int(pseudo), corr=corr)


# --- rule 4: LIF ---------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class LifTrace:
    """One (sample, output neuron) LIF run over t = 0..T-1.

    spikes : (T,) C[t], 0/1
    x : (T,) membrane X = ovf(U + O[t]) before the fire decision
    u : (T,) membrane U after reset and leak (the value carried into step t + 1)
    """

    spikes: np.ndarray
    x: np.ndarray
    u: np.ndarray


def _shr(x: int, s: int, rounding: str) -> int:
    """Shift right by s: arithmetic (floor) or add half then floor (half_up); s = 0 is x."""
    if s == 0:
        return x
    if rounding == "floor":
        return x >> s
    return (x + (1 << (s - 1))) >> s


def lif(o, cfg: SnnConfig) -> LifTrace:
    """Unrolled LIF over the join result ``o`` (T,) (spec rule 4); U starts at 0."""
    o = _int_array(o, "o")
    if o.shape != (cfg.timesteps,):
        raise ValueError(f"o of shape {o.shape}: expected ({cfg.timesteps},)")
    lo, hi = signed_range(cfg.acc_bits)
    if o.size and (o.min() < lo or o.max() > hi):
        raise ValueError(f"o must lie in {lo}..{hi} (acc_bits = {cfg.acc_bits})")
    bits, mode, theta, s = cfg.u_bits, cfg.membrane_overflow, cfg.threshold, cfg.leak_shift
    spikes, xs, us = (np.zeros(cfg.timesteps, dtype=np.int64) for _ in range(3))
    u = 0
    for t in range(cfg.timesteps):
        x = int(overflow(u + int(o[t]), bits, mode))
        fire = x >= theta if cfg.fire == "ge" else x > theta
        if fire:
            u = 0 if cfg.reset == "zero" else int(overflow(x - theta, bits, mode))
        else:
            u = x
        if cfg.leak == "subtract_shift":
            u = u - _shr(u, s, cfg.rounding)
        elif cfg.leak == "shift":
            u = _shr(u, s, cfg.rounding)
        spikes[t], xs[t], us[t] = int(fire), x, u
    return LifTrace(spikes=spikes, x=xs, u=us)


# --- rule 5: a layer -----------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class LayerTrace:
    """Every stage of one layer: M samples, K input neurons, N output neurons, T timesteps."""

    words: np.ndarray                                # (M, K) packed input words
    spike_fibers: tuple[Fiber, ...]                  # per sample
    weight_fibers: tuple[Fiber, ...]                 # per output neuron
    joins: tuple[tuple[JoinTrace, ...], ...]         # [m][n]
    o: np.ndarray                                    # (M, N, T)
    lifs: tuple[tuple[LifTrace, ...], ...]           # [m][n]
    spikes: np.ndarray                               # (M, N, T)
    out_words: np.ndarray                            # (M, N)
    out_fibers: tuple[Fiber, ...]                    # per sample, same chunk and min_spikes


def _check_layer(a, b, cfg: SnnConfig) -> tuple[np.ndarray, np.ndarray]:
    a = _int_array(a, "spikes")
    b = _int_array(b, "weights")
    k, n, t = cfg.in_neurons, cfg.out_neurons, cfg.timesteps
    if a.ndim != 3 or a.shape[0] < 1 or a.shape[1:] != (k, t):
        raise ValueError(f"spikes of shape {a.shape}: expected (M >= 1, {k}, {t}) for "
                         f"in_neurons = {k}, timesteps = {t}")
    if b.shape != (k, n):
        raise ValueError(f"weights of shape {b.shape}: expected ({k}, {n}) for in_neurons = {k}, "
                         f"out_neurons = {n}")
    _check_spike_bits(a, "spikes")
    _check_weights(b, cfg)
    return a, b


def layer(a, b, cfg: SnnConfig) -> LayerTrace:
    """Run one layer: spikes ``a`` (M, K, T) 0/1 and weights ``b`` (K, N)."""
    a, b = _check_layer(a, b, cfg)
    words = pack_spikes(a)
    spike_fibers = tuple(compress_spikes(words[m], cfg) for m in range(a.shape[0]))
    weight_fibers = tuple(compress_weights(b[:, n], cfg) for n in range(b.shape[1]))
    joins = tuple(tuple(join(sf, wf, cfg) for wf in weight_fibers) for sf in spike_fibers)
    o = np.array([[j.o for j in row] for row in joins], dtype=np.int64).reshape(
        a.shape[0], b.shape[1], cfg.timesteps)
    lifs = tuple(tuple(lif(j.o, cfg) for j in row) for row in joins)
    spikes = np.array([[tr.spikes for tr in row] for row in lifs], dtype=np.int64).reshape(o.shape)
    out_words = pack_spikes(spikes)
    out_fibers = tuple(compress_spikes(out_words[m], cfg) for m in range(a.shape[0]))
    return LayerTrace(words=words, spike_fibers=spike_fibers, weight_fibers=weight_fibers,
                      joins=joins, o=o, lifs=lifs, spikes=spikes, out_words=out_words,
                      out_fibers=out_fibers)


def float_reference(a, b) -> np.ndarray:
    """Exact ``O[m, n, t] = sum_k A[m, k, t] * B[k, n]`` (int64): no compression (neurons below
    ``min_spikes`` count too), no overflow. For tests and accuracy reports."""
    a = _int_array(a, "spikes")
    b = _int_array(b, "weights")
    if a.ndim != 3 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"spikes of shape {a.shape} and weights of shape {b.shape}: expected "
                         f"(M, K, T) and (K, N)")
    _check_spike_bits(a, "spikes")
    return np.einsum("mkt,kn->mnt", a, b)
