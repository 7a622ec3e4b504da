"""The PE multiplier (hwgen/hdl/multiplier.py) in Amaranth's simulator, and the MAC array's
products: one registered product block (hwgen/hdl/dsp.py) per multiplier.

Products are checked exhaustively against Python's ``*`` at small widths.
"""

from __future__ import annotations

import gc
import re
import warnings

import pytest
from amaranth.back import verilog
from amaranth.hdl import UnusedElaboratable
from amaranth.sim import Simulator

from hwgen.engines.mac_array import MacArrayConfig
from hwgen.engines.mac_array.rtl import MacArray
from hwgen.hdl.multiplier import MAX_BITS, Multiplier


def _range(bits: int, is_signed: bool) -> range:
    return range(-(1 << (bits - 1)), 1 << (bits - 1)) if is_signed else range(1 << bits)


@pytest.mark.parametrize("weight_bits, act_bits, act_signed", [
    (3, 3, True), (3, 3, False), (4, 2, False), (1, 1, True), (2, 5, True)])
def test_product_is_exact_for_every_operand_pair(weight_bits, act_bits, act_signed):
    dut = Multiplier(weight_bits, act_bits, act_signed)
    checked = []

    async def testbench(ctx):
        for w in _range(weight_bits, True):
            for a in _range(act_bits, act_signed):
                ctx.set(dut.w, w)
                ctx.set(dut.a, a)
                checked.append((ctx.get(dut.prod), w * a))

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()
    assert len(checked) == 2 ** (weight_bits + act_bits)
    assert all(got == expected for got, expected in checked)


@pytest.mark.parametrize("act_signed, prod_bits", [(True, 14), (False, 15)])
def test_ports_and_width(act_signed, prod_bits):
    dut = Multiplier(8, 6, act_signed)
    assert (dut.weight_bits, dut.act_bits, dut.act_signed, dut.prod_bits) == (8, 6, act_signed,
                                                                               prod_bits)
    members = dut.signature.members
    assert sorted(members) == ["a", "prod", "w"]
    assert members["w"].flow.name == "In" and members["a"].flow.name == "In"
    assert members["prod"].flow.name == "Out"
    assert (dut.w.shape().width, dut.w.shape().signed) == (8, True)
    assert (dut.a.shape().width, dut.a.shape().signed) == (6, act_signed)
    assert (dut.prod.shape().width, dut.prod.shape().signed) == (prod_bits, True)
    # The MAC array's product register drops the copy of the sign bit an unsigned one adds.
    assert prod_bits - (not act_signed) == MacArrayConfig(weight_bits=8, act_bits=6,
                                                          act_signed=act_signed).prod_bits
    # A combinational block: no clock or reset port in its Verilog.
    header = re.search(r"^module multiplier\((.*)\);", verilog.convert(dut, name="multiplier"),
                       re.M)[1]
    assert sorted(header.replace(" ", "").split(",")) == ["a", "prod", "w"]


@pytest.mark.parametrize("args, error, message", [
    ((0, 8, True), ValueError, "weight_bits must be an integer from 1 to 64, not 0"),
    ((8, MAX_BITS + 1, True), ValueError, "act_bits must be an integer from 1 to 64, not 65"),
    ((8.0, 8, True), TypeError, "weight_bits must be an integer from 1 to 64, not 8.0"),
    ((8, True, True), TypeError, "act_bits must be an integer from 1 to 64, not True"),
    ((8, 8, 1), TypeError, "act_signed must be a bool, not 1"),
])
def test_bad_parameters(args, error, message):
    with warnings.catch_warnings():
        # The half-built component is garbage; Amaranth would warn that it was never elaborated.
        warnings.simplefilter("ignore", UnusedElaboratable)
        try:
            Multiplier(*args)
        except (TypeError, ValueError) as exc:
            raised = type(exc), str(exc)
        else:
            raised = None
        finally:
            gc.collect()
    assert raised == (error, message)


def test_mac_array_instantiates_one_product_block_per_multiplier():
    cfg = MacArrayConfig(rows=2, cols=3, sparsity="2:4", act_signed=False)
    text = verilog.convert(MacArray(cfg), name=cfg.name, emit_src=False)
    instances = re.findall(r"^\s*\\mac_array\.(\S+)\s+(\S+) \(", text, re.M)
    multipliers = sorted(name for module, name in instances if module == name and "_mul" in name)
    assert multipliers == sorted(f"pe_r{r}_c{c}_mul{j}" for r in range(cfg.rows)
                                 for c in range(cfg.cols) for j in range(cfg.n))
    # Generated names are deterministic: elaborating again gives the same text.
    assert verilog.convert(MacArray(cfg), name=cfg.name, emit_src=False) == text
