"""The set-bit walker (hwgen.hdl.walker) in Amaranth's simulator against a Python oracle.

The oracle is the definition: a mask's set bits in increasing order, ``first`` on the first,
``last`` on the last, and a mask without a set bit as one ``empty`` beat. Random masks come from
recorded seeds; the edge cases are all-zero, all-one, one bit at either end and runs of empty
masks. Timing is checked exactly where the docstring states it (masks offered every cycle,
positions always taken).
"""

from __future__ import annotations

import random

import pytest
from amaranth import Module, Signal
from amaranth.back import verilog
from amaranth.lib import data
from amaranth.sim import Simulator
from hwgen.testbench.amaranth_streams import run_through

from hwgen.flows.lint import lint
from hwgen.hdl.payload import pack, unpack
from hwgen.hdl.walker import SetBitWalker, at_least_bits, walker_slices

TAG_BITS = 5


def mask_list(width: int, seed: int, count: int) -> list[int]:
    rng = random.Random(seed)
    out = [0, (1 << width) - 1, 1, 1 << (width - 1), 0, 0, (1 << width) - 1, 0]
    for _ in range(count):
        density = rng.choice([0.0, 0.02, 0.1, 0.5, 0.95])
        out.append(sum((rng.random() < density) << i for i in range(width)))
    return out


def oracle(masks: list[int]) -> list[dict]:
    beats = []
    for n, mask in enumerate(masks):
        tag = n % (1 << TAG_BITS)
        bits = [i for i in range(mask.bit_length()) if mask >> i & 1]
        if not bits:
            beats.append({"pos": 0, "first": 1, "last": 1, "empty": 1, "tag": tag})
        for k, i in enumerate(bits):
            beats.append({"pos": i, "first": int(k == 0), "last": int(k == len(bits) - 1),
                          "empty": 0, "tag": tag})
    return beats


def walk(width, slice_width, masks, seed, valid_prob=1.0, ready_prob=1.0, always_ready=False):
    dut = SetBitWalker(width, slice_width, tag=TAG_BITS, always_ready=always_ready)
    in_layout = data.StructLayout({"mask": width, "tag": TAG_BITS})
    payloads = [pack(in_layout, {"mask": mk, "tag": n % (1 << TAG_BITS)})
                for n, mk in enumerate(masks)]
    expected = oracle(masks)
    accepted, received = run_through(dut, dut.masks, dut.positions, payloads, len(expected),
                                     seed, valid_prob, ready_prob, max_cycles=50000)
    layout = dut.positions.payload.shape()
    beats = [unpack(layout, bits) for _, bits in received]
    for beat in beats:
        if beat["empty"]:
            beat["pos"] = 0                     # an empty beat's position is not defined
    return dut, accepted, [c for c, _ in received], beats, expected


CASES = [(1, 16, 1), (3, 1, 2), (5, 4, 3), (16, 16, 4), (17, 4, 5), (128, 16, 6), (200, 16, 7),
         (256, 8, 8), (64, 64, 9)]


@pytest.mark.parametrize("width, slice_width, seed", CASES)
def test_walker_matches_oracle_with_gaps_and_backpressure(width, slice_width, seed):
    masks = mask_list(width, seed, 60)
    _, _, _, beats, expected = walk(width, slice_width, masks, seed, 0.6, 0.5)
    assert beats == expected


@pytest.mark.parametrize("width, slice_width, seed", CASES)
def test_walker_timing_back_to_back(width, slice_width, seed):
    """Masks offered every cycle, positions always taken: the first beat in cycle 2 and then
    one beat per cycle, with no gap between masks."""
    masks = mask_list(width, seed + 100, 60)
    _, _, cycles, beats, expected = walk(width, slice_width, masks, seed)
    assert beats == expected
    assert cycles == list(range(2, 2 + len(expected)))


@pytest.mark.parametrize("valid_prob", [1.0, 0.5])
@pytest.mark.parametrize("width, slice_width, seed", CASES)
def test_always_ready_walker_takes_masks_in_the_same_cycles(width, slice_width, seed, valid_prob):
    """With ``always_ready`` (``masks.ready`` a register written from the next state) a walker
    whose positions are always taken accepts every mask and offers every beat in the same
    cycle as the walker with ``masks.ready`` from logic, with masks offered every cycle or
    with random gaps."""
    masks = mask_list(width, seed + 200, 60)
    _, accepted, cycles, beats, expected = walk(width, slice_width, masks, seed, valid_prob)
    _, accepted_r, cycles_r, beats_r, _ = walk(width, slice_width, masks, seed, valid_prob,
                                               always_ready=True)
    assert beats_r == beats == expected
    assert (accepted_r, cycles_r) == (accepted, cycles)


def test_walker_rejects_bad_parameters():
    for kwargs, message in (({"width": 0}, "width must be an integer from 1 to 4096, not 0"),
                            ({"width": 8, "slice_width": 3},
                             "slice_width must be a power of two, not 3"),
                            ({"width": 8, "slice_width": 128},
                             "slice_width must be an integer from 1 to 64, not 128")):
        with pytest.raises(ValueError) as err:
            SetBitWalker(**kwargs)
        assert str(err.value) == message


def test_walker_slices():
    assert walker_slices(128, 16) == (16, 8)
    assert walker_slices(5, 16) == (8, 1)
    assert walker_slices(200, 16) == (16, 13)
    assert walker_slices(1, 1) == (1, 1)


def test_walker_verilog_lints_clean(tmp_path):
    text = verilog.convert(SetBitWalker(128, 16, tag=TAG_BITS), name="walker", emit_src=False)
    path = tmp_path / "walker.v"
    path.write_text(text)
    result = lint(path, "walker")
    assert result.clean, result.messages


def test_at_least_bits():
    for width, n in ((1, 1), (1, 2), (2, 2), (3, 3), (5, 2), (5, 3), (16, 2), (16, 3), (13, 4)):
        m = Module()
        value, out = Signal(width), Signal()
        m.d.comb += out.eq(at_least_bits(value, n))
        sim = Simulator(m)
        results = {}

        async def testbench(ctx, width=width, value=value, out=out, results=results):
            for v in range(1 << width) if width <= 5 else random.Random(width).sample(
                    range(1 << width), 300) + [0, 1, 3, 7, 15, (1 << width) - 1]:
                ctx.set(value, v)
                results[v] = ctx.get(out)

        sim.add_testbench(testbench)
        sim.run()
        assert all(got == (v.bit_count() >= n) for v, got in results.items()), (width, n)
