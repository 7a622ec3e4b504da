"""The unrolled LIF (hwgen.engines.snn.lif) in Amaranth's simulator against the golden model.

Every output beat is compared with ``hwgen.engines.snn.golden.lif`` (spec rule 4); this file has
no LIF arithmetic of its own. Stimulus: extremes of ``acc_bits``, beats built to put the
membrane exactly at (and next to) the threshold, and random O from recorded seeds, driven with
random input gaps and random output backpressure.
"""

from __future__ import annotations

import gc
import random
import warnings

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import UnusedElaboratable
from hwgen.testbench.amaranth_streams import run_through

from hwgen.engines.snn.config import SnnConfig
from hwgen.engines.snn.golden import lif as golden_lif
from hwgen.engines.snn.lif import UnrolledLif, spikes_layout, sums_layout
from hwgen.flows.lint import lint
from hwgen.hdl.payload import pack, unpack

# name: (config fields, steps_per_stage, tag_bits). Together they cover every fire, reset, leak,
# rounding and membrane-overflow choice, T in {1, 4, 8}, narrow membranes that overflow, s = 0
# and s = 15, and the pipelined variants.
CASES = {
    "default_t4": (dict(timesteps=4), None, 0),
    "ge_zero_subshift_floor_sat_t4": (
        dict(timesteps=4, pseudo_bits=8, threshold=40, leak_shift=2), None, 0),
    "gt_subtract_shift_halfup_wrap_narrow_t8": (
        dict(timesteps=8, pseudo_bits=8, membrane_bits=6, membrane_overflow="wrap", fire="gt",
             reset="subtract", leak="shift", rounding="half_up", leak_shift=1, threshold=9),
        None, 0),
    "ge_subtract_none_sat_narrow_t8": (
        dict(timesteps=8, weight_bits=4, pseudo_bits=6, membrane_bits=5, fire="ge",
             reset="subtract", leak="none", threshold=11), None, 0),
    "gt_zero_shift_floor_s0_t1": (
        dict(timesteps=1, pseudo_bits=8, fire="gt", reset="zero", leak="shift", leak_shift=0,
             threshold=20), None, 0),
    "ge_subtract_subshift_halfup_wrap_narrow_t4": (
        dict(timesteps=4, pseudo_bits=8, membrane_bits=7, membrane_overflow="wrap", fire="ge",
             reset="subtract", leak="subtract_shift", rounding="half_up", leak_shift=1,
             threshold=30), None, 0),
    "gt_zero_subshift_halfup_s15_sat_t8": (
        dict(timesteps=8, pseudo_bits=12, membrane_bits=8, fire="gt", reset="zero",
             leak="subtract_shift", rounding="half_up", leak_shift=15, threshold=100), None, 0),
    "ge_zero_none_wrap_t4": (
        dict(timesteps=4, pseudo_bits=8, membrane_bits=8, membrane_overflow="wrap",
             leak="none", threshold=50), None, 0),
    "ge_zero_subshift_halfup_s3_t1": (
        dict(timesteps=1, weight_bits=4, pseudo_bits=7, membrane_bits=5, rounding="half_up",
             leak_shift=3, threshold=15), None, 0),
    "pipelined_3_per_stage_tag_t8": (
        dict(timesteps=8, pseudo_bits=8, membrane_bits=7, membrane_overflow="wrap",
             reset="subtract", leak="subtract_shift", rounding="half_up", leak_shift=2,
             threshold=20), 3, 3),
    "pipelined_1_per_stage_t4": (
        dict(timesteps=4, pseudo_bits=8, fire="gt", leak="shift", leak_shift=1, threshold=25),
        1, 0),
    # Registers inside each step (the layer's LIF): steps_per_stage 1 with step_stages 2 or 3.
    "split_2_tag_t4": (
        dict(timesteps=4, pseudo_bits=8, membrane_bits=7, membrane_overflow="wrap",
             reset="subtract", leak="subtract_shift", rounding="half_up", leak_shift=2,
             threshold=20), (1, 2), 2),
    "split_3_t8": (
        dict(timesteps=8, pseudo_bits=8, membrane_bits=8, fire="gt", reset="zero",
             leak="subtract_shift", leak_shift=3, threshold=30), (1, 3), 0),
    "split_3_t1": (dict(timesteps=1, pseudo_bits=8, threshold=20), (1, 3), 0),
}
SEEDS = {name: 1000 + i for i, name in enumerate(CASES)}


def pipeline(name) -> tuple[int | None, int]:
    """(steps_per_stage, step_stages) of a case."""
    stages = CASES[name][1]
    return stages if isinstance(stages, tuple) else (stages, 1)


def make(name):
    fields, _, tag_bits = CASES[name]
    cfg = SnnConfig(**fields)
    cfg.validate()
    steps_per_stage, step_stages = pipeline(name)
    return cfg, UnrolledLif(cfg, steps_per_stage=steps_per_stage, step_stages=step_stages,
                            tag_bits=tag_bits)


def stimulus(cfg: SnnConfig, seed: int, n_random: int = 60) -> list[list[int]]:
    """Beats of O[0..T-1]: extremes, at/next to threshold (via the golden trace), random."""
    rng = random.Random(seed)
    T, lo, hi = cfg.timesteps, -(1 << (cfg.acc_bits - 1)), (1 << (cfg.acc_bits - 1)) - 1
    theta = cfg.threshold
    beats = [[0] * T, [hi] * T, [lo] * T, [hi, lo] * (T // 2) + [hi] * (T % 2),
             [lo, hi] * (T // 2) + [lo] * (T % 2), [theta] * T, [theta - 1] * T, [theta + 1] * T]
    beats = [[min(max(v, lo), hi) for v in b] for b in beats]
    for _ in range(n_random):
        kind = rng.random()
        if kind < 0.4:
            beats.append([rng.randint(lo, hi) for _ in range(T)])
        else:                          # magnitudes around theta, so spikes and rests both occur
            span = min(hi, 2 * theta)
            beats.append([rng.randint(max(lo, -span), span) for _ in range(T)])
    # Steer step t so that X = U + O[t] lands exactly on theta (and one below / one above).
    for _ in range(3 * T):
        base = [rng.randint(-theta, theta) for _ in range(T)]
        t = rng.randrange(T)
        u_before = 0 if t == 0 else int(golden_lif(np.array(base, dtype=np.int64), cfg).u[t - 1])
        for delta in (0, -1, 1):
            o_t = theta + delta - u_before
            if lo <= o_t <= hi:
                beats.append(base[:t] + [o_t] + base[t + 1:])
    return beats


def run_lif(dut: UnrolledLif, beats, seed, p_valid=1.0, p_ready=1.0, max_cycles=20000):
    """Stream ``beats`` through ``dut`` (stream rules checked every cycle).

    Returns ``(accepted, outputs)``: input transfer cycles and ``(cycle, payload dict)`` of every
    output transfer.
    """
    cfg = dut.cfg
    in_layout, out_layout = sums_layout(cfg, dut.tag_bits), spikes_layout(cfg, dut.tag_bits)

    def payload(n):
        value = {"o": beats[n]}
        if dut.tag_bits:
            value["tag"] = n % (1 << dut.tag_bits)
        return pack(in_layout, value)

    accepted, received = run_through(dut, dut.sums, dut.spikes,
                                     [payload(n) for n in range(len(beats))], len(beats), seed,
                                     p_valid, p_ready, max_cycles)
    return accepted, [(cycle, unpack(out_layout, bits)) for cycle, bits in received]


def check_against_golden(cfg: SnnConfig, dut: UnrolledLif, beats, outputs):
    assert len(outputs) == len(beats)
    for n, (beat, (_, out)) in enumerate(zip(beats, outputs)):
        trace = golden_lif(np.array(beat, dtype=np.int64), cfg)
        expected = sum(int(s) << t for t, s in enumerate(trace.spikes))
        got = [(out["spikes"] >> t) & 1 for t in range(cfg.timesteps)]
        assert out["spikes"] == expected, (
            f"beat {n}: O={beat}: RTL S={got}, golden S={trace.spikes.tolist()} "
            f"X={trace.x.tolist()} U={trace.u.tolist()}")
        if dut.tag_bits:
            assert out["tag"] == n % (1 << dut.tag_bits)


def coverage(cfg: SnnConfig, beats) -> dict[str, bool]:
    """Which interesting events the golden traces of ``beats`` contain (read off the traces)."""
    umin, umax = -(1 << (cfg.u_bits - 1)), (1 << (cfg.u_bits - 1)) - 1
    seen = dict(spike=False, rest=False, at_theta=False, membrane_overflow=False)
    for beat in beats:
        trace = golden_lif(np.array(beat, dtype=np.int64), cfg)
        for t in range(cfg.timesteps):
            u_before = 0 if t == 0 else int(trace.u[t - 1])
            seen["spike"] |= bool(trace.spikes[t])
            seen["rest"] |= not trace.spikes[t]
            seen["at_theta"] |= int(trace.x[t]) == cfg.threshold
            seen["membrane_overflow"] |= not umin <= u_before + beat[t] <= umax
    return seen


@pytest.mark.parametrize("name", list(CASES))
def test_lif_matches_golden_with_gaps_and_backpressure(name):
    cfg, dut = make(name)
    beats = stimulus(cfg, SEEDS[name])
    seen = coverage(cfg, beats)
    assert seen["spike"] and seen["rest"] and seen["at_theta"], seen
    if cfg.membrane_bits is not None and cfg.membrane_bits < cfg.acc_bits + 2:
        assert seen["membrane_overflow"], "narrow membrane case never overflows"
    accepted, outputs = run_lif(dut, beats, SEEDS[name], p_valid=0.7, p_ready=0.6)
    check_against_golden(cfg, dut, beats, outputs)
    # The random ready really stalled the pipeline at least once.
    assert outputs[-1][0] - accepted[0] > len(beats) + dut.latency


@pytest.mark.parametrize("name", ["default_t4", "gt_subtract_shift_halfup_wrap_narrow_t8",
                                  "pipelined_3_per_stage_tag_t8", "pipelined_1_per_stage_t4",
                                  "split_2_tag_t4", "split_3_t8", "split_3_t1"])
def test_lif_latency_and_throughput(name):
    """Input always valid, output always ready: one beat per cycle, ``latency`` cycles late."""
    cfg, dut = make(name)
    steps_per_stage, step_stages = pipeline(name)
    expected_latency = -(-cfg.timesteps // (steps_per_stage or cfg.timesteps)) * step_stages
    assert dut.latency == expected_latency
    beats = stimulus(cfg, SEEDS[name], n_random=20)
    accepted, outputs = run_lif(dut, beats, SEEDS[name])
    check_against_golden(cfg, dut, beats, outputs)
    assert accepted == list(range(len(beats)))
    assert [c for c, _ in outputs] == [c + dut.latency for c in accepted]


def test_lif_rejects_bad_steps_per_stage():
    messages = []
    with warnings.catch_warnings():
        # The half-built component is garbage; Amaranth would warn that it was never elaborated.
        warnings.simplefilter("ignore", UnusedElaboratable)
        for bad in (0, 5):
            try:
                UnrolledLif(SnnConfig(timesteps=4), steps_per_stage=bad)
            except ValueError as exc:
                messages.append(str(exc))
        for bad in ((2, 2), (1, 4), (1, 0)):
            try:
                UnrolledLif(SnnConfig(timesteps=4), steps_per_stage=bad[0], step_stages=bad[1])
            except ValueError as exc:
                messages.append(str(exc))
        gc.collect()
    assert messages == [f"steps_per_stage must be 1..4, not {bad}" for bad in (0, 5)] + [
        f"step_stages must be 1, or 2 or 3 with steps_per_stage = 1, not {bad}"
        for bad in (2, 4, 0)]


@pytest.mark.parametrize("name", ["default_t4", "gt_subtract_shift_halfup_wrap_narrow_t8",
                                  "pipelined_3_per_stage_tag_t8", "gt_zero_shift_floor_s0_t1",
                                  "split_3_t8"])
def test_lif_verilog_lints_clean(name, tmp_path):
    cfg, dut = make(name)
    text = verilog.convert(dut, name="lif", emit_src=False)
    assert "module lif(" in text and "spikes__payload" in text and "sums__payload" in text
    path = tmp_path / "lif.v"
    path.write_text(text)
    result = lint(path, "lif")
    assert result.clean, result.messages
