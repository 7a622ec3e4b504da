"""Switching-activity energy proxy of the MAC array (docs/architecture.md §4.1, power-aware weight
sets).

Dynamic power is switched capacitance times V^2 f; which weight values a layer uses changes how
often the array's nets switch. This module counts that switching for one run of the array, as a
*proxy*: the unit is the toggle, not the joule.

The proxy
---------
``register_toggles``
    For every PE register, the Hamming distance between its bit patterns in consecutive cycles,
    summed over the run, by category:

    ``psum_lsb`` / ``psum_msb``
        the partial-sum register split into its low ``acc_bits - psum_msb_bits`` bits and its top
        ``cfg.psum_msb_bits`` bits (the guard and sign bits, which flip together whenever a
        partial sum changes sign);
    ``act``
        the activation registers a PE passes to its right neighbour (columns 0..C-2);
    ``sel``
        the registers holding each multiplier's activation operand (the A input registers of the
        PE's DSP products; N:M: the activation the index selected);
    ``prod``
        the product registers (the DSP products' output registers) and, with N > 1 products per
        PE, the register of their sum;
    ``weight``
        both weight register sets of a PE, the active one its multipliers read (the B input
        registers of its DSP products) and the next tile's that the weight beats write (decoded
        weights: a weight set's codes are decoded as they load; with shift PEs, decoded to the
        shift codes the registers hold);
    ``idx``
        N:M only: both position-index register sets.

``multiplier_toggles``
    Switching inside the multipliers, which registers cannot see: whenever the activation input
    of a multiplier changes, :mod:`.calibration`'s cost of its weight value (gate-output toggles
    per activation bit toggle, from a gate-level netlist) times the number of activation bits
    that changed. With shift PEs the table is the shift product's own calibration (its
    shifter, negation and zero gate), not the multiplier's.

``total`` adds both. One register bit toggle and one gate-output toggle count the same, which is
the proxy's main simplification (a flip-flop with its clock load costs more than a gate output).

The register trace
------------------
The values come from replaying the array's pipeline (docs/architecture.md §4.1 and the
microarchitecture table
in :mod:`hwgen.engines.mac_array.rtl`) cycle by cycle from a :class:`Schedule` of the run: the
cycles in which a weight beat or an activation row transferred, and the cycles in which a result
was offered but not taken. A stalled cycle freezes every datapath register in the cycle after it
(the array's advance enable is a register, and the result not taken waits in its output skid
register meanwhile); any other cycle is a step, and a step without a new row carries zeros. Weight beats load PE row r's *next* weight (and
index) registers at the transfer, stalled or not. Every datapath register starts at zero (it has
no reset, and its initial value is zero). In step terms, with X[s] the activation row entering in
step s (zeros for a bubble) and P = ``cfg.pe_stages``, after step s::

    left input of PE (r, c)    X[s - r - c][r*M : r*M + M]
    a     (c < C - 1)          the left input one step earlier
    sel[j]                     left input one step earlier, element idx[j] (dense: its only one)
    prod[j]                    w[j] * sel[j], both one step earlier
    prod_sum   (N > 1)         sum_j prod[j] one step earlier
    psum                       overflow(psum of PE (r-1, c) + prod[0] (N > 1: prod_sum), one
                               step earlier)
    idx[j]     (N:M)           next idx[j], if X[s - r - c] is a tile's first row
    w[j]                       next w[j], if X[s - r - c - 1] is a tile's first row

so a tile's first row meets that tile's weights in every PE, and the row before it the old ones.

:func:`trace_registers` keeps every value (for checking against a waveform);
:func:`energy_proxy` only accumulates toggles, so it runs on long layers in constant memory.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from hwgen.engines.mac_array.config import MacArrayConfig
from hwgen.engines.mac_array.golden import Tile, _check_tile, cycle_model
from hwgen.engines.mac_array.weight_set import codebook
from hwgen.fixedpoint import overflow
from hwgen.hdl.shift import encode as encode_shift

from .calibration import MultiplierCost, pe_cost

__all__ = ["CATEGORIES", "Schedule", "ideal_schedule", "RegisterTrace", "register_name",
           "trace_registers", "EnergyProxy", "energy_proxy"]

#: Register categories of the proxy, in report order.
CATEGORIES = ("psum_lsb", "psum_msb", "act", "sel", "prod", "weight", "idx")


@dataclass(frozen=True)
class Schedule:
    """When things happened in one run, in cycles counted from 0.

    cycles : length of the run; the trace holds the register values of cycles 0 .. cycles-1
    weight_cycles : cycles in which a weight beat transferred, in order (R per tile)
    act_cycles : cycles in which an activation row transferred, in order
    stall_cycles : cycles in which a result was offered and not taken (the pipeline froze in
        the cycle after each)
    """

    cycles: int
    weight_cycles: tuple[int, ...]
    act_cycles: tuple[int, ...]
    stall_cycles: tuple[int, ...] = ()


def ideal_schedule(cfg: MacArrayConfig, tiles: list[Tile]) -> Schedule:
    """Tiles back to back with every input valid and every output ready (:func:`cycle_model`),
    ending one cycle after the last result, when every PE data register holds a bubble again."""
    model = cycle_model(cfg, [tile.acts.shape[0] for tile in tiles])
    return Schedule(cycles=model.total + 1, weight_cycles=model.weight_cycles,
                    act_cycles=model.act_cycles)


class _PipelineState:
    """The PE registers of the whole grid as arrays, advanced one cycle at a time.

    Every array has a leading batch axis: ``batch`` independent arrays advance in lockstep (the
    ideal replay runs stretches of a layer's schedule at once, see :func:`_run_ideal`).
    """

    def __init__(self, cfg: MacArrayConfig, batch: int = 1):
        R, C, N, M = cfg.rows, cfg.cols, cfg.n, cfg.m
        self.cfg = cfg
        # Input register and skew delays: history[:, d] = the input register d steps ago.
        self.history = np.zeros((batch, R, cfg.k), dtype=np.int64)
        # first[:, p]: the row p steps past the input register is a tile's first row (up to
        # the step whose move triggers the last weight copy, see switch_step).
        self.first = np.zeros((batch, R + C - 1), dtype=bool)
        self.regs = {
            "a": np.zeros((batch, R, C - 1, M), dtype=np.int64),
            "sel": np.zeros((batch, R, C, N), dtype=np.int64),
            "prod": np.zeros((batch, R, C, N), dtype=np.int64),
            "prod_sum": np.zeros((batch, R, C), dtype=np.int64),
            "psum": np.zeros((batch, R, C), dtype=np.int64),
            "weight": np.zeros((batch, R, C, N), dtype=np.int64),
            "idx": np.zeros((batch, R, C, N), dtype=np.int64),
            "next_weight": np.zeros((batch, R, C, N), dtype=np.int64),
            "next_idx": np.zeros((batch, R, C, N), dtype=np.int64),
        }
        # PE (r, c) takes the next idx as a tile's first row leaves step r + c - 1 (enters its
        # left input), the next w as it leaves step r + c (enters the multipliers' input
        # registers, sel); step -1 is the row's transfer.
        diag = np.add.outer(np.arange(R), np.arange(C))
        self.switch_step = {"idx": diag - 1, "weight": diag}

    def left_inputs(self) -> np.ndarray:
        """(batch, R, C, M): what each PE sees on its activation input in the current cycle."""
        R, M = self.cfg.rows, self.cfg.m
        first = np.stack([self.history[:, r, r * M:(r + 1) * M] for r in range(R)], axis=1)
        return np.concatenate([first[:, :, None, :], self.regs["a"]], axis=2)

    def operands(self) -> np.ndarray:
        """(batch, R, C, N): the activation input of every multiplier in the current cycle (its
        input register)."""
        return self.regs["sel"]

    def step(self, rows: np.ndarray, first: np.ndarray) -> None:
        """One pipeline advance; ``rows`` (batch, K) enter the input register (zeros: a
        bubble), ``first`` (batch,) says which of them is a tile's first row."""
        cfg, regs = self.cfg, self.regs
        left = self.left_inputs()
        above = np.zeros_like(regs["psum"])
        above[:, 1:] = regs["psum"][:, :-1]
        # One product goes into the psum; N > 1: their sum into the prod_sum register first.
        products = regs["prod"].sum(axis=3)
        added = regs["prod_sum"] if cfg.sums_products else products
        psum = overflow(above + added, cfg.acc_bits, cfg.overflow)
        regs["prod_sum"] = products
        regs["prod"] = regs["weight"] * regs["sel"]
        # Dense: idx stays 0, the left input's only element.
        regs["sel"] = np.take_along_axis(left, regs["idx"], axis=3)
        regs["a"] = left[:, :, :-1, :].copy()
        regs["psum"] = psum
        leaving = np.concatenate([first[:, None], self.first], axis=1)   # [:, p + 1]: step p
        for group, step in self.switch_step.items():
            switch = leaving[:, step + 1][..., None]
            regs[group] = np.where(switch, regs[f"next_{group}"], regs[group])
        self.first = leaving[:, :-1]
        self.history = np.roll(self.history, 1, axis=1)
        self.history[:, 0] = rows

    def load(self, r, values: np.ndarray, idx: np.ndarray, batch=slice(None)) -> None:
        """Weight beat for PE row r: (batch, C, N) weights and indices into the next set of
        the batch elements ``batch`` selects (with an index array, ``r`` may be one too)."""
        self.regs["next_weight"][batch, r] = values
        self.regs["next_idx"][batch, r] = idx


def _first_rows(tiles: list[Tile]) -> np.ndarray:
    """Which activation rows of the run, in order, are a tile's first."""
    first = np.zeros(sum(tile.acts.shape[0] for tile in tiles), dtype=bool)
    first[np.cumsum([0] + [tile.acts.shape[0] for tile in tiles[:-1]])] = True
    return first


def _run(cfg: MacArrayConfig, tiles: list[Tile], schedule: Schedule
         ) -> Iterator[_PipelineState]:
    """Yield the state of every cycle 0 .. schedule.cycles-1 (the same object, updated)."""
    for tile in tiles:
        _check_tile(cfg, tile)
    beats = [(r, tile) for tile in tiles for r in range(cfg.rows)]
    rows = [row for tile in tiles for row in tile.acts]
    if len(schedule.weight_cycles) != len(beats) or len(schedule.act_cycles) != len(rows):
        raise ValueError(f"schedule has {len(schedule.weight_cycles)} weight beats and "
                         f"{len(schedule.act_cycles)} activation rows; the tiles need "
                         f"{len(beats)} and {len(rows)}")
    weight_at = dict(zip(schedule.weight_cycles, beats))
    row_at = dict(zip(schedule.act_cycles, zip(rows, _first_rows(tiles))))
    frozen = {t + 1 for t in schedule.stall_cycles}
    state = _PipelineState(cfg)
    bubble = (np.zeros(cfg.k, dtype=np.int64), False)
    for t in range(schedule.cycles):
        yield state
        # Events of cycle t take effect at the rising edge that ends it.
        beat = weight_at.get(t)
        if t not in frozen:
            row, first = row_at.get(t, bubble)
            state.step(row[None], np.array([first]))
        elif t in row_at:
            raise ValueError(f"schedule: an activation row transferred in cycle {t}, after the "
                             f"stalled cycle {t - 1}")
        if beat is not None:
            r, tile = beat
            state.load(r, tile.values[r][None], tile.indices[r][None])


def _run_ideal(cfg: MacArrayConfig, tiles: list[Tile], span: int | None = None
               ) -> tuple[int, int, Iterator[_PipelineState]]:
    """The :func:`ideal_schedule` replay in stretches of ``span`` cycles, all at once, one batch
    element per stretch. Returns ``(cycles, warmup, states)``: the states of the first
    ``warmup`` steps are not the run's, only the ones after them.

    Element i replays cycles i*span - warmup .. (i+1)*span - 1. It starts from the weight and
    index registers and ``first`` bits the schedule gives for its first cycle, and from zero data
    registers; those hold what the run holds once every row they carry entered after the start.
    The deepest, the psum of PE (R-1, C-1), holds the row the input register held R + C + P - 1
    cycles earlier, which entered one step before that, so every data register is right from
    R + C + P cycles after the start; the first cycle counted is compared with the one before
    it, hence ``warmup`` = R + C + P + 1. Cycles past the run (the last stretch's tail) are
    idle: every register already holds a bubble or a weight, so they switch nothing. Summed over
    the elements, the toggles after the warm-up are those of the sequential run.
    """
    for tile in tiles:
        _check_tile(cfg, tile)
    R, P = cfg.rows, cfg.pe_stages
    schedule = ideal_schedule(cfg, tiles)
    cycles = schedule.cycles
    warmup = R + cfg.cols + P + 1
    span = span or max(4 * warmup, math.isqrt(cycles * warmup))
    starts = np.arange(0, cycles, span) - warmup            # each element's first cycle
    batch = len(starts)

    # Every event of the run by cycle: row index (len(rows): a bubble), first row, weight beat.
    acts = np.concatenate([tile.acts for tile in tiles] + [np.zeros((1, cfg.k), np.int64)])
    row_at = np.full(cycles, len(acts) - 1)
    row_at[list(schedule.act_cycles)] = np.arange(len(acts) - 1)
    first_at = np.zeros(cycles, dtype=bool)
    launches = np.asarray(schedule.act_cycles)[_first_rows(tiles)]
    first_at[launches] = True
    beat_at = np.full(cycles, -1)
    beat_at[list(schedule.weight_cycles)] = np.arange(len(schedule.weight_cycles))
    # Weights and indices by tile, one more all-zero tile for "none loaded yet" (index -1).
    values = np.stack([tile.values for tile in tiles] + [np.zeros_like(tiles[0].values)])
    indices = np.stack([tile.indices for tile in tiles] + [np.zeros_like(tiles[0].indices)])

    state = _PipelineState(cfg, batch)
    begun = np.maximum(starts, 0)[:, None]          # before cycle 0 everything is zero anyway
    rows_, cols_ = np.arange(R)[:, None], np.arange(cfg.cols)[None, :]
    for group, table in (("weight", values), ("idx", indices)):
        # Tile j's first row leaves step p in cycle launch_j + 1 + p: the PE holds the tile's
        # weights from launch_j + step + 2 on.
        step = state.switch_step[group]
        tile = np.searchsorted(launches, begun[:, :, None] - step - 2, side="right") - 1
        state.regs[group] = table[tile, rows_, cols_]
    beats = np.asarray(schedule.weight_cycles).reshape(len(tiles), R)
    for r in range(R):                       # beat r of tile j is in next set r after its cycle
        tile = np.searchsorted(beats[:, r], begun[:, 0] - 1, side="right") - 1
        state.regs["next_weight"][:, r] = values[tile, r]
        state.regs["next_idx"][:, r] = indices[tile, r]
    # Tile j's first row is p steps past the input register in cycle launch_j + 1 + p.
    state.first = np.isin(begun - 1 - np.arange(state.first.shape[1]), launches)

    def states() -> Iterator[_PipelineState]:
        for k in range(warmup + span):
            yield state
            t = starts + k
            inside = (t >= 0) & (t < cycles)
            t = np.clip(t, 0, cycles - 1)
            state.step(acts[np.where(inside, row_at[t], len(acts) - 1)], inside & first_at[t])
            element = np.flatnonzero(inside & (beat_at[t] >= 0))
            beat = beat_at[t[element]]
            state.load(beat % R, values[beat // R, beat % R], indices[beat // R, beat % R],
                       batch=element)

    return cycles, warmup, states()


def _widths(cfg: MacArrayConfig) -> dict[str, int]:
    """Bit width of each register group, as the RTL declares it."""
    weight, idx = cfg.weight_reg_bits, max(cfg.idx_bits, 1)
    return {"a": cfg.act_bits, "sel": cfg.act_bits, "prod": cfg.prod_bits,
            "prod_sum": cfg.prod_sum_bits, "psum": cfg.acc_bits, "weight": weight, "idx": idx,
            "next_weight": weight, "next_idx": idx}


def _groups(cfg: MacArrayConfig) -> tuple[str, ...]:
    """The register groups this configuration has."""
    products = ("prod", "prod_sum") if cfg.sums_products else ("prod",)
    indices = ("idx", "next_idx") if cfg.idx_bits else ()
    return ("a", "sel", *products, "psum", "weight", "next_weight", *indices)


#: Register group -> the RTL name of element i of PE (r, c): ``pe_r{r}_c{c}_<label>{i}``.
_LABELS = {"a": "a", "idx": "idx", "next_weight": "next_w", "next_idx": "next_idx"}

#: Register group -> the register of product j's :class:`hwgen.hdl.dsp.RegisteredProduct`
#: ``pe_r{r}_c{c}_mul{j}`` (its generic description; on ECP5 the DSP block's own registers).
_PRODUCT_REGS = {"sel": "a_reg", "weight": "b_reg", "prod": "p"}

#: Register group -> proxy category, where they differ (the psum is split in two).
_CATEGORY = {"a": "act", "prod_sum": "prod", "next_weight": "weight", "next_idx": "idx"}


def register_name(group: str, index: tuple[int, ...]) -> str:
    """The RTL name of the register of ``group`` at ``index`` = (r, c) for the psum and the
    prod_sum, else (r, c, i): a signal of the array's module, or ``<submodule>.<signal>`` for
    the registers of a product (operand, active weight, product)."""
    pe = f"pe_r{index[0]}_c{index[1]}"
    if group in ("psum", "prod_sum"):
        return f"{pe}_{group}"
    if group in _PRODUCT_REGS:
        return f"{pe}_mul{index[2]}.{_PRODUCT_REGS[group]}"
    return f"{pe}_{_LABELS[group]}{index[2]}"


def _bit_flips(old: np.ndarray, new: np.ndarray, lo: int, hi: int) -> int:
    """Bits lo .. hi-1 that differ between two's-complement patterns, summed over the arrays."""
    mask = ((1 << (hi - lo)) - 1) << lo
    return int(np.bitwise_count((old ^ new) & mask).sum())


def _stored(cfg: MacArrayConfig, regs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The register groups as the registers hold them: the replay keeps weight values (it
    multiplies with them), which shift PEs hold as shift codes (:func:`hwgen.hdl.shift.encode`)."""
    if not cfg.shift_pe:
        return regs
    codes = _shift_codes(cfg.weight_bits)
    low = -(1 << (cfg.weight_bits - 1))
    return {group: codes[values - low] if group in ("weight", "next_weight") else values
            for group, values in regs.items()}


@functools.cache
def _shift_codes(weight_bits: int) -> np.ndarray:
    """Shift code of every power-of-two weight, by ``weight - w_min`` (a lookup is cheaper than
    :func:`hwgen.hdl.shift.encode` in every replayed cycle); other weights never occur."""
    book = np.asarray(codebook("pow2", weight_bits), dtype=np.int64)
    codes = np.zeros(1 << weight_bits, dtype=np.int64)
    codes[book + (1 << (weight_bits - 1))] = encode_shift(book, weight_bits)
    return codes


def _category_flips(cfg: MacArrayConfig, old: dict, new: dict) -> dict[str, int]:
    widths, split = _widths(cfg), cfg.acc_bits - cfg.psum_msb_bits
    flips = dict.fromkeys(CATEGORIES, 0)
    for group in _groups(cfg):
        if group == "psum":
            flips["psum_lsb"] += _bit_flips(old[group], new[group], 0, split)
            flips["psum_msb"] += _bit_flips(old[group], new[group], split, cfg.acc_bits)
        else:
            flips[_CATEGORY.get(group, group)] += _bit_flips(old[group], new[group], 0,
                                                             widths[group])
    return flips


@dataclass(frozen=True)
class RegisterTrace:
    """Every PE register's value in every cycle of a run.

    values : register group ("a", "sel", "prod", "prod_sum", "psum", "weight", "idx",
        "next_weight", "next_idx"; the groups the configuration has) -> int64 array (cycles, R,
        C [C-1 for "a"], then M or N except for "psum" and "prod_sum"), two's-complement values
        for signed registers
    """

    cfg: MacArrayConfig
    values: dict[str, np.ndarray]

    @property
    def cycles(self) -> int:
        return self.values["psum"].shape[0]

    def registers(self) -> dict[str, tuple[int, np.ndarray]]:
        """RTL register name (:func:`register_name`: ``pe_r{r}_c{c}_psum``, ``..._a{i}``,
        ``..._next_w{j}``, ``pe_r{r}_c{c}_mul{j}.b_reg``, ...) -> (width, value in every
        cycle)."""
        widths = _widths(self.cfg)
        return {register_name(group, index): (widths[group], values[(slice(None), *index)])
                for group, values in self.values.items() for index in np.ndindex(values.shape[1:])}

    def toggles(self) -> dict[str, np.ndarray]:
        """Category -> toggles in every cycle (cycle t: bits that changed since cycle t-1;
        cycle 0 counts against the all-zero initial state)."""
        cfg = self.cfg
        out = {category: np.zeros(self.cycles, dtype=np.int64) for category in CATEGORIES}
        zero = {group: np.zeros_like(v[0]) for group, v in self.values.items()}
        for t in range(self.cycles):
            old = zero if t == 0 else {g: v[t - 1] for g, v in self.values.items()}
            new = {g: v[t] for g, v in self.values.items()}
            for category, flips in _category_flips(cfg, old, new).items():
                out[category][t] = flips
        return out


def trace_registers(cfg: MacArrayConfig, tiles: list[Tile], schedule: Schedule) -> RegisterTrace:
    """Replay ``tiles`` under ``schedule`` and keep every PE register's value in every cycle."""
    groups = _groups(cfg)
    frames = {group: [] for group in groups}
    for state in _run(cfg, tiles, schedule):
        for group in groups:
            frames[group].append(state.regs[group][0].copy())
    return RegisterTrace(cfg, _stored(cfg, {group: np.stack(frames[group]) for group in groups}))


@dataclass(frozen=True)
class EnergyProxy:
    """Switching of one run of the array, in toggles (see the module docstring).

    cycles : cycles in the run
    register_toggles : category (:data:`CATEGORIES`) -> register bit toggles
    multiplier_toggles : calibrated gate-output toggles inside the multipliers
    """

    cycles: int
    register_toggles: dict[str, int]
    multiplier_toggles: float

    @property
    def registers(self) -> int:
        return sum(self.register_toggles.values())

    @property
    def total(self) -> float:
        return self.registers + self.multiplier_toggles

    def as_dict(self) -> dict:
        return {"cycles": self.cycles, "register_toggles": dict(self.register_toggles),
                "registers": self.registers, "multiplier_toggles": self.multiplier_toggles,
                "total": self.total}


def energy_proxy(cfg: MacArrayConfig, tiles: list[Tile], schedule: Schedule | None = None,
                 cost: MultiplierCost | None = None, span: int | None = None) -> EnergyProxy:
    """The proxy of running ``tiles`` under ``schedule``, by default :func:`ideal_schedule`
    (replayed in stretches of ``span`` cycles all at once, see :func:`_run_ideal`; same toggles,
    far fewer steps; by default ``span`` balances the steps against the stretches' warm-ups).

    ``cost`` defaults to :func:`.calibration.pe_cost` of the array: the calibrated table of its
    PE product (multiplier or, with shift PEs, shifter) at its operand widths.
    """
    cost = pe_cost(cfg) if cost is None else cost
    if schedule is None:
        cycles, warmup, states = _run_ideal(cfg, tiles, span)
    else:
        cycles, warmup, states = schedule.cycles, 0, _run(cfg, tiles, schedule)
    totals = dict.fromkeys(CATEGORIES, 0)
    act_mask = (1 << cfg.act_bits) - 1
    multiplier = 0.0
    previous = None
    for k, state in enumerate(states):
        regs = _stored(cfg, {group: state.regs[group].copy() for group in _groups(cfg)})
        operand = state.operands()
        if k >= max(warmup, 1):         # toggles since the previous state, a state of the run
            for category, flips in _category_flips(cfg, previous[0], regs).items():
                totals[category] += flips
            changed = np.bitwise_count((previous[1] ^ operand) & act_mask)
            if changed.any():
                multiplier += float((cost.of(state.regs["weight"]) * changed).sum())
        previous = (regs, operand.copy())
    return EnergyProxy(cycles=cycles, register_toggles=totals, multiplier_toggles=multiplier)
