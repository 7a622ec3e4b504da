"""TopK (hwgen/hdl/topk.py) in Amaranth's simulator.

Results are checked against an independent Python model of top-k selection (sort by
``(-value, index)``, keep ``min(k, n)``, with a margin drop those below the largest value minus
the margin, report in increasing index order), itself checked against the sparse attention golden
model's ``select``. Exact cycles are checked against a cycle-by-cycle model of the documented
handshake rules (not the closed-form schedule, which is checked against it too). Random sets come
from recorded seeds.
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
from hwgen.hdl.topk import (
    INPUT_STAGES,
    TopK,
    count_shape,
    index_shape,
    items_layout,
    selected_layout,
)

# --- independent models -------------------------------------------------------------------------

def topk_model(values, k: int, margin=None) -> list[int]:
    """Indices of the min(k, n) largest values, ties to the lower index, increasing; with a
    margin only those at least max(values) - margin."""
    best = sorted(range(len(values)), key=lambda i: (-values[i], i))[:k]
    if margin is not None:
        best = [i for i in best if values[i] >= max(values) - margin]
    return sorted(best)


def handshake_model(sizes, kept, lanes: int):
    """Cycle by cycle, items always offered and results always taken, following the documented
    rules: beats pass INPUT_STAGES registers (a beat moves on when the next register is empty or
    is emptied in the same cycle) to the ring, whose first stage takes one in every cycle in which
    the ring advances; it advances unless its second stage holds a set's last beat while the
    capture register stays full; the capture register moves on to the pair register when that
    is empty or handing off; the pair register hands off when the emitter is free (no result
    left, or the final one being picked now); the first result is picked in the cycle after the
    hand-off, moves to the output register in the next and leaves in the one after, one per
    cycle. ``kept``: results per set.

    Returns ``(accepted, results)``: the cycle of every beat taken and of every result sent.
    """
    nbeats = [-(-n // lanes) for n in sizes]
    queue = [(s, b == nb - 1) for s, nb in enumerate(nbeats) for b in range(nb)]
    accepted, results = [], []
    pipe = [None] * INPUT_STAGES  # input .. ring-input registers: (set, last) or None
    ring2 = None                # the beat in the ring's second stage
    capture = pair = None       # the set in the capture / pair register
    remaining = 0               # results in the emitter not yet moved to the output register
    picked = out_valid = False
    cycle = 0
    while queue or any(p is not None for p in pipe) or ring2 is not None \
            or capture is not None or pair is not None or remaining or picked or out_valid:
        free = remaining <= 1                            # the output register always has room
        pair_accept = pair is None or free
        capture_free = capture is None or pair_accept
        ring_go = ring2 is None or not ring2[1] or capture_free
        ready = [False] * INPUT_STAGES
        for n in reversed(range(INPUT_STAGES)):
            ready[n] = pipe[n] is None or (ready[n + 1] if n + 1 < INPUT_STAGES else ring_go)
        if out_valid:
            results.append(cycle)
        # next state
        out_valid, picked = picked, remaining > 0
        remaining = kept[pair] if pair is not None and free else max(remaining - 1, 0)
        if pair is not None and free:
            pair = None
        if capture is not None and pair_accept:
            pair, capture = capture, None
        if ring_go:
            if ring2 is not None and ring2[1]:
                capture = ring2[0]
            ring2 = pipe[-1]
        for n in reversed(range(1, INPUT_STAGES)):
            if ready[n]:
                pipe[n] = pipe[n - 1]
        if ready[0]:
            pipe[0] = queue.pop(0) if queue else None
            if pipe[0] is not None:
                accepted.append(cycle)
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
        sel = topk_model(values, dut.k, dut.margin)
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
    (3, signed(4), 6, 29, 12),      # two parts of the sorted register (4 + 2 lanes)
    (8, unsigned(2), 4, 40, 16),
    (16, signed(5), 2, 50, 12),
    (8, unsigned(2), 3, 5, 12),     # k > max_items: every item is kept
    (2, signed(2), 4, 3, 12),       # lanes > max_items: one beat per set, lane 3 never real
    (16, signed(11), 4, 256, 3),    # the size of the Verilog test
    (8, signed(11), 8, 64, 8),      # the benchmark heads' lanes: two full parts
]


def check_exact_cycles(dut: TopK, sets, accepted, beats):
    """Items always offered, results always taken: every beat and result in the cycle of the
    handshake model, and the closed form of the class docstring (``schedule``) agrees, per set."""
    sizes = [len(s) for s in sets]
    kept = [len(topk_model(s, dut.k, dut.margin)) for s in sets]
    want_accepted, want_results = handshake_model(sizes, kept, dut.lanes)
    assert accepted[0] == 0
    assert accepted == want_accepted
    assert [c for c, *_ in beats] == want_results
    sched = dut.schedule(sizes, kept)
    firsts = [0] + [sum(-(-n // dut.lanes) for n in sizes[:s]) for s in range(1, len(sizes) + 1)]
    assert [(accepted[firsts[s]], accepted[firsts[s + 1] - 1]) for s in range(len(sizes))] \
        == [(f, last) for f, last, _, _ in sched]
    ends = np.cumsum(kept)
    assert [(want_results[e - m], want_results[e - 1]) for e, m in zip(ends, kept)] \
        == [(a, b) for _, _, a, b in sched]
    assert dut.cycles(sizes, kept) == beats[-1][0]
    if dut.margin is None:
        assert dut.schedule(sizes) == sched


@pytest.mark.parametrize("k, shape, lanes, max_items, randoms", COMBOS)
def test_topk_back_to_back_exact_cycles(k, shape, lanes, max_items, randoms):
    """Items always offered, results always taken: every beat and result in its exact cycle."""
    dut = TopK(k, shape, lanes, max_items)
    sets = make_sets(dut, seed=100 + k * lanes + max_items, randoms=randoms)
    accepted, beats = run_sets(dut, sets, seed=1)
    check_exact_cycles(dut, sets, accepted, beats)


def test_topk_hand_computed_schedule():
    """k = 4, lanes = 2: a set of 8 items (4 beats, 4 results), then eight of 2 items (one beat,
    2 results each), so emission is the bottleneck. Beats b0..b11 (the ring's first stage takes
    beat b in M_b, 4 cycles after it is taken when nothing waits); t: the ring's first stage
    takes the set's last beat, C: capture, X: pair register, H: hand-off; results in H + 3 ..
    H + m + 2.

    Set 0: taken in 0..3, t = 7, C = 8, X = 9, H = 10, results 13..16. Each later set hands off
    when the previous one's last result is picked (H = 14, 16, ..., 28), so the pair register,
    the capture register and the ring fill up: set 3's beat (taken in 6, ring in 10) waits in
    the ring's second stage in 11..13 until the capture register frees in 14, so set 4's beat
    enters the ring in 14 and, with four beats (b7..b10) held in the input pipeline, items.ready
    is low in 11..13 and b11 is taken in 14. Results leave back to back in 13..32.
    """
    dut = TopK(4, signed(4), 2, 8)
    sets = [[3, -1, 3, 7, 0, 7, -8, 2], [5, 5], [-8, -8], [1, 0], [0, 1], [-3, 6], [2, 2],
            [-1, -2], [4, -4]]
    accepted, beats = run_sets(dut, sets, seed=0)
    assert accepted == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14]
    assert [c for c, *_ in beats] == list(range(13, 33))
    assert [i for _, i, _ in beats] == [0, 2, 3, 5] + [0, 1] * 8
    sizes = [len(s) for s in sets]
    assert dut.schedule(sizes) == [(0, 3, 13, 16), (4, 4, 17, 18), (5, 5, 19, 20),
                                   (6, 6, 21, 22), (7, 7, 23, 24), (8, 8, 25, 26),
                                   (9, 9, 27, 28), (10, 10, 29, 30), (14, 14, 31, 32)]
    assert dut.cycles(sizes) == 32


@pytest.mark.parametrize("k, shape, lanes, max_items, randoms", COMBOS[:7])
def test_topk_under_backpressure(k, shape, lanes, max_items, randoms):
    dut = TopK(k, shape, lanes, max_items)
    sets = make_sets(dut, seed=200 + k * lanes + max_items, randoms=randoms)
    accepted, beats = run_sets(dut, sets, seed=2, p_valid=0.6, p_ready=0.5)
    # Stalls really happened: slower than the stall-free schedule.
    assert beats[-1][0] - accepted[0] > dut.cycles([len(s) for s in sets])


@pytest.mark.parametrize("margin", [None, 1])
def test_topk_short_sets_under_heavy_backpressure(margin):
    """Many short sets (one to three beats, so set ends fall on both ring banks, back to back),
    results rarely taken: every buffer between the ring and the output fills and the ring and
    the input stall."""
    dut = TopK(4, signed(3), 2, 12, margin=margin)
    rng = random.Random(31)
    sets = [make_set(rng, rng.randint(1, 6), dut.value_shape) for _ in range(40)]
    accepted, beats = run_sets(dut, sets, seed=5, p_valid=0.9, p_ready=0.15)
    kept = [len(topk_model(s, 4, margin)) for s in sets]
    assert per_set_counts(beats) == kept
    # The input stalled: some beat waited although offered.
    assert len(accepted) == sum(-(-len(s) // 2) for s in sets)
    assert accepted[-1] > 2 * len(accepted)


def test_topk_single_lane_singleton_sets():
    """Sets of one item: one beat in, one result out, every cycle; the first result ten cycles
    after its beat."""
    dut = TopK(3, unsigned(4), 1, 16)
    sets = [[v] for v in (5, 0, 15, 7, 7)]
    accepted, beats = run_sets(dut, sets, seed=0)
    assert accepted == [0, 1, 2, 3, 4]
    assert beats == [(c, 0, 1) for c in (10, 11, 12, 13, 14)]


# --- margin ------------------------------------------------------------------------------------

def test_model_margin_by_hand():
    values = [3, 7, 7, -2, 6, 5, 7]
    assert topk_model(values, 4) == [1, 2, 4, 6]
    assert topk_model(values, 4, 0) == [1, 2, 6]
    assert topk_model(values, 4, 1) == [1, 2, 4, 6]
    assert topk_model(values, 2, 100) == [1, 2]
    assert topk_model(values, 7, 2) == [1, 2, 4, 5, 6]


def per_set_counts(beats) -> list[int]:
    """Results per set, from the ``last`` flags."""
    counts, n = [], 0
    for _, _, last in beats:
        n += 1
        if last:
            counts.append(n)
            n = 0
    assert n == 0
    return counts


@pytest.mark.parametrize("k, shape, lanes, max_items", [
    (4, signed(4), 3, 23),
    (8, unsigned(2), 4, 40),
    (16, signed(11), 4, 256),
])
def test_topk_margin_none_equals_huge(k, shape, lanes, max_items):
    """A margin covering the value range (2**w - 1 or more) changes nothing: same results in the
    same cycles as no margin."""
    sets = None
    runs = []
    for margin in (None, (1 << shape.width) - 1, 10 ** 6):
        dut = TopK(k, shape, lanes, max_items, margin=margin)
        sets = sets or make_sets(dut, seed=300 + k, randoms=4)
        runs.append(run_sets(dut, sets, seed=3))
        check_exact_cycles(dut, sets, *runs[-1])
    assert runs[0] == runs[1] == runs[2]
    assert per_set_counts(runs[0][1]) == [min(k, len(s)) for s in sets]


def test_topk_margin_zero_keeps_ties_with_the_max():
    dut = TopK(8, signed(5), 3, 40, margin=0)
    rng = random.Random(7)
    sets = [[-16] * 5, [15, -16, 15, 15], [3, 9, -1, 9, 8, 3] * 5, [rng.choice([3, 9, 9, -1])
                                                                        for _ in range(30)]]
    sets += [make_set(rng, rng.randint(1, 40), dut.value_shape) for _ in range(10)]
    accepted, beats = run_sets(dut, sets, seed=4)
    check_exact_cycles(dut, sets, accepted, beats)
    got, pos = [], 0
    for values, n in zip(sets, per_set_counts(beats)):
        got.append([i for _, i, _ in beats[pos:pos + n]])
        pos += n
    for values, idx in zip(sets, got):
        best = max(values)
        ties = [i for i, v in enumerate(values) if v == best]
        assert idx == ties[:8]
    assert per_set_counts(beats)[:3] == [5, 3, 8]


MARGIN_COMBOS = [
    # k, value_shape, lanes, max_items, seed
    (1, unsigned(3), 1, 12, 11),
    (4, signed(3), 1, 20, 12),
    (4, signed(4), 3, 23, 13),
    (8, unsigned(2), 4, 40, 14),
    (16, signed(5), 2, 50, 15),
    (8, unsigned(3), 3, 5, 16),      # k > max_items
    (2, signed(2), 4, 3, 17),        # lanes > max_items
    (8, signed(6), 8, 64, 18),
]


def random_margin(rng: random.Random, shape) -> int:
    span = (1 << shape.width) - 1
    return rng.choice([0, 1, rng.randint(0, span), rng.randint(0, span), span - 1, span + 1])


@pytest.mark.parametrize("k, shape, lanes, max_items, seed", MARGIN_COMBOS)
def test_topk_random_margins_exact_cycles(k, shape, lanes, max_items, seed):
    """Random margins: every set's kept indices against the reference, the count per set, and
    back-to-back exact cycles with the per-set counts (which differ from set to set)."""
    rng = random.Random(seed)
    for _ in range(3):
        margin = random_margin(rng, shape)
        dut = TopK(k, shape, lanes, max_items, margin=margin)
        sets = make_sets(dut, seed=rng.randrange(1 << 30), randoms=10)
        accepted, beats = run_sets(dut, sets, seed=seed)
        kept = [len(topk_model(s, k, margin)) for s in sets]
        assert per_set_counts(beats) == kept
        assert all(1 <= n <= min(k, len(s)) for n, s in zip(kept, sets))
        check_exact_cycles(dut, sets, accepted, beats)


@pytest.mark.parametrize("k, shape, lanes, max_items, seed", MARGIN_COMBOS[2:6])
def test_topk_margin_under_backpressure(k, shape, lanes, max_items, seed):
    """Back-to-back sets with different kept counts, random valid gaps and ready backpressure."""
    rng = random.Random(seed + 100)
    margin = rng.randint(0, (1 << shape.width) // 2)
    dut = TopK(k, shape, lanes, max_items, margin=margin)
    sets = make_sets(dut, seed=seed + 200, randoms=14)
    accepted, beats = run_sets(dut, sets, seed=seed, p_valid=0.7, p_ready=0.5)
    kept = [len(topk_model(s, k, margin)) for s in sets]
    assert per_set_counts(beats) == kept
    assert len(set(kept)) > 1
    assert beats[-1][0] - accepted[0] > dut.cycles([len(s) for s in sets], kept)


def test_topk_schedule_with_kept_counts():
    """k = 4, lanes = 2, four sets of 2 items (one beat each, taken in 0..3, in the ring's first
    stage in 4..7) keeping 1, 2, 1, 2: captured in C = 5..8, paired in X = 6, 7, 8, 10, handed
    off in H = 7, 8, 10, 11 (H_s = max(X_s + 1, H_{s-1} + m_{s-1}); set 2 waits for set 1's two
    results), results in H_s + 3 .. H_s + m_s + 2: back to back in 10..15."""
    dut = TopK(4, signed(4), 2, 8, margin=0)
    assert dut.schedule([2, 2, 2, 2], [1, 2, 1, 2]) == [(0, 0, 10, 10), (1, 1, 11, 12),
                                                        (2, 2, 13, 13), (3, 3, 14, 15)]
    _, beats = run_sets(dut, [[1, 0], [5, 5], [-3, -4], [2, 2]], seed=0)
    assert [c for c, *_ in beats] == [10, 11, 12, 13, 14, 15]
    # Without counts, a margin's schedule assumes min(k, n) results.
    assert dut.schedule([2, 2]) == dut.schedule([2, 2], [2, 2])
    for kept, msg in [([1], "kept must have one count per set (2), not 1"),
                      ([0, 1], "kept[0] must be 1..2, not 0"),
                      ([1, 3], "kept[1] must be 1..2, not 3")]:
        with pytest.raises(ValueError) as info:
            dut.schedule([2, 2], kept)
        assert str(info.value) == msg


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
        (dict(margin=-1), "margin must be at least 0, not -1"),
        (dict(margin=1.5), "margin must be at least 0, not 1.5"),
        (dict(margin=False), "margin must be at least 0, not False"),
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
    (lambda: TopK(8, signed(11), 8, 64, margin=40), "topk_margin"),
    (lambda: TopK(3, unsigned(4), 2, 9, margin=0), "topk_margin0"),
])
def test_topk_verilog_lints_clean(make, top, tmp_path):
    text = verilog.convert(make(), name=top, emit_src=False)
    assert f"module {top}(" in text
    path = tmp_path / f"{top}.v"
    path.write_text(text)
    result = lint(path, top)
    assert result.clean, result.messages
