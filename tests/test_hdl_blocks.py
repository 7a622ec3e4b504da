"""Shared hdl blocks in Amaranth's simulator: popcount, fast and slow (laggy) prefix sums.

Every check compares against a Python oracle written from the definition
``rank[i] = popcount(mask & ((1 << i) - 1))``; random masks come from recorded seeds.
"""

from __future__ import annotations

import gc
import random
import warnings

import pytest
from amaranth import Module, Signal
from amaranth.back import verilog
from amaranth.hdl import UnusedElaboratable
from amaranth.sim import Simulator
from hwgen.testbench.amaranth_streams import run_through

from hwgen.flows.lint import lint
from hwgen.hdl.payload import unpack
from hwgen.hdl.popcount import popcount
from hwgen.hdl.prefix_sum import FastPrefixSum, SlowPrefixSum, group_layout, rank_shape


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


# --- fast prefix sum ----------------------------------------------------------------------------

@pytest.mark.parametrize("width, seed", [(16, 11), (128, 12), (5, 13)])
def test_fast_prefix_sum(width, seed):
    dut = FastPrefixSum(width)
    assert dut.depth == (width - 1).bit_length()
    layout = dut.ranks.shape()
    checked = []

    async def testbench(ctx):
        for mask in masks(width, seed, 30):
            ctx.set(dut.mask, mask)
            ranks = unpack(layout, ctx.get(dut.ranks.as_value()))
            assert ranks == ranks_oracle(mask, width), hex(mask)
            assert ctx.get(dut.total) == bin(mask).count("1")
            checked.append(mask)

    run_comb(dut, testbench)
    assert len(checked) == 33


def test_fast_prefix_sum_all_ones_reaches_the_top_rank():
    # width 128 all ones: rank 127 and total 128 need the full 8-bit rank shape.
    dut = FastPrefixSum(128)
    assert rank_shape(128).width == 8

    async def testbench(ctx):
        ctx.set(dut.mask, (1 << 128) - 1)
        assert ctx.get(dut.ranks[127]) == 127
        assert ctx.get(dut.total) == 128

    run_comb(dut, testbench)


# --- slow (laggy) prefix sum --------------------------------------------------------------------

def run_slow(dut: SlowPrefixSum, mask_list, seed, p_valid=1.0, p_ready=1.0, max_cycles=20000):
    """Drive ``mask_list`` into ``dut`` with random input gaps and output backpressure (stream
    rules checked every cycle); return ``(accepted, beats)``: the cycle of every mask transfer and
    ``(cycle, payload dict)`` for every output transfer.
    """
    layout = group_layout(dut.width, dut.adders)
    accepted, received = run_through(dut, dut.mask, dut.groups, list(mask_list),
                                     len(mask_list) * dut.groups_per_mask, seed, p_valid,
                                     p_ready, max_cycles)
    return accepted, [(cycle, unpack(layout, bits)) for cycle, bits in received]


def check_groups(dut: SlowPrefixSum, mask_list, beats):
    """Regroup the output beats per mask and compare every rank with the oracle."""
    G, A, W = dut.groups_per_mask, dut.adders, dut.width
    assert len(beats) == G * len(mask_list)
    for n, mask in enumerate(mask_list):
        group_beats = [p for _, p in beats[n * G:(n + 1) * G]]
        expected = ranks_oracle(mask, W) + [bin(mask).count("1")] * (G * A - W)
        for g, p in enumerate(group_beats):
            assert (p["group"], p["first"], p["last"]) == (g, int(g == 0), int(g == G - 1))
            assert p["ranks"] == expected[g * A:(g + 1) * A], (hex(mask), g)
            assert p["bits"] == (mask >> (g * A)) & ((1 << A) - 1)
            assert p["count"] == bin(mask & ((1 << min(W, (g + 1) * A)) - 1)).count("1")


@pytest.mark.parametrize("width, adders, seed", [
    (16, 1, 21), (16, 5, 22), (16, 16, 23), (128, 16, 24), (128, 7, 25), (128, 128, 26),
])
def test_slow_prefix_sum_cycles_back_to_back(width, adders, seed):
    """Input always valid, output always ready: ceil(width/adders) cycles per mask, no gaps."""
    dut = SlowPrefixSum(width, adders)
    G = -(-width // adders)
    assert dut.groups_per_mask == G and dut.cycles(5) == 5 * G
    mask_list = masks(width, seed, 2)                    # 5 masks: zero, ones, top bit, 2 random
    accepted, beats = run_slow(dut, mask_list, seed)
    check_groups(dut, mask_list, beats)
    # First mask taken in cycle 0, its first group one cycle later, then one group every cycle.
    assert accepted[0] == 0
    assert [c for c, _ in beats] == list(range(1, 1 + dut.cycles(len(mask_list))))
    # Each next mask is accepted in the cycle its predecessor's last group leaves.
    assert accepted == [n * G for n in range(len(mask_list))]


@pytest.mark.parametrize("width, adders, seed", [(16, 3, 31), (128, 32, 32), (128, 128, 33)])
def test_slow_prefix_sum_under_backpressure(width, adders, seed):
    dut = SlowPrefixSum(width, adders)
    mask_list = masks(width, seed, 6)
    accepted, beats = run_slow(dut, mask_list, seed, p_valid=0.6, p_ready=0.5)
    check_groups(dut, mask_list, beats)
    # Backpressure really happened: more cycles than the stall-free count.
    assert beats[-1][0] - accepted[0] > dut.cycles(len(mask_list))


def test_slow_prefix_sum_rejects_bad_adders():
    messages = []
    with warnings.catch_warnings():
        # The half-built component is garbage; Amaranth would warn that it was never elaborated.
        warnings.simplefilter("ignore", UnusedElaboratable)
        for adders in (0, 17):
            try:
                SlowPrefixSum(16, adders)
            except ValueError as exc:
                messages.append(str(exc))
        gc.collect()
    assert messages == ["adders must be 1..16, not 0", "adders must be 1..16, not 17"]


@pytest.mark.parametrize("make, top", [
    (lambda: FastPrefixSum(128), "fast_prefix_sum"),
    (lambda: SlowPrefixSum(128, 16), "slow_prefix_sum"),
    (lambda: SlowPrefixSum(16, 5), "slow_prefix_sum_padded"),
])
def test_prefix_sum_verilog_lints_clean(make, top, tmp_path):
    text = verilog.convert(make(), name=top, emit_src=False)
    assert f"module {top}(" in text
    path = tmp_path / f"{top}.v"
    path.write_text(text)
    result = lint(path, top)
    assert result.clean, result.messages
