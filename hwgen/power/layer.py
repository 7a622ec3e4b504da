"""A whole layer ``Y = A @ W`` on the MAC array: tiling, the golden result, energy, simulation.

A layer's weights W (K x C_out) are cut into tiles of ``cfg.k`` reduction inputs by ``cfg.cols``
outputs (zero-padded at the edges); every activation row of A (B x K) streams through each tile.
Tiles are taken output block by output block, reduction block by reduction block. The array
returns each tile's partial result (wrapped or saturated at ``acc_bits``, exactly as the RTL);
the layer output adds the partial results of a column block's tiles in int64, as an accumulator
beside the array would.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwgen.engines.mac_array.config import MacArrayConfig
from hwgen.engines.mac_array.golden import Tile, compress_nm, run
from hwgen.engines.mac_array.tiles import save_tiles
from hwgen.flows.sim import SimResult, simulate

from .calibration import MultiplierCost
from .energy import (
    CATEGORIES,
    EnergyProxy,
    Schedule,
    energy_proxy,
    register_name,
    trace_registers,
)
from .vcd import read_vcd

__all__ = ["layer_tiles", "layer_outputs", "layer_energy", "LayerSim", "simulate_layer",
           "waveform_toggles"]


def _blocks(cfg: MacArrayConfig, weights: np.ndarray, acts: np.ndarray):
    weights = np.asarray(weights, dtype=np.int64)
    acts = np.asarray(acts, dtype=np.int64)
    if weights.ndim != 2 or acts.ndim != 2 or acts.shape[1] != weights.shape[0]:
        raise ValueError(f"weights {weights.shape} and activations {acts.shape}: expected "
                         f"(K, C_out) and (B, K)")
    k, c_out = weights.shape
    kb, cb = -(-k // cfg.k), -(-c_out // cfg.cols)
    padded_w = np.zeros((kb * cfg.k, cb * cfg.cols), dtype=np.int64)
    padded_w[:k, :c_out] = weights
    padded_a = np.zeros((acts.shape[0], kb * cfg.k), dtype=np.int64)
    padded_a[:, :k] = acts
    return padded_w, padded_a, kb, cb


def layer_tiles(cfg: MacArrayConfig, weights, acts) -> list[Tile]:
    """The tiles of the layer, column block by column block (see the module docstring).

    Raises :class:`hwgen.engines.mac_array.golden.NMPatternError` if W breaks the array's N:M
    pattern.
    """
    w, a, kb, cb = _blocks(cfg, weights, acts)
    tiles = []
    for j in range(cb):
        for i in range(kb):
            block = w[i * cfg.k:(i + 1) * cfg.k, j * cfg.cols:(j + 1) * cfg.cols]
            values, indices = compress_nm(block, cfg.n, cfg.m)
            tiles.append(Tile(values, indices, a[:, i * cfg.k:(i + 1) * cfg.k]))
    return tiles


def _assemble(cfg: MacArrayConfig, weights, acts, tile_outputs: list[np.ndarray]) -> np.ndarray:
    """Sum each column block's tile results and cut the padding off: (B, C_out)."""
    _, a, kb, cb = _blocks(cfg, weights, acts)
    out = np.zeros((a.shape[0], cb * cfg.cols), dtype=np.int64)
    for t, y in enumerate(tile_outputs):
        j = t // kb
        out[:, j * cfg.cols:(j + 1) * cfg.cols] += y
    return out[:, :np.shape(weights)[1]]


def layer_outputs(cfg: MacArrayConfig, weights, acts) -> np.ndarray:
    """(B, C_out) int64: what the array computes for the layer, from the golden model."""
    tiles = layer_tiles(cfg, weights, acts)
    return _assemble(cfg, weights, acts, [run(cfg, tile).y for tile in tiles])


def layer_energy(cfg: MacArrayConfig, weights, acts, cost: MultiplierCost | None = None
                 ) -> EnergyProxy:
    """The energy proxy of the layer's tiles streamed back to back without stalls."""
    return energy_proxy(cfg, layer_tiles(cfg, weights, acts), cost=cost)


def _schedule(run: dict) -> Schedule:
    """The schedule in the ``run`` record of the testbench result."""
    return Schedule(cycles=run["cycles"], weight_cycles=tuple(run["weight_cycles"]),
                    act_cycles=tuple(run["act_cycles"]), stall_cycles=tuple(run["stall_cycles"]))


def waveform_toggles(cfg: MacArrayConfig, waves: Path, run: dict, tiles: list[Tile]
                     ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per-cycle toggles by category, from the waveform and from the golden register trace.

    ``run`` is the ``run`` record of the testbench result (schedule and clock alignment).
    Returns ``(from_waveform, golden)``, each category -> int64 array over the run's cycles.
    """
    trace = trace_registers(cfg, tiles, _schedule(run))
    registers = trace.registers()
    # A product's registers are in its submodule: "pe_r0_c0_mul0.b_reg" is b_reg in the scope
    # pe_r0_c0_mul0; every other register is in the array's own scope.
    where = {name: (name.rpartition(".")[0] or cfg.name, name.rpartition(".")[2])
             for name in registers}
    wave = read_vcd(waves, {leaf for _, leaf in where.values()})
    edge0 = int(run["edge_ps"]) - run["edge_cycle"] * run["period_ps"]
    measured = {}
    for name, (width, _) in registers.items():
        values = wave.per_cycle(wave.find(*where[name]), edge0, run["period_ps"], run["cycles"])
        # Bit patterns as the golden trace holds them: two's complement in int64.
        measured[name] = values - ((values >> (width - 1)) << width) if _signed(cfg, name) \
            else values
    from_waves = dataclasses.replace(trace, values={
        group: _regroup(cfg, trace, group, measured) for group in trace.values})
    return from_waves.toggles(), trace.toggles()


def _signed(cfg: MacArrayConfig, name: str) -> bool:
    if name.endswith(".a_reg"):         # a product's operand: an activation
        return cfg.act_signed
    if name.endswith(".p"):             # the product
        return True
    if name.endswith(".b_reg"):         # its weight, or a shift PE's shift code
        return not cfg.shift_pe
    field = name.rsplit("_", 1)[1]
    if field.startswith("a"):
        return cfg.act_signed
    if field.startswith("w"):           # next weight (next_w): as b_reg
        return not cfg.shift_pe
    return field.startswith("psum")


def _regroup(cfg, trace, group: str, measured: dict[str, np.ndarray]) -> np.ndarray:
    """The golden trace's array layout for ``group``, filled from per-register waveforms."""
    out = np.zeros_like(trace.values[group])
    for index in np.ndindex(out.shape[1:]):
        out[(slice(None), *index)] = measured[register_name(group, index)]
    return out


@dataclass(frozen=True)
class LayerSim:
    """One layer run through the generated array under Verilator.

    outputs : (B, C_out) int64 layer outputs assembled from the RTL's result beats
    energy_golden : the proxy of exactly that run (its schedule), from the golden trace
    register_toggles_vcd : category -> register toggles counted from the waveform
        (None without waves)
    result : the simulation's :class:`hwgen.flows.sim.SimResult`
    """

    outputs: np.ndarray
    energy_golden: EnergyProxy
    register_toggles_vcd: dict[str, int] | None
    result: SimResult


def simulate_layer(cfg: MacArrayConfig, weights, acts, waves: bool = False, seed: int = 1
                   ) -> LayerSim:
    """Stream the layer's tiles through the RTL of ``cfg`` (no gaps, no backpressure) and read
    back its outputs, the golden energy proxy of that run and, with ``waves``, the register
    toggles counted from the waveform."""
    tiles = layer_tiles(cfg, weights, acts)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tiles.npz"
        save_tiles(path, tiles)
        result = simulate(cfg, seed=seed, waves=waves, valid_prob=1.0, ready_prob=1.0,
                          options={"tiles": str(path)})
    if not result.passed:
        raise RuntimeError(f"simulation of {cfg.name} failed: {result.message}")
    run_record = result.details["run"]
    with np.load(run_record["outputs"]) as data:
        outputs = _assemble(cfg, weights, acts, [data[f"y{i}"] for i in range(len(tiles))])
    energy = energy_proxy(cfg, tiles, _schedule(run_record))
    toggles = None
    if waves:
        from_waves, _ = waveform_toggles(cfg, result.waves_path, run_record, tiles)
        toggles = {category: int(from_waves[category].sum()) for category in CATEGORIES}
    return LayerSim(outputs=outputs, energy_golden=energy, register_toggles_vcd=toggles,
                    result=result)
