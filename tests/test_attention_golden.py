"""The sparse attention golden model against independent references (no simulator involved).

Three kinds of reference, none taken from the model's output:

* a scalar re-implementation of the spec with plain Python integers (``ref_attention``), held
  against every stage of the numpy trace;
* mathematical bounds with exact rationals (quantization vs ``x * q_max / maxabs``, exponents vs
  the real factor, probabilities vs ``exp * 2**prob_bits / sum``) and float64 attention;
* hand-derived cases (ties, L = 1, all-zero tensors, rounding and overflow of the output).

Randomness comes from fixed numpy seeds; hypothesis runs derandomized.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.engines.sparse_attention import (
    SparseAttentionConfig,
    golden,
    softmax,
    stimulus,
)

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)


def cfg_of(**kwargs) -> SparseAttentionConfig:
    return SparseAttentionConfig(**kwargs)


# --- an independent scalar model of the spec -----------------------------------------------

def s_wrap(x: int, bits: int) -> int:
    half = 1 << (bits - 1)
    return (x + half) % (1 << bits) - half


def s_sat(x: int, bits: int) -> int:
    return min(max(x, -(1 << (bits - 1))), (1 << (bits - 1)) - 1)


def ref_quantize(cfg, x: list[list[int]]) -> tuple[int, int, list[list[int]]]:
    qm, s = cfg.q_max, cfg.recip_shift
    m = max(abs(v) for row in x for v in row)
    r = (qm << s) // m if m else 0
    return m, r, [[min(max((v * r + (1 << (s - 1))) >> s, -qm), qm) for v in row] for row in x]


def ref_select(cfg, est: list[list[int]]) -> list[list[int]]:
    n = len(est)
    if cfg.mask == "topk":
        return [sorted(sorted(range(n), key=lambda j: (-est[i][j], j))[:min(cfg.topk, n)])
                for i in range(n)]
    if cfg.mask == "threshold":
        rows = []
        for i in range(n):
            best = sorted(range(n), key=lambda j: (-est[i][j], j))[:min(cfg.topk, n)]
            floor = max(est[i]) - cfg.margin
            rows.append(sorted(j for j in best if est[i][j] >= floor))
        return rows
    if cfg.mask == "window":
        g = cfg.global_tokens
        return [[j for j in range(n) if abs(i - j) <= cfg.window or j < g or i < g]
                for i in range(n)]
    return [list(range(n)) for _ in range(n)]


def ref_softmax(cfg, scores: list[int]) -> tuple[list[int], int, int, list[int]]:
    lut = [int(v) for v in cfg.exp_lut]
    n_frac, eb, pb, rs = cfg.exp_frac_bits, cfg.exp_bits, cfg.prob_bits, cfg.row_recip_shift
    m = max(scores)
    exps = []
    for s in scores:
        e = ((m - s) * cfg.exp_mult) >> cfg.exp_shift
        ei, ef = divmod(e, 1 << n_frac)
        exps.append(lut[ef] >> ei if ei <= eb else 0)
    total = sum(exps)
    rr = (1 << rs) // total
    return exps, total, rr, [(x * rr) >> (rs - pb) for x in exps]


def ref_out(cfg, acc: int) -> int:
    pb = cfg.prob_bits
    y = acc >> pb if cfg.rounding == "floor" else (acc + (1 << (pb - 1))) >> pb
    return s_wrap(y, cfg.out_bits) if cfg.out_overflow == "wrap" else s_sat(y, cfg.out_bits)


def ref_attention(cfg, q, k, v) -> dict:
    q, k, v = ([[int(x) for x in row] for row in t] for t in (q, k, v))
    n, d = len(q), cfg.head_dim
    mq, rq, q4 = ref_quantize(cfg, q)
    mk, rk, k4 = ref_quantize(cfg, k)
    est = [[sum(a * b for a, b in zip(q4[i], k4[j])) for j in range(n)] for i in range(n)]
    sel = ref_select(cfg, est)
    scores = [[sum(a * b for a, b in zip(q[i], k[j])) for j in sel[i]] for i in range(n)]
    soft = [ref_softmax(cfg, s) for s in scores]
    acc = [[sum(p * v[j][c] for p, j in zip(soft[i][3], sel[i])) for c in range(d)]
           for i in range(n)]
    return {"maxabs_q": mq, "maxabs_k": mk, "recip_q": rq, "recip_k": rk, "q4": q4, "k4": k4,
            "est": est, "selected": sel, "scores": scores, "exps": [s[0] for s in soft],
            "row_sum": [s[1] for s in soft], "row_recip": [s[2] for s in soft],
            "probs": [s[3] for s in soft], "acc": acc,
            "out": [[ref_out(cfg, a) for a in row] for row in acc]}


def assert_trace_matches(cfg, q, k, v) -> golden.AttentionTrace:
    trace = golden.attention(cfg, q, k, v)
    ref = ref_attention(cfg, q, k, v)
    for name in ("maxabs_q", "maxabs_k", "recip_q", "recip_k"):
        assert getattr(trace, name) == ref[name], name
    for name in ("q4", "k4", "est", "row_sum", "row_recip", "acc", "out"):
        assert getattr(trace, name).tolist() == ref[name], name
    for name in ("selected", "scores", "exps", "probs"):
        assert [row.tolist() for row in getattr(trace, name)] == ref[name], name
    assert trace.out.dtype == np.int64 and trace.length == len(ref["q4"])
    return trace


# --- stage 2: quantization -----------------------------------------------------------------

@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(2, 16), st.integers(2, 8), st.integers(1, 6),
       st.integers(1, 12))
def test_quantization_recipe(seed, data_bits, est_bits, length, d):
    cfg = cfg_of(data_bits=data_bits, est_bits=est_bits, head_dim=d, in_frac_bits=0)
    rng = np.random.default_rng(seed)
    lo, hi = cfg.data_range
    scale = int(rng.integers(1, hi - lo + 1))           # small and large maxabs alike
    x = np.clip(rng.integers(-scale, scale, size=(length, d), endpoint=True), lo, hi)
    maxabs, recip, x4 = golden.quantize(cfg, x)
    ref_m, ref_r, ref_x4 = ref_quantize(cfg, x.tolist())
    assert (maxabs, recip, x4.tolist()) == (ref_m, ref_r, ref_x4)
    qm, shift = cfg.q_max, cfg.recip_shift
    unclamped = [(v * recip + (1 << (shift - 1))) >> shift for v in x.ravel().tolist()]
    assert all(-qm <= u <= qm for u in unclamped)       # the clamp never acts on valid inputs
    for v, got in zip(x.ravel().tolist(), x4.ravel().tolist()):
        if maxabs == 0:
            assert got == 0
            continue
        exact = Fraction(v * qm, maxabs)
        half_up = math.floor(exact + Fraction(1, 2))
        assert abs(got - half_up) <= 1
        # Documented: round half up, except exact positive ties may round down.
        tie = exact.denominator == 2
        assert got == half_up or (tie and v > 0 and got == half_up - 1)
        assert -qm <= got <= qm


@pytest.mark.parametrize("row, maxabs, q4", [
    # maxabs 2: r = 7 * 2**23 is exact, so 1 * 7 / 2 = 3.5 rounds half up to 4, -3.5 to -3.
    ([2, 1, -1, -2], 2, [7, 4, -3, -7]),
    # maxabs 6: 3 * 7 / 6 = 3.5 but r = floor(7 * 2**24 / 6) is inexact: the positive tie -> 3.
    ([6, 3, -3, -6], 6, [7, 3, -3, -7]),
    # maxabs 128 (the minimum value): 127 * 7 / 128 = 6.95 -> 7; 9 * 7 / 128 = 0.49 -> 0.
    ([-128, 127, 9, 10], 128, [-7, 7, 0, 1]),
])
def test_quantization_hand_cases(row, maxabs, q4):
    cfg = cfg_of(head_dim=4)
    got_m, recip, got = golden.quantize(cfg, np.array([row]))
    assert (got_m, recip, got.tolist()) == (maxabs, (7 << 24) // maxabs, [q4])


def test_quantization_of_zero_tensor():
    cfg = cfg_of(head_dim=3)
    assert golden.quantize(cfg, np.zeros((4, 3), dtype=int))[:2] == (0, 0)
    assert not golden.quantize(cfg, np.zeros((4, 3), dtype=int))[2].any()


# --- stage 4: selection --------------------------------------------------------------------

EST = [[3, 5, 5, 1, 5],
       [0, 0, 0, 0, 0],
       [-1, -2, -3, -4, -1],
       [1, 2, 3, 4, 5],
       [5, 5, 4, 5, 5]]


@pytest.mark.parametrize("k, expected", [
    (1, [[1], [0], [0], [4], [0]]),
    (2, [[1, 2], [0, 1], [0, 4], [3, 4], [0, 1]]),
    (3, [[1, 2, 4], [0, 1, 2], [0, 1, 4], [2, 3, 4], [0, 1, 3]]),
    (8, [[0, 1, 2, 3, 4]] * 5),
])
def test_topk_ties_go_to_the_lower_index(k, expected):
    cfg = cfg_of(max_len=8, topk=k)
    sel = golden.select(cfg, np.array(EST), 5)
    assert [s.tolist() for s in sel] == expected
    assert all(s.dtype == np.int64 for s in sel)


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(1, 20), st.integers(1, 20), st.integers(0, 3))
def test_topk_matches_a_sorted_reference(seed, length, k, spread):
    cfg = cfg_of(max_len=20, topk=k)
    est = np.random.default_rng(seed).integers(-spread, spread, size=(length, length),
                                               endpoint=True)
    sel = golden.select(cfg, est, length)
    assert [s.tolist() for s in sel] == ref_select(cfg, est.tolist())
    assert all(len(s) == min(k, length) for s in sel)


@pytest.mark.parametrize("k, margin, expected", [
    (1, 0, [[1], [0], [0], [4], [0]]),                       # k = 1: the topk row max
    (1, 99, [[1], [0], [0], [4], [0]]),
    (3, 0, [[1, 2, 4], [0, 1, 2], [0, 4], [4], [0, 1, 3]]),  # only ties with the max
    (3, 1, [[1, 2, 4], [0, 1, 2], [0, 1, 4], [3, 4], [0, 1, 3]]),
    (3, 2, [[1, 2, 4], [0, 1, 2], [0, 1, 4], [2, 3, 4], [0, 1, 3]]),
    (5, 1, [[1, 2, 4], [0, 1, 2, 3, 4], [0, 1, 4], [3, 4], [0, 1, 2, 3, 4]]),
    (5, 2, [[0, 1, 2, 4], [0, 1, 2, 3, 4], [0, 1, 2, 4], [2, 3, 4], [0, 1, 2, 3, 4]]),
    (8, 4, [[0, 1, 2, 3, 4]] * 5),
])
def test_threshold_hand_cases(k, margin, expected):
    """The EST rows above by hand: the topk keys, then est >= row max - margin."""
    cfg = cfg_of(max_len=8, topk=k, mask="threshold", margin=margin)
    sel = golden.select(cfg, np.array(EST), 5)
    assert [s.tolist() for s in sel] == expected
    assert all(s.dtype == np.int64 for s in sel)


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(1, 20), st.integers(1, 20), st.integers(0, 6),
       st.integers(0, 14))
def test_threshold_matches_a_sorted_reference(seed, length, k, spread, margin):
    cfg = cfg_of(max_len=20, topk=k, mask="threshold", margin=margin)
    est = np.random.default_rng(seed).integers(-spread, spread, size=(length, length),
                                               endpoint=True)
    sel = [s.tolist() for s in golden.select(cfg, est, length)]
    assert sel == ref_select(cfg, est.tolist())
    topk = [s.tolist() for s in golden.select(cfg_of(max_len=20, topk=k), est, length)]
    for i, row in enumerate(est.tolist()):
        # at least the row max, at most the topk keys; the documented second reading: the
        # min(k, |C|) best keys of C = {j : est >= max - margin} (ties to the lower index)
        assert 1 <= len(sel[i]) <= min(k, length) and set(sel[i]) <= set(topk[i])
        assert row.index(max(row)) in sel[i]
        cands = [j for j in range(length) if row[j] >= max(row) - margin]
        assert sel[i] == sorted(sorted(cands, key=lambda j: (-row[j], j))[:k])
        if margin == 0:
            assert sel[i] == [j for j in range(length) if row[j] == max(row)][:k]
        if margin >= 2 * spread:
            assert sel[i] == topk[i]


def _estimates(seed: int, length: int, d: int, est_bits: int, data_bits: int, dist: str):
    cfg = cfg_of(max_len=16, topk=16, head_dim=d, est_bits=est_bits, data_bits=data_bits,
                 in_frac_bits=0)
    q, k, v = stimulus.random_sequence(cfg, length, np.random.default_rng(seed), dist)
    return cfg, q, k, v, golden.attention(cfg, q, k, v).est


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(1, 16), st.integers(1, 16), st.integers(1, 6),
       st.integers(2, 8), st.integers(2, 12), st.sampled_from(stimulus.DISTRIBUTIONS))
def test_threshold_properties_on_real_estimates(seed, length, k, d, est_bits, data_bits, dist):
    """On the estimates of real sequences: every row keeps at least one key, the kept sets grow
    (as nested sets, so the counts are monotone) with the margin, margin 0 keeps exactly the keys
    tied with the row max (capped at k, lower indices first), and from 2 * d * q_max**2 on the
    whole trace equals topk's."""
    base, q, k_, v, est = _estimates(seed, length, d, est_bits, data_bits, dist)
    q_max = base.q_max
    full = 2 * d * q_max ** 2

    def sel(margin):
        cfg = cfg_of(max_len=16, topk=k, head_dim=d, est_bits=est_bits, data_bits=data_bits,
                     in_frac_bits=0, mask="threshold", margin=margin)
        return [set(s.tolist()) for s in golden.select(cfg, est, length)]

    margins = sorted({0, 1, q_max, q_max ** 2, d * q_max ** 2, full - 1, full, full + 1,
                      1 << 24})
    kept = [sel(m) for m in margins]
    for row in range(length):
        assert all(len(sets[row]) >= 1 for sets in kept)
        assert all(a[row] <= b[row] for a, b in zip(kept, kept[1:]))
        ties = [j for j in range(length) if est[row, j] == est[row].max()]
        assert kept[0][row] == set(ties[:k])
    topk_cfg = cfg_of(max_len=16, topk=k, head_dim=d, est_bits=est_bits, data_bits=data_bits,
                      in_frac_bits=0)
    topk = [set(s.tolist()) for s in golden.select(topk_cfg, est, length)]
    assert kept[margins.index(full)] == kept[-1] == topk
    thr = golden.attention(cfg_of(max_len=16, topk=k, head_dim=d, est_bits=est_bits,
                                  data_bits=data_bits, in_frac_bits=0, mask="threshold",
                                  margin=full), q, k_, v)
    ref = golden.attention(topk_cfg, q, k_, v)
    assert thr.out.tolist() == ref.out.tolist()
    assert [p.tolist() for p in thr.probs] == [p.tolist() for p in ref.probs]


def test_threshold_cap_and_margin_both_decide():
    """Peaked sequences with a mid margin: some rows keep fewer than k keys (the margin decides),
    others have more than k keys within the margin and keep exactly k (the cap decides)."""
    cfg = cfg_of(max_len=16, head_dim=8, topk=4, mask="threshold", margin=16)
    rng = np.random.default_rng(2)
    by_margin = by_cap = 0
    for _ in range(6):
        q, k, v = stimulus.random_sequence(cfg, 16, rng, "peaked")
        trace = golden.attention(cfg, q, k, v)
        for i, sel in enumerate(trace.selected):
            within = int((trace.est[i] >= trace.est[i].max() - cfg.margin).sum())
            assert len(sel) == min(cfg.topk, within)
            by_margin += within < cfg.topk
            by_cap += within > cfg.topk
    assert by_margin > 10 and by_cap > 10


def test_window_and_global_tokens_hand_case():
    cfg = cfg_of(max_len=10, topk=1, mask="window", window=1, global_tokens=2)
    sel = [s.tolist() for s in golden.select(cfg, np.zeros((6, 6)), 6)]
    assert sel == [[0, 1, 2, 3, 4, 5],      # global rows see everything
                   [0, 1, 2, 3, 4, 5],
                   [0, 1, 2, 3],            # globals 0, 1 plus |i - j| <= 1
                   [0, 1, 2, 3, 4],
                   [0, 1, 3, 4, 5],
                   [0, 1, 4, 5]]


@pytest.mark.parametrize("window, g, length, expected", [
    (0, 0, 3, [[0], [1], [2]]),
    (2, 0, 4, [[0, 1, 2], [0, 1, 2, 3], [0, 1, 2, 3], [1, 2, 3]]),
    (0, 9, 3, [[0, 1, 2]] * 3),             # more global tokens than keys
])
def test_window_edge_cases(window, g, length, expected):
    cfg = cfg_of(max_len=10, topk=1, mask="window", window=window, global_tokens=g)
    assert [s.tolist() for s in golden.select(cfg, np.zeros((length, length)), length)] == \
        expected


@SETTINGS
@given(st.integers(1, 16), st.integers(0, 16), st.integers(0, 16),
       st.sampled_from(["window", "dense"]))
def test_window_and_dense_match_the_definition(length, window, g, mask):
    cfg = cfg_of(max_len=16, topk=1, mask=mask, window=window, global_tokens=g)
    sel = golden.select(cfg, np.zeros((length, length), dtype=int), length)
    assert [s.tolist() for s in sel] == ref_select(cfg, [[0] * length] * length)
    assert max(len(s) for s in sel) <= cfg.max_selected


@pytest.mark.parametrize("call, message", [
    (lambda c: golden.select(c, np.zeros((3, 3)), 0), r"^length must be an integer from 1 to 8"),
    (lambda c: golden.select(c, np.zeros((3, 3)), 9), r"^length must be an integer from 1 to 8"),
    (lambda c: golden.select(c, np.zeros((3, 2)), 3), r"^est of shape \(3, 2\): expected \(3, 3\)"),
])
def test_select_rejects_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call(cfg_of(max_len=8))


# --- stage 6: softmax tables and recipe ----------------------------------------------------

@pytest.mark.parametrize("efb, eb", [(1, 4), (5, 15), (3, 8), (10, 24), (10, 4), (6, 12)])
def test_exp_lut(efb, eb):
    lut = softmax.exp_lut(efb, eb)
    n = 1 << efb
    assert lut.dtype == np.int64 and lut.shape == (n,)
    assert lut[0] == 1 << eb
    assert lut.tolist() == [math.floor(2.0 ** (eb - f / n) + 0.5) for f in range(n)]
    assert (np.diff(lut) <= 0).all()
    assert lut.min() >= 1 << (eb - 1)
    if eb >= efb + 2:                               # steps exceed one LSB: strictly decreasing
        assert (np.diff(lut) < 0).all()
    # One shared, read-only object.
    assert softmax.exp_lut(efb, eb) is lut
    assert cfg_of(exp_frac_bits=efb, exp_bits=eb).exp_lut is lut
    with pytest.raises(ValueError):
        lut[0] = 0


@pytest.mark.parametrize("d", [1, 2, 3, 16, 100, 256])
@pytest.mark.parametrize("ifb, efb", [(0, 1), (0, 10), (4, 5), (7, 3), (15, 1), (15, 10)])
def test_exp_multiplier_precision(d, ifb, efb):
    mult, shift = softmax.exp_multiplier(d, ifb, efb)
    x = 2.0 ** (efb - 2 * ifb) / (math.log(2) * math.sqrt(d))
    assert 1 << 15 <= mult < 1 << 16
    assert shift >= 5
    assert abs(mult / 2.0 ** shift / x - 1) <= 2.0 ** -16
    assert softmax.logit_scale(d, ifb) == 2.0 ** (-2 * ifb) / math.sqrt(d)


@SETTINGS
@given(st.integers(1, 256), st.integers(0, 7), st.integers(1, 10), st.integers(4, 24),
       st.integers(0, 2**32 - 1))
def test_exponents_and_exps_approximate_the_real_values(d, ifb, efb, eb, seed):
    cfg = cfg_of(head_dim=d, in_frac_bits=ifb, exp_frac_bits=efb, exp_bits=eb)
    rng = np.random.default_rng(seed)
    z_max = cfg.score_range[1] - cfg.score_range[0]
    z = np.concatenate([[0, 1, z_max], rng.integers(0, z_max, size=50, endpoint=True),
                        rng.integers(0, 64, size=20)])
    e = softmax.exponents(z, cfg)
    x = cfg.logit_scale * 2 ** efb / math.log(2)            # real exponent per unit of z
    tol = 2.0 ** -16
    for zi, ei in zip(z.tolist(), e.tolist()):
        real = zi * x
        assert real * (1 - tol) - 1 - 1e-9 < ei <= real * (1 + tol) + 1e-9
    exps = softmax.exp_values(e, cfg)
    n = 1 << efb
    for ei, xi in zip(e.tolist(), exps.tolist()):
        if ei >> efb > eb:
            assert xi == 0
        else:
            # The table rounds (<= 1/2 LSB before the shift), the shift floors (< 1 LSB).
            assert abs(xi - 2.0 ** (eb - ei / n)) < 1.5
    assert e[0] == 0 and exps[0] == 1 << eb


def test_exp_values_at_the_underflow_boundary():
    cfg = cfg_of(exp_frac_bits=2, exp_bits=4)            # table 16, 13, 11, 10 (2**(4 - f/4))
    n = 4
    e = np.array([0, 1, 4, 4 * n, 4 * n + 1, 5 * n, 5 * n + 3, 40 * n])
    # 4*n: integer part 4 = exp_bits -> 16 >> 4 = 1; 4*n + 1: 13 >> 4 = 0; beyond: 0.
    assert cfg.exp_lut.tolist() == [16, 13, 11, 10]
    assert softmax.exp_values(e, cfg).tolist() == [16, 13, 8, 1, 0, 0, 0, 0]


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(1, 40), st.integers(4, 24), st.integers(4, 24),
       st.integers(1, 10), st.integers(0, 40))
def test_probabilities_bounds(seed, n, pb, eb, efb, spread):
    cfg = cfg_of(max_len=64, topk=40, prob_bits=pb, exp_bits=eb, exp_frac_bits=efb,
                 in_frac_bits=0, head_dim=1)
    scores = np.random.default_rng(seed).integers(-spread, spread, size=n, endpoint=True)
    row = softmax.softmax_row(scores, cfg)
    exps, total, rr, probs = ref_softmax(cfg, scores.tolist())
    assert (row.exps.tolist(), row.total, row.recip, row.probs.tolist()) == \
        (exps, total, rr, probs)
    assert row.row_max == scores.max() and row.z.tolist() == (scores.max() - scores).tolist()
    assert 1 << eb <= total <= n << eb
    assert rr < 1 << cfg.row_recip_bits
    for x, p in zip(exps, probs):
        share = Fraction(x << pb, total)
        assert share - 1 < p <= share
        assert 0 <= p <= 1 << pb
    # The documented row bound.
    assert (1 << pb) - n <= sum(probs) <= 1 << pb


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8])
def test_equal_scores_give_floor_of_one_over_n(n):
    cfg = cfg_of()
    row = softmax.softmax_row(np.full(n, -1234), cfg)
    assert row.exps.tolist() == [1 << 15] * n
    assert row.probs.tolist() == [(1 << 15) // n] * n


def test_softmax_rejects_bad_input():
    cfg = cfg_of()
    with pytest.raises(ValueError, match="expected a non-empty row"):
        softmax.softmax_row(np.array([], dtype=np.int64), cfg)
    with pytest.raises(ValueError, match="non-negative"):
        softmax.exponents(np.array([-1]), cfg)
    with pytest.raises(ValueError, match="row sum must be positive"):
        softmax.row_reciprocal(0, cfg)


# --- the whole pipeline against the scalar model -------------------------------------------

PIPELINE_CONFIGS = [
    {},
    {"mask": "dense", "rounding": "floor"},
    {"mask": "window", "window": 1, "global_tokens": 2, "out_overflow": "wrap"},
    {"max_len": 12, "topk": 3, "head_dim": 5, "data_bits": 5, "est_bits": 3, "in_frac_bits": 2,
     "out_bits": 4},
    {"max_len": 16, "topk": 16, "head_dim": 3, "data_bits": 12, "est_bits": 8, "exp_frac_bits": 1,
     "exp_bits": 4, "prob_bits": 4, "in_frac_bits": 0, "out_bits": 12, "out_overflow": "wrap"},
    {"max_len": 9, "topk": 2, "head_dim": 7, "data_bits": 2, "est_bits": 2, "in_frac_bits": 0,
     "out_bits": 2, "exp_frac_bits": 10, "exp_bits": 24, "prob_bits": 24},
    {"mask": "threshold", "margin": 0},
    {"mask": "threshold", "margin": 40, "max_len": 12, "topk": 5, "head_dim": 5, "data_bits": 6,
     "in_frac_bits": 1, "rounding": "floor", "out_bits": 5, "out_overflow": "wrap"},
    {"mask": "threshold", "margin": 3, "max_len": 9, "topk": 3, "head_dim": 2, "data_bits": 3,
     "est_bits": 2, "in_frac_bits": 0},
]


@pytest.mark.parametrize("kwargs", PIPELINE_CONFIGS)
def test_pipeline_matches_scalar_model(kwargs):
    cfg = cfg_of(**kwargs)
    for _, q, k, v in stimulus.test_sequences(cfg, seed=11, count=4):
        assert_trace_matches(cfg, q, k, v)


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(1, 12), st.integers(1, 12), st.integers(1, 6),
       st.sampled_from(["topk", "threshold", "window", "dense"]), st.integers(2, 16),
       st.integers(0, 3), st.integers(0, 2 * 6 * 49 + 1), st.sampled_from(stimulus.DISTRIBUTIONS))
def test_pipeline_matches_scalar_model_random(seed, length, k, d, mask, data_bits, window, margin,
                                              dist):
    cfg = cfg_of(max_len=12, topk=k, head_dim=d, mask=mask, window=window, global_tokens=1,
                 data_bits=data_bits, in_frac_bits=0, out_bits=6, margin=margin)
    rng = np.random.default_rng(seed)
    q, k_, v = stimulus.random_sequence(cfg, length, rng, dist)
    assert_trace_matches(cfg, q, k_, v)


def test_extreme_widths_fit_int64():
    """Largest widths: 16-bit data, d = 256, 24-bit tables and probabilities, max_len 1024."""
    for ifb in (0, 15):
        cfg = cfg_of(max_len=1024, topk=1024, head_dim=256, data_bits=16, est_bits=8,
                     exp_frac_bits=10, exp_bits=24, prob_bits=24, in_frac_bits=ifb, out_bits=24,
                     mask="dense")
        lo, hi = cfg.data_range
        rng = np.random.default_rng(ifb)
        q = np.full((4, 256), lo)
        k = np.full((4, 256), lo)
        k[1], k[2] = hi, 0                          # scores: max, min and 0 in every row
        k[3] = rng.integers(lo, hi, size=256, endpoint=True)
        v = np.full((4, 256), lo)
        v[1] = hi
        trace = assert_trace_matches(cfg, q, k, v)
        assert trace.scores[0][0] == 256 * lo * lo
        # maxabs 1 gives the largest quantization reciprocal.
        one = np.zeros((2, 256), dtype=np.int64)
        one[0, 0] = 1
        assert_trace_matches(cfg, one, one, v[:2])


# --- hand-derived sequences ----------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [{}, {"mask": "threshold", "margin": 0},
                                    {"mask": "threshold", "margin": 1 << 24}])
def test_length_one_gives_v_exactly(kwargs):
    """One key: exp = 2**exp_bits, rr = 2**(prob_bits + sel_bits + 1), p = 2**prob_bits."""
    cfg = cfg_of(**kwargs)
    rng = np.random.default_rng(3)
    for _ in range(5):
        q, k, v = stimulus.random_sequence(cfg, 1, rng)
        trace = golden.attention(cfg, q, k, v)
        assert [s.tolist() for s in trace.selected] == [[0]]
        assert trace.exps[0].tolist() == [1 << 15]
        assert trace.row_recip.tolist() == [1 << (15 + 3 + 1)]
        assert trace.probs[0].tolist() == [1 << 15]
        assert trace.out.tolist() == v.tolist()            # out_bits = data_bits: no overflow


@pytest.mark.parametrize("mode, expected", [
    ("saturate", [7, -8, 7, -8, 7, -8, 0, -1]),
    ("wrap", [4, -4, 7, -8, -8, 7, 0, -1]),        # 100 = 6*16 + 4, -100 = -7*16 + 12, ...
])
@pytest.mark.parametrize("rounding", ["floor", "half_up"])
def test_output_overflow(mode, expected, rounding):
    cfg = cfg_of(head_dim=8, out_bits=4, out_overflow=mode, rounding=rounding)
    v = np.array([[100, -100, 7, -8, 8, -9, 0, -1]])
    trace = golden.attention(cfg, np.ones((1, 8), dtype=int), np.ones((1, 8), dtype=int), v)
    assert trace.acc.tolist() == [(v[0] << 15).tolist()]
    assert trace.out.tolist() == [expected]


def test_rounding_modes_differ():
    """Q = 0: both scores 0, p = floor(2**15 / 2) = 2**14 each; acc / 2**15 = V[0] / 2."""
    v = np.zeros((2, 6), dtype=np.int64)
    v[0] = [1, -1, 3, -3, 2, -2]                 # halves: 0.5, -0.5, 1.5, -1.5, 1, -1
    v[1] = 0
    q = np.zeros((2, 6), dtype=np.int64)
    k = np.arange(12).reshape(2, 6)
    outs = {}
    for rounding in ("floor", "half_up"):
        trace = golden.attention(cfg_of(head_dim=6, rounding=rounding), q, k, v)
        assert [p.tolist() for p in trace.probs] == [[1 << 14, 1 << 14]] * 2
        outs[rounding] = trace.out[0].tolist()
    assert outs["floor"] == [0, -1, 1, -2, 1, -1]
    assert outs["half_up"] == [1, 0, 2, -1, 1, -1]


def test_requantize_ties_never_use_half_even():
    cfg = cfg_of(prob_bits=4, rounding="half_up")
    acc = np.array([8, 24, 40, -8, -24, -40, 7, -9])          # 0.5, 1.5, 2.5, -0.5, ...
    assert golden.requantize(cfg, acc).tolist() == [1, 2, 3, 0, -1, -2, 0, -1]
    cfg = cfg_of(prob_bits=4, rounding="floor")
    assert golden.requantize(cfg, acc).tolist() == [0, 1, 2, -1, -2, -3, 0, -1]


@pytest.mark.parametrize("mask", [{}, {"mask": "threshold", "margin": 0},
                                  {"mask": "threshold", "margin": 5}])
@pytest.mark.parametrize("zero", ["Q", "K", "both"])
@pytest.mark.parametrize("length", [1, 3, 8, 9, 20])
def test_maxabs_zero(zero, length, mask):
    """r = 0, every estimate 0: top-k keeps keys 0..min(k, L)-1, and so does threshold (every key
    ties with the row max, the cap keeps the lowest indices); with Q or K zero every exact
    score is 0 too, so each kept key gets floor(2**15 / n)."""
    cfg = cfg_of(max_len=20, **mask)
    q, k, v = stimulus.random_sequence(cfg, length, np.random.default_rng(length))
    if zero in ("Q", "both"):
        q = np.zeros_like(q)
    if zero in ("K", "both"):
        k = np.zeros_like(k)
    trace = golden.attention(cfg, q, k, v)
    n = min(8, length)
    if zero != "K":
        assert (trace.maxabs_q, trace.recip_q) == (0, 0)
    if zero != "Q":
        assert (trace.maxabs_k, trace.recip_k) == (0, 0)
    assert not trace.est.any()
    assert [s.tolist() for s in trace.selected] == [list(range(n))] * length
    p = (1 << 15) // n
    assert [x.tolist() for x in trace.probs] == [[p] * n] * length
    col = [sum(int(v[j, c]) for j in range(n)) * p for c in range(cfg.head_dim)]
    expected = [s_sat((a + (1 << 14)) >> 15, 8) for a in col]
    assert trace.out.tolist() == [expected] * length


def test_near_ties_are_broken_by_index():
    """Keys equal up to their first element share every estimate but not every exact score."""
    cfg = cfg_of()
    cases = {label: (q, k, v) for label, q, k, v in stimulus.edge_sequences(cfg)}
    q, k, v = cases["near_ties"]
    trace = golden.attention(cfg, q, k, v)
    assert (trace.est == trace.est[:, :1]).all()            # every key of a row ties
    assert [s.tolist() for s in trace.selected] == [list(range(8))] * q.shape[0]
    assert any(len(set(s.tolist())) > 1 for s in trace.scores)


@pytest.mark.parametrize("kwargs", [
    {},
    {"data_bits": 2, "est_bits": 2, "in_frac_bits": 0, "head_dim": 3},
    {"data_bits": 3, "est_bits": 8, "in_frac_bits": 0, "head_dim": 1, "max_len": 4, "topk": 2,
     "window": 0},
    {"data_bits": 16, "est_bits": 3, "head_dim": 5, "max_len": 1, "topk": 1, "window": 0},
    {"data_bits": 16, "est_bits": 3, "head_dim": 5},
    {"data_bits": 4, "est_bits": 2, "in_frac_bits": 0, "head_dim": 7, "topk": 3},
])
def test_dominant_key_is_kept_alone(kwargs):
    """The dominant_key edge case: the last key's estimate beats every other key's by at least
    head_dim in every row (its exact score is the row max too), so a threshold below head_dim
    keeps it alone while topk keeps it among k."""
    cases = {label: seq for label, *seq in stimulus.edge_sequences(cfg_of(**kwargs))}
    q, k, v = cases["dominant_key"]
    length, d = q.shape
    for margin in (0, d - 1):
        cfg = cfg_of(**kwargs, mask="threshold", margin=margin)
        trace = golden.attention(cfg, q, k, v)
        assert [s.tolist() for s in trace.selected] == [[length - 1]] * length
        assert [p.tolist() for p in trace.probs] == [[1 << cfg.prob_bits]] * length
        assert trace.acc.tolist() == np.repeat(v[-1:] << cfg.prob_bits, length, axis=0).tolist()
    est = np.sort(trace.est, axis=1)
    if length > 1:
        assert (est[:, -1] - est[:, -2]).min() >= d
        assert (trace.est.argmax(axis=1) == length - 1).all()
        assert ((q @ k.T).argmax(axis=1) == length - 1).all()
    topk = golden.attention(cfg_of(**kwargs), q, k, v)
    assert all(length - 1 in s for s in topk.selected)


@pytest.mark.parametrize("kwargs", [{}, {"max_len": 16, "head_dim": 8, "topk": 4},
                                    {"data_bits": 16, "est_bits": 8, "head_dim": 3, "topk": 20}])
def test_crowded_keys_hit_the_threshold_cap(kwargs):
    """The crowded_keys edge case with 8-bit or wider data: many more than k keys lie within a
    small margin of the row max (the -1..1 noise rarely moves a quantized element), so the
    threshold mask keeps exactly k in most rows. (For 2-bit data the noise is the signal.)"""
    for margin in (0, 8):
        cfg = cfg_of(**kwargs, mask="threshold", margin=margin)
        cases = {label: seq for label, *seq in stimulus.edge_sequences(cfg)}
        trace = golden.attention(cfg, *cases["crowded_keys"])
        assert trace.length == cfg.max_len
        capped = 0
        for i, sel in enumerate(trace.selected):
            within = int((trace.est[i] >= trace.est[i].max() - margin).sum())
            capped += within > cfg.topk and len(sel) == cfg.topk
        assert capped > trace.length // 2


@pytest.mark.parametrize("length", [1, 5, 8, 30])
def test_topk_with_all_keys_and_wide_window_equal_dense(length):
    rng = np.random.default_rng(length)
    base = {"max_len": 32, "head_dim": 16}
    q, k, v = stimulus.random_sequence(cfg_of(**base), length, rng, "gaussian")
    dense = golden.attention(cfg_of(**base, mask="dense"), q, k, v)
    for kw in ({"topk": 32}, {"topk": length}, {"mask": "window", "window": length - 1}):
        other = golden.attention(cfg_of(**base, **kw), q, k, v)
        assert other.out.tolist() == dense.out.tolist()
        assert [p.tolist() for p in other.probs] == [p.tolist() for p in dense.probs]


# --- accuracy against float attention ------------------------------------------------------

@pytest.mark.parametrize("dist", ["uniform", "gaussian"])
@pytest.mark.parametrize("in_frac_bits", [0, 4, 7])
def test_dense_output_is_close_to_float_attention(dist, in_frac_bits):
    cfg = cfg_of(mask="dense", head_dim=16, in_frac_bits=in_frac_bits)
    rng = np.random.default_rng(in_frac_bits + (dist == "gaussian"))
    for length in (2, 7, 16, 40, 64):
        q, k, v = stimulus.random_sequence(cfg, length, rng, dist)
        out = golden.attention(cfg, q, k, v).out
        ref = golden.float_attention(cfg, q, k, v)
        assert golden.cosine_similarity(out, ref) > 0.99
        assert np.abs(out - ref).max() <= 8         # a few output LSB


def test_float_attention_by_hand():
    """logit_scale = 1 (d = 1, no fraction bits): scores 0 and 1 weigh 1 : e."""
    cfg = cfg_of(head_dim=1, in_frac_bits=0, max_len=4, topk=2)
    q = np.array([[1]])
    k = np.array([[0], [1]])
    q2, v = np.array([[1], [1]]), np.array([[4], [8]])
    w = math.exp(1) / (1 + math.exp(1))
    assert golden.float_attention(cfg, q2, k, v)[0, 0] == pytest.approx(4 * (1 - w) + 8 * w)
    assert golden.float_attention(cfg, q, k[:1], v[:1]).tolist() == [[4.0]]


@pytest.mark.parametrize("a, b, expected", [
    ([1, 0], [2, 0], 1.0), ([1, 0], [0, 3], 0.0), ([1, 1], [-1, -1], -1.0),
    ([0, 0], [0, 0], 1.0), ([0, 0], [1, 0], 0.0),
])
def test_cosine_similarity(a, b, expected):
    assert golden.cosine_similarity(np.array(a), np.array(b)) == pytest.approx(expected)


# --- input checks --------------------------------------------------------------------------

@pytest.mark.parametrize("change, message", [
    (lambda q, k, v: (q.astype(float), k, v), r"^Q must be an integer array, got dtype float64$"),
    (lambda q, k, v: (q, k[:, :3], v), r"^K of shape \(4, 3\): expected \(L, 4\) with 1 <= L"),
    (lambda q, k, v: (q[:0], k[:0], v[:0]), r"^Q of shape \(0, 4\)"),
    (lambda q, k, v: (q, k, v[:2]), r"^Q, K, V have lengths 4, 4, 2: expected one length L$"),
    (lambda q, k, v: (q, k, v + 200), r"^V values must lie in -128\.\.127 \(data_bits = 8\)$"),
    (lambda q, k, v: (q, k - 200, v), r"^K values must lie in -128\.\.127"),
    (lambda q, k, v: (np.zeros((9, 4), int), np.zeros((9, 4), int), np.zeros((9, 4), int)),
     r"^Q of shape \(9, 4\)"),
    (lambda q, k, v: (q[0], k, v), r"^Q of shape \(4,\)"),
])
def test_attention_rejects_bad_input(change, message):
    cfg = cfg_of(max_len=8, head_dim=4)
    q, k, v = stimulus.random_sequence(cfg, 4, np.random.default_rng(0))
    with pytest.raises(ValueError, match=message):
        golden.attention(cfg, *change(q, k, v))


def test_quantize_names_the_tensor():
    with pytest.raises(ValueError, match=r"^Q values must lie in -8\.\.7 \(data_bits = 4\)$"):
        golden.quantize(cfg_of(data_bits=4, in_frac_bits=0, head_dim=2), [[8, 0]], "Q")


# --- stimulus ------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, lengths", [
    ({}, [1, 2, 7, 8, 9, 64]),
    ({"max_len": 1, "topk": 1, "window": 0}, [1]),
    ({"max_len": 64, "topk": 64}, [1, 2, 63, 64]),
    ({"max_len": 3, "topk": 2, "window": 0}, [1, 2, 3]),
    ({"max_len": 9, "topk": 1, "window": 0}, [1, 2, 9]),
])
def test_edge_sequences(kwargs, lengths):
    cfg = cfg_of(**kwargs)
    assert stimulus.edge_lengths(cfg) == lengths
    cases = list(stimulus.edge_sequences(cfg))
    labels = [c[0] for c in cases]
    assert len(set(labels)) == len(labels)
    assert labels[:len(lengths)] == [f"length_{n}" for n in lengths]
    assert {"zeros", "zero_q", "all_max", "all_min", "tied_keys", "near_ties",
            "single_nonzero", "crowded_keys", "dominant_key"} <= set(labels)
    lo, hi = cfg.data_range
    by_label = {}
    for label, q, k, v in cases:
        golden.check_sequence(cfg, q, k, v)
        assert q.dtype == k.dtype == v.dtype == np.int64
        by_label[label] = (q, k, v)
    assert (by_label["all_min"][0] == lo).all() and (by_label["all_max"][2] == hi).all()
    assert (by_label["tied_keys"][1] == by_label["tied_keys"][1][0]).all()
    assert [int(np.count_nonzero(t)) for t in by_label["single_nonzero"]] == [1, 1, 1]
    assert by_label["crowded_keys"][1].shape[0] == cfg.max_len
    crowded = by_label["crowded_keys"][1]
    assert np.abs(crowded - crowded[:1]).max() <= 2
    # Deterministic.
    again = list(stimulus.edge_sequences(cfg))
    assert all(a[0] == b[0] and all(np.array_equal(x, y) for x, y in zip(a[1:], b[1:]))
               for a, b in zip(cases, again))


def test_random_sequence_distributions():
    cfg = cfg_of(max_len=64, head_dim=64)
    rng = np.random.default_rng(5)
    q, k, v = stimulus.random_sequence(cfg, 64, rng, "uniform")
    assert q.shape == k.shape == v.shape == (64, 64)
    assert q.min() == -128 and q.max() == 127                # 4096 draws reach both ends
    g = np.concatenate(stimulus.random_sequence(cfg, 64, rng, "gaussian"))
    assert abs(g.mean()) < 2 and 28 < g.std() < 36            # sigma = 128 / 4
    with pytest.raises(ValueError, match="dist must be one of 'uniform', 'gaussian', 'peaked'"):
        stimulus.random_sequence(cfg, 4, rng, "laplace")
    with pytest.raises(ValueError, match="length must be an integer from 1 to 64"):
        stimulus.random_sequence(cfg, 65, rng)


@pytest.mark.parametrize("kwargs", [{"head_dim": 64}, {"data_bits": 2, "est_bits": 2,
                                                       "in_frac_bits": 0}, {"data_bits": 16}])
def test_peaked_sequences(kwargs):
    """In the data range for every width; with head_dim 64 each query row's best exact score
    stands out from the row (about sqrt(64 / n) standard deviations, n <= 3 matching keys) far
    more than with gaussian or uniform values (about 2.4 for the largest of 64)."""
    cfg = cfg_of(max_len=64, **kwargs)
    lo, hi = cfg.data_range
    rng = np.random.default_rng(9)
    for length in (1, 2, 3, 64):
        seq = stimulus.random_sequence(cfg, length, rng, "peaked")
        golden.check_sequence(cfg, *seq)
        assert all(x.dtype == np.int64 and x.shape == (length, cfg.head_dim) for x in seq)
    if cfg.head_dim < 64:
        return

    def standout(dist):
        z = []
        for _ in range(4):
            q, k, _ = stimulus.random_sequence(cfg, 64, rng, dist)
            s = q @ k.T
            z += ((s.max(axis=1) - np.median(s, axis=1)) / s.std(axis=1)).tolist()
        return np.mean(z)

    assert standout("peaked") > 4 > 3 > max(standout("gaussian"), standout("uniform"))
    # Q is built from K: values use the range, with rare clipping at its ends.
    q, k, v = stimulus.random_sequence(cfg, 64, rng, "peaked")
    assert q.min() >= lo and q.max() <= hi and np.mean(np.abs(q) >= hi) < 0.05
    assert 24 < np.std(k) < 40 and 24 < np.std(v) < 40            # gaussian, sigma 32


def test_mixed_lengths_are_skewed():
    cfg = cfg_of(max_len=64)
    lengths = stimulus.draw_lengths(cfg, 4000, np.random.default_rng(1))
    assert lengths.min() >= 1 and lengths.max() == 64
    assert np.median(lengths) <= 16                           # most short
    assert 0.08 < np.mean(lengths == 64) < 0.2                # some at max_len
    seqs = stimulus.mixed_lengths(cfg, 20, np.random.default_rng(2), "gaussian")
    assert len(seqs) == 20 and len({q.shape[0] for q, _, _ in seqs}) > 3
    assert stimulus.draw_lengths(cfg_of(max_len=1, topk=1, window=0), 5,
                                 np.random.default_rng(0)).tolist() == [1] * 5


def test_test_sequences_are_reproducible():
    cfg = cfg_of()
    a, b, c = (stimulus.test_sequences(cfg, seed) for seed in (4, 4, 5))
    assert [x[0] for x in a] == [x[0] for x in b]
    assert all(np.array_equal(x[i], y[i]) for x, y in zip(a, b) for i in (1, 2, 3))
    edges = len(list(stimulus.edge_sequences(cfg)))
    assert len(a) == len(c) == edges + 8 * len(stimulus.DISTRIBUTIONS)
    assert [x[0].split("_")[0] for x in a[edges:]] == [
        d for d in ("uniform", "gaussian", "peaked") for _ in range(8)]
    assert [x[0] for x in a[:edges]] == [x[0] for x in c[:edges]]    # edge cases: no seed
    assert any(x[0] != y[0] or not np.array_equal(x[1], y[1])
               for x, y in zip(a[edges:], c[edges:]))
