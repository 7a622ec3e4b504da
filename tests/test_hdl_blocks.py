"""Shared hdl blocks in Amaranth's simulator: popcount.

Every check compares against Python's own count of set bits; random masks come from recorded
seeds.
"""

from __future__ import annotations

import random

import pytest
from amaranth import Module, Signal
from amaranth.sim import Simulator

from hwgen.hdl.popcount import popcount


def ranks_oracle(mask: int, width: int) -> list[int]:
    return [bin(mask & ((1 << i) - 1)).count("1") for i in range(width)]


def masks(width: int, seed: int, count: int) -> list[int]:
    """All-zero, all-one, a single top bit, then ``count`` random masks of mixed density."""
    rng = random.Random(seed)
    out = [0, (1 << width) - 1, 1 << (width - 1)]
    for _ in range(count):
        density = rng.choice([0.05, 0.5, 0.95])
        out.append(sum((rng.random() < density) << i for i in range(width)))
    return out


def run_comb(dut, testbench):
    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()


# --- popcount -----------------------------------------------------------------------------------

@pytest.mark.parametrize("width, seed", [(1, 0), (7, 1), (16, 2), (128, 3)])
def test_popcount(width, seed):
    m = Module()
    value = Signal(width)
    count = Signal(8)
    expr = popcount(value)
    assert len(expr) == (width - 1).bit_length() + 1 and not expr.shape().signed
    m.d.comb += count.eq(expr)
    checked = []

    async def testbench(ctx):
        for v in masks(width, seed, 40):
            ctx.set(value, v)
            assert ctx.get(count) == bin(v).count("1"), hex(v)
            checked.append(v)

    run_comb(m, testbench)
    assert len(checked) == 43


def test_popcount_of_empty_value_is_zero():
    m = Module()
    out = Signal(4, init=9)
    m.d.comb += out.eq(popcount(Signal(0)))

    async def testbench(ctx):
        assert ctx.get(out) == 0

    run_comb(m, testbench)
