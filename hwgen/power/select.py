"""Power-aware weight-set selection: pick an allowed set S per layer under an output-error budget.

docs/architecture.md §4.1 ("a selection routine picks S under an output-error budget"), after Fang,
Zhang and
Huang (2025) and PowerPruning (DAC 2023). Pure numpy; :func:`select_weight_sets` is the routine,
``hwgen select`` its command line (:mod:`.report` reads the inputs and writes the output folder).

Inputs
------
A :class:`Layer` is a weight matrix ``W`` of shape ``(K, C_out)`` (every value in the config's
``weight_bits`` two's-complement range) and the activation rows ``A`` of shape ``(B, K)`` that
stream through it, in this order (``B >= 2``; every value in the activation range). The layer
computes ``Y = A @ W``.

Energy estimate used for ranking (the "surrogate")
--------------------------------------------------
A weight ``v`` at reduction input ``k`` (row ``k`` of ``W``) sits in a weight-stationary PE that
sees the activations ``a[0, k], a[1, k], ...`` one after another. Its cost is::

    F[k, v] = cost.of(v) * sum_b popcount((a[b, k] ^ a[b+1, k]) & act_mask)
              + sum_b popcount(((v * a[b, k]) ^ (v * a[b+1, k])) & prod_mask)

summed over consecutive rows ``b = 0 .. B-2``, with ``act_mask = 2**act_bits - 1`` and
``prod_mask = 2**prod_bits - 1`` (bit patterns are two's complement). The first term is the
multiplier's calibrated internal switching (:mod:`.calibration`: gate-output toggles per
activation bit toggle for weight ``v``), the second the toggles of the PE's product register.
For a dense array streaming the rows in order both are exact; with N:M sparsity a PE's product
register holds the sum of its N products, so the second term is a separable approximation there.
Partial-sum toggles depend on every weight of a column at once and are not in the surrogate; so
are tile boundaries and pipeline bubbles. The surrogate energy of a layer is
``sum_{k, c} F[k, Wp[k, c]]`` for its projected weights ``Wp``. It only ranks removals: the
numbers ``hwgen select`` reports before and after come from the full cycle-by-cycle proxy
(:func:`.layer.layer_energy`), which includes the partial sums. Unit: toggles, not joules.

Output error
------------
A layer's error is the relative Frobenius error of its ideal (unbounded, no wrap or saturation)
outputs, ``||A (Wp - W)||_F / ||A W||_F`` (0 when ``A W = 0``), computed in float64 from the
Gram matrix ``G = A^T A`` (exact while ``B * max|a|**2 < 2**53``) as
``sqrt(sum_c d_c^T G d_c) / sqrt(sum_c w_c^T G w_c)`` with ``D = Wp - W``. The **global error of
several layers is the sum of their relative errors**; ``max_error`` bounds that sum.

The greedy path
---------------
1. Each layer starts from the distinct values of its weights plus 0 (so ``Wp = W``, error 0).
   0 is never removed (pruned weights and N:M padding are 0) and a set never shrinks below
   2 values.
2. A candidate is a pair (layer, ``v``) with ``v != 0`` in a layer whose set has more than 2
   values. Removing ``v`` from ``S`` re-projects the weights: ``Wp = project(W, S \\ {v})``
   (nearest remaining value of the *original* weight, ties toward 0, see
   :func:`hwgen.engines.mac_array.weight_set.project`); only the weights projected to ``v``
   move, each to the remaining neighbour of ``v`` nearer to its original value. For each
   candidate, ``saving`` = the drop of the layer's surrogate energy and ``d_error`` = the rise
   of the layer's relative error.
3. Each step removes the candidate with the largest ``saving / d_error`` (``d_error <= 1e-15``,
   including a falling error, counts as an infinite ratio); ties go to the larger saving, then
   the smaller ``|v|``, then the smaller ``v``, then the earlier layer. A layer with more energy
   saves more per unit of error, so higher-energy layers end with smaller sets under one budget.
4. Stop rule: while some layer has more than ``max_values`` values, only those layers' values are
   candidates and the budget is ignored (the size is forced). After that, with
   ``max_error=None`` the path stops; otherwise only candidates that keep the global error
   ``<= max_error`` are allowed, and the path stops when there is none. If the global error then
   exceeds ``max_error`` (only a forced size can cause it), :class:`SelectionError` says so.

Cost: one :func:`value_costs` pass per layer (``K * B`` per distinct weight value), one Gram
matrix (``B * K**2``), then per removal work linear in ``K * C_out`` plus two ``K x K`` by
``K x C_out`` products; about 8 s on two cores for ``K = 256, C_out = 128, B = 2000`` with
8-bit weights using all 256 values, through the whole path (256 -> 2 values).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

import numpy as np

from hwgen.config import ConfigError, check_name
from hwgen.engines.mac_array.config import MacArrayConfig
from hwgen.engines.mac_array.golden import NMPatternError, compress_nm, operand_ranges
from hwgen.engines.mac_array.weight_set import describe, project

from .calibration import MultiplierCost, multiplier_cost

__all__ = ["Layer", "LayerSelection", "PathPoint", "Selection", "SelectionError", "check_config",
           "check_layer", "layer_config", "select_weight_sets", "value_costs"]

#: ``d_error`` at or below this counts as no error increase (an infinite saving/error ratio).
ERROR_EPS = 1e-15

#: Largest int64 block :func:`value_costs` builds at once (elements, 16 MiB).
_CHUNK_ELEMENTS = 1 << 21

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class Layer:
    """One layer to select a weight set for.

    name : identifier (``[A-Za-z_][A-Za-z0-9_]*``); the layer's config is ``<cfg.name>_<name>``
    weights : (K, C_out) integers, every value in the config's weight range
    acts : (B, K) integers in the activation range, B >= 2; rows stream in this order
    """

    name: str
    weights: np.ndarray
    acts: np.ndarray


class SelectionError(ValueError):
    """No weight sets satisfy the request (one line saying why)."""


@dataclass(frozen=True)
class PathPoint:
    """The state after one greedy removal.

    layer, removed : which value left which layer's set
    sizes : layer -> set size after the removal
    error : global error (sum of the layers' relative errors) after the removal
    surrogate : layer -> surrogate energy after the removal
    """

    layer: str
    removed: int
    sizes: dict[str, int]
    error: float
    surrogate: dict[str, float]


@dataclass(frozen=True)
class LayerSelection:
    """The chosen set of one layer.

    values : the allowed set S, ascending (contains 0)
    projected : (K, C_out) int64, ``project(weights, values)``
    error : relative output error ``||A (projected - W)|| / ||A W||``
    surrogate_before, surrogate_after : surrogate energy of the original and projected weights
    """

    name: str
    values: tuple[int, ...]
    projected: np.ndarray
    error: float
    surrogate_before: float
    surrogate_after: float


@dataclass(frozen=True)
class Selection:
    """Result of :func:`select_weight_sets`: one :class:`LayerSelection` per layer (input
    order), the greedy path (one point per removal) and the request."""

    layers: tuple[LayerSelection, ...]
    path: tuple[PathPoint, ...]
    max_error: float | None
    max_values: int | None

    @property
    def error(self) -> float:
        """The global error: the sum of the layers' relative errors."""
        return float(sum(layer.error for layer in self.layers))


# --- validation ----------------------------------------------------------------------------------

def check_config(cfg) -> MacArrayConfig:
    """``cfg`` if it is a :class:`MacArrayConfig` with ``weight_set = "all"``, else ValueError."""
    if not isinstance(cfg, MacArrayConfig):
        kind = getattr(cfg, "kind", type(cfg).__name__)
        # ValueError like every other bad argument, so callers catch one type.
        raise ValueError(  # noqa: TRY004
            f"engine = {kind!r}: weight-set selection needs a mac_array config")
    if cfg.weight_set != "all":
        raise ValueError(f"weight_set = {describe(cfg.weight_set)}: expected \"all\" (the "
                         f"selection chooses the set; the weights must be plain "
                         f"{cfg.weight_bits}-bit values)")
    return cfg


def _check_ints(label: str, array, what: str, bits_text: str, lo: int, hi: int) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.kind not in "iu":
        raise ValueError(f"{label}: dtype {array.dtype}: expected integer {what}; quantize to "
                         f"{bits_text} integers ({lo}..{hi}) first")
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"{label}: shape {array.shape}: expected a non-empty 2-D array")
    # Compare before converting: a uint64 beyond int64 must not wrap into the range.
    outside = (array < lo) | (array > hi)
    if outside.any():
        where = tuple(int(i) for i in np.argwhere(outside)[0])
        raise ValueError(f"{label}: {what[:-1]} {int(array[where])} at {where} is outside the "
                         f"{bits_text} range {lo}..{hi}")
    return array.astype(np.int64)


def check_layer(cfg: MacArrayConfig, layer: Layer, weights_label: str | None = None,
                acts_label: str | None = None) -> Layer:
    """Validate one layer against ``cfg``; return it with int64 arrays.

    Messages start with ``weights_label`` / ``acts_label`` (default ``layer 'name' weights`` /
    ``... acts``), so the command line can name its input files instead.

    Raises
    ------
    ValueError
        One line naming the layer, the problem and what is allowed: a bad name, non-integer
        arrays, wrong shapes (``(K, C_out)`` and ``(B, K)`` with ``B >= 2``), a value out of
        range, or weights that are all 0 (no set to choose).
    """
    name = layer.name
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"layer name {name!r}: expected an identifier matching "
                         f"[A-Za-z_][A-Za-z0-9_]*")
    try:
        check_name("name", f"{cfg.name}_{name}")
    except ConfigError as exc:
        raise ValueError(f"layer {name!r}: its config name {cfg.name}_{name} is not allowed "
                         f"({exc})") from None
    wl = weights_label or f"layer {name!r} weights"
    al = acts_label or f"layer {name!r} acts"
    ranges = operand_ranges(cfg)
    weights = _check_ints(wl, layer.weights, "weights", f"{cfg.weight_bits}-bit signed",
                          *ranges["weight"])
    k = weights.shape[0]
    acts_in = np.asarray(layer.acts)
    if acts_in.ndim != 2 or acts_in.shape[1] != k or acts_in.shape[0] < 2:
        raise ValueError(f"{al}: shape {acts_in.shape}: expected (B, {k}) with B >= 2 rows "
                         f"(the weights have shape {weights.shape}, K = {k})")
    acts = _check_ints(al, acts_in, "activations",
                       f"{cfg.act_bits}-bit {'signed' if cfg.act_signed else 'unsigned'}",
                       *ranges["act"])
    if not weights.any():
        raise ValueError(f"{wl}: every weight is 0: nothing to select (a weight set needs 0 "
                         f"and one other value)")
    if cfg.m > 1:
        # The array takes K in groups of M (the last one zero-padded); projecting keeps zeros,
        # so weights that follow the N:M pattern keep following it.
        padded = np.zeros((-(-k // cfg.m) * cfg.m, weights.shape[1]), dtype=np.int64)
        padded[:k] = weights
        try:
            compress_nm(padded, cfg.n, cfg.m)
        except NMPatternError as exc:
            raise ValueError(f"{wl}: {exc}") from None
    return Layer(name, weights, acts)


def _check_budget(max_error, max_values) -> tuple[float | None, int | None]:
    if max_error is not None:
        if isinstance(max_error, bool) or not isinstance(max_error, (int, float, np.number)) \
                or not math.isfinite(max_error) or max_error < 0:
            raise ValueError(f"max_error = {max_error!r}: expected a finite number >= 0")
        max_error = float(max_error)
    if max_values is not None:
        if isinstance(max_values, bool) or not isinstance(max_values, (int, np.integer)) \
                or max_values < 2:
            raise ValueError(f"max_values = {max_values!r}: expected an integer >= 2 (0 and "
                             f"one other value)")
        max_values = int(max_values)
    if max_error is None and max_values is None:
        raise ValueError("max_error = None: expected a number >= 0, or max_values to give a "
                         "set size instead")
    return max_error, max_values


def _check_cost(cfg: MacArrayConfig, cost) -> MultiplierCost:
    if cost is None:
        return multiplier_cost(cfg.weight_bits, cfg.act_bits, cfg.act_signed)
    shape = (cost.weight_bits, cost.act_bits, cost.act_signed)
    if shape != (cfg.weight_bits, cfg.act_bits, cfg.act_signed):
        raise ValueError(f"cost table is for weight_bits, act_bits, act_signed = {shape}; the "
                         f"config has {(cfg.weight_bits, cfg.act_bits, cfg.act_signed)}")
    return cost


# --- the surrogate -------------------------------------------------------------------------------

def _value_costs(cfg: MacArrayConfig, acts: np.ndarray, values: np.ndarray,
                 cost: MultiplierCost) -> np.ndarray:
    """``F[:, values]`` (see the module doc) for int64 ``acts`` (B, K): shape (K, len(values))."""
    acts = np.asarray(acts, dtype=np.int64)
    b, k = acts.shape
    act_mask = np.int64((1 << cfg.act_bits) - 1)
    prod_mask = np.int64((1 << cfg.prod_bits) - 1)
    flips = np.zeros(k, dtype=np.int64)
    prod_flips = np.zeros((k, len(values)), dtype=np.int64)
    step = max(1, _CHUNK_ELEMENTS // k)
    for start in range(0, b - 1, step):
        block = acts[start:start + step + 1]            # one row of overlap with the next block
        flips += np.bitwise_count((block[1:] ^ block[:-1]) & act_mask).sum(axis=0,
                                                                          dtype=np.int64)
        for j, v in enumerate(values):
            prod = block * v
            prod_flips[:, j] += np.bitwise_count((prod[1:] ^ prod[:-1]) & prod_mask).sum(
                axis=0, dtype=np.int64)
    mult = cost.of(np.asarray(values, dtype=np.int64))
    return mult[None, :] * flips[:, None].astype(np.float64) + prod_flips


def value_costs(cfg: MacArrayConfig, acts, cost: MultiplierCost | None = None) -> np.ndarray:
    """The surrogate cost table ``F`` of the module doc for every weight value.

    Parameters
    ----------
    cfg : MacArrayConfig
        Gives ``weight_bits``, ``act_bits``, ``act_signed`` and ``prod_bits``.
    acts : (B, K) integers in the activation range, B >= 2
        Activation rows in stream order.
    cost : MultiplierCost, optional
        The multiplier's table; default :func:`.calibration.multiplier_cost` for ``cfg``.

    Returns
    -------
    numpy.ndarray
        float64, shape ``(K, 2**weight_bits)``; ``F[k, v - w_min]`` is the surrogate energy of
        weight ``v`` at reduction input ``k`` (``w_min = -2**(weight_bits - 1)``).
    """
    acts_in = np.asarray(acts)
    if acts_in.ndim != 2 or acts_in.shape[0] < 2 or acts_in.shape[1] < 1:
        raise ValueError(f"acts: shape {acts_in.shape}: expected (B, K) with B >= 2 rows")
    lo, hi = operand_ranges(cfg)["act"]
    acts = _check_ints("acts", acts_in, "activations", f"{cfg.act_bits}-bit", lo, hi)
    cost = _check_cost(cfg, cost)
    w_lo, w_hi = operand_ranges(cfg)["weight"]
    return _value_costs(cfg, acts, np.arange(w_lo, w_hi + 1, dtype=np.int64), cost)


# --- the greedy path -----------------------------------------------------------------------------

class _LayerState:
    """One layer on the greedy path.

    Values are indexed into ``self.values`` (the starting set, ascending). ``idx`` is the current
    projection as such indices; for every entry, ``cand_new``/``cand_delta``/``cand_saving`` say
    where it goes, by how much its weight changes and what surrogate energy that saves if its
    current value is removed. Per value: ``quad[i] = Delta_i^T G Delta_i`` of removing value i.
    """

    def __init__(self, cfg: MacArrayConfig, layer: Layer, cost: MultiplierCost):
        self.name = layer.name
        w = layer.weights
        self.shape = w.shape
        self.w_flat = w.ravel()
        self.values = np.unique(np.append(self.w_flat, 0))
        self.zero = int(np.searchsorted(self.values, 0))
        n = len(self.values)
        self.alive = np.ones(n, dtype=bool)
        self.idx = np.searchsorted(self.values, self.w_flat)          # flat (K * C)
        self.rows = np.repeat(np.arange(self.shape[0]), self.shape[1])
        self.cols = np.tile(np.arange(self.shape[1]), self.shape[0])
        self.F = _value_costs(cfg, layer.acts, self.values, cost)       # (K, n)
        a = layer.acts.astype(np.float64)
        self.G = a.T @ a                                                # exact integers
        wf = w.astype(np.float64)
        self.norm = math.sqrt(max(float(np.sum(wf * (self.G @ wf))), 0.0))
        self.D = np.zeros(self.shape)                                   # Wp - W
        self.GD = np.zeros(self.shape)
        self.col_e2 = np.zeros(self.shape[1])                           # d_c^T G d_c
        order = np.argsort(self.idx, kind="stable")
        bounds = np.searchsorted(self.idx[order], np.arange(n + 1))
        self.groups = [order[bounds[i]:bounds[i + 1]] for i in range(n)]
        self.cand_new = self.idx.copy()
        self.cand_delta = np.zeros(self.w_flat.shape)
        self.cand_saving = np.zeros(self.w_flat.shape)
        self.quad = np.zeros(n)
        for i in range(n):
            self._refresh(i)
        self.surrogate_before = self.surrogate()
        self._cross = None

    # value bookkeeping

    @property
    def size(self) -> int:
        return int(self.alive.sum())

    def error(self) -> float:
        return self._error(float(self.col_e2.sum()))

    def _error(self, e2: float) -> float:
        return math.sqrt(max(e2, 0.0)) / self.norm if self.norm > 0 else 0.0

    def surrogate(self) -> float:
        return float(self.F[self.rows, self.idx].sum())

    def _neighbours(self, i: int) -> list[int]:
        alive = np.flatnonzero(self.alive)
        pos = int(np.searchsorted(alive, i))
        return [int(j) for j in (alive[pos - 1] if pos > 0 else -1,
                                 alive[pos + 1] if pos + 1 < len(alive) else -1) if j >= 0]

    def _refresh(self, i: int) -> None:
        """Recompute what removing value i would do (its entries or neighbours changed)."""
        entries = self.groups[i]
        if i == self.zero or not self.alive[i] or entries.size == 0:
            self.quad[i] = 0.0
            return
        near = self._neighbours(i)
        if not near:
            return
        targets = self.values[near]
        new_values = project(self.w_flat[entries], targets)
        new = np.asarray(near)[np.searchsorted(targets, new_values)]
        delta = (new_values - self.values[i]).astype(np.float64)
        self.cand_new[entries] = new
        self.cand_delta[entries] = delta
        rows = self.rows[entries]
        self.cand_saving[entries] = self.F[rows, i] - self.F[rows, new]
        # Delta^T G Delta over the rows and columns the move touches only.
        touched, row_at = np.unique(rows, return_inverse=True)
        cols, col_at = np.unique(self.cols[entries], return_inverse=True)
        block = np.zeros((len(touched), len(cols)))
        block[row_at, col_at] = delta
        self.quad[i] = float(np.sum(block * (self.G[np.ix_(touched, touched)] @ block)))

    def candidates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(value indices, saving, new layer error) of every removable value."""
        if self.size <= 2:
            empty = np.zeros(0)
            return empty.astype(np.int64), empty, empty
        n = len(self.values)
        if self._cross is None:
            self._cross = np.bincount(self.idx, weights=self.cand_delta * self.GD.ravel(),
                                      minlength=n)
        saving = np.bincount(self.idx, weights=self.cand_saving, minlength=n)
        e2 = float(self.col_e2.sum()) + 2 * self._cross + self.quad
        new_error = np.sqrt(np.maximum(e2, 0.0)) / self.norm if self.norm > 0 else np.zeros(n)
        ok = self.alive.copy()
        ok[self.zero] = False
        which = np.flatnonzero(ok)
        return which, saving[which], new_error[which]

    def trial(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """The exact new state of removing value i: entries, new D columns, their GD, error."""
        entries = self.groups[i]
        cols = np.unique(self.cols[entries])
        d = self.D.copy().ravel()
        d[entries] += self.cand_delta[entries]
        d_cols = d.reshape(self.shape)[:, cols]
        gd_cols = self.G @ d_cols
        col_e2 = self.col_e2.copy()
        col_e2[cols] = np.sum(d_cols * gd_cols, axis=0)
        return cols, d_cols, gd_cols, self._error(float(col_e2.sum()))

    def remove(self, i: int, trial) -> None:
        cols, d_cols, gd_cols, _ = trial
        entries = self.groups[i]
        near = self._neighbours(i)
        new = self.cand_new[entries]
        self.idx[entries] = new
        self.D[:, cols] = d_cols
        self.GD[:, cols] = gd_cols
        self.col_e2[cols] = np.sum(d_cols * gd_cols, axis=0)
        self.alive[i] = False
        self.groups[i] = entries[:0]
        for j in near:
            self.groups[j] = np.sort(np.concatenate([self.groups[j], entries[new == j]]))
        for j in near:
            self._refresh(j)
        self._cross = None

    def result(self) -> LayerSelection:
        projected = self.values[self.idx].reshape(self.shape).astype(np.int64)
        return LayerSelection(name=self.name,
                              values=tuple(int(v) for v in self.values[self.alive]),
                              projected=projected, error=self.error(),
                              surrogate_before=self.surrogate_before,
                              surrogate_after=self.surrogate())


def _fmt(x: float, other: float) -> str:
    """``x`` with enough digits to differ from ``other`` in print (3 significant at least)."""
    for digits in range(3, 18):
        if f"{x:.{digits}g}" != f"{other:.{digits}g}":
            return f"{x:.{digits}g}"
    return repr(x)


def select_weight_sets(cfg: MacArrayConfig, layers, max_error: float | None,
                       max_values: int | None = None,
                       cost: MultiplierCost | None = None) -> Selection:
    """Pick one allowed weight set per layer by the greedy path of the module doc.

    Parameters
    ----------
    cfg : MacArrayConfig
        The array the layers run on; ``weight_set`` must be ``"all"``.
    layers : sequence of Layer
        At least one, with distinct identifier names (see :func:`check_layer`).
    max_error : float or None
        Budget on the global error (sum of the layers' relative output errors), ``>= 0``.
        None: stop as soon as every set has at most ``max_values`` values.
    max_values : int, optional
        Largest set size, ``>= 2``; reached first, whatever the error. Required when
        ``max_error`` is None.
    cost : MultiplierCost, optional
        The multiplier table; default :func:`.calibration.multiplier_cost` for ``cfg``.

    Returns
    -------
    Selection

    Raises
    ------
    ValueError
        A bad argument or layer (one line naming it, its value and what is allowed).
    SelectionError
        ``max_values`` forces a global error above ``max_error``.
    """
    cfg = check_config(cfg)
    max_error, max_values = _check_budget(max_error, max_values)
    layers = list(layers)
    if not layers:
        raise ValueError("layers: expected at least one layer")
    seen = set()
    for layer in layers:
        if not isinstance(layer, Layer):
            raise ValueError(  # noqa: TRY004
                f"layers: expected Layer objects, got {type(layer).__name__}")
        if layer.name in seen:
            raise ValueError(f"layer name {layer.name!r} is used twice: expected distinct names")
        seen.add(layer.name)
    layers = [check_layer(cfg, layer) for layer in layers]
    cost = _check_cost(cfg, cost)

    states = [_LayerState(cfg, layer, cost) for layer in layers]
    errors = [s.error() for s in states]
    path = []
    while True:
        forced = max_values is not None and any(s.size > max_values for s in states)
        if not forced and max_error is None:
            break
        keys, choices = [], []
        for n, s in enumerate(states):
            if forced and s.size <= max_values:
                continue
            which, saving, new_error = s.candidates()
            d_error = new_error - errors[n]
            total = sum(errors) - errors[n] + new_error
            for j in range(len(which)):
                if not forced and total[j] > max_error:
                    continue
                ratio = math.inf if d_error[j] <= ERROR_EPS else saving[j] / d_error[j]
                v = int(s.values[which[j]])
                keys.append((-ratio, -float(saving[j]), abs(v), v, n))
                choices.append((n, int(which[j])))
        chosen = None
        for key_pos in sorted(range(len(keys)), key=keys.__getitem__):
            n, i = choices[key_pos]
            trial = states[n].trial(i)
            # The ranking predicted the error from cached terms; the exact recomputation decides.
            if forced or sum(errors) - errors[n] + trial[3] <= max_error:
                chosen = n, i, trial
                break
        if chosen is None:
            break
        n, i, trial = chosen
        s = states[n]
        removed = int(s.values[i])
        s.remove(i, trial)
        errors[n] = s.error()
        path.append(PathPoint(layer=s.name, removed=removed,
                              sizes={t.name: t.size for t in states}, error=float(sum(errors)),
                              surrogate={t.name: t.surrogate() for t in states}))

    total = float(sum(errors))
    if max_error is not None and total > max_error:
        raise SelectionError(f"max_values = {max_values} needs output error "
                             f"{_fmt(total, max_error)} > max_error {_fmt(max_error, total)}")
    return Selection(layers=tuple(s.result() for s in states), path=tuple(path),
                     max_error=max_error, max_values=max_values)


def layer_config(cfg: MacArrayConfig, selection_layer: LayerSelection) -> MacArrayConfig:
    """``cfg`` for one selected layer: named ``<cfg.name>_<layer>``, ``weight_set`` = its set.

    Raises
    ------
    ValueError
        The combined name is not a valid config name (an identifier of at most 64 characters,
        not a Verilog keyword).
    """
    name = f"{cfg.name}_{selection_layer.name}"
    try:
        check_name("name", name)
    except ConfigError as exc:
        raise ValueError(f"layer {selection_layer.name!r}: its config name is not allowed "
                         f"({exc})") from None
    return dataclasses.replace(cfg, name=name, weight_set=tuple(selection_layer.values))
