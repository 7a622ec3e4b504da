"""Unsigned sequential division, one or two quotient bits per cycle (restoring long division,
radix 2 or radix 4).

The sparse-attention engine divides twice per use, never on a throughput-critical path: one
reciprocal per tensor, ``r = floor((q_max << S) / maxabs)`` (dividends of about 27 bits), and
one per softmax row, ``floor(2**RS / row_sum)`` (about 35 bits). A combinational or pipelined
array divider would cost ``dividend_bits`` subtractors; this unit has one, ``divisor_bits + 1``
bits wide, and takes ``dividend_bits`` cycles of it per division (``bits_per_step=1``, the
default), or three in parallel, ``divisor_bits + 2`` bits wide, and takes
``ceil(dividend_bits / 2)`` cycles (``bits_per_step=2``).

Division by zero is defined, as the attention golden model defines ``r = 0`` for an all-zero
tensor: quotient 0 and remainder 0.
"""

from __future__ import annotations

from amaranth import C, Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.hdl.params import MAX_BITS, check_bits

__all__ = ["MAX_BITS", "BITS_PER_STEP", "request_layout", "result_layout", "SequentialDivider"]

#: The quotient bits a :class:`SequentialDivider` step may retire (radix 2 or radix 4).
BITS_PER_STEP = (1, 2)


def request_layout(dividend_bits: int, divisor_bits: int, wide: bool = False) -> data.StructLayout:
    """One request beat: ``dividend`` (first field, low bits), ``divisor`` and, for a ``wide``
    divider, ``high`` (the dividend's upper part, ``divisor_bits`` wide)."""
    fields = {"dividend": unsigned(dividend_bits), "divisor": unsigned(divisor_bits)}
    if wide:
        fields["high"] = unsigned(divisor_bits)
    return data.StructLayout(fields)


def result_layout(dividend_bits: int, divisor_bits: int) -> data.StructLayout:
    """One result beat: ``quotient`` (first field, low bits) and ``remainder``."""
    return data.StructLayout({"quotient": unsigned(dividend_bits),
                              "remainder": unsigned(divisor_bits)})


class SequentialDivider(wiring.Component):
    """``quotient = dividend // divisor`` and ``remainder = dividend % divisor``, unsigned.

    For ``divisor == 0`` the result is defined as ``quotient = 0, remainder = 0``.

    Parameters
    ----------
    dividend_bits : int
        Width ``N`` of the dividend and of the quotient, 1 to 64.
    divisor_bits : int
        Width ``M`` of the divisor and of the remainder, 1 to 64. The remainder is below the
        divisor, so it always fits ``M`` bits; the quotient of ``N``-bit by ``M``-bit always
        fits ``N`` bits (the divisor is at least 1).
    wide : bool
        The request also carries ``high`` (``M`` bits) and the dividend is
        ``high * 2**N + dividend``, an ``N + M``-bit value, for the caller to guarantee
        ``high < divisor`` (so the quotient fits ``N`` bits; otherwise the result is undefined).
        The unit then starts with ``rem = high`` instead of 0: a quotient known to fit ``N``
        bits costs ``N`` steps, not ``N + M``. With ``divisor == 0`` the result is still 0, 0.
    bits_per_step : int
        Quotient bits retired per cycle, ``K``: 1 (radix 2, the default) or 2 (radix 4). A
        division takes ``S = ceil(N / K)`` steps; see the notes for the cost.

    Attributes
    ----------
    request : In(stream.Signature(:func:`request_layout`))
        ``{"dividend": unsigned(N), "divisor": unsigned(M)}``.
    result : Out(stream.Signature(:func:`result_layout`))
        ``{"quotient": unsigned(N), "remainder": unsigned(M)}``.

    Notes
    -----
    Microarchitecture, ``bits_per_step=1``: restoring long division, most significant dividend
    bit first. Three datapath registers: the divisor ``d`` (``M`` bits), the partial remainder
    ``rem`` (``M`` bits, always below ``d``) and a shift register ``q`` (``N`` bits) that starts
    as the dividend and ends as the quotient. A step forms the ``M + 1``-bit trial value
    ``t = (rem << 1) | q[N-1]`` and the one subtraction ``t - d`` (``M + 1`` bits, its borrow out
    is ``t < d``); then ``rem`` becomes ``t - d`` if there was no borrow and ``t`` otherwise (both
    below ``d``, so both fit ``M`` bits) and ``q`` shifts left taking the inverted borrow as its new
    bit 0. After ``N`` steps ``q`` is the quotient and ``rem`` the remainder. The critical path
    is that one ``M + 1``-bit subtract with its borrow selecting ``rem``'s next value; the
    result payload is wired straight from ``q`` and ``rem``. A step counter of
    ``bits_for(S - 1)`` bits (at least 1) and two control flops (busy, result valid) complete the
    unit.

    Microarchitecture, ``bits_per_step=2``: restoring division in radix 4, two dividend bits per
    step. The registers are ``d`` (``M`` bits), ``d3 = 3 * d`` (``M + 2`` bits, the one addition
    ``d + 2d``, done on the load path when the request is taken), ``rem`` (``M`` bits, always
    below ``d``) and ``q`` (``2S`` bits). A step forms the ``M + 2``-bit trial value
    ``t = (rem << 2) | q[2S-1:2S-2]`` (``t <= 4d - 1``) and, in parallel, the three subtractions
    ``t - d``, ``t - 2d`` (``2d`` is ``d`` wired one bit up) and ``t - d3``, each ``M + 2`` bits
    with its borrow out. The quotient digit is the largest ``k`` in 0..3 with ``t >= k * d``
    (digit bit 1 is ``t >= 2d``, bit 0 is ``t >= 3d or (t >= d and t < 2d)``); a priority select
    on the three borrows (``3d`` first, then ``2d``, then ``d``, else ``t`` itself) gives ``rem``'s
    next value (below ``d``, so ``M`` bits), and ``q`` shifts left by two taking the digit. The
    critical path is one ``M + 2``-bit subtract, its borrow and that 3-way priority select into
    ``rem``; there is no adder in series with the subtracts. After ``S`` steps ``q[:N]`` is the
    quotient and ``rem`` the remainder.

    Odd ``N`` with ``bits_per_step=2``: the dividend is padded to ``N + 1`` bits at the top and
    every one of the ``S = (N + 1) / 2`` steps retires two bits (no special first step). The pad
    bit is 0, except in ``wide`` mode, where it is ``high``'s bit 0 and ``rem`` starts as
    ``high >> 1``: ``(high >> 1) * 2**(N+1) + (high & 1) * 2**N + dividend`` is the same value
    as ``high * 2**N + dividend``, and ``high >> 1 < d`` keeps the invariant. The quotient's pad
    bit comes out 0 (the quotient fits ``N`` bits) and is not in the result.

    A zero divisor is loaded as dividend 0 with divisor 1 (one OR gate on ``d[0]`` and an AND
    per dividend bit, on the load path only): every step then has ``t = 0 < 1``, so the quotient
    and remainder come out 0 with the same timing as any other division.

    Timing, with ``S = ceil(N / bits_per_step)`` steps (``S = N`` for ``bits_per_step=1``): a
    request transferred in cycle ``c`` (``request.valid & request.ready`` sampled at the clock
    edge ending cycle ``c``) is computed in cycles ``c + 1`` to ``c + S`` and its result is valid
    from cycle ``c + S + 1`` on: :attr:`latency` ``= S + 1``, independent of the operands.
    ``request.ready`` is high when the unit is idle (including after reset) and in the cycle the
    result transfers, so with ``result.ready`` held high back-to-back requests are taken every
    ``S + 1`` cycles (:attr:`interval`) and each result leaves in the cycle the next request is
    taken. ``request.ready`` is low while a division is in progress and while a result waits
    for ``result.ready``: there is one division in flight at most. ``result.valid`` never depends
    on ``result.ready`` and the result payload is held unchanged while ``valid & ~ready``, and
    after the transfer too, until the next request is taken: a caller may hold ``result.ready``
    high and read the quotient later, as long as it holds off the next request until then.
    ``request.ready`` does depend on ``result.ready`` (combinationally, through one AND-OR).
    """

    def __init__(self, dividend_bits: int, divisor_bits: int, wide: bool = False,
                 bits_per_step: int = 1):
        self.dividend_bits = check_bits("dividend_bits", dividend_bits)
        self.divisor_bits = check_bits("divisor_bits", divisor_bits)
        if not isinstance(wide, bool):
            raise TypeError(f"wide must be a bool, not {wide!r}")
        self.wide = wide
        message = f"bits_per_step must be 1 or 2, not {bits_per_step!r}"
        if isinstance(bits_per_step, bool) or not isinstance(bits_per_step, int):
            raise TypeError(message)
        if bits_per_step not in BITS_PER_STEP:
            raise ValueError(message)
        self.bits_per_step = bits_per_step
        super().__init__({
            "request": In(stream.Signature(request_layout(dividend_bits, divisor_bits, wide))),
            "result": Out(stream.Signature(result_layout(dividend_bits, divisor_bits))),
        })

    @property
    def steps(self) -> int:
        """Cycles of computation per division: ``S = ceil(N / bits_per_step)``."""
        return -(-self.dividend_bits // self.bits_per_step)

    @property
    def latency(self) -> int:
        """Cycles from a request's transfer to its result's first valid cycle: ``S + 1``."""
        return self.steps + 1

    @property
    def interval(self) -> int:
        """Cycles between back-to-back request transfers with ``result.ready`` held high:
        ``S + 1``."""
        return self.steps + 1

    def elaborate(self, platform):
        m = Module()
        N, M, S = self.dividend_bits, self.divisor_bits, self.steps
        W = S * self.bits_per_step                        # q: N bits, N + 1 for radix 4, odd N
        req, res = self.request, self.result

        busy = Signal(name="busy")                        # dividing: one step per cycle
        valid = Signal(name="result_valid")               # = result.valid
        d = Signal(M, name="divisor", reset_less=True)
        rem = Signal(M, name="rem", reset_less=True)      # partial remainder, always < d
        q = Signal(W, name="quotient", reset_less=True)   # dividend bits out, quotient bits in
        steps_left = Signal(range(max(S, 2)), name="steps_left", reset_less=True)

        if self.bits_per_step == 1:
            # One step: the (M+1)-bit trial value, one subtract whose top bit is the borrow.
            trial = Signal(M + 1, name="trial")
            diff = Signal(M + 2, name="diff")
            fits = Signal(name="fits")                    # trial >= d: the next quotient bit
            m.d.comb += [
                trial.eq(Cat(q[N - 1], rem)),
                diff.eq(trial - d),
                fits.eq(~diff[M + 1]),
            ]
            rem_next = Mux(fits, diff[:M], trial[:M])
            q_next = Cat(fits, q[:N - 1])
        else:
            # One radix-4 step: the (M+2)-bit trial value and three parallel subtracts of d, 2d
            # and 3d (a register), each with its borrow on top; a priority select picks rem.
            d3 = Signal(M + 2, name="divisor_x3", reset_less=True)
            trial = Signal(M + 2, name="trial")
            diffs, ge = [], []                            # trial - k*d; trial >= k*d (k = 1..3)
            for k, multiple in ((1, d), (2, Cat(C(0, 1), d)), (3, d3)):
                diffs.append(Signal(M + 3, name=f"diff_x{k}"))
                ge.append(Signal(name=f"fits_x{k}"))
                m.d.comb += [
                    diffs[-1].eq(trial - multiple),
                    ge[-1].eq(~diffs[-1][M + 2]),
                ]
            m.d.comb += trial.eq(Cat(q[W - 2:], rem))
            rem_next = Mux(ge[2], diffs[2][:M],
                           Mux(ge[1], diffs[1][:M],
                               Mux(ge[0], diffs[0][:M], trial[:M])))
            digit = Cat(ge[2] | (ge[0] & ~ge[1]), ge[1])  # the largest k with trial >= k*d
            q_next = Cat(digit, q[:W - 2])

        m.d.comb += [
            res.valid.eq(valid),
            res.payload.quotient.eq(q if W == N else q[:N]),
            res.payload.remainder.eq(rem),
            req.ready.eq(~busy & (~valid | res.ready)),
        ]

        zero = Signal(name="divide_by_zero")
        m.d.comb += zero.eq(req.payload.divisor == 0)
        dividend, high = req.payload.dividend, req.payload.high if self.wide else C(0, M)
        if W > N and self.wide:
            # Odd N in radix 4: the pad bit is high's bit 0 and rem starts as high >> 1.
            dividend, high = Cat(dividend, high[0]), high[1:]
        with m.If(req.valid & req.ready):
            m.d.sync += [
                q.eq(Mux(zero, 0, dividend)),
                d.eq(req.payload.divisor | zero),
                rem.eq(Mux(zero, 0, high) if self.wide else 0),
                steps_left.eq(S - 1),
                busy.eq(1),
                valid.eq(0),
            ]
            if self.bits_per_step == 2:
                divisor = req.payload.divisor | zero
                m.d.sync += d3.eq(divisor + Cat(C(0, 1), divisor))
        with m.Elif(busy):
            m.d.sync += [
                rem.eq(rem_next),
                q.eq(q_next),
                steps_left.eq(steps_left - 1),
            ]
            with m.If(steps_left == 0):
                m.d.sync += [busy.eq(0), valid.eq(1)]
        with m.Elif(res.ready):
            m.d.sync += valid.eq(0)
        return m
