"""TopK (hwgen/hdl/topk.py) in Amaranth's simulator.

Results are checked against an independent Python model of top-k selection (sort by
``(-value, index)``, keep ``min(k, n)``, report in increasing index order), itself checked against
the sparse attention golden model's ``select``. Exact cycles are checked against a cycle-by-cycle
model of the documented handshake rules (not the closed-form schedule, which is checked against
it too). Random sets come from recorded seeds.
"""

from __future__ import annotations

import gc
import random
import warnings

import numpy as np
import pytest
from amaranth import signed, unsigned
from amaranth.back import verilog
from amaranth.hdl import UnusedElaboratable
from hwgen.testbench.amaranth_streams import run_through

from hwgen.engines.sparse_attention.config import SparseAttentionConfig
from hwgen.engines.sparse_attention.golden import select
from hwgen.flows.lint import lint
from hwgen.hdl.payload import pack, unpack
from hwgen.hdl.topk import TopK, count_shape, index_shape, items_layout, selected_layout

# --- independent models -------------------------------------------------------------------------

def topk_model(values, k: int) -> list[int]:
    """Indices of the min(k, n) largest values, ties to the lower index, increasing."""
    best = sorted(range(len(values)), key=lambda i: (-values[i], i))[:k]
    return sorted(best)


def handshake_model(sizes, k: int, lanes: int):
    """Cycle by cycle, items always offered and results always taken, following the documented
    rules: ``items.ready = ~finished | emitter_free``; a set hands off at the edge where its last
    beat is in and the emitter is free (empty, or sending its final result).

    Returns ``(accepted, results)``: the cycle of every beat taken and of every result sent.
    """
    beats = [(-(-n // lanes), min(k, n)) for n in sizes]
    queue = [(s, b == nb - 1) for s, (nb, _) in enumerate(beats) for b in range(nb)]
    accepted, results = [], []
    pending = 0          # results left in the emitter
    finished = None      # the set waiting in the slots, if any
    cycle = 0
    while queue or pending or finished is not None:
        sending = pending > 0
        free = pending == 0 or pending == 1
        take = bool(queue) and (finished is None or free)
        if sending:
            results.append(cycle)
            pending -= 1
        if finished is not None and free:
            pending, finished = beats[finished][1], None
        if take:
            s, last = queue.pop(0)
            accepted.append(cycle)
            if last:
                if free and pending == 0:          # emitter free and not just reloaded
                    pending = beats[s][1]
                else:
                    finished = s
        cycle += 1
        assert cycle < 100000
    return accepted, results


def value_range(shape):
    lo = -(1 << (shape.width - 1)) if shape.signed else 0
    return lo, lo + (1 << shape.width) - 1


def make_set(rng: random.Random, n: int, shape) -> list[int]:
    """n values: mostly a few distinct values (many ties), sometimes full range, constant or
    monotone (extremes of the shape included)."""
    lo, hi = value_range(shape)
    kind = rng.choice(["ties", "ties", "ties", "full", "equal", "up", "down"])
    if kind == "ties":
        pool = rng.sample(range(lo, hi + 1), min(3, hi - lo + 1))
        return [rng.choice(pool) for _ in range(n)]
    if kind == "full":
        return [rng.choice([lo, hi, rng.randint(lo, hi)]) for _ in range(n)]
    if kind == "equal":
        v = rng.choice([lo, hi, rng.randint(lo, hi)])
        return [v] * n
    ramp = [lo + (i * (hi - lo)) // max(n - 1, 1) for i in range(n)]
    return ramp if kind == "up" else ramp[::-1]


def test_model_matches_golden_select():
    rng = random.Random(5)
    for k, length in [(1, 1), (1, 9), (4, 3), (4, 17), (8, 8), (8, 30)]:
        cfg = SparseAttentionConfig(max_len=32, topk=k, mask="topk")
        est = np.array([make_set(rng, length, signed(4)) for _ in range(length)])
        rows = select(cfg, est, length)
        for i in range(length):
            assert topk_model(list(est[i]), k) == list(rows[i])


# --- driving the block --------------------------------------------------------------------------

def set_beats(dut: TopK, values) -> list[int]:
    """The payload bits of one set's beats."""
    layout = items_layout(dut.value_shape, dut.lanes)
    lanes = dut.lanes
    out = []
    for b in range(0, len(values), lanes):
        chunk = list(values[b:b + lanes])
        out.append(pack(layout, {"values": chunk + [0] * (lanes - len(chunk)),
                                 "count": len(chunk), "last": int(b + lanes >= len(values))}))
    return out


def run_sets(dut: TopK, sets, seed: int, p_valid=1.0, p_ready=1.0):
    """Stream ``sets`` back to back; return (accepted cycles, [(cycle, index, last)]) and check
    the indices and last flags against the model."""
    payloads = [p for values in sets for p in set_beats(dut, values)]
    expected = []
    for values in sets:
        sel = topk_model(values, dut.k)
        expected += [(i, int(j == len(sel) - 1)) for j, i in enumerate(sel)]
    accepted, received = run_through(dut, dut.items, dut.selected, payloads, len(expected),
                                     seed, p_valid, p_ready, max_cycles=50000)
    layout = selected_layout(dut.max_items)
    beats = [(cycle, *unpack(layout, bits).values()) for cycle, bits in received]
    assert [b[1:] for b in beats] == expected
    return accepted, beats


def make_sets(dut: TopK, seed: int, randoms: int) -> list[list[int]]:
    """Sizes 1, k-1, k, k+1 and max_items (those within 1..max_items), then random sizes."""
    rng = random.Random(seed)
    k, top = dut.k, dut.max_items
    sizes = [n for n in (1, k - 1, k, k + 1, top) if 1 <= n <= top]
    sizes += [rng.randint(1, top) for _ in range(randoms)]
    return [make_set(rng, n, dut.value_shape) for n in sizes]


COMBOS = [
    # k, value_shape, lanes, max_items, random sets
    (1, unsigned(3), 1, 12, 12),
    (4, signed(3), 1, 20, 16),
    (4, signed(4), 3, 23, 16),
    (8, unsigned(2), 4, 40, 16),
    (16, signed(5), 2, 50, 12),
    (8, unsigned(2), 3, 5, 12),     # k > max_items: every item is kept
    (2, signed(2), 4, 3, 12),       # lanes > max_items: one beat per set, lane 3 never real
    (16, signed(11), 4, 256, 3),    # the size of the Verilog test
]


@pytest.mark.parametrize("k, shape, lanes, max_items, randoms", COMBOS)
def test_topk_back_to_back_exact_cycles(k, shape, lanes, max_items, randoms):
    """Items always offered, results always taken: every beat and result in its exact cycle."""
    dut = TopK(k, shape, lanes, max_items)
    sets = make_sets(dut, seed=100 + k * lanes + max_items, randoms=randoms)
    accepted, beats = run_sets(dut, sets, seed=1)
    sizes = [len(s) for s in sets]
    want_accepted, want_results = handshake_model(sizes, k, lanes)
    assert accepted[0] == 0
    assert accepted == want_accepted
    assert [c for c, *_ in beats] == want_results
    # The closed form of the class docstring agrees, per set.
    sched = dut.schedule(sizes)
    firsts = [0] + [sum(-(-n // lanes) for n in sizes[:s]) for s in range(1, len(sizes) + 1)]
    assert [(accepted[firsts[s]], accepted[firsts[s + 1] - 1]) for s in range(len(sizes))] \
        == [(f, last) for f, last, _, _ in sched]
    ends = np.cumsum([min(k, n) for n in sizes])
    assert [(want_results[e - min(k, n)], want_results[e - 1]) for e, n in zip(ends, sizes)] \
        == [(a, b) for _, _, a, b in sched]
    assert dut.cycles(sizes) == beats[-1][0]


def test_topk_hand_computed_schedule():
    """k = 4, lanes = 2, sets of 8, 2, 2 and 8 items (4, 1, 1, 4 beats; 4, 2, 2, 4 results).

    Set 0: beats in 0..3, results 4..7. Set 1: beat in 4, waits in the slots; hand-off in 7
    (set 0's last result), results 8..9. Set 2: items.ready is low in 5..6, its beat is taken in
    7 (merged into the emptied slots), waits, hand-off in 9, results 10..11. Set 3: beats in
    9..12, hand-off in 12, results 13..16. Results leave back to back in 4..11; the gap in 12 is
    set 3's fourth beat (B = 4 > m = 2 of set 2).
    """
    dut = TopK(4, signed(4), 2, 8)
    sets = [[3, -1, 3, 7, 0, 7, -8, 2], [5, 5], [-8, -8], [1, 1, 1, 1, 1, 1, 1, 1]]
    accepted, beats = run_sets(dut, sets, seed=0)
    assert accepted == [0, 1, 2, 3, 4, 7, 9, 10, 11, 12]
    assert [c for c, *_ in beats] == [4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16]
    assert [i for _, i, _ in beats] == [0, 2, 3, 5, 0, 1, 0, 1, 0, 1, 2, 3]
    assert dut.schedule([8, 2, 2, 8]) == [(0, 3, 4, 7), (4, 4, 8, 9), (7, 7, 10, 11),
                                          (9, 12, 13, 16)]
    assert dut.cycles([8, 2, 2, 8]) == 16


@pytest.mark.parametrize("k, shape, lanes, max_items, randoms", COMBOS[:7])
def test_topk_under_backpressure(k, shape, lanes, max_items, randoms):
    dut = TopK(k, shape, lanes, max_items)
    sets = make_sets(dut, seed=200 + k * lanes + max_items, randoms=randoms)
    accepted, beats = run_sets(dut, sets, seed=2, p_valid=0.6, p_ready=0.5)
    # Stalls really happened: slower than the stall-free schedule.
    assert beats[-1][0] - accepted[0] > dut.cycles([len(s) for s in sets])


def test_topk_single_lane_singleton_sets():
    """Sets of one item: one beat in, one result out, every cycle after the first."""
    dut = TopK(3, unsigned(4), 1, 16)
    sets = [[v] for v in (5, 0, 15, 7, 7)]
    accepted, beats = run_sets(dut, sets, seed=0)
    assert accepted == [0, 1, 2, 3, 4]
    assert beats == [(c, 0, 1) for c in (1, 2, 3, 4, 5)]


# --- parameters, layouts, Verilog ---------------------------------------------------------------

def test_topk_layouts_and_sizes():
    dut = TopK(16, signed(11), 4, 256)
    assert (dut.slots, dut.index_shape, dut.value_shape) == (16, unsigned(8), signed(11))
    assert dut.items.payload.shape() == items_layout(signed(11), 4)
    assert items_layout(signed(11), 4).size == 4 * 11 + 3 + 1
    assert dut.selected.payload.shape() == selected_layout(256)
    assert selected_layout(256).size == 8 + 1
    assert [index_shape(n).width for n in (1, 2, 3, 4, 5, 1024, 1025)] == [1, 1, 2, 2, 3, 10, 11]
    assert [count_shape(n).width for n in (1, 2, 3, 4, 63, 64)] == [1, 2, 2, 3, 6, 7]
    # k past max_items keeps everything with max_items slots; shapes cast like Amaranth's.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)   # built, never elaborated
        assert TopK(1024, 3, 1, 5).slots == 5
        assert TopK(2, range(-4, 4), 1, 5).value_shape == signed(3)
        gc.collect()


def test_topk_rejects_bad_parameters():
    bad = [
        (dict(k=0), "k must be 1..1024, not 0"),
        (dict(k=1025), "k must be 1..1024, not 1025"),
        (dict(k=True), "k must be 1..1024, not True"),
        (dict(lanes=0), "lanes must be 1..64, not 0"),
        (dict(lanes=65), "lanes must be 1..64, not 65"),
        (dict(max_items=0), "max_items must be at least 1, not 0"),
        (dict(max_items=2.0), "max_items must be at least 1, not 2.0"),
        (dict(value_shape="int8"), "value_shape must be an Amaranth shape, not 'int8'"),
        (dict(value_shape=-3), "value_shape must be an Amaranth shape, not -3"),
        (dict(value_shape=unsigned(0)),
         "value_shape must be at least 1 bit wide, not unsigned(0)"),
    ]
    messages = []
    with warnings.catch_warnings():
        # The half-built component is garbage; Amaranth would warn that it was never elaborated.
        warnings.simplefilter("ignore", UnusedElaboratable)
        for change, _ in bad:
            args = dict(k=4, value_shape=signed(8), lanes=2, max_items=16) | change
            try:
                TopK(**args)
            except ValueError as exc:
                messages.append(str(exc))
        gc.collect()
    assert messages == [msg for _, msg in bad]


@pytest.mark.parametrize("make, top", [
    (lambda: TopK(16, signed(11), 4, 256), "topk"),
    (lambda: TopK(8, unsigned(3), 3, 5), "topk_all"),     # k > max_items, lanes 3 of 5
    (lambda: TopK(1, signed(2), 4, 1), "topk_tiny"),      # one slot, one real lane, 1-bit index
])
def test_topk_verilog_lints_clean(make, top, tmp_path):
    text = verilog.convert(make(), name=top, emit_src=False)
    assert f"module {top}(" in text
    path = tmp_path / f"{top}.v"
    path.write_text(text)
    result = lint(path, top)
    assert result.clean, result.messages
