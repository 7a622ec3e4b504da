"""A zero-delay, bit-parallel simulator of a Yosys JSON netlist of generic gates.

Yosys' ``write_json`` after ``synth`` and ``abc -g`` describes a combinational design as cells of
its internal gate types connected by numbered nets. :class:`GateNetlist` evaluates such a netlist
with numpy, 64 input vectors per ``uint64`` word: every net is one row of a value array, the
gates are levelized (a gate's level is one more than the deepest gate driving it) and each
(level, cell type) group is one numpy operation. Besides the settled outputs
(:meth:`GateNetlist.evaluate`) it counts the gate-driven nets whose settled value differs between
two input states (:meth:`GateNetlist.toggles`), a switching-activity measure.

The model has no delays: only settled values exist, so glitches are not seen.

Example::

    netlist = GateNetlist(json.loads(Path("netlist.json").read_text()), top="adder")
    netlist.evaluate({"x": [1, 2, 3], "y": 5})["sum"]      # -> array([6, 7, 8])
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from hwgen.fixedpoint import signed_range, unsigned_range

__all__ = ["GATES", "GateNetlist", "NetlistError", "pack", "unpack"]

# Yosys' internal gate cells: input port names and the function on 64-lane uint64 words
# (Yosys ``help $_MUX_``: Y = S ? B : A; ``$_ANDNOT_``: A & ~B; ``$_ORNOT_``: A | ~B).
_FUNCTIONS = {
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

#: The cell types :class:`GateNetlist` simulates -> their input pin names, in Yosys' order.
GATES = {kind: pins for kind, (pins, _) in _FUNCTIONS.items()}

_ALL_ONES = np.uint64(0xFFFF_FFFF_FFFF_FFFF)


class NetlistError(ValueError):
    """The netlist is not one this simulator can run (one line saying where and why)."""


def pack(values: np.ndarray, bits: int) -> np.ndarray:
    """Bit planes of ``values`` packed 64 lanes to a word.

    Parameters
    ----------
    values : numpy.ndarray
        1-D int64 array, length a multiple of 64 (negative values as two's complement).
    bits : int
        Number of low bits to pack.

    Returns
    -------
    numpy.ndarray
        uint64, shape ``(bits, len(values) // 64)``: bit i of lane k is bit ``k % 64`` of
        word ``k // 64`` in row i.
    """
    planes = ((values[None, :] >> np.arange(bits)[:, None]) & 1).astype(np.uint8)
    packed = np.packbits(planes, axis=1, bitorder="little")
    return packed.view("<u8").astype(np.uint64)


def unpack(words: np.ndarray, lanes: int) -> np.ndarray:
    """Inverse of :func:`pack` for a ``(rows, words)`` uint64 array: a ``(rows, lanes)`` uint8
    array of 0/1 (the first ``lanes`` lanes)."""
    as_bytes = words.astype("<u8").view(np.uint8)
    return np.unpackbits(as_bytes, axis=1, bitorder="little")[:, :lanes]


class GateNetlist:
    """One module of a Yosys JSON netlist, ready to simulate.

    Supported cells are Yosys' internal gates ``$_NOT_``, ``$_BUF_``, ``$_AND_``, ``$_NAND_``,
    ``$_OR_``, ``$_NOR_``, ``$_XOR_``, ``$_XNOR_``, ``$_ANDNOT_`` (A & ~B), ``$_ORNOT_``
    (A | ~B) and ``$_MUX_`` (S ? B : A); connections may be the constants ``"0"`` and ``"1"``.

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
    NetlistError
        The module is missing, or has an inout port, an unsupported cell, an ``x``/``z``
        constant, a net with two drivers or none, or a combinational loop.
    """

    def __init__(self, netlist: dict, top: str):
        modules = netlist.get("modules", {})
        if top not in modules:
            raise NetlistError(f"netlist has no module {top!r} (modules: {sorted(modules)})")
        module = modules[top]
        # Rows 0 and 1 hold the constants; every Yosys bit id gets the next free row.
        self._row = {"0": 0, "1": 1}

        self.inputs: dict[str, tuple[int, bool]] = {}
        self.outputs: dict[str, tuple[int, bool]] = {}
        self._port_rows: dict[str, np.ndarray] = {}
        for name, port in module["ports"].items():
            if port["direction"] not in ("input", "output"):
                raise NetlistError(f"port {name!r} is {port['direction']}: only input and "
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
            if kind not in GATES:
                raise NetlistError(f"cell {cell_name!r} has type {kind}, which the gate "
                                   f"simulator does not support (supported: {', '.join(GATES)})")
            conn = cell["connections"]
            where = f"cell {cell_name}"
            out = self._row_of(conn["Y"][0], where)
            if out in sources or out in driver:
                raise NetlistError(f"net {conn['Y'][0]} has more than one driver "
                                   f"(one is {where})")
            driver[out] = len(cells)
            cells.append((kind, out, [self._row_of(conn[p][0], where) for p in GATES[kind]]))

        for name in self.outputs:
            for r in self._port_rows[name]:
                if int(r) not in sources and int(r) not in driver:
                    raise NetlistError(f"output port {name!r} has an undriven bit")
        for cell_name, (kind, _, ins) in zip(module["cells"], cells):
            if any(r not in sources and r not in driver for r in ins):
                raise NetlistError(f"cell {cell_name!r} reads a net nothing drives")

        self.gates = len(cells)
        self.nets = len(self._row)
        self._gate_rows = np.array(sorted(driver), dtype=np.intp)
        self._groups, self.levels = self._levelize(cells, driver)

    def _row_of(self, bit, where: str) -> int:
        if isinstance(bit, str) and bit not in self._row:
            raise NetlistError(f"{where} is connected to the constant {bit!r}; only '0' and "
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
            raise NetlistError(f"the netlist has a combinational loop through "
                               f"{len(cells) - len(ready)} gates")
        by_group = defaultdict(list)
        for index, (kind, _, _) in enumerate(cells):
            by_group[level[index], kind].append(index)
        groups = []
        for (_, kind), members in sorted(by_group.items()):
            outs = np.array([cells[i][1] for i in members], dtype=np.intp)
            ins = [np.array([cells[i][2][k] for i in members], dtype=np.intp)
                   for k in range(len(GATES[kind]))]
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
            bits, is_signed = self.inputs[name]
            low, high = signed_range(bits) if is_signed else unsigned_range(bits)
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
            values[self._port_rows[name]] = pack(flat[name], bits)
        for kind, outs, ins in self._groups:
            values[outs] = _FUNCTIONS[kind][1](*(values[rows] for rows in ins))
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

        Raises
        ------
        ValueError
            The ports are not exactly the input ports, or a value is not an integer or does not
            fit its port.
        """
        flat, shape = self._lanes(inputs)
        lanes = int(np.prod(shape, dtype=np.int64))
        values = self._settle(flat)
        result = {}
        for name, (bits, is_signed) in self.outputs.items():
            planes = unpack(values[self._port_rows[name]], lanes).astype(np.int64)
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
        return unpack(diff, lanes).sum(axis=0, dtype=np.int64).reshape(shape)

    def word_toggles(self, before: dict, after: dict) -> np.ndarray:
        """:meth:`toggles` summed over each word of 64 lanes, without unpacking the lanes.

        Lanes are flattened in C order, lane k in word ``k // 64`` (see :func:`pack`); the
        last word is padded with lanes that are zero in both states and toggle nothing. A
        caller that gives each of its cases a whole number of words gets per-case sums.

        Returns
        -------
        numpy.ndarray
            int64, one entry per word: ``ceil(lanes / 64)`` entries.
        """
        diff, _ = self._gate_differences(before, after)
        return np.bitwise_count(diff).sum(axis=0, dtype=np.int64)
