"""Per-weight-value switching cost of a PE multiplier, from a gate-level netlist (DESIGN.md §4.1).

The ``mac_array`` energy proxy counts register bit toggles; the switching *inside* each PE's
multiplier is not a register and is missed. How much a multiplier switches when its activation
input changes depends strongly on the weight it holds (``w = 0`` gates every partial product off,
``w = -128`` keeps the whole array busy), which is exactly what a power-aware weight set exploits.
This module measures that dependence once per multiplier shape and caches it as a table::

    from hwgen.engines.mac_array.calibration import multiplier_cost
    table = multiplier_cost(weight_bits=8, act_bits=8, act_signed=True)
    table.of([0, -1, 64])      # gate-output toggles per activation bit toggle, per weight

Method
------
1. :class:`PeMultiplier` is the PE's product as an Amaranth component: ``prod = w * a`` with a
   ``weight_bits``-bit signed weight, an ``act_bits``-bit activation (signed if ``act_signed``)
   and the exact product width ``weight_bits + act_bits (+1 for an unsigned activation)``, as in
   :mod:`hwgen.engines.mac_array.rtl`.
2. Yosys (the YoWASP build) synthesizes it to generic two- and three-input gates: ``synth`` then
   ``abc -g`` with :data:`ABC_GATES` (``$_NOT_`` is always added by ``abc``), see
   :func:`synthesize_multiplier`. The result is checked against ``w * a`` before it is used.
3. :class:`GateNetlist` simulates that netlist with numpy, 64 input vectors per ``uint64`` word,
   one levelized gate group at a time.
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
  DSP block); another multiplier architecture gives another table.
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
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from amaranth import Module, signed, unsigned
from amaranth.back import rtlil
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwgen.flows.cache import cache_root, file_lock
from hwgen.flows.toolchain import ToolError, run_tool

__all__ = ["ABC_GATES", "CALIBRATION_VERSION", "CalibrationError", "GateNetlist",
           "MultiplierCost", "PeMultiplier", "cost_cache_path", "multiplier_cost",
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

# Yosys' internal gate cells: input port names and the function on 64-lane uint64 words
# (Yosys ``help $_MUX_``: Y = S ? B : A; ``$_ANDNOT_``: A & ~B; ``$_ORNOT_``: A | ~B).
_GATES = {
    "$_BUF_": (("A",), lambda a: a),
    "$_NOT_": (("A",), lambda a: ~a),
    "$_AND_": (("A", "B"), lambda a, b: a & b),
    "$_NAND_": (("A", "B"), lambda a, b: ~(a & b)),
    "$_OR_": (("A", "B"), lambda a, b: a | b),
    "$_NOR_": (("A", "B"), lambda a, b: ~(a | b)),
    "$_XOR_": (("A", "B"), lambda a, b: a ^ b),
    "$_XNOR_": (("A", "B"), lambda a, b: ~(a ^ b)),
    "$_ANDNOT_": (("A", "B"), lambda a, b: a & ~b),
    "$_ORNOT_": (("A", "B"), lambda a, b: a | ~b),
    "$_MUX_": (("A", "B", "S"), lambda a, b, s: (a & ~s) | (b & s)),
}

_ALL_ONES = np.uint64(0xFFFF_FFFF_FFFF_FFFF)


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


def _value_range(bits: int, is_signed: bool) -> tuple[int, int]:
    """Smallest and largest value of a ``bits``-bit number."""
    if is_signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def _prod_bits(weight_bits: int, act_bits: int, act_signed: bool) -> int:
    # An exact product: signed x unsigned needs one more bit than signed x signed.
    return weight_bits + act_bits + (0 if act_signed else 1)


class PeMultiplier(wiring.Component):
    """The combinational product of one PE: ``prod = w * a``, exact.

    Parameters
    ----------
    weight_bits : int
        Width of the signed weight ``w``.
    act_bits : int
        Width of the activation ``a``.
    act_signed : bool
        Whether ``a`` is signed (two's complement) or unsigned.
    """

    def __init__(self, weight_bits: int, act_bits: int, act_signed: bool):
        act_shape = signed(act_bits) if act_signed else unsigned(act_bits)
        super().__init__({
            "w": In(signed(weight_bits)),
            "a": In(act_shape),
            "prod": Out(signed(_prod_bits(weight_bits, act_bits, act_signed))),
        })

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.prod.eq(self.w * self.a)
        return m


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


def synthesize_multiplier(weight_bits: int, act_bits: int, act_signed: bool) -> dict:
    """Synthesize :class:`PeMultiplier` to generic gates with Yosys.

    Parameters
    ----------
    weight_bits, act_bits : int
        Operand widths, each from 2 to 16.
    act_signed : bool
        Whether the activation is signed.

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
    design = rtlil.convert(PeMultiplier(weight_bits, act_bits, act_signed), name=TOP)
    shape = f"weight_bits={weight_bits}, act_bits={act_bits}, act_signed={act_signed}"
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


def _pack(values: np.ndarray, bits: int) -> np.ndarray:
    """Bit i of every lane of ``values`` (1-D int64, length a multiple of 64) -> row i of a
    ``(bits, lanes // 64)`` uint64 array, lane k in bit k % 64 of word k // 64."""
    planes = ((values[None, :] >> np.arange(bits)[:, None]) & 1).astype(np.uint8)
    packed = np.packbits(planes, axis=1, bitorder="little")
    return packed.view("<u8").astype(np.uint64)


def _unpack(words: np.ndarray, lanes: int) -> np.ndarray:
    """Inverse of :func:`_pack` for a ``(rows, words)`` array: a ``(rows, lanes)`` uint8 array
    of 0/1."""
    as_bytes = words.astype("<u8").view(np.uint8)
    return np.unpackbits(as_bytes, axis=1, bitorder="little")[:, :lanes]


class GateNetlist:
    """A zero-delay, bit-parallel simulator of a Yosys JSON netlist of generic gates.

    Supported cells are Yosys' internal gates ``$_NOT_``, ``$_BUF_``, ``$_AND_``, ``$_NAND_``,
    ``$_OR_``, ``$_NOR_``, ``$_XOR_``, ``$_XNOR_``, ``$_ANDNOT_`` (A & ~B), ``$_ORNOT_``
    (A | ~B) and ``$_MUX_`` (S ? B : A); connections may be the constants ``"0"`` and ``"1"``.
    Gates are levelized (a gate's level is one more than the deepest gate driving it) and each
    (level, cell type) group is evaluated as one numpy operation on 64 lanes per uint64 word.

    Parameters
    ----------
    netlist : dict
        Parsed ``write_json`` output.
    top : str
        The module to simulate.

    Attributes
    ----------
    gates : int
        Number of gate cells.
    levels : int
        Logic depth (gates on the longest input-to-output path).
    nets : int
        Rows of the simulated value array (two constants, input bits, gate outputs).
    inputs, outputs : dict
        Port name -> (number of bits, signed?).

    Raises
    ------
    CalibrationError
        The module is missing, or has an unsupported cell, an ``x``/``z`` constant, a net with
        two drivers or none, or a combinational loop.
    """

    def __init__(self, netlist: dict, top: str = TOP):
        modules = netlist.get("modules", {})
        if top not in modules:
            raise CalibrationError(f"netlist has no module {top!r} (modules: {sorted(modules)})")
        module = modules[top]
        # Rows 0 and 1 hold the constants; every Yosys bit id gets the next free row.
        self._row = {"0": 0, "1": 1}

        self.inputs: dict[str, tuple[int, bool]] = {}
        self.outputs: dict[str, tuple[int, bool]] = {}
        self._port_rows: dict[str, np.ndarray] = {}
        for name, port in module["ports"].items():
            if port["direction"] not in ("input", "output"):
                raise CalibrationError(f"port {name!r} is {port['direction']}: only input and "
                                       f"output ports can be simulated")
            side = self.inputs if port["direction"] == "input" else self.outputs
            side[name] = (len(port["bits"]), bool(port.get("signed", 0)))
            self._port_rows[name] = np.array([self._row_of(bit, f"port {name}")
                                              for bit in port["bits"]], dtype=np.intp)
        sources = {0, 1} | {int(r) for name in self.inputs for r in self._port_rows[name]}

        cells = []          # (type, output row, input rows)
        driver: dict[int, int] = {}
        for cell_name, cell in module["cells"].items():
            kind = cell["type"]
            if kind not in _GATES:
                raise CalibrationError(f"cell {cell_name!r} has type {kind}, which the gate "
                                       f"simulator does not support (supported: "
                                       f"{', '.join(_GATES)})")
            conn = cell["connections"]
            where = f"cell {cell_name}"
            out = self._row_of(conn["Y"][0], where)
            if out in sources or out in driver:
                raise CalibrationError(f"net {conn['Y'][0]} has more than one driver "
                                       f"(one is {where})")
            driver[out] = len(cells)
            cells.append((kind, out, [self._row_of(conn[p][0], where) for p in _GATES[kind][0]]))

        for name in self.outputs:
            for r in self._port_rows[name]:
                if int(r) not in sources and int(r) not in driver:
                    raise CalibrationError(f"output port {name!r} has an undriven bit")
        for cell_name, (kind, _, ins) in zip(module["cells"], cells):
            if any(r not in sources and r not in driver for r in ins):
                raise CalibrationError(f"cell {cell_name!r} reads a net nothing drives")

        self.gates = len(cells)
        self.nets = len(self._row)
        self._gate_rows = np.array(sorted(driver), dtype=np.intp)
        self._groups, self.levels = self._levelize(cells, driver)

    def _row_of(self, bit, where: str) -> int:
        if isinstance(bit, str) and bit not in self._row:
            raise CalibrationError(f"{where} is connected to the constant {bit!r}; only '0' and "
                                   f"'1' can be simulated")
        return self._row.setdefault(bit, len(self._row))

    @staticmethod
    def _levelize(cells, driver) -> tuple[list, int]:
        """Kahn's algorithm: (type, output rows, input row arrays) per (level, type), in order."""
        fanout = defaultdict(list)
        waiting = []
        for index, (_, _, ins) in enumerate(cells):
            from_gates = [driver[r] for r in ins if r in driver]
            for g in from_gates:
                fanout[g].append(index)
            waiting.append(len(from_gates))
        level = [1] * len(cells)
        ready = [i for i, n in enumerate(waiting) if n == 0]
        for g in ready:         # ``ready`` grows while it is walked
            for user in fanout[g]:
                level[user] = max(level[user], level[g] + 1)
                waiting[user] -= 1
                if waiting[user] == 0:
                    ready.append(user)
        if len(ready) != len(cells):
            raise CalibrationError(f"the netlist has a combinational loop through "
                                   f"{len(cells) - len(ready)} gates")
        by_group = defaultdict(list)
        for index, (kind, _, _) in enumerate(cells):
            by_group[level[index], kind].append(index)
        groups = []
        for (_, kind), members in sorted(by_group.items()):
            outs = np.array([cells[i][1] for i in members], dtype=np.intp)
            ins = [np.array([cells[i][2][k] for i in members], dtype=np.intp)
                   for k in range(len(_GATES[kind][0]))]
            groups.append((kind, outs, ins))
        return groups, max(level, default=0)

    def _lanes(self, inputs: dict) -> tuple[dict[str, np.ndarray], tuple[int, ...]]:
        """Check ``inputs`` (one integer array-like per input port, broadcastable) and return
        them as flat int64 arrays padded with zeros to a multiple of 64 lanes, and their shape."""
        if set(inputs) != set(self.inputs):
            raise ValueError(f"inputs {sorted(inputs)}: expected exactly the input ports "
                             f"{sorted(self.inputs)}")
        arrays = {name: np.asarray(value) for name, value in inputs.items()}
        for name, array in arrays.items():
            if array.dtype.kind not in "iu":
                raise ValueError(f"input {name!r} has dtype {array.dtype}: expected integers")
            low, high = _value_range(*self.inputs[name])
            if array.size and (array.min() < low or array.max() > high):
                raise ValueError(f"input {name!r} has values outside {low}..{high}")
        names = list(arrays)
        shaped = np.broadcast_arrays(*(arrays[n] for n in names))
        shape = shaped[0].shape
        lanes = int(np.prod(shape, dtype=np.int64))
        padded = -(-lanes // 64) * 64
        flat = {}
        for name, array in zip(names, shaped):
            flat[name] = np.zeros(padded, dtype=np.int64)
            flat[name][:lanes] = array.reshape(-1)
        return flat, shape

    def _settle(self, flat: dict[str, np.ndarray]) -> np.ndarray:
        """Settled value of every net: a ``(nets, lanes // 64)`` uint64 array."""
        words = len(next(iter(flat.values()))) // 64
        values = np.empty((self.nets, words), dtype=np.uint64)
        values[0] = 0
        values[1] = _ALL_ONES
        for name, (bits, _) in self.inputs.items():
            values[self._port_rows[name]] = _pack(flat[name], bits)
        for kind, outs, ins in self._groups:
            values[outs] = _GATES[kind][1](*(values[rows] for rows in ins))
        return values

    def evaluate(self, inputs: dict) -> dict[str, np.ndarray]:
        """Settled output port values.

        Parameters
        ----------
        inputs : dict of str to array_like of int
            One value array per input port (e.g. ``{"w": ..., "a": ...}``), broadcast together.

        Returns
        -------
        dict of str to numpy.ndarray
            Output port name -> int64 array of the broadcast shape (signed ports read as two's
            complement).
        """
        flat, shape = self._lanes(inputs)
        lanes = int(np.prod(shape, dtype=np.int64))
        values = self._settle(flat)
        result = {}
        for name, (bits, is_signed) in self.outputs.items():
            planes = _unpack(values[self._port_rows[name]], lanes).astype(np.int64)
            number = (planes << np.arange(bits, dtype=np.int64)[:, None]).sum(axis=0)
            if is_signed:
                number = np.where(number >> (bits - 1), number - (1 << bits), number)
            result[name] = number.reshape(shape)
        return result

    def _gate_differences(self, before: dict, after: dict) -> tuple[np.ndarray, tuple]:
        """XOR of every gate-driven net between ``before`` and ``after`` as a ``(gates, words)``
        uint64 array, and the broadcast shape of the lanes."""
        flat0, shape = self._lanes(before)
        flat1, shape1 = self._lanes(after)
        if shape != shape1:
            raise ValueError(f"before has shape {shape} and after {shape1}: expected the same")
        words = len(next(iter(flat0.values()))) // 64
        # One simulation of both states: words [0, words) are before, [words, 2 words) after.
        values = self._settle({name: np.concatenate([flat0[name], flat1[name]])
                               for name in flat0})
        gate_values = values[self._gate_rows]
        return gate_values[:, :words] ^ gate_values[:, words:], shape

    def toggles(self, before: dict, after: dict) -> np.ndarray:
        """Number of gate-driven nets whose settled value differs between two input states.

        Counted nets are gate outputs (including output port bits driven by gates), not primary
        inputs. Zero-delay: glitches are not counted.

        Parameters
        ----------
        before, after : dict of str to array_like of int
            Input states as for :meth:`evaluate`; lane k of ``before`` goes to lane k of
            ``after``.

        Returns
        -------
        numpy.ndarray
            int64 toggle count per lane, of the broadcast shape.
        """
        diff, shape = self._gate_differences(before, after)
        lanes = int(np.prod(shape, dtype=np.int64))
        return _unpack(diff, lanes).sum(axis=0, dtype=np.int64).reshape(shape)

    def _word_toggles(self, before: dict, after: dict) -> np.ndarray:
        """Toggle counts summed over each group of 64 lanes (the fast path of the calibration)."""
        diff, _ = self._gate_differences(before, after)
        return np.bitwise_count(diff).sum(axis=0, dtype=np.int64)


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
        weight ``w``.
    """

    weight_bits: int
    act_bits: int
    act_signed: bool
    samples: int
    seed: int
    gates: int
    cost: np.ndarray

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
            A weight is not an integer or is out of range.
        """
        w = np.asarray(weights)
        if w.dtype.kind not in "iu":
            raise ValueError(f"weights have dtype {w.dtype}: expected integers")
        low, high = self.w_min, -self.w_min - 1
        outside = w[(w < low) | (w > high)]
        if outside.size:
            raise ValueError(f"weight {int(outside.flat[0])} is outside the {self.weight_bits}-bit "
                             f"signed range {low}..{high}")
        return self.cost[w.astype(np.int64) - low]

    def to_json(self) -> str:
        """The table as the cache stores it (with the method version)."""
        data = {"version": CALIBRATION_VERSION, "weight_bits": self.weight_bits,
                "act_bits": self.act_bits, "act_signed": self.act_signed,
                "samples": self.samples, "seed": self.seed, "gates": self.gates,
                "w_min": self.w_min, "cost": self.cost.tolist()}
        return json.dumps(data, indent=1) + "\n"


def cost_cache_path(weight_bits: int, act_bits: int, act_signed: bool, samples: int = 256,
                    seed: int = 0) -> Path:
    """Where :func:`multiplier_cost` keeps the table for these arguments (validated as there)."""
    weight_bits = _check_int("weight_bits", weight_bits)
    act_bits = _check_int("act_bits", act_bits)
    act_signed = _check_signed_flag(act_signed)
    samples = _check_int("samples", samples)
    seed = _check_seed(seed)
    kind = "s" if act_signed else "u"
    return cache_root() / "energy" / (f"multiplier-w{weight_bits}-a{act_bits}{kind}-n{samples}"
                                      f"-seed{seed}-v{CALIBRATION_VERSION}.json")


def _read_cached(path: Path, expected: dict) -> MultiplierCost | None:
    """The table in ``path`` if it exists and was made with ``expected`` arguments, else None
    (a file edited by hand or from another method is recalibrated and overwritten)."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        cost = np.array(data["cost"], dtype=np.float64)
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
                   rng: np.random.Generator) -> None:
    """Raise :class:`CalibrationError` unless the netlist computes ``w * a`` on the four corner
    operand pairs and on random ones."""
    w_lo, w_hi = _value_range(weight_bits, True)
    a_lo, a_hi = _value_range(act_bits, act_signed)
    w = np.concatenate([[w_lo, w_lo, w_hi, w_hi],
                        rng.integers(w_lo, w_hi, size=_CHECK_VECTORS, endpoint=True)])
    a = np.concatenate([[a_lo, a_hi, a_lo, a_hi],
                        rng.integers(a_lo, a_hi, size=_CHECK_VECTORS, endpoint=True)])
    got = netlist.evaluate({"w": w, "a": a})["prod"]
    wrong = np.flatnonzero(got != w * a)
    if wrong.size:
        k = wrong[0]
        raise CalibrationError(f"the synthesized multiplier computes {w[k]} * {a[k]} = {got[k]}, "
                               f"not {w[k] * a[k]}")


def _calibrate(weight_bits: int, act_bits: int, act_signed: bool, samples: int,
               seed: int) -> MultiplierCost:
    netlist = GateNetlist(synthesize_multiplier(weight_bits, act_bits, act_signed))
    # The pairs are drawn first, so they depend on the seed only, not on the netlist check.
    rng = np.random.default_rng(seed)
    a_lo, a_hi = _value_range(act_bits, act_signed)
    a0, a1 = rng.integers(a_lo, a_hi, size=(2, samples), endpoint=True)
    _check_product(netlist, weight_bits, act_bits, act_signed, rng)

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
    w_lo, w_hi = _value_range(weight_bits, True)
    weights = np.arange(w_lo, w_hi + 1, dtype=np.int64)
    toggles = np.empty(len(weights), dtype=np.int64)
    # One simulation holds before and after: 2 * per_weight / 64 words per weight and net.
    chunk = max(1, _CHUNK_WORDS // (netlist.nets * 2 * (per_weight // 64)))
    for start in range(0, len(weights), chunk):
        block = weights[start:start + chunk]
        w = np.repeat(block, per_weight)
        counts = netlist._word_toggles({"w": w, "a": np.tile(a0, len(block))},
                                       {"w": w, "a": np.tile(a1, len(block))})
        toggles[start:start + len(block)] = counts.reshape(len(block), -1).sum(axis=1)

    cost = toggles / flips
    cost.setflags(write=False)
    return MultiplierCost(weight_bits=weight_bits, act_bits=act_bits, act_signed=act_signed,
                          samples=samples, seed=seed, gates=netlist.gates, cost=cost)


def multiplier_cost(weight_bits: int, act_bits: int, act_signed: bool, samples: int = 256,
                    seed: int = 0) -> MultiplierCost:
    """The per-weight switching cost table of a PE multiplier, from the cache or calibrated.

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
    path = cost_cache_path(weight_bits, act_bits, act_signed, samples, seed)
    args = {"weight_bits": int(weight_bits), "act_bits": int(act_bits),
            "act_signed": bool(act_signed), "samples": int(samples), "seed": int(seed)}
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
