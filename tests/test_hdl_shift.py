"""hwgen/hdl/shift.py: the shift product of a power-of-two weight, in Amaranth's simulator.

Expected values come from the spec, ``product = weight * activation`` with the weight a member
of the ``pow2`` set (hwgen/engines/mac_array/weight_set.py), never from the block: the test only
uses :func:`hwgen.hdl.shift.encode` to turn the weight into what the port takes. The array
around the block is tested in tests/test_mac_shift.py.
"""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
from amaranth import ClockDomain, Module, signed, unsigned
from amaranth.back import verilog
from amaranth.sim import Simulator

from hwgen.engines.mac_array.weight_set import codebook
from hwgen.hdl.dsp import RegisteredProduct
from hwgen.hdl.shift import ShiftMultiplier, ShiftProduct, code_layout, encode

SEED = 20261205


def _acts(act_bits: int, act_signed: bool) -> tuple[int, int]:
    if act_signed:
        return -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    return 0, (1 << act_bits) - 1


def _stimulus(weight_bits, act_bits, act_signed, rng) -> list[tuple[int, int]]:
    """Every pow2 weight times the extreme activations, 0 and 1; every activation when there
    are at most 256, else 64 random ones per weight."""
    lo, hi = _acts(act_bits, act_signed)
    weights = codebook("pow2", weight_bits)
    if hi - lo < 256:
        acts = range(lo, hi + 1)
        return [(w, a) for w in weights for a in acts]
    return [(w, a) for w in weights
            for a in (lo, hi, 0, 1, *(rng.randint(lo, hi) for _ in range(64)))]


@pytest.mark.parametrize("weight_bits, act_bits, act_signed", [
    (8, 8, True), (8, 8, False), (5, 6, True), (2, 3, False), (3, 2, True), (16, 16, True),
    (16, 16, False),
])
def test_every_code_gives_the_exact_product(weight_bits, act_bits, act_signed):
    """Combinational: every pow2 weight, -2^(weight_bits-1) and 0 included, times every
    activation (or the extremes and random ones), exact in weight_bits + act_bits bits."""
    rng = random.Random(SEED + weight_bits * 100 + act_bits)
    dut = ShiftMultiplier(weight_bits, act_bits, act_signed)
    assert dut.prod.shape() == signed(weight_bits + act_bits)
    pairs = _stimulus(weight_bits, act_bits, act_signed, rng)
    assert (-(1 << (weight_bits - 1)), _acts(act_bits, act_signed)[0]) in pairs
    codes = encode([w for w, _ in pairs], weight_bits).tolist()
    errors = []

    async def testbench(ctx):
        for (w, a), code in zip(pairs, codes):
            ctx.set(dut.w.as_value(), code)
            ctx.set(dut.a, a)
            if ctx.get(dut.prod) != w * a:
                errors.append((w, a, ctx.get(dut.prod)))

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()
    assert errors == [], f"seed {SEED}: {errors[:5]}"


def test_the_registers_and_clock_enables_are_those_of_the_dsp_product():
    """a_reg <= a if en; b_reg <= b if en & b_en; p <= b_reg * a_reg if en; reset clears all
    three (the cleared code is the weight 0), under random operands and enables."""
    rng = random.Random(SEED)
    weights = codebook("pow2", 8)
    top, sync = Module(), ClockDomain("sync")
    top.domains.sync = sync
    dut = top.submodules.dut = ShiftProduct(signed(8), 8)
    steps = [(rng.choice(weights), rng.choice([-128, 127, rng.randint(-128, 127)]),
              rng.random() < 0.7, rng.random() < 0.3, rng.random() < 0.03) for _ in range(600)]
    errors = []

    async def testbench(ctx):
        a_reg = b_reg = p = 0
        for w, x, en, b_en, rst in steps:
            ctx.set(dut.a, x)
            ctx.set(dut.b.as_value(), int(encode(w, 8)))
            ctx.set(dut.en, en)
            ctx.set(dut.b_en, b_en)
            ctx.set(sync.rst, rst)
            await ctx.tick()
            if rst:
                a_reg = b_reg = p = 0
            elif en:
                p = b_reg * a_reg
                a_reg, b_reg = x, w if b_en else b_reg
            if ctx.get(dut.p) != p:
                errors.append((w, x, en, b_en, rst, ctx.get(dut.p), p))

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert errors == [], f"seed {SEED}: {errors[:5]}"
    assert any(rst for *_, rst in steps)


def _multiplies(text: str) -> bool:
    """Amaranth's Verilog multiplies: it writes ``x * (* src = ... *) y``, a " * " between
    operands once the ``(* ... *)`` attributes are removed."""
    return " * " in re.sub(r"\(\*.*?\*\)", "", text)


def test_the_register_names_the_energy_model_reads():
    text = verilog.convert(ShiftProduct(unsigned(6), 5), name="shift_product")
    for reg in ("reg [5:0] a_reg", "reg [4:0] b_reg", "output [10:0] p"):
        assert reg in text
    assert not _multiplies(text)


def test_the_no_multiplication_check_finds_one():
    text = verilog.convert(RegisteredProduct(unsigned(6), signed(5), input_registers=True),
                           name="dsp_product")
    assert _multiplies(text)


def test_codes():
    """Shift in the low bits, then neg, then nonzero; 0 is the all-zero code; every pow2 weight
    has its own code, and a value outside the set is refused by name."""
    assert code_layout(8).size == 5 and code_layout(16).size == 6 and code_layout(2).size == 3
    assert encode([0, 1, -1, 4, -128, 64], 8).tolist() == [0, 16, 24, 18, 31, 22]
    book = codebook("pow2", 5)
    codes = encode(book, 5)
    assert len(set(codes.tolist())) == len(book) and codes[book.index(0)] == 0
    for bad, bits in ((3, 8), (128, 8), (-96, 8), (8, 4)):
        with pytest.raises(ValueError, match=f"^weight {bad} is not 0 or a signed power of two "
                                             f"in the {bits}-bit weight range$"):
            encode(np.array([1, bad]), bits)
