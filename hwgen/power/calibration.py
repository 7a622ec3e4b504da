"""Per-weight-value switching cost of a PE multiplier, from a gate-level netlist
(docs/architecture.md §4.1).

The ``mac_array`` energy proxy counts register bit toggles; the switching *inside* each PE's
multiplier is not a register and is missed. How much a multiplier switches when its activation
input changes depends strongly on the weight it holds (``w = 0`` gates every partial product off,
``w = -128`` keeps the whole array busy), which is exactly what a power-aware weight set exploits.
This module measures that dependence once per multiplier shape and caches it as a table::

    from hwgen.power.calibration import multiplier_cost
    table = multiplier_cost(weight_bits=8, act_bits=8, act_signed=True)
    table.of([0, -1, 64])      # gate-output toggles per activation bit toggle, per weight

Method
------
1. The block measured is the combinational product between a PE's registers (``pe``):

   * ``"multiply"``: :class:`hwgen.hdl.multiplier.Multiplier`, ``prod = w * a`` with a
     ``weight_bits``-bit signed weight, an ``act_bits``-bit activation (signed if
     ``act_signed``) and the exact product width ``weight_bits + act_bits (+1 for an unsigned
     activation)``: what the generic description of a multiplier PE's
     :class:`hwgen.hdl.dsp.RegisteredProduct` computes;
   * ``"shift"``: :class:`hwgen.hdl.shift.ShiftMultiplier`, the shift PE's product (shifter,
     negation, zero gate) of a power-of-two weight given as its shift code; its port ``w``
     gets the codes of :func:`hwgen.hdl.shift.encode`, and only the ``pow2`` weights get a
     cost (the others are NaN: a shift PE cannot hold them).
2. Yosys (the YoWASP build) synthesizes it to generic two- and three-input gates: ``synth`` then
   ``abc -g`` with :data:`ABC_GATES` (``$_NOT_`` is always added by ``abc``), see
   :func:`synthesize_multiplier`. The result is checked against ``w * a`` (every weight the
   block holds, with the four extreme pairs and random activations) before it is used.
3. :class:`hwgen.power.gatesim.GateNetlist` simulates that netlist with numpy, 64 input vectors
   per ``uint64`` word, one levelized gate group at a time.
4. For a fixed weight ``w``, an activation transition ``a0 -> a1`` toggles every gate-driven net
   (gate outputs, including output port bits; not the primary inputs ``w`` and ``a``, which are
   register toggles the proxy already counts) whose settled value differs between ``(w, a0)``
   and ``(w, a1)``. :func:`multiplier_cost` draws ``samples`` activation pairs uniformly over the
   activation range with ``numpy.random.default_rng(seed)``, the same pairs for every weight, and
   sets ``cost[w] = sum of toggles / sum of Hamming distances |a0 ^ a1|`` over the pairs.

What the number is, and is not
------------------------------
The unit is **gate-output toggles per activation bit toggle**, a switching-activity proxy, not
joules:

* **Zero-delay model.** Only settled values are compared, so glitches (transient transitions
  while carries and partial sums ripple through the adder array) are not counted. In real array
  multipliers glitches can be a large share of the dynamic power, so the table undercounts
  absolute activity, and not necessarily by the same factor for every weight.
* Every gate output counts 1, whatever the gate type, fan-out or wire load.
* The netlist is what Yosys' generic ``synth`` and ABC make of ``$mul`` (no Booth recoding, no
  DSP block) or of the shift product; another multiplier architecture gives another table. A
  multiplier table and a shift table are the same unit, so the proxies of the two PE kinds
  compare, with the same caveats (a DSP block's real switching is not Yosys' ``$mul``).
* Activations are uniform over their range; real activation statistics (ReLU zeros, small
  magnitudes) change the numbers. The weight is held constant (weight-stationary array).

Cache
-----
A table is stored as JSON in :func:`cost_cache_path` (under ``hwgen.flows.cache.cache_root()``) and
read back without running Yosys. The file is written atomically under a ``fcntl`` lock on a
sibling ``.lock`` file, so parallel pytest-xdist workers calibrate a shape once and never read a
half-written file. :data:`CALIBRATION_VERSION` is part of the file name: bump it whenever the
method above changes, so stale tables are not reused.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from amaranth.back import rtlil

from hwgen.fixedpoint import signed_range, unsigned_range
from hwgen.flows.cache import cache_root, file_lock
from hwgen.flows.toolchain import ToolError, run_tool
from hwgen.hdl.multiplier import Multiplier
from hwgen.hdl.shift import ShiftMultiplier
from hwgen.hdl.shift import encode as encode_shift

from .gatesim import GateNetlist, NetlistError

__all__ = ["ABC_GATES", "CALIBRATION_VERSION", "PES", "TOP", "CalibrationError",
           "MultiplierCost", "cost_cache_path", "multiplier_cost", "multiplier_netlist", "pe_cost",
           "synthesize_multiplier"]

#: Version of the calibration method; part of every cache file name (bump when the method changes).
CALIBRATION_VERSION = 1

#: Gate library handed to ``abc -g`` (Yosys adds NOT itself).
ABC_GATES = "AND,NAND,OR,NOR,XOR,XNOR,ANDNOT,ORNOT,MUX"

#: Name of the synthesized module (the top of the RTLIL and of the JSON netlist).
TOP = "pe_multiplier"

#: Upper bound on one Yosys run, in seconds (the first YoWASP run also compiles WebAssembly).
YOSYS_TIMEOUT_S = 3600.0

#: Largest net-value array :func:`multiplier_cost` simulates at once, in uint64 words (64 MiB).
#: Larger shapes are simulated in chunks of weights.
_CHUNK_WORDS = 1 << 23

#: Randomly drawn (w, a) vectors on which the synthesized netlist is checked against ``w * a``.
_CHECK_VECTORS = 4096

_LIMITS = {"weight_bits": (2, 16), "act_bits": (2, 16), "samples": (1, 100_000)}

#: PE products that can be calibrated (``MacArrayConfig.pe``).
PES = ("multiply", "shift")


class CalibrationError(RuntimeError):
    """Synthesizing or simulating the multiplier failed, or its netlist is not usable."""


def _check_int(name: str, value) -> int:
    low, high = _LIMITS[name]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
            or not low <= value <= high:
        raise ValueError(f"{name} = {value!r}: expected an integer from {low} to {high}")
    return int(value)


def _check_signed_flag(act_signed) -> bool:
    if not isinstance(act_signed, (bool, np.bool_)):
        # ValueError like every other bad argument, so callers catch one type.
        raise ValueError(f"act_signed = {act_signed!r}: expected True or False")  # noqa: TRY004
    return bool(act_signed)


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed = {seed!r}: expected a non-negative integer")
    return int(seed)


def _check_pe(pe) -> str:
    if pe not in PES:
        raise ValueError(f"pe = {pe!r}: expected one of {', '.join(map(repr, PES))}")
    return pe


def _held_weights(weight_bits: int, pe: str) -> np.ndarray:
    """The weights the PE product can hold, ascending: every value, or the ``pow2`` set."""
    w_lo, w_hi = signed_range(weight_bits)
    weights = np.arange(w_lo, w_hi + 1, dtype=np.int64)
    if pe == "shift":
        weights = weights[np.bitwise_count(np.abs(weights)) <= 1]
    return weights


def _port_w(weights: np.ndarray, weight_bits: int, pe: str) -> np.ndarray:
    """What the block's ``w`` port gets for ``weights``: the weight, or its shift code."""
    return encode_shift(weights, weight_bits) if pe == "shift" else weights


def _act_range(act_bits: int, act_signed: bool) -> tuple[int, int]:
    return signed_range(act_bits) if act_signed else unsigned_range(act_bits)


def _yosys_script() -> str:
    return "\n".join([
        f"read_rtlil {TOP}.il",
        f"synth -flatten -top {TOP}",
        # Re-map the whole design onto a fixed generic gate set, so the gate count and the
        # simulator's cell types do not depend on synth's default ABC library.
        f"abc -g {ABC_GATES}",
        "opt_clean -purge",
        # A net with two drivers or a loop would make the netlist not the design: fail loudly.
        "check -assert",
        "stat",
        "write_json netlist.json",
        "",
    ])


def synthesize_multiplier(weight_bits: int, act_bits: int, act_signed: bool,
                          pe: str = "multiply") -> dict:
    """Synthesize the PE product (:class:`hwgen.hdl.multiplier.Multiplier`, or with
    ``pe = "shift"`` :class:`hwgen.hdl.shift.ShiftMultiplier`) to generic gates with Yosys.

    Parameters
    ----------
    weight_bits, act_bits : int
        Operand widths, each from 2 to 16.
    act_signed : bool
        Whether the activation is signed.
    pe : {"multiply", "shift"}
        Which product.

    Returns
    -------
    dict
        The netlist as Yosys ``write_json`` writes it; the module is named ``"pe_multiplier"``.

    Raises
    ------
    ValueError
        A width is out of range.
    CalibrationError
        Yosys is missing, failed or wrote no netlist (the message ends with its last log lines).
    """
    weight_bits = _check_int("weight_bits", weight_bits)
    act_bits = _check_int("act_bits", act_bits)
    act_signed = _check_signed_flag(act_signed)
    block = ShiftMultiplier if _check_pe(pe) == "shift" else Multiplier
    design = rtlil.convert(block(weight_bits, act_bits, act_signed), name=TOP)
    shape = (f"weight_bits={weight_bits}, act_bits={act_bits}, act_signed={act_signed}, "
             f"pe={pe}")
    with tempfile.TemporaryDirectory(prefix="hwgen-calibration-") as tmp:
        work = Path(tmp)
        (work / f"{TOP}.il").write_text(design)
        (work / "calibrate.ys").write_text(_yosys_script())
        try:
            proc = run_tool("yosys", ["-q", "-l", "yosys.log", "-s", "calibrate.ys"], cwd=work,
                            timeout=YOSYS_TIMEOUT_S)
        except ToolError as exc:
            raise CalibrationError(str(exc)) from exc
        netlist = work / "netlist.json"
        if proc.returncode != 0 or not netlist.is_file():
            log = work / "yosys.log"
            text = (log.read_text(errors="replace") if log.is_file() else "") \
                + "\n" + proc.stdout + "\n" + proc.stderr
            tail = [line for line in text.splitlines() if line.strip()][-8:]
            raise CalibrationError(f"yosys failed to synthesize {TOP} ({shape}), exit status "
                                   f"{proc.returncode}; last log lines:\n" + "\n".join(tail))
        return json.loads(netlist.read_text())


def multiplier_netlist(weight_bits: int, act_bits: int, act_signed: bool,
                       pe: str = "multiply") -> GateNetlist:
    """:func:`synthesize_multiplier`, ready to simulate (ports ``w``, ``a`` and ``prod``).

    Raises
    ------
    ValueError
        A width is out of range.
    CalibrationError
        Yosys failed, or its netlist is not one :class:`GateNetlist` can simulate.
    """
    netlist = synthesize_multiplier(weight_bits, act_bits, act_signed, pe)
    try:
        return GateNetlist(netlist, top=TOP)
    except NetlistError as exc:
        raise CalibrationError(f"the synthesized {TOP} cannot be simulated: {exc}") from None


@dataclass(frozen=True, eq=False)
class MultiplierCost:
    """Mean gate-output toggles of a PE multiplier per activation bit toggle, per weight value.

    Attributes
    ----------
    weight_bits, act_bits : int
        Operand widths.
    act_signed : bool
        Whether the activation is signed.
    samples, seed : int
        Number of random activation pairs and the seed of ``numpy.random.default_rng``.
    gates : int
        Gate cells in the synthesized netlist.
    cost : numpy.ndarray
        float64, shape ``(2**weight_bits,)``, read-only; ``cost[w - w_min]`` is the cost of
        weight ``w``, NaN for a weight the PE cannot hold.
    pe : {"multiply", "shift"}
        The PE product measured.
    """

    weight_bits: int
    act_bits: int
    act_signed: bool
    samples: int
    seed: int
    gates: int
    cost: np.ndarray
    pe: str = "multiply"

    @property
    def w_min(self) -> int:
        """The most negative weight, ``-(2**(weight_bits - 1))``."""
        return -(1 << (self.weight_bits - 1))

    def of(self, weights) -> np.ndarray:
        """Cost of each weight.

        Parameters
        ----------
        weights : array_like of int
            Weight values, each in the signed ``weight_bits`` range.

        Returns
        -------
        numpy.ndarray
            float64 array of the same shape.

        Raises
        ------
        ValueError
            A weight is not an integer, is out of range or is one the PE cannot hold.
        """
        w = np.asarray(weights)
        if w.dtype.kind not in "iu":
            raise ValueError(f"weights have dtype {w.dtype}: expected integers")
        low, high = self.w_min, -self.w_min - 1
        outside = w[(w < low) | (w > high)]
        if outside.size:
            raise ValueError(f"weight {int(outside.flat[0])} is outside the {self.weight_bits}-bit "
                             f"signed range {low}..{high}")
        cost = self.cost[w.astype(np.int64) - low]
        if np.isnan(cost).any():
            bad = int(w[np.isnan(cost)].flat[0])
            raise ValueError(f"weight {bad} has no cost: a {self.pe} PE cannot hold it")
        return cost

    def to_json(self) -> str:
        """The table as the cache stores it (with the method version); null for NaN."""
        data = {"version": CALIBRATION_VERSION, "pe": self.pe, "weight_bits": self.weight_bits,
                "act_bits": self.act_bits, "act_signed": self.act_signed,
                "samples": self.samples, "seed": self.seed, "gates": self.gates,
                "w_min": self.w_min,
                "cost": [None if np.isnan(c) else c for c in self.cost.tolist()]}
        return json.dumps(data, indent=1) + "\n"


def cost_cache_path(weight_bits: int, act_bits: int, act_signed: bool, samples: int = 256,
                    seed: int = 0, pe: str = "multiply") -> Path:
    """Where :func:`multiplier_cost` keeps the table for these arguments (validated as there)."""
    weight_bits = _check_int("weight_bits", weight_bits)
    act_bits = _check_int("act_bits", act_bits)
    act_signed = _check_signed_flag(act_signed)
    samples = _check_int("samples", samples)
    seed = _check_seed(seed)
    kind = "s" if act_signed else "u"
    block = "shift" if _check_pe(pe) == "shift" else "multiplier"
    return cache_root() / "energy" / (f"{block}-w{weight_bits}-a{act_bits}{kind}-n{samples}"
                                      f"-seed{seed}-v{CALIBRATION_VERSION}.json")


def _read_cached(path: Path, expected: dict) -> MultiplierCost | None:
    """The table in ``path`` if it exists and was made with ``expected`` arguments, else None
    (a file edited by hand or from another method is recalibrated and overwritten)."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        data.setdefault("pe", "multiply")       # tables from before shift PEs: multipliers
        cost = np.array(data["cost"], dtype=np.float64)     # null -> NaN
        if {key: data[key] for key in expected} != expected \
                or data["version"] != CALIBRATION_VERSION \
                or cost.shape != (1 << expected["weight_bits"],):
            return None
        gates = int(data["gates"])
    except (ValueError, KeyError, TypeError):
        return None
    cost.setflags(write=False)
    return MultiplierCost(**expected, gates=gates, cost=cost)


def _check_product(netlist: GateNetlist, weight_bits: int, act_bits: int, act_signed: bool,
                   rng: np.random.Generator, pe: str = "multiply") -> None:
    """Raise :class:`CalibrationError` unless the netlist computes ``w * a`` on the four corner
    operand pairs and on random ones (weights the PE holds)."""
    held = _held_weights(weight_bits, pe)
    w_lo, w_hi = held[0], held[-1]
    a_lo, a_hi = _act_range(act_bits, act_signed)
    w = np.concatenate([[w_lo, w_lo, w_hi, w_hi], rng.choice(held, size=_CHECK_VECTORS)])
    a = np.concatenate([[a_lo, a_hi, a_lo, a_hi],
                        rng.integers(a_lo, a_hi, size=_CHECK_VECTORS, endpoint=True)])
    got = netlist.evaluate({"w": _port_w(w, weight_bits, pe), "a": a})["prod"]
    wrong = np.flatnonzero(got != w * a)
    if wrong.size:
        k = wrong[0]
        raise CalibrationError(f"the synthesized multiplier computes {w[k]} * {a[k]} = {got[k]}, "
                               f"not {w[k] * a[k]}")


def _calibrate(weight_bits: int, act_bits: int, act_signed: bool, samples: int,
               seed: int, pe: str = "multiply") -> MultiplierCost:
    netlist = multiplier_netlist(weight_bits, act_bits, act_signed, pe)
    # The pairs are drawn first, so they depend on the seed only, not on the netlist check.
    rng = np.random.default_rng(seed)
    a_lo, a_hi = _act_range(act_bits, act_signed)
    a0, a1 = rng.integers(a_lo, a_hi, size=(2, samples), endpoint=True)
    _check_product(netlist, weight_bits, act_bits, act_signed, rng, pe)

    mask = (1 << act_bits) - 1   # the act_bits-bit patterns of signed values
    flips = int(np.bitwise_count((a0 ^ a1) & mask).sum())
    if flips == 0:
        raise CalibrationError(f"all {samples} activation pairs drawn with seed {seed} are "
                               f"equal pairs; use more samples or another seed")

    # Each weight gets a whole number of 64-lane words; the padding lanes are 0 -> 0
    # transitions, which toggle nothing, so a word's toggle count belongs to one weight.
    per_weight = -(-samples // 64) * 64
    pad = np.zeros(per_weight - samples, dtype=np.int64)
    a0, a1 = np.concatenate([a0, pad]), np.concatenate([a1, pad])
    weights = _held_weights(weight_bits, pe)
    toggles = np.empty(len(weights), dtype=np.int64)
    # One simulation holds before and after: 2 * per_weight / 64 words per weight and net.
    chunk = max(1, _CHUNK_WORDS // (netlist.nets * 2 * (per_weight // 64)))
    for start in range(0, len(weights), chunk):
        block = weights[start:start + chunk]
        w = _port_w(np.repeat(block, per_weight), weight_bits, pe)
        counts = netlist.word_toggles({"w": w, "a": np.tile(a0, len(block))},
                                      {"w": w, "a": np.tile(a1, len(block))})
        toggles[start:start + len(block)] = counts.reshape(len(block), -1).sum(axis=1)

    cost = np.full(1 << weight_bits, np.nan)
    cost[weights + (1 << (weight_bits - 1))] = toggles / flips
    cost.setflags(write=False)
    return MultiplierCost(weight_bits=weight_bits, act_bits=act_bits, act_signed=act_signed,
                          samples=samples, seed=seed, gates=netlist.gates, cost=cost, pe=pe)


def multiplier_cost(weight_bits: int, act_bits: int, act_signed: bool, samples: int = 256,
                    seed: int = 0, pe: str = "multiply") -> MultiplierCost:
    """The per-weight switching cost table of a PE product, from the cache or calibrated.

    Parameters
    ----------
    weight_bits : int
        Signed weight width, 2 to 16.
    act_bits : int
        Activation width, 2 to 16.
    act_signed : bool
        Whether the activation is signed (two's complement) or unsigned.
    samples : int
        Random activation pairs per weight, 1 to 100000.
    seed : int
        Seed of ``numpy.random.default_rng`` for the activation pairs (non-negative).
    pe : {"multiply", "shift"}
        The PE product: a multiplier, or a shift PE's shifter (``pow2`` weights only).

    Returns
    -------
    MultiplierCost
        ``cost[w - w_min]`` = gate-output toggles per activation bit toggle for weight ``w``
        (see the module doc for what this proxy does and does not include).

    Raises
    ------
    ValueError
        An argument is out of range (one line naming it, its value and what is allowed).
    CalibrationError
        Yosys failed, or the netlist is unusable or does not compute ``w * a``.
    """
    path = cost_cache_path(weight_bits, act_bits, act_signed, samples, seed, pe)
    args = {"weight_bits": int(weight_bits), "act_bits": int(act_bits),
            "act_signed": bool(act_signed), "samples": int(samples), "seed": int(seed),
            "pe": pe}
    with file_lock(path.with_name(path.name + ".lock")):
        cached = _read_cached(path, args)
        if cached is not None:
            return cached
        table = _calibrate(**args)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".tmp", delete=False) as tmp:
            tmp.write(table.to_json())
        os.replace(tmp.name, path)
        return table


def pe_cost(cfg) -> MultiplierCost:
    """:func:`multiplier_cost` of a MAC array's PE product at its operand widths (a
    :class:`hwgen.engines.mac_array.MacArrayConfig`): the shift table with shift PEs."""
    return multiplier_cost(cfg.weight_bits, cfg.act_bits, cfg.act_signed,
                           pe="shift" if cfg.shift_pe else "multiply")
