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
        N:M only: the registers holding the activations the indices selected;
    ``prod``
        the product registers;
    ``weight``
        the weight registers (the decoded weight: a weight set's codes are decoded as they load);
    ``idx``
        N:M only: the position-index registers.

``multiplier_toggles``
    Switching inside the multipliers, which registers cannot see: whenever the activation input
    of a multiplier changes, :mod:`.calibration`'s cost of its weight value (gate-output toggles
    per activation bit toggle, from a gate-level netlist) times the number of activation bits
    that changed.

``total`` adds both. One register bit toggle and one gate-output toggle count the same, which is
the proxy's main simplification (a flip-flop with its clock load costs more than a gate output).

The register trace
------------------
The values come from replaying the array's pipeline (docs/architecture.md §4.1 and the
microarchitecture table
in :mod:`hwgen.engines.mac_array.rtl`) cycle by cycle from a :class:`Schedule` of the run: the
cycles in which a weight beat or an activation row transferred, and the cycles in which a result
was offered but not taken. A stalled cycle freezes every datapath register; any other cycle is a
step, and a step without a new row carries zeros. Weight beats load PE row r's weight (and index)
registers at the transfer, stalled or not. Every datapath register starts at zero (it has no reset,
and its initial value is zero). In step terms, with X[s] the activation row entering in step s
(zeros for a bubble) and P = ``cfg.pe_stages``, after step s::

    left input of PE (r, c)    X[s - r - c][r*M : r*M + M]
    a     (c < C - 1)          the left input one step earlier
    sel[j]     (N:M)           left input one step earlier, element idx[j]
    prod[j]                    w[j] * (sel[j] one step earlier; dense: the left input)
    psum                       overflow(psum of PE (r-1, c) + sum_j prod[j], one step earlier)

:func:`trace_registers` keeps every value (for checking against a waveform);
:func:`energy_proxy` only accumulates toggles, so it runs on long layers in constant memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from hwgen.engines.mac_array.config import MacArrayConfig
from hwgen.engines.mac_array.golden import Tile, _check_tile, cycle_model
from hwgen.fixedpoint import overflow

from .calibration import MultiplierCost, multiplier_cost

__all__ = ["CATEGORIES", "Schedule", "ideal_schedule", "RegisterTrace", "trace_registers",
           "EnergyProxy", "energy_proxy"]

#: Register categories of the proxy, in report order.
CATEGORIES = ("psum_lsb", "psum_msb", "act", "sel", "prod", "weight", "idx")


@dataclass(frozen=True)
class Schedule:
    """When things happened in one run, in cycles counted from 0.

    cycles : length of the run; the trace holds the register values of cycles 0 .. cycles-1
    weight_cycles : cycles in which a weight beat transferred, in order (R per tile)
    act_cycles : cycles in which an activation row transferred, in order
    stall_cycles : cycles in which a result was offered and not taken (the pipeline froze)
    """

    cycles: int
    weight_cycles: tuple[int, ...]
    act_cycles: tuple[int, ...]
    stall_cycles: tuple[int, ...] = ()


def ideal_schedule(cfg: MacArrayConfig, tiles: list[Tile]) -> Schedule:
    """Tiles back to back with every input valid and every output ready (:func:`cycle_model`),
    ending with the turnaround cycle after the last result, when every PE register holds a
    bubble again (where the next tile's first weight beat would transfer)."""
    weight_cycles, act_cycles, start = [], [], 0
    for tile in tiles:
        model = cycle_model(cfg, tile.acts.shape[0])
        weight_cycles += range(start, start + model.load)
        act_cycles += range(start + model.load, start + model.load + model.stream)
        last_result = start + model.total - 1
        start = last_result + 1 + model.turnaround
    return Schedule(cycles=start, weight_cycles=tuple(weight_cycles),
                    act_cycles=tuple(act_cycles))


class _PipelineState:
    """The PE registers of the whole grid as arrays, advanced one cycle at a time.

    Every array has a leading batch axis: ``batch`` independent arrays advance in lockstep (the
    ideal replay runs all tiles of a layer at once, see :func:`_run_ideal`).
    """

    def __init__(self, cfg: MacArrayConfig, batch: int = 1):
        R, C, N, M = cfg.rows, cfg.cols, cfg.n, cfg.m
        self.cfg = cfg
        # Input register and skew delays: history[:, d] = the input register d steps ago.
        self.history = np.zeros((batch, R, cfg.k), dtype=np.int64)
        self.regs = {
            "a": np.zeros((batch, R, C - 1, M), dtype=np.int64),
            "sel": np.zeros((batch, R, C, N), dtype=np.int64),
            "prod": np.zeros((batch, R, C, N), dtype=np.int64),
            "psum": np.zeros((batch, R, C), dtype=np.int64),
            "weight": np.zeros((batch, R, C, N), dtype=np.int64),
            "idx": np.zeros((batch, R, C, N), dtype=np.int64),
        }

    def left_inputs(self) -> np.ndarray:
        """(batch, R, C, M): what each PE sees on its activation input in the current cycle."""
        R, M = self.cfg.rows, self.cfg.m
        first = np.stack([self.history[:, r, r * M:(r + 1) * M] for r in range(R)], axis=1)
        return np.concatenate([first[:, :, None, :], self.regs["a"]], axis=2)

    def operands(self, left: np.ndarray) -> np.ndarray:
        """(batch, R, C, N): the activation input of every multiplier in the current cycle."""
        return self.regs["sel"] if self.cfg.idx_bits else left

    def step(self, rows: np.ndarray) -> None:
        """One pipeline advance; ``rows`` (batch, K) enter the input register (zeros: a
        bubble)."""
        cfg, regs = self.cfg, self.regs
        left = self.left_inputs()
        operand = self.operands(left)
        above = np.zeros_like(regs["psum"])
        above[:, 1:] = regs["psum"][:, :-1]
        psum = overflow(above + regs["prod"].sum(axis=3), cfg.acc_bits, cfg.overflow)
        regs["prod"] = regs["weight"] * operand
        if cfg.idx_bits:
            regs["sel"] = np.take_along_axis(left, regs["idx"], axis=3)
        regs["a"] = left[:, :, :-1, :].copy()
        regs["psum"] = psum
        self.history = np.roll(self.history, 1, axis=1)
        self.history[:, 0] = rows

    def load(self, r: int, values: np.ndarray, idx: np.ndarray, batch=slice(None)) -> None:
        """Weight beat for PE row r: (batch, C, N) weights and indices, into the batch
        elements ``batch`` selects."""
        self.regs["weight"][batch, r] = values
        self.regs["idx"][batch, r] = idx


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
    row_at = dict(zip(schedule.act_cycles, rows))
    stalled = set(schedule.stall_cycles)
    state = _PipelineState(cfg)
    bubble = np.zeros((1, cfg.k), dtype=np.int64)
    for t in range(schedule.cycles):
        yield state
        # Events of cycle t take effect at the rising edge that ends it.
        beat = weight_at.get(t)
        if t not in stalled:
            row = row_at.get(t)
            state.step(bubble if row is None else row[None])
        elif t in row_at:
            raise ValueError(f"schedule: an activation row transferred in stalled cycle {t}")
        if beat is not None:
            r, tile = beat
            state.load(r, tile.values[r][None], tile.indices[r][None])


def _run_ideal(cfg: MacArrayConfig, tiles: list[Tile]) -> Iterator[_PipelineState]:
    """The :func:`ideal_schedule` replay, all tiles at once, one batch element per tile.

    Under the ideal schedule a tile's window (its first weight beat to the next tile's) starts
    and ends with every data register at zero (the array drained); only the weight registers
    carry over, so tile i's window is replayed from zeros and tile i-1's weights, and all
    windows run in lockstep. A window shorter than the longest ends in idle cycles, which
    switch nothing. The toggles summed over the batch are those of the sequential run.
    """
    for tile in tiles:
        _check_tile(cfg, tile)
    R, batch = cfg.rows, len(tiles)
    lengths = [tile.acts.shape[0] for tile in tiles]
    acts = np.zeros((batch, max(lengths), cfg.k), dtype=np.int64)
    for i, tile in enumerate(tiles):
        acts[i, :lengths[i]] = tile.acts
    state = _PipelineState(cfg, batch)
    if batch > 1:           # a window starts with the previous tile's weights; the first with
        for r in range(R):  # the registers' initial zeros
            state.load(r, np.stack([t.values[r] for t in tiles[:-1]]),
                       np.stack([t.indices[r] for t in tiles[:-1]]), batch=slice(1, None))
    window = max(cycle_model(cfg, b).total + cycle_model(cfg, b).turnaround for b in lengths)
    for t in range(window):
        yield state
        b = t - R                              # the activation row transferring in cycle t
        state.step(acts[:, b] if 0 <= b < acts.shape[1] else np.zeros_like(acts[:, 0]))
        if t < R:
            state.load(t, np.stack([tile.values[t] for tile in tiles]),
                       np.stack([tile.indices[t] for tile in tiles]))


def _widths(cfg: MacArrayConfig) -> dict[str, int]:
    """Bit width of each register group, as the RTL declares it."""
    return {"a": cfg.act_bits, "sel": cfg.act_bits, "prod": cfg.prod_bits, "psum": cfg.acc_bits,
            "weight": cfg.weight_bits, "idx": max(cfg.idx_bits, 1)}


def _groups(cfg: MacArrayConfig) -> tuple[str, ...]:
    """The register groups this configuration has."""
    return ("a", "sel", "prod", "psum", "weight", "idx") if cfg.idx_bits else (
        "a", "prod", "psum", "weight")


def _bit_flips(old: np.ndarray, new: np.ndarray, lo: int, hi: int) -> int:
    """Bits lo .. hi-1 that differ between two's-complement patterns, summed over the arrays."""
    mask = ((1 << (hi - lo)) - 1) << lo
    return int(np.bitwise_count((old ^ new) & mask).sum())


def _category_flips(cfg: MacArrayConfig, old: dict, new: dict) -> dict[str, int]:
    widths, split = _widths(cfg), cfg.acc_bits - cfg.psum_msb_bits
    flips = dict.fromkeys(CATEGORIES, 0)
    for group in _groups(cfg):
        if group == "psum":
            flips["psum_lsb"] += _bit_flips(old[group], new[group], 0, split)
            flips["psum_msb"] += _bit_flips(old[group], new[group], split, cfg.acc_bits)
        else:
            category = "act" if group == "a" else group
            flips[category] += _bit_flips(old[group], new[group], 0, widths[group])
    return flips


@dataclass(frozen=True)
class RegisterTrace:
    """Every PE register's value in every cycle of a run.

    values : register group ("a", "sel", "prod", "psum", "weight", "idx"; the groups the
        configuration has) -> int64 array (cycles, R, C [C-1 for "a"], M or N), two's-complement
        values for signed registers
    """

    cfg: MacArrayConfig
    values: dict[str, np.ndarray]

    @property
    def cycles(self) -> int:
        return self.values["psum"].shape[0]

    def registers(self) -> dict[str, tuple[int, np.ndarray]]:
        """RTL register name (``pe_r{r}_c{c}_psum``, ``..._a{i}``, ``..._w{j}``, ...) ->
        (width, value in every cycle)."""
        cfg, widths = self.cfg, _widths(self.cfg)
        out = {}
        for group in _groups(cfg):
            values = self.values[group]
            for r, c in np.ndindex(values.shape[1:3]):
                name = f"pe_r{r}_c{c}"
                if group == "psum":
                    out[f"{name}_psum"] = (widths[group], values[:, r, c])
                    continue
                label = {"weight": "w"}.get(group, group)
                for i in range(values.shape[3]):
                    out[f"{name}_{label}{i}"] = (widths[group], values[:, r, c, i])
        return out

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
    return RegisterTrace(cfg, {group: np.stack(frames[group]) for group in groups})


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
                 cost: MultiplierCost | None = None) -> EnergyProxy:
    """The proxy of running ``tiles`` under ``schedule``, by default :func:`ideal_schedule`
    (replayed for all tiles at once, see :func:`_run_ideal`; same toggles, far fewer steps).

    ``cost`` defaults to :func:`.calibration.multiplier_cost` of the array's operand widths.
    """
    cost = multiplier_cost(cfg.weight_bits, cfg.act_bits, cfg.act_signed) if cost is None else cost
    if schedule is None:
        cycles, states = ideal_schedule(cfg, tiles).cycles, _run_ideal(cfg, tiles)
    else:
        cycles, states = schedule.cycles, _run(cfg, tiles, schedule)
    totals = dict.fromkeys(CATEGORIES, 0)
    act_mask = (1 << cfg.act_bits) - 1
    multiplier = 0.0
    previous = None
    for state in states:
        regs = {group: state.regs[group].copy() for group in _groups(cfg)}
        operand = state.operands(state.left_inputs())
        if previous is not None:
            for category, flips in _category_flips(cfg, previous[0], regs).items():
                totals[category] += flips
            changed = np.bitwise_count((previous[1] ^ operand) & act_mask)
            if changed.any():
                multiplier += float((cost.of(state.regs["weight"]) * changed).sum())
        previous = (regs, operand.copy())
    return EnergyProxy(cycles=cycles, register_toggles=totals, multiplier_toggles=multiplier)
