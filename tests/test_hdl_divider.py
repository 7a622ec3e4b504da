"""The sequential divider (hwgen/hdl/divider.py) in Amaranth's simulator.

Expected results come from Python's ``//`` and ``%`` only, plus the documented rule that a zero
divisor gives quotient 0 and remainder 0. Random operands come from recorded seeds. Every result
test runs for ``bits_per_step`` 1 (radix 2) and 2 (radix 4); the expected timing is
``ceil(N / bits_per_step) + 1`` cycles, written out in each test (not read from the unit).
"""

from __future__ import annotations

import gc
import random
import warnings

import pytest
from amaranth.back import verilog
from amaranth.hdl import UnusedElaboratable
from hwgen.testbench.amaranth_streams import Transfers, accept, send, simulate

from hwgen.flows.lint import lint
from hwgen.hdl.divider import (
    BITS_PER_STEP,
    MAX_BITS,
    SequentialDivider,
    request_layout,
    result_layout,
)

WIDTHS = [(1, 1), (8, 4), (27, 9), (35, 19), (5, 12)]
#: Radix 4 also at N = 2 (one step), an even N of the engine's shapes and the widest unit.
WIDTHS_RADIX4 = WIDTHS + [(2, 3), (20, 19), (64, 64)]


def period(n: int, bits_per_step: int) -> int:
    """The documented latency and interval: ceil(N / bits_per_step) steps plus one cycle."""
    return (n + bits_per_step - 1) // bits_per_step + 1


def expected(dividend: int, divisor: int) -> tuple[int, int]:
    if divisor == 0:
        return 0, 0
    return dividend // divisor, dividend % divisor


def edge_operands(n: int, m: int) -> list[tuple[int, int]]:
    """Zero, one and all-ones divisors and dividends, divisor above dividend, engine shapes."""
    top_n, top_m = (1 << n) - 1, (1 << m) - 1
    pairs = [
        (0, 0), (1, 0), (top_n, 0),                  # division by zero: (0, 0)
        (0, 1), (1, 1), (top_n, 1),                  # divisor 1: (dividend, 0)
        (0, top_m), (top_n, top_m), (top_n - 1, top_m), (top_m & top_n, top_m),
        (1, top_m), (top_n >> 1, top_m),             # divisor above dividend when m >= n
        (top_n, 1 << (m - 1)), (1 << (n - 1), 1 << (m - 1)), (1 << (n - 1), top_m),
    ]
    if m >= 2:
        pairs += [(top_n, 2), (top_n, 3), (1 << (n - 1), 3)]
    if n == 27 and m == 9:       # the attention reciprocal: (q_max << S) // maxabs, S = 24
        pairs += [(7 << 24, a) for a in (1, 2, 3, 7, 100, 127, 128, 255)]
    if n == 35 and m == 19:      # the row reciprocal: 2**34 // row_sum
        pairs += [(1 << 34, s) for s in (1, 2, 3, 1000, 65535, 65536, (1 << 19) - 1)]
    return pairs


def wide_operands(n: int, m: int, rng: random.Random, count: int) -> list[tuple[int, int]]:
    """``(dividend, divisor)`` for a ``wide`` unit: an ``N + M``-bit dividend whose high part is
    below the divisor (a third of them exactly ``divisor - 1``), plus the edges: divisor 0 (any
    high part), divisor 1, the largest divisor with the largest dividend."""
    top_n, top_m = (1 << n) - 1, (1 << m) - 1
    ops = []
    for _ in range(count):
        divisor = max(1, rng.randint(1, top_m) >> rng.randint(0, m - 1))
        high = divisor - 1 if rng.random() < 1 / 3 else rng.randint(0, divisor - 1)
        ops.append(((high << n) | rng.getrandbits(n), divisor))
    ops += [(0, 0), (top_m << n | top_n, 0), (top_n, 1), (0, 1), (0, top_m),
            ((top_m - 1) << n | top_n, top_m),            # high = divisor - 1: largest quotient
            ((top_m - 1) << n, top_m), (top_n, top_m)]
    return ops


def random_operands(n: int, m: int, rng: random.Random, count: int) -> list[tuple[int, int]]:
    """Operands of random bit lengths, so quotients of every size turn up (and some zeros)."""
    def value(bits):
        length = rng.randint(0, bits)
        return rng.getrandbits(length) | (1 << (length - 1)) if length else 0
    return [(value(n), value(m)) for _ in range(count)]


def run(dut: SequentialDivider, operands, seed: int, gap: float = 0.0, ready_prob: float = 1.0,
        hold: tuple[int, int] | None = None, max_cycles: int = 50000):
    """Send ``operands`` with valid gaps, take results with backpressure, check the protocol.

    For a ``wide`` unit each operand's dividend is the whole ``N + M``-bit value (split into
    ``high`` and ``dividend`` here). Returns ``(accepted, results, rises)``: request transfer
    cycles, ``(cycle, quotient,
    remainder)`` of every result transfer and the first cycle each result was valid. Checked
    every cycle: the result payload is held while ``valid & ~ready`` and after the transfer
    until the next request is taken, valid is not dropped, and ``request.ready`` is high
    whenever no division is in flight. ``hold = (cycle, length)`` keeps
    ``result.ready`` low for ``length`` cycles from ``cycle`` on (overriding ``ready_prob``).
    """
    rng = random.Random(seed)
    n = dut.dividend_bits
    if dut.wide:        # operands hold the whole (N + M)-bit dividend
        payloads = [{"dividend": a & ((1 << n) - 1), "divisor": b, "high": a >> n}
                    for a, b in operands]
    else:
        payloads = [{"dividend": a, "divisor": b} for a, b in operands]
    requests = Transfers(dut.request)
    results = Transfers(dut.result, dut.result.payload.quotient, dut.result.payload.remainder)
    rises: list[int] = []
    req, res = dut.request, dut.result

    async def protocol(ctx):
        cycle, in_flight, held, after = 0, 0, None, None
        async for _, _, r_valid, r_ready, valid, ready, bits in ctx.tick().sample(
                req.valid, req.ready, res.valid, res.ready, res.payload.as_value()):
            if in_flight == 0:
                assert r_ready, f"cycle {cycle}: request.ready low with nothing in flight"
            if held is not None:
                assert valid, f"cycle {cycle}: result.valid dropped before the transfer"
                assert bits == held, f"cycle {cycle}: result payload changed while stalled"
            elif valid:
                rises.append(cycle)
            if after is not None:
                assert bits == after, f"cycle {cycle}: result payload changed after the transfer"
            held = bits if valid and not ready else None
            if valid and ready:
                after = bits
            if r_valid and r_ready:
                after = None
            in_flight += bool(r_valid and r_ready) - bool(valid and ready)
            assert in_flight in (0, 1), f"cycle {cycle}: {in_flight} divisions in flight"
            cycle += 1

    async def consumer(ctx):
        cycle = 0
        while True:
            stalled = hold is not None and hold[0] <= cycle < hold[0] + hold[1]
            ctx.set(res.ready, int(not stalled and rng.random() < ready_prob))
            await ctx.tick()
            cycle += 1

    async def until_done(ctx):
        for _ in range(max_cycles):
            if len(results.beats) == len(operands):
                return
            await ctx.tick()
        raise AssertionError(f"seed {seed}: not finished after {max_cycles} cycles")

    background = [requests.run, results.run, protocol,
                  consumer if hold is not None else accept(res, rng, ready_prob)]
    simulate(dut, send(req, payloads, rng, gap), until_done, background=background)
    return [c for c, _ in requests.beats], results.beats, rises


def check_results(operands, results, seed):
    assert len(results) == len(operands)
    for (a, b), (_, quotient, remainder) in zip(operands, results):
        assert (quotient, remainder) == expected(a, b), (seed, a, b)


# --- construction -------------------------------------------------------------------------------

def test_signature_and_timing_attributes():
    dut = SequentialDivider(35, 19)
    assert dut.request.payload.shape() == request_layout(35, 19)
    assert dut.result.payload.shape() == result_layout(35, 19)
    assert [(name, f.shape.width, f.offset) for name, f in request_layout(35, 19)] == [
        ("dividend", 35, 0), ("divisor", 19, 35)]
    assert [(name, f.shape.width, f.offset) for name, f in result_layout(35, 19)] == [
        ("quotient", 35, 0), ("remainder", 19, 35)]
    assert (dut.latency, dut.interval) == (36, 36)
    assert SequentialDivider(1, 64).latency == 2 and MAX_BITS == 64
    assert dut.bits_per_step == 1 and BITS_PER_STEP == (1, 2)


@pytest.mark.parametrize("n, steps", [(1, 1), (2, 1), (3, 2), (4, 2), (19, 10), (20, 10),
                                      (35, 18), (64, 32)])
def test_radix4_same_ports_half_the_steps(n, steps):
    for wide in (False, True):
        dut = SequentialDivider(n, 19, wide=wide, bits_per_step=2)
        assert dut.bits_per_step == 2 and dut.steps == steps
        assert (dut.latency, dut.interval) == (steps + 1, steps + 1)
        assert dut.request.payload.shape() == request_layout(n, 19, wide)
        assert dut.result.payload.shape() == result_layout(n, 19)
        assert dut.signature == SequentialDivider(n, 19, wide=wide).signature


def constructor_error(args):
    with warnings.catch_warnings():
        # The half-built component is garbage; Amaranth would warn that it was never elaborated.
        warnings.simplefilter("ignore", UnusedElaboratable)
        try:
            SequentialDivider(*args)
        except (TypeError, ValueError) as exc:
            return type(exc), str(exc)
        finally:
            gc.collect()
    return None


@pytest.mark.parametrize("args, error", [
    ((0, 8), (ValueError, "dividend_bits must be an integer from 1 to 64, not 0")),
    ((65, 8), (ValueError, "dividend_bits must be an integer from 1 to 64, not 65")),
    ((-3, 8), (ValueError, "dividend_bits must be an integer from 1 to 64, not -3")),
    ((8, 0), (ValueError, "divisor_bits must be an integer from 1 to 64, not 0")),
    ((8, 65), (ValueError, "divisor_bits must be an integer from 1 to 64, not 65")),
    ((8.0, 8), (TypeError, "dividend_bits must be an integer from 1 to 64, not 8.0")),
    (("8", 8), (TypeError, "dividend_bits must be an integer from 1 to 64, not '8'")),
    ((True, 8), (TypeError, "dividend_bits must be an integer from 1 to 64, not True")),
    ((8, None), (TypeError, "divisor_bits must be an integer from 1 to 64, not None")),
    ((0, 0), (ValueError, "dividend_bits must be an integer from 1 to 64, not 0")),
])
def test_rejects_bad_widths(args, error):
    assert constructor_error(args) == error


# --- results ------------------------------------------------------------------------------------

@pytest.mark.parametrize("n, m, k", [(n, m, 1) for n, m in WIDTHS]
                         + [(n, m, 2) for n, m in WIDTHS_RADIX4])
def test_edge_cases_back_to_back_exact_timing(n, m, k):
    """No gaps, result always ready: one division every ceil(N / k) + 1 cycles (N + 1 for
    k = 1), results exactly on time."""
    dut = SequentialDivider(n, m, bits_per_step=k)
    operands = edge_operands(n, m)
    accepted, results, rises = run(dut, operands, seed=0)
    check_results(operands, results, seed=0)
    cycles = period(n, k)
    assert dut.latency == dut.interval == cycles
    # The first request is taken in cycle 0 (ready out of reset), each next one in the cycle the
    # previous result transfers, and each result is valid exactly `latency` cycles after its
    # request and taken at once.
    assert accepted == [i * cycles for i in range(len(operands))]
    assert rises == [c + dut.latency for c in accepted]
    assert [c for c, *_ in results] == rises


@pytest.mark.parametrize("n, m, k", [(1, 1, 1), (4, 3, 1), (3, 5, 1), (2, 1, 1),
                                     (1, 1, 2), (2, 1, 2), (3, 2, 2), (4, 3, 2), (3, 5, 2),
                                     (5, 2, 2)])
def test_exhaustive_small_widths(n, m, k):
    operands = [(a, b) for a in range(1 << n) for b in range(1 << m)]
    dut = SequentialDivider(n, m, bits_per_step=k)
    accepted, results, rises = run(dut, operands, seed=1)
    check_results(operands, results, seed=1)
    assert accepted == [i * period(n, k) for i in range(len(operands))]


@pytest.mark.parametrize("n, m, k", [(1, 1, 1), (3, 3, 1), (1, 1, 2), (1, 3, 2), (2, 2, 2),
                                     (3, 3, 2), (4, 2, 2), (5, 1, 2)])
def test_exhaustive_small_widths_wide(n, m, k):
    """Every dividend high * 2**N + low with high < divisor (any high for divisor 0). For odd N
    in radix 4 this covers the pad bit taken from high's bit 0."""
    operands = [(high << n | low, b) for b in range(1 << m)
                for high in range(b or 1 << m) for low in range(1 << n)]
    dut = SequentialDivider(n, m, wide=True, bits_per_step=k)
    accepted, results, rises = run(dut, operands, seed=3)
    check_results(operands, results, seed=3)
    assert accepted == [i * period(n, k) for i in range(len(operands))]
    assert rises == [c + period(n, k) for c in accepted]


@pytest.mark.parametrize("n, m, k, seed", [
    (1, 1, 1, 101), (8, 4, 1, 102), (27, 9, 1, 103), (35, 19, 1, 104), (5, 12, 1, 105),
    (64, 64, 1, 106),
    (1, 1, 2, 111), (2, 3, 2, 112), (8, 4, 2, 113), (27, 9, 2, 114), (35, 19, 2, 115),
    (5, 12, 2, 116), (64, 64, 2, 117), (63, 17, 2, 118),
])
def test_random_with_gaps_and_backpressure(n, m, k, seed):
    rng = random.Random(seed)
    operands = random_operands(n, m, rng, 60) + edge_operands(n, m)
    rng.shuffle(operands)
    dut = SequentialDivider(n, m, bits_per_step=k)
    accepted, results, rises = run(dut, operands, seed, gap=0.4, ready_prob=0.4)
    check_results(operands, results, seed)
    # Latency is independent of gaps and stalls; one division in flight at most.
    assert rises == [c + period(n, k) for c in accepted]
    assert all(accepted[k + 1] >= results[k][0] for k in range(len(operands) - 1))
    # Backpressure really happened: some results waited for ready.
    assert sum(c > r for (c, *_), r in zip(results, rises)) > len(operands) // 4


@pytest.mark.parametrize("n, k", [(8, 1), (8, 2), (7, 2)])
def test_result_held_under_long_stall_then_next_request_same_cycle(n, k):
    """A result waits 20 cycles for ready (payload held, request.ready low throughout); the next
    request is taken in the very cycle the result finally transfers."""
    m = 4
    dut = SequentialDivider(n, m, bits_per_step=k)
    operands = [(200 >> (8 - n), 7), (13, 0), ((1 << n) - 1, 15)]
    cycles = period(n, k)
    stall_from = cycles                       # the first result's first valid cycle
    accepted, results, rises = run(dut, operands, seed=2, hold=(stall_from, 20))
    check_results(operands, results, seed=2)
    assert rises[0] == stall_from and results[0][0] == stall_from + 20
    assert accepted == [0, stall_from + 20, stall_from + 20 + cycles]
    assert [c for c, *_ in results] == [stall_from + 20, accepted[2], accepted[2] + cycles]


# --- Verilog ------------------------------------------------------------------------------------

@pytest.mark.parametrize("n, m, wide, k", [(35, 19, False, 1), (35, 19, False, 2),
                                           (21, 20, True, 2)])
def test_verilog_converts_and_lints_clean(tmp_path, n, m, wide, k):
    top = f"divider_{n}_{m}"
    text = verilog.convert(SequentialDivider(n, m, wide=wide, bits_per_step=k), name=top,
                           emit_src=False)
    assert f"module {top}(" in text
    for port in ("request__payload", "request__valid", "request__ready",
                 "result__payload", "result__valid", "result__ready"):
        assert port in text
    path = tmp_path / f"{top}.v"
    path.write_text(text)
    result = lint(path, top)
    assert result.clean, result.messages


@pytest.mark.parametrize("n, m, k, seed", [(4, 3, 1, 301), (20, 19, 1, 302), (21, 20, 1, 303),
                                           (4, 3, 2, 311), (20, 19, 2, 312), (21, 20, 2, 313),
                                           (1, 1, 2, 314), (3, 8, 2, 315)])
def test_wide_dividend(n, m, k, seed):
    """``wide``: dividend = high * 2**n + low with high < divisor, quotient in n bits,
    ceil(n / k) steps. (20, 19) is the attention row reciprocal: 2**34 // row_sum as
    high = 2**14, low = 0. A third of the random requests have high = divisor - 1."""
    rng = random.Random(seed)
    ops = []
    for _ in range(60):
        divisor = rng.randint(1, (1 << m) - 1)
        high = divisor - 1 if rng.random() < 1 / 3 else rng.randint(0, divisor - 1)
        ops.append((high, rng.getrandbits(n), divisor))
    ops += [(0, 0, 0), ((1 << m) - 1, 5, 0),                      # zero divisor: 0, 0
            ((1 << m) - 2, (1 << n) - 1, (1 << m) - 1),           # largest quotient
            (0, (1 << n) - 1, 1)]
    if (n, m) == (20, 19):
        ops += [(1 << 14, 0, s) for s in ((1 << 15), (1 << 15) + 1, 65535, (1 << 19) - 1)]
    dut = SequentialDivider(n, m, wide=True, bits_per_step=k)
    assert dut.request.payload.shape() == request_layout(n, m, wide=True)
    payloads = [{"dividend": low, "divisor": d, "high": high} for high, low, d in ops]
    requests = Transfers(dut.request)
    results = Transfers(dut.result, dut.result.payload.quotient, dut.result.payload.remainder)

    async def until_done(ctx):
        while len(results.beats) < len(ops):
            await ctx.tick()

    simulate(dut, send(dut.request, payloads, rng, 0.3), until_done,
             background=[requests.run, results.run, accept(dut.result, rng, 0.5)])
    for (high, low, d), (_, quotient, remainder) in zip(ops, results.beats):
        assert (quotient, remainder) == expected((high << n) | low, d), (seed, high, low, d)
    gaps = [b[0] - a[0] for a, b in zip(requests.beats, results.beats)]
    assert min(gaps) == dut.latency == period(n, k)


@pytest.mark.parametrize("n, m, seed", [(20, 19, 321), (21, 20, 322), (7, 3, 323), (64, 64, 324)])
def test_wide_radix4_gaps_backpressure_exact_latency(n, m, seed):
    """Radix-4 ``wide`` units under the full protocol check: valid gaps, result backpressure,
    every result exactly ceil(N / 2) + 1 cycles after its request."""
    rng = random.Random(seed)
    operands = wide_operands(n, m, rng, 60)
    rng.shuffle(operands)
    dut = SequentialDivider(n, m, wide=True, bits_per_step=2)
    accepted, results, rises = run(dut, operands, seed, gap=0.4, ready_prob=0.4)
    check_results(operands, results, seed)
    assert rises == [c + period(n, 2) for c in accepted]
    assert sum(c > r for (c, *_), r in zip(results, rises)) > len(operands) // 4


def test_wide_must_be_a_bool():
    assert constructor_error((4, 4, 1)) == (TypeError, "wide must be a bool, not 1")


@pytest.mark.parametrize("value, error", [
    (0, ValueError), (3, ValueError), (4, ValueError), (-1, ValueError),
    (2.0, TypeError), ("2", TypeError), (True, TypeError), (None, TypeError),
])
def test_bits_per_step_must_be_1_or_2(value, error):
    assert constructor_error((8, 4, False, value)) == (
        error, f"bits_per_step must be 1 or 2, not {value!r}")
