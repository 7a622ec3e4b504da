"""The bit-parallel gate-level simulator (hwgen/power/gatesim.py).

Gate functions are checked against truth tables copied from Yosys' ``help <cell>``; toggles on a
real netlist (the 8x8 PE multiplier, synthesized by the YoWASP Yosys, marked ``synth``) against a
plain-Python evaluator that knows nothing of levels, numpy or bit packing.
"""

from __future__ import annotations

import numpy as np
import pytest

from hwgen.power.calibration import TOP, synthesize_multiplier
from hwgen.power.gatesim import GATES, GateNetlist, NetlistError, pack, unpack

# Truth tables copied from Yosys' ``help <cell>`` output, input order as listed there; written
# out here so the simulator's word-level functions are checked against something independent.
TRUTH = {
    "$_BUF_": {(0,): 0, (1,): 1},
    "$_NOT_": {(0,): 1, (1,): 0},
    "$_AND_": {(0, 0): 0, (0, 1): 0, (1, 0): 0, (1, 1): 1},
    "$_NAND_": {(0, 0): 1, (0, 1): 1, (1, 0): 1, (1, 1): 0},
    "$_OR_": {(0, 0): 0, (0, 1): 1, (1, 0): 1, (1, 1): 1},
    "$_NOR_": {(0, 0): 1, (0, 1): 0, (1, 0): 0, (1, 1): 0},
    "$_XOR_": {(0, 0): 0, (0, 1): 1, (1, 0): 1, (1, 1): 0},
    "$_XNOR_": {(0, 0): 1, (0, 1): 0, (1, 0): 0, (1, 1): 1},
    "$_ANDNOT_": {(0, 0): 0, (0, 1): 0, (1, 0): 1, (1, 1): 0},
    "$_ORNOT_": {(0, 0): 1, (0, 1): 0, (1, 0): 1, (1, 1): 1},
    # (A, B, S): S ? B : A
    "$_MUX_": {(a, b, s): (b if s else a) for a in (0, 1) for b in (0, 1) for s in (0, 1)},
}
PINS = {1: ("A",), 2: ("A", "B"), 3: ("A", "B", "S")}

#: Seed of the random lanes of the word-toggle check (recorded so a failure can be replayed).
LANE_SEED = 20240611


def _one_gate_netlist(kind: str, inputs: int) -> dict:
    """A module whose inputs x (bits 2..) feed one ``kind`` gate driving y (bit 9)."""
    pins = PINS[inputs]
    return {"modules": {"t": {
        "ports": {"x": {"direction": "input", "bits": list(range(2, 2 + inputs))},
                  "y": {"direction": "output", "bits": [9]}},
        "cells": {"g": {"type": kind, "connections": {
            **{pin: [2 + i] for i, pin in enumerate(pins)}, "Y": [9]}}},
    }}}


def _two_level_netlist() -> dict:
    """y0 = x AND 1, y1 = (x AND 1) NOR 0: constants feed gates; two levels of logic."""
    return {"modules": {"t": {
        "ports": {"x": {"direction": "input", "bits": [2]},
                  "y": {"direction": "output", "bits": [3, 4]}},
        "cells": {"g1": {"type": "$_NOR_", "connections": {"A": [3], "B": ["0"], "Y": [4]}},
                  "g0": {"type": "$_AND_", "connections": {"A": [2], "B": ["1"], "Y": [3]}}},
    }}}


def test_supported_gates_are_the_truth_tables():
    assert set(GATES) == set(TRUTH)
    assert all(GATES[kind] == PINS[len(next(iter(TRUTH[kind])))] for kind in TRUTH)


@pytest.mark.parametrize("kind", sorted(TRUTH))
def test_gate_functions_match_yosys_truth_tables(kind):
    table = TRUTH[kind]
    inputs = len(next(iter(table)))
    netlist = GateNetlist(_one_gate_netlist(kind, inputs), top="t")
    # x bit i is pin i, so x = sum(bit_i << i) applies the row's inputs.
    rows = sorted(table)
    x = np.array([sum(bit << i for i, bit in enumerate(row)) for row in rows])
    assert netlist.evaluate({"x": x})["y"].tolist() == [table[row] for row in rows]


def test_constant_connections_and_levels():
    netlist = GateNetlist(_two_level_netlist(), top="t")
    assert (netlist.gates, netlist.levels, netlist.nets) == (2, 2, 5)
    assert netlist.inputs == {"x": (1, False)} and netlist.outputs == {"y": (2, False)}
    assert netlist.evaluate({"x": [0, 1]})["y"].tolist() == [0b10, 0b01]


def test_pack_and_unpack_are_inverse():
    values = np.random.default_rng(LANE_SEED).integers(-128, 128, size=192)
    words = pack(values, 8)
    assert words.shape == (8, 3) and words.dtype == np.uint64
    planes = unpack(words, 190).astype(np.int64)
    assert planes.shape == (8, 190)
    back = (planes << np.arange(8)[:, None]).sum(axis=0)
    np.testing.assert_array_equal(back, values[:190] & 0xFF)


def test_word_toggles_are_lane_toggles_summed_per_word():
    netlist = GateNetlist(_two_level_netlist(), top="t")
    x0, x1 = np.random.default_rng(LANE_SEED).integers(0, 2, size=(2, 150))
    lanes = netlist.toggles({"x": x0}, {"x": x1})
    # x 0 -> 1 flips both gate outputs, 1 -> 0 too; equal values flip nothing.
    np.testing.assert_array_equal(lanes, 2 * (x0 != x1))
    words = netlist.word_toggles({"x": x0}, {"x": x1})
    assert words.tolist() == [int(lanes[i:i + 64].sum()) for i in (0, 64, 128)]


@pytest.mark.parametrize("netlist, message", [
    (_one_gate_netlist("$_DFF_P_", 1),
     r"cell 'g' has type \$_DFF_P_, which the gate simulator does not support"),
    ({"modules": {}}, r"netlist has no module 't' \(modules: \[\]\)"),
    ({"modules": {"t": {"ports": {"x": {"direction": "inout", "bits": [2]}}, "cells": {}}}},
     "port 'x' is inout: only input and output ports can be simulated"),
    ({"modules": {"t": {"ports": {"y": {"direction": "output", "bits": ["x"]}}, "cells": {}}}},
     "port y is connected to the constant 'x'; only '0' and '1' can be simulated"),
    ({"modules": {"t": {"ports": {"y": {"direction": "output", "bits": [5]}}, "cells": {}}}},
     "output port 'y' has an undriven bit"),
    ({"modules": {"t": {
        "ports": {"x": {"direction": "input", "bits": [2]},
                  "y": {"direction": "output", "bits": [3]}},
        "cells": {"g0": {"type": "$_NOT_", "connections": {"A": [2], "Y": [3]}},
                  "g1": {"type": "$_BUF_", "connections": {"A": [2], "Y": [3]}}}}}},
     r"net 3 has more than one driver \(one is cell g1\)"),
    ({"modules": {"t": {
        "ports": {"x": {"direction": "input", "bits": [2]},
                  "y": {"direction": "output", "bits": [3]}},
        "cells": {"g0": {"type": "$_AND_", "connections": {"A": [2], "B": [4], "Y": [3]}},
                  "g1": {"type": "$_NOT_", "connections": {"A": [3], "Y": [4]}}}}}},
     "combinational loop through 2 gates"),
], ids=["cell-type", "module", "inout", "x-constant", "undriven", "two-drivers", "loop"])
def test_unusable_netlists_are_named(netlist, message):
    with pytest.raises(NetlistError, match=message):
        GateNetlist(netlist, top="t")


def test_bad_inputs():
    netlist = GateNetlist(_one_gate_netlist("$_AND_", 2), top="t")
    with pytest.raises(ValueError, match=r"inputs \['z'\]: expected exactly the input ports"):
        netlist.evaluate({"z": 0})
    with pytest.raises(ValueError, match="input 'x' has dtype float64: expected integers"):
        netlist.evaluate({"x": [0.5]})
    with pytest.raises(ValueError, match=r"input 'x' has values outside 0\.\.3"):
        netlist.evaluate({"x": [4]})
    with pytest.raises(ValueError, match=r"before has shape \(2,\) and after \(3,\)"):
        netlist.toggles({"x": [0, 1]}, {"x": [0, 1, 2]})


# -- toggles on a real netlist -----------------------------------------------------------------

@pytest.fixture(scope="module")
def netlist_8x8() -> dict:
    return synthesize_multiplier(8, 8, True)


def _naive_gate_values(netlist: dict, inputs: dict[str, int]) -> dict[int, int]:
    """Every gate-driven net's value, one gate at a time in plain Python: repeated passes over
    the cells until each gate's inputs are known (no levelization, no numpy, no bit packing)."""
    module = netlist["modules"][TOP]
    known: dict = {"0": 0, "1": 1}
    for name, value in inputs.items():
        for i, bit in enumerate(module["ports"][name]["bits"]):
            known[bit] = (value >> i) & 1    # two's complement bits of a Python int
    gates = {}
    pending = list(module["cells"].values())
    while pending:
        waiting = []
        for cell in pending:
            conn = cell["connections"]
            pins = PINS[len(next(iter(TRUTH[cell["type"]])))]
            if all(conn[p][0] in known for p in pins):
                out = TRUTH[cell["type"]][tuple(known[conn[p][0]] for p in pins)]
                known[conn["Y"][0]] = gates[conn["Y"][0]] = out
            else:
                waiting.append(cell)
        assert len(waiting) < len(pending), "the naive evaluator made no progress"
        pending = waiting
    return gates


@pytest.mark.synth
@pytest.mark.parametrize("w, a0, a1", [(-93, 92, -57), (-128, -1, 0), (127, 85, -86),
                                       (0, -128, 127), (37, 19, 19)])
def test_toggles_equal_brute_force_count(netlist_8x8, w, a0, a1):
    before = _naive_gate_values(netlist_8x8, {"w": w, "a": a0})
    after = _naive_gate_values(netlist_8x8, {"w": w, "a": a1})
    netlist = GateNetlist(netlist_8x8, top=TOP)
    assert len(before) == netlist.gates
    expected = sum(before[net] != after[net] for net in before)
    # The naive evaluator itself is right: its output port bits spell w * a1.
    prod_bits = netlist_8x8["modules"][TOP]["ports"]["prod"]["bits"]
    value = sum(after[bit] << i for i, bit in enumerate(prod_bits))
    assert value - (value >> 15 << 16) == w * a1

    counted = netlist.toggles({"w": w, "a": a0}, {"w": w, "a": a1})
    assert counted.shape == ()
    assert int(counted) == expected
    if a0 == a1:
        assert expected == 0
    else:
        assert expected > 0
