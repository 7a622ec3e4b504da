"""The snn golden model against independent scalar references (no simulator involved).

The references here are written from notes/snn_spec.md with plain Python integers and their own
wrap / saturate / rounding, not with ``hwgen.fixedpoint``, so a shared mistake cannot hide.
Randomness comes from fixed numpy seeds; hypothesis runs derandomized.
"""

from __future__ import annotations

import dataclasses
import itertools
from fractions import Fraction
from math import floor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.engines.snn import golden
from hwgen.engines.snn.config import SnnConfig
from hwgen.engines.snn.stimulus import LOAS_PROFILES, edge_layers, loas_profile, random_layer

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)
MODES = [(j, d) for j in ("fast", "laggy") for d in ("ftp", "sequential")]


# --- independent scalar arithmetic ---------------------------------------------------------

def s_wrap(x: int, bits: int) -> int:
    half = 1 << (bits - 1)
    return (x + half) % (1 << bits) - half


def s_sat(x: int, bits: int) -> int:
    return min(max(x, -(1 << (bits - 1))), (1 << (bits - 1)) - 1)


def s_ovf(x: int, bits: int, mode: str) -> int:
    return s_wrap(x, bits) if mode == "wrap" else s_sat(x, bits)


def s_shr(x: int, s: int, rounding: str) -> int:
    """x / 2**s rounded by exact rational arithmetic (floor, or half up)."""
    q = Fraction(x, 1 << s)
    return floor(q) if rounding == "floor" or s == 0 else floor(q + Fraction(1, 2))


def kept_pairs(a_mk: np.ndarray, b_kn: np.ndarray, min_spikes: int) -> list[tuple[int, list]]:
    """(weight, spike bits over t) of every matched pair, in increasing neuron order."""
    return [(int(b_kn[k]), [int(v) for v in a_mk[k]]) for k in range(len(b_kn))
            if sum(a_mk[k]) >= min_spikes and b_kn[k] != 0]


def scalar_join(a_mk, b_kn, cfg: SnnConfig) -> list[int]:
    """O[t] of one (m, n), pair by pair, for the join mode of ``cfg``."""
    t_steps, bits, cbits, mode = cfg.timesteps, cfg.acc_bits, cfg.correction_bits, \
        cfg.acc_overflow
    pairs = kept_pairs(a_mk, b_kn, cfg.min_spikes)
    if cfg.join == "fast" or cfg.dataflow == "sequential":
        o = [0] * t_steps
        for w, spikes in pairs:
            for t in range(t_steps):
                if spikes[t]:
                    o[t] = s_ovf(o[t] + w, bits, mode)
        return o
    pseudo, corr = 0, [0] * t_steps
    for w, spikes in pairs:
        pseudo = s_ovf(pseudo + w, bits, mode)
        for t in range(t_steps):
            corr[t] = s_ovf(corr[t] + w * (1 - spikes[t]), cbits, mode)
    return [s_ovf(pseudo - c, bits, mode) for c in corr]


def scalar_lif(o, cfg: SnnConfig) -> tuple[list[int], list[int], list[int]]:
    bits, mode, theta = cfg.u_bits, cfg.membrane_overflow, cfg.threshold
    u, spikes, xs, us = 0, [], [], []
    for ot in o:
        x = s_ovf(u + int(ot), bits, mode)
        fire = x >= theta if cfg.fire == "ge" else x > theta
        u = (0 if cfg.reset == "zero" else s_ovf(x - theta, bits, mode)) if fire else x
        if cfg.leak == "subtract_shift":
            u -= s_shr(u, cfg.leak_shift, cfg.rounding)
        elif cfg.leak == "shift":
            u = s_shr(u, cfg.leak_shift, cfg.rounding)
        spikes.append(int(fire))
        xs.append(x)
        us.append(u)
    return spikes, xs, us


def dropped_reference(a: np.ndarray, b: np.ndarray, min_spikes: int) -> np.ndarray:
    """Exact O with the neurons below min_spikes removed (what compression promises)."""
    keep = a.sum(axis=2, keepdims=True) >= min_spikes
    return golden.float_reference(a * keep, b)


# --- rule 1: packing -----------------------------------------------------------------------

def test_pack_bit_order():
    assert golden.pack_spikes([1, 0, 1, 1]) == 0b1101
    np.testing.assert_array_equal(golden.pack_spikes([[0, 0, 0], [1, 1, 1], [0, 1, 0]]),
                                  [0, 7, 2])
    np.testing.assert_array_equal(golden.unpack_spikes(0b1101, 4), [1, 0, 1, 1])


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(1, 16), st.lists(st.integers(1, 5), max_size=3))
def test_pack_unpack_round_trip(seed, timesteps, lead):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2, size=tuple(lead) + (timesteps,))
    words = golden.pack_spikes(a)
    assert words.shape == tuple(lead)
    assert ((words >= 0) & (words < (1 << timesteps))).all()
    np.testing.assert_array_equal(golden.unpack_spikes(words, timesteps), a)
    np.testing.assert_array_equal(golden.pack_spikes(golden.unpack_spikes(words, timesteps)),
                                  words)


@pytest.mark.parametrize("call, message", [
    (lambda: golden.pack_spikes([0, 2, 1]), r"^spikes must be 0 or 1, found 2$"),
    (lambda: golden.pack_spikes([0.0, 1.0]),
     r"^spikes must be an integer or boolean array, got dtype float64$"),
    (lambda: golden.pack_spikes(np.zeros((2, 0), dtype=int)), r"expected a last axis of T >= 1"),
    (lambda: golden.unpack_spikes([3, 16], 4),
     r"^spike words must lie in 0\.\.15 \(4 timesteps\)$"),
    (lambda: golden.unpack_spikes([1], 0), r"^timesteps must be an integer from 1 to 62, got 0$"),
])
def test_pack_unpack_reject_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_pack_accepts_booleans():
    assert golden.pack_spikes(np.array([True, False, True])) == 0b101


# --- rule 2: fibers ------------------------------------------------------------------------

@pytest.mark.parametrize("min_spikes, masks, values", [
    # words 0, 1, 3, 0 | 5, 2 with popcounts 0, 1, 2, 0 | 2, 1
    (1, (0b0110, 0b11), ([1, 3], [5, 2])),
    (2, (0b0100, 0b01), ([3], [5])),
])
def test_compress_spikes_drops_below_min_spikes(min_spikes, masks, values):
    cfg = SnnConfig(timesteps=3, in_neurons=6, chunk=4, laggy_adders=4, min_spikes=min_spikes)
    words = np.array([0, 1, 3, 0, 5, 2])
    fiber = golden.compress_spikes(words, cfg)
    assert fiber.masks == masks
    assert [v.tolist() for v in fiber.values] == list(values)
    assert (fiber.length, fiber.chunk, fiber.chunks, fiber.kept) == (6, 4, 2, len(sum(values, [])))
    kept_words = np.where(golden.popcount(words) >= min_spikes, words, 0)
    np.testing.assert_array_equal(golden.decompress(fiber), kept_words)


def test_compress_weights_keeps_nonzeros():
    cfg = SnnConfig(in_neurons=5, chunk=4, laggy_adders=4)
    fiber = golden.compress_weights(np.array([0, -128, 0, 127, 3]), cfg)
    assert fiber.masks == (0b1010, 0b1)
    assert [v.tolist() for v in fiber.values] == [[-128, 127], [3]]
    np.testing.assert_array_equal(golden.decompress(fiber), [0, -128, 0, 127, 3])


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(1, 300), st.integers(1, 70), st.floats(0, 1))
def test_compress_decompress_round_trip(seed, k, chunk, density):
    rng = np.random.default_rng(seed)
    values = rng.integers(-(1 << 20), 1 << 20, size=k)
    keep = rng.random(k) < density
    fiber = golden.compress(values, keep, chunk)
    assert fiber.chunks == -(-k // chunk)
    assert fiber.kept == keep.sum()
    np.testing.assert_array_equal(golden.decompress(fiber), np.where(keep, values, 0))
    # Each chunk keeps its values in increasing neuron order.
    for c in range(fiber.chunks):
        lo, hi = fiber.span(c)
        np.testing.assert_array_equal(fiber.values[c], values[lo:hi][keep[lo:hi]])
    assert golden.compress(golden.decompress(fiber), keep, chunk) == fiber


@pytest.mark.parametrize("k, chunk", [(200, 128), (256, 128), (37, 16), (16, 16), (3, 16)])
@pytest.mark.parametrize("min_spikes", [1, 2])
def test_chunk_boundaries(k, chunk, min_spikes):
    cfg = SnnConfig(timesteps=4, in_neurons=k, chunk=chunk, laggy_adders=4,
                    min_spikes=min_spikes)
    rng = np.random.default_rng(k * 1000 + chunk)
    words = rng.integers(0, 16, size=k)
    words[-1] = 15                                   # the last neuron is kept
    fiber = golden.compress_spikes(words, cfg)
    assert fiber.chunks == cfg.chunks == -(-k // chunk)
    last_width = k - (fiber.chunks - 1) * chunk
    assert fiber.span(fiber.chunks - 1) == ((fiber.chunks - 1) * chunk, k)
    assert fiber.masks[-1] >> (last_width - 1) == 1   # top bit of the partial chunk = neuron K-1
    for c in range(fiber.chunks):
        lo, hi = fiber.span(c)
        keep = golden.popcount(words[lo:hi]) >= min_spikes
        assert fiber.masks[c] == sum(1 << int(i) for i in np.flatnonzero(keep))
        np.testing.assert_array_equal(fiber.values[c], words[lo:hi][keep])
    np.testing.assert_array_equal(
        golden.decompress(fiber), np.where(golden.popcount(words) >= min_spikes, words, 0))


def test_fiber_checks_its_own_consistency():
    with pytest.raises(ValueError, match=r"^fiber mask of chunk 1 is 0x8: expected 3 bits$"):
        golden.Fiber((0b1, 0b1000), (np.array([4]), np.array([5])), 7, 4)
    with pytest.raises(ValueError, match=r"^fiber chunk 0 keeps 2 entries but holds values of "
                                         r"shape \(1,\)$"):
        golden.Fiber((0b11,), (np.array([4]),), 4, 4)
    with pytest.raises(ValueError, match=r"needs 2 masks and value arrays, got 1 and 1"):
        golden.Fiber((0b1,), (np.array([4]),), 5, 4)
    fiber = golden.Fiber((0b1,), ([4],), 4, 4)
    with pytest.raises(ValueError, match="read-only"):
        fiber.values[0][0] = 5
    assert fiber == golden.Fiber((1,), (np.array([4]),), 4, 4)
    assert fiber != golden.Fiber((1,), (np.array([5]),), 4, 4)
    assert len({fiber, golden.Fiber((1,), (np.array([4]),), 4, 4)}) == 1


@pytest.mark.parametrize("call, message", [
    (lambda cfg: golden.compress_spikes(np.array([0, 16]), cfg),
     r"^spike words must lie in 0\.\.15 \(4 timesteps\)$"),
    (lambda cfg: golden.compress_spikes(np.zeros((2, 2), dtype=int), cfg),
     r"expected one sample's words \(K,\)"),
    (lambda cfg: golden.compress_weights(np.array([0, 128]), cfg),
     r"^weights must lie in -128\.\.127 \(weight_bits = 8\)$"),
    (lambda cfg: golden.compress(np.arange(3), np.array([1, 0, 1]), 4),
     r"^keep must be a boolean array, got dtype int64$"),
    (lambda cfg: golden.compress(np.arange(3), np.ones(2, dtype=bool), 4),
     r"^keep of shape \(2,\) does not match values of shape \(3,\)$"),
])
def test_compress_rejects_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call(SnnConfig(timesteps=4))


# --- rule 3: the join ----------------------------------------------------------------------

def _mode_cfgs(base: dict) -> list[SnnConfig]:
    return [SnnConfig(**base, join=j, dataflow=d) for j, d in MODES]


def _stimuli(cfg: SnnConfig, seed: int):
    rng = np.random.default_rng(seed)
    out = [("random", *random_layer(cfg, rng, 3, 0.4, 0.5, 0.4)),
           ("sparse", *random_layer(cfg, rng, 2, 0.2, 0.7, 0.05))]
    return out + edge_layers(cfg, rng)


WORST_CASE = [
    dict(in_neurons=40, out_neurons=5, timesteps=4, chunk=16, laggy_adders=4),
    dict(in_neurons=37, out_neurons=3, timesteps=7, chunk=8, laggy_adders=4, min_spikes=2,
         weight_bits=5, acc_overflow="saturate"),
    dict(in_neurons=130, out_neurons=2, timesteps=3, chunk=128, min_spikes=3, weight_bits=16),
    dict(in_neurons=1, out_neurons=1, timesteps=1, chunk=4, laggy_adders=1),
]


@pytest.mark.parametrize("base", WORST_CASE, ids=lambda b: f"K{b['in_neurons']}c{b['chunk']}"
                                                            f"T{b['timesteps']}")
def test_join_is_exact_with_worst_case_widths_in_every_mode(base):
    cfgs = _mode_cfgs(base)
    for name, a, b in _stimuli(cfgs[0], seed=base["in_neurons"]):
        expected = dropped_reference(a, b, cfgs[0].min_spikes)
        if cfgs[0].min_spikes == 1:
            np.testing.assert_array_equal(expected, golden.float_reference(a, b))
        for cfg in cfgs:
            trace = golden.layer(a, b, cfg)
            np.testing.assert_array_equal(trace.o, expected, err_msg=f"{name} {cfg.join} "
                                                                     f"{cfg.dataflow}")


def test_join_trace_fields_per_mode():
    base = dict(in_neurons=40, out_neurons=3, timesteps=4, chunk=16, laggy_adders=4)
    a, b = random_layer(SnnConfig(**base), np.random.default_rng(21), 2, 0.4, 0.4, 0.5)
    words = golden.pack_spikes(a)
    for cfg in _mode_cfgs(base):
        trace = golden.layer(a, b, cfg)
        for m, n in itertools.product(range(2), range(3)):
            jt = trace.joins[m][n]
            matched = (words[m] != 0) & (b[:, n] != 0)
            assert jt.matches == matched.sum() > 0
            assert jt.matches_per_chunk == tuple(int(matched[c * 16:(c + 1) * 16].sum())
                                                 for c in range(3))
            if cfg.dataflow == "sequential":
                np.testing.assert_array_equal(jt.step_matches,
                                              (a[m][matched] == 1).sum(axis=0))
                assert jt.pseudo is None and jt.corr is None
            elif cfg.join == "laggy":
                assert jt.pseudo == b[matched, n].sum()
                np.testing.assert_array_equal(jt.corr, ((1 - a[m][matched]) *
                                                        b[matched, n][:, None]).sum(axis=0))
                assert jt.step_matches is None
            else:
                assert jt.pseudo is None and jt.corr is None and jt.step_matches is None


PAPER = dict(in_neurons=40, out_neurons=4, timesteps=4, chunk=16, laggy_adders=4, preset="paper")


def _paper_overflow(cfg):
    return next((a, b) for name, a, b in edge_layers(cfg, np.random.default_rng(5))
                if name == "paper_overflow")


def test_paper_widths_really_overflow():
    cfg = SnnConfig(**PAPER, join="laggy")
    assert (cfg.acc_bits, cfg.correction_bits, cfg.acc_overflow) == (12, 10, "wrap")
    a, b = _paper_overflow(cfg)
    trace = golden.layer(a, b, cfg)
    exact = golden.float_reference(a, b)
    pseudo_exact = np.array([[b[:, n].sum() for n in range(4)]] * 2)   # every neuron is kept
    assert np.abs(pseudo_exact).max() > 2047                           # beyond 12 bits
    corr_exact = pseudo_exact[..., None] - exact
    assert np.abs(corr_exact).max() > 511                              # beyond 10 bits
    assert (trace.o != exact).any()
    assert [[j.pseudo for j in row] for row in trace.joins] == \
        [[s_wrap(int(p), 12) for p in row] for row in pseudo_exact]


def test_paper_laggy_wrap_matches_scalar_loop_and_differs_from_fast():
    """The 10-bit corrections wrap modulo 1024, not 4096, so laggy O differs from the fast join
    (which gives the exact sum modulo 4096) exactly where a correction sum leaves 10 bits."""
    laggy = SnnConfig(**PAPER, join="laggy")
    fast = SnnConfig(**PAPER, join="fast")
    rng = np.random.default_rng(17)
    stimuli = [_paper_overflow(laggy), random_layer(laggy, rng, 4, 0.5, 0.1, 0.9)]
    for a, b in stimuli:
        lt, ft = golden.layer(a, b, laggy), golden.layer(a, b, fast)
        exact = golden.float_reference(a, b)
        for m, n in itertools.product(range(a.shape[0]), range(b.shape[1])):
            assert lt.o[m, n].tolist() == scalar_join(a[m], b[:, n], laggy)
            assert ft.o[m, n].tolist() == [s_wrap(int(v), 12) for v in exact[m, n]]
    a, b = stimuli[0]
    assert (golden.layer(a, b, laggy).o != golden.layer(a, b, fast).o).any()


@pytest.mark.parametrize("join, dataflow", MODES)
@pytest.mark.parametrize("overflow", ["wrap", "saturate"])
def test_narrow_join_matches_scalar_loop(join, dataflow, overflow):
    """With overflow the order of the pairs matters for saturate; every pair is clamped."""
    cfg = SnnConfig(in_neurons=50, out_neurons=4, timesteps=5, chunk=16, laggy_adders=4,
                    pseudo_bits=9, corr_bits=8, acc_overflow=overflow, join=join,
                    dataflow=dataflow)
    clamped = 0
    for name, a, b in _stimuli(cfg, seed=3):
        trace = golden.layer(a, b, cfg)
        exact = dropped_reference(a, b, cfg.min_spikes)
        clamped += int((trace.o != exact).sum())
        for m, n in itertools.product(range(a.shape[0]), range(b.shape[1])):
            assert trace.o[m, n].tolist() == scalar_join(a[m], b[:, n], cfg), (name, m, n)
    assert clamped > 0          # the stimuli really leave 9 bits


def test_sequential_equals_fast_ftp_even_when_saturating():
    base = dict(in_neurons=60, out_neurons=4, timesteps=6, chunk=16, laggy_adders=4,
                pseudo_bits=9, acc_overflow="saturate", min_spikes=2)
    fast = SnnConfig(**base)
    for _, a, b in _stimuli(fast, seed=8):
        expected = golden.layer(a, b, fast).o
        for join in ("fast", "laggy"):
            got = golden.layer(a, b, SnnConfig(**base, join=join, dataflow="sequential")).o
            np.testing.assert_array_equal(got, expected)


def test_loas_sized_layer_in_every_mode():
    """M*N*K = 8*16*256 (the size the RTL testbench uses), dense enough to saturate."""
    base = dict(in_neurons=256, out_neurons=16, timesteps=4, pseudo_bits=11, corr_bits=10,
                acc_overflow="saturate")
    a, b = random_layer(SnnConfig(**base), np.random.default_rng(2), 8, 0.5, 0.3, 0.5)
    outs = {(j, d): golden.layer(a, b, SnnConfig(**base, join=j, dataflow=d)).o for j, d in MODES}
    np.testing.assert_array_equal(outs["fast", "ftp"], outs["fast", "sequential"])
    np.testing.assert_array_equal(outs["fast", "ftp"], outs["laggy", "sequential"])
    cfg = SnnConfig(**base, join="laggy")
    for m, n in [(0, 0), (7, 15), (3, 9)]:
        assert outs["laggy", "ftp"][m, n].tolist() == scalar_join(a[m], b[:, n], cfg)


def test_join_rejects_mismatched_fibers():
    cfg = SnnConfig(in_neurons=8, chunk=4, laggy_adders=4)
    spikes = golden.compress_spikes(np.arange(8), cfg)
    with pytest.raises(ValueError, match=r"^spike fiber has 8 neurons, weight fiber 9$"):
        golden.join(spikes, golden.compress(np.ones(9, dtype=int), np.ones(9, dtype=bool), 4),
                    cfg)
    with pytest.raises(ValueError, match=r"^weight fiber is chunked by 8, config chunk is 4$"):
        golden.join(spikes, golden.compress(np.ones(8, dtype=int), np.ones(8, dtype=bool), 8),
                    cfg)
    with pytest.raises(ValueError, match=r"^weights must lie in -128\.\.127"):
        golden.join(spikes, golden.compress(np.full(8, 200), np.ones(8, dtype=bool), 4), cfg)


# --- rule 4: LIF ---------------------------------------------------------------------------

LIF_VARIANTS = list(itertools.product(("ge", "gt"), ("zero", "subtract"),
                                      ("subtract_shift", "shift", "none"), ("floor", "half_up"),
                                      ("saturate", "wrap")))


@pytest.mark.parametrize("fire, reset, leak, rounding, membrane_overflow", LIF_VARIANTS,
                         ids=["-".join(v) for v in LIF_VARIANTS])
def test_lif_matches_scalar_reference(fire, reset, leak, rounding, membrane_overflow):
    variant = (fire, reset, leak, rounding, membrane_overflow)
    rng = np.random.default_rng(LIF_VARIANTS.index(variant))
    for membrane_bits, threshold in ((8, 40), (None, 300)):
        for shift in (0, 1, 3):
            cfg = SnnConfig(timesteps=9, in_neurons=64, pseudo_bits=10, threshold=threshold,
                            membrane_bits=membrane_bits, fire=fire, reset=reset, leak=leak,
                            leak_shift=shift, rounding=rounding,
                            membrane_overflow=membrane_overflow)
            lo, hi = -512, 511
            o_all = rng.integers(lo, hi, size=(40, 9), endpoint=True)
            o_all[:5] = rng.choice([lo, hi, threshold, -threshold, 0], size=(5, 9))
            o_all[5] = threshold                                 # X hits theta at t = 0
            for o in o_all:
                trace = golden.lif(o, cfg)
                spikes, xs, us = scalar_lif(o, cfg)
                assert trace.spikes.tolist() == spikes
                assert trace.x.tolist() == xs
                assert trace.u.tolist() == us
                ulo, uhi = -(1 << (cfg.u_bits - 1)), (1 << (cfg.u_bits - 1)) - 1
                assert ulo <= trace.x.min() and trace.x.max() <= uhi
                assert ulo <= trace.u.min() and trace.u.max() <= uhi


def test_lif_variants_are_distinguished():
    """The reference comparison only means something if the variants behave differently: all 48
    give distinct traces except that rounding cannot matter without a leak (8 pairs)."""
    rng = np.random.default_rng(99)
    o_all = rng.integers(-300, 300, size=(30, 9))
    o_all[:10, 0] = 64                                           # X == theta at t = 0
    fingerprints = set()
    for f, r, lk, rd, mo in LIF_VARIANTS:
        cfg = SnnConfig(timesteps=9, in_neurons=64, threshold=64, membrane_bits=9, fire=f,
                        reset=r, leak=lk, leak_shift=2, rounding=rd, membrane_overflow=mo)
        fingerprints.add(tuple(tuple(golden.lif(o, cfg).u.tolist()) for o in o_all))
    assert len(fingerprints) == 48 - 8


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_membrane_exactly_at_threshold(reset):
    """X == theta fires for "ge" and not for "gt"."""
    o = np.array([64, 0, 0, 0])
    ge = golden.lif(o, SnnConfig(threshold=64, fire="ge", reset=reset, leak="none"))
    gt = golden.lif(o, SnnConfig(threshold=64, fire="gt", reset=reset, leak="none"))
    assert ge.x[0] == gt.x[0] == 64
    assert ge.spikes.tolist() == [1, 0, 0, 0] and ge.u.tolist() == [0, 0, 0, 0]
    assert gt.spikes.tolist() == [0, 0, 0, 0] and gt.u.tolist() == [64, 64, 64, 64]


def test_lif_leak_and_rounding_by_hand():
    # U = -5 with s = 1: floor(-2.5) = -3, half_up floor(-2.0) = -2.
    o = np.array([-5, 0, 0, 0])
    shift = dict(threshold=64, leak="shift", leak_shift=1)
    assert golden.lif(o, SnnConfig(**shift, rounding="floor")).u.tolist() == [-3, -2, -1, -1]
    assert golden.lif(o, SnnConfig(**shift, rounding="half_up")).u.tolist() == [-2, -1, 0, 0]
    sub = dict(threshold=64, leak="subtract_shift", leak_shift=1)
    assert golden.lif(o, SnnConfig(**sub, rounding="floor")).u.tolist() == [-2, -1, 0, 0]
    assert golden.lif(o, SnnConfig(**sub, rounding="half_up")).u.tolist() == [-3, -2, -1, -1]
    # Reset by subtraction keeps the excess: X = 100 - 64 = 36, then leak 36 - 36 >> 4 = 34.
    assert golden.lif(np.array([100, 0, 0, 0]),
                      SnnConfig(threshold=64, reset="subtract")).u.tolist()[0] == 34


@pytest.mark.parametrize("mode, x", [("saturate", [100, 127, 127]), ("wrap", [100, -56, 44])])
def test_membrane_overflow(mode, x):
    cfg = SnnConfig(timesteps=3, threshold=127, fire="gt", leak="none", membrane_bits=8,
                    membrane_overflow=mode)
    assert golden.lif(np.array([100, 100, 100]), cfg).x.tolist() == x


def test_lif_rejects_bad_o():
    cfg = SnnConfig(timesteps=4, pseudo_bits=10)
    with pytest.raises(ValueError, match=r"^o of shape \(3,\): expected \(4,\)$"):
        golden.lif(np.zeros(3, dtype=int), cfg)
    with pytest.raises(ValueError, match=r"^o must lie in -512\.\.511 \(acc_bits = 10\)$"):
        golden.lif(np.array([0, 512, 0, 0]), cfg)


# --- rule 5: layers chain ------------------------------------------------------------------

@pytest.mark.parametrize("min_spikes", [1, 2])
def test_layer_chains_through_the_compressor(min_spikes):
    first = SnnConfig(in_neurons=48, out_neurons=40, timesteps=4, chunk=16, laggy_adders=4,
                      threshold=40, min_spikes=min_spikes, join="laggy")
    second = SnnConfig(in_neurons=40, out_neurons=6, timesteps=4, chunk=16, laggy_adders=4,
                       threshold=40, min_spikes=min_spikes)
    rng = np.random.default_rng(30 + min_spikes)
    a, b = random_layer(first, rng, 3, 0.5, 0.3, 0.6)
    t1 = golden.layer(a, b, first)
    assert 0 < t1.spikes.mean() < 1
    np.testing.assert_array_equal(t1.out_words, golden.pack_spikes(t1.spikes))
    for m in range(3):
        fired = golden.popcount(t1.out_words[m]) >= min_spikes
        np.testing.assert_array_equal(golden.decompress(t1.out_fibers[m]),
                                      np.where(fired, t1.out_words[m], 0))
        np.testing.assert_array_equal(t1.spikes[m], np.array(
            [[tr.spikes for tr in t1.lifs[m]]]).reshape(40, 4))
    _, b2 = random_layer(second, rng, 1, 0.5, 0.3, 0.6)
    t2 = golden.layer(t1.spikes, b2, second)
    assert t2.spike_fibers == t1.out_fibers
    np.testing.assert_array_equal(t2.o, dropped_reference(t1.spikes, b2, min_spikes))


def test_layer_exposes_every_stage():
    cfg = SnnConfig(in_neurons=20, out_neurons=3, timesteps=4, chunk=8, laggy_adders=4,
                    threshold=30)
    a, b = random_layer(cfg, np.random.default_rng(9), 2, 0.5, 0.5, 0.5)
    t = golden.layer(a, b, cfg)
    assert t.words.shape == (2, 20) and t.o.shape == t.spikes.shape == (2, 3, 4)
    assert t.out_words.shape == (2, 3) and len(t.out_fibers) == 2
    assert len(t.joins) == len(t.lifs) == 2 and len(t.joins[0]) == len(t.lifs[0]) == 3
    for m in range(2):
        assert t.spike_fibers[m] == golden.compress_spikes(t.words[m], cfg)
        for n in range(3):
            assert t.weight_fibers[n] == golden.compress_weights(b[:, n], cfg)
            np.testing.assert_array_equal(t.o[m, n], t.joins[m][n].o)
            np.testing.assert_array_equal(t.spikes[m, n], golden.lif(t.o[m, n], cfg).spikes)


@pytest.mark.parametrize("a_shape, b_shape, a_fill, b_fill, message", [
    ((2, 8, 3), (8, 2), 0, 1, r"^spikes of shape \(2, 8, 3\): expected \(M >= 1, 8, 4\) for "
                              r"in_neurons = 8, timesteps = 4$"),
    ((0, 8, 4), (8, 2), 0, 1, r"expected \(M >= 1, 8, 4\)"),
    ((2, 8, 4), (8, 3), 0, 1, r"^weights of shape \(8, 3\): expected \(8, 2\) for in_neurons = "
                              r"8, out_neurons = 2$"),
    ((2, 8, 4), (8, 2), 2, 1, r"^spikes must be 0 or 1, found 2$"),
    ((2, 8, 4), (8, 2), 1, -129, r"^weights must lie in -128\.\.127 \(weight_bits = 8\)$"),
    ((2, 8, 4), (8, 2), 1, 0.5, r"^weights must be an integer or boolean array, got dtype "
                                r"float64$"),
])
def test_layer_rejects_bad_input(a_shape, b_shape, a_fill, b_fill, message):
    cfg = SnnConfig(in_neurons=8, out_neurons=2, timesteps=4, chunk=4, laggy_adders=4)
    with pytest.raises(ValueError, match=message):
        golden.layer(np.full(a_shape, a_fill), np.full(b_shape, b_fill), cfg)


# --- stimulus ------------------------------------------------------------------------------

def test_random_layer_fractions_are_exact():
    cfg = SnnConfig(in_neurons=200, out_neurons=10, timesteps=4)
    a, b = random_layer(cfg, np.random.default_rng(4), 5, 0.1, 0.713, 0.0174)
    assert a.shape == (5, 200, 4) and b.shape == (200, 10)
    assert set(np.unique(a)) <= {0, 1}
    assert ((golden.pack_spikes(a) == 0).sum(axis=1) == round(0.713 * 200)).all()
    assert (b != 0).sum() == round(0.0174 * 2000)
    assert b.min() >= -128 and b.max() <= 127


def test_random_layer_overrepresents_weight_extremes():
    cfg = SnnConfig(in_neurons=100, out_neurons=50, timesteps=2)
    _, b = random_layer(cfg, np.random.default_rng(6), 1, 0.5, 0.5, 1.0)
    assert (b != 0).all()
    for extreme in (-128, 127, -1, 1):
        assert (b == extreme).mean() > 0.04          # uniform would give ~0.004


@pytest.mark.parametrize("kwargs, message", [
    (dict(samples=0), r"^samples must be an integer >= 1, got 0$"),
    (dict(spike_density=1.5), r"^spike_density must be a number from 0 to 1, got 1\.5$"),
    (dict(silent_fraction=-0.1), r"^silent_fraction must be a number from 0 to 1, got -0\.1$"),
    (dict(weight_density="0.3"), r"^weight_density must be a number from 0 to 1, got '0\.3'$"),
])
def test_random_layer_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        random_layer(SnnConfig(), np.random.default_rng(0), **kwargs)


def test_loas_profiles():
    assert LOAS_PROFILES == {"vgg16": (0.713, 0.9826), "resnet19": (0.741, 0.9823),
                             "alexnet": (0.596, 0.9691)}
    assert loas_profile("resnet19") == (0.741, 0.9823)
    with pytest.raises(ValueError, match=r"^unknown LoAS profile 'vgg': expected one of "
                                         r"'vgg16', 'resnet19', 'alexnet'$"):
        loas_profile("vgg")


EDGE_CFGS = [
    SnnConfig(in_neurons=40, out_neurons=5, chunk=16, laggy_adders=4, min_spikes=2),
    SnnConfig(in_neurons=130, out_neurons=3, timesteps=6, min_spikes=1, threshold=500),
    SnnConfig(in_neurons=3, out_neurons=1, timesteps=1, chunk=4, laggy_adders=4),
]


@pytest.mark.parametrize("cfg", EDGE_CFGS, ids=lambda c: f"K{c.in_neurons}N{c.out_neurons}")
def test_edge_layers_hit_their_edges(cfg):
    cases = {name: (a, b) for name, a, b in edge_layers(cfg, np.random.default_rng(1))}
    assert list(cases) == ["silent_chunks", "firing_chunks", "at_threshold", "weight_extremes",
                           "min_spikes_boundary", "paper_overflow"]
    k, n, t = cfg.in_neurons, cfg.out_neurons, cfg.timesteps
    lo, hi = -128, 127
    for name, (a, b) in cases.items():
        assert a.shape[1:] == (k, t) and b.shape == (k, n), name
        golden.layer(a, b, cfg)                                  # valid input
    words = {name: golden.pack_spikes(a) for name, (a, _) in cases.items()}
    chunk_of = np.arange(k) // cfg.chunk
    assert (words["silent_chunks"][0] == 0).all()
    assert (words["silent_chunks"][1][chunk_of % 2 == 0] == 0).all()
    assert (words["firing_chunks"][0] == (1 << t) - 1).all()
    assert (cases["firing_chunks"][1] != 0).all()
    b = cases["weight_extremes"][1]
    assert (b[:, 0] == lo).all() and np.isin(b, (lo, hi)).all()
    pop = golden.popcount(words["min_spikes_boundary"])
    assert set(np.unique(pop)) == {cfg.min_spikes - 1, cfg.min_spikes}
    # at threshold: X = O[0] = theta in column 0, so "ge" fires at t = 0 and "gt" does not
    a, b = cases["at_threshold"]
    for fire, spiked in (("ge", 1), ("gt", 0)):
        trace = golden.layer(a, b, SnnConfig(**{**_fields(cfg), "fire": fire}))
        assert trace.lifs[0][0].x[0] == cfg.threshold
        assert trace.spikes[0, 0, 0] == spiked
    np.testing.assert_array_equal(golden.float_reference(a, b)[0, :3, 0],
                                  [cfg.threshold, cfg.threshold - 1, cfg.threshold + 1][:n])


def _fields(cfg: SnnConfig) -> dict:
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}


def test_at_threshold_left_out_when_unreachable():
    cfg = SnnConfig(in_neurons=2, out_neurons=2, chunk=4, laggy_adders=4, threshold=300)
    names = [name for name, _, _ in edge_layers(cfg, np.random.default_rng(0))]
    assert "at_threshold" not in names and len(names) == 5
