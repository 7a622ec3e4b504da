"""Unsigned sequential division, one quotient bit per cycle (restoring long division).

The sparse-attention engine divides twice per use, never on a throughput-critical path: one
reciprocal per tensor, ``r = floor((q_max << S) / maxabs)`` (dividends of about 27 bits), and
one per softmax row, ``floor(2**RS / row_sum)`` (about 35 bits). A combinational or pipelined
array divider would cost ``dividend_bits`` subtractors; this unit has one, ``divisor_bits + 1``
bits wide, and takes ``dividend_bits`` cycles of it per division.

Division by zero is defined, as the attention golden model defines ``r = 0`` for an all-zero
tensor: quotient 0 and remainder 0.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.hdl.params import MAX_BITS, check_bits

__all__ = ["MAX_BITS", "request_layout", "result_layout", "SequentialDivider"]


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

    Attributes
    ----------
    request : In(stream.Signature(:func:`request_layout`))
        ``{"dividend": unsigned(N), "divisor": unsigned(M)}``.
    result : Out(stream.Signature(:func:`result_layout`))
        ``{"quotient": unsigned(N), "remainder": unsigned(M)}``.

    Notes
    -----
    Microarchitecture: restoring long division, most significant dividend bit first. Three
    datapath registers: the divisor ``d`` (``M`` bits), the partial remainder ``rem`` (``M``
    bits, always below ``d``) and a shift register ``q`` (``N`` bits) that starts as the dividend
    and ends as the quotient. A step forms the ``M + 1``-bit trial value
    ``t = (rem << 1) | q[N-1]`` and the one subtraction ``t - d`` (``M + 1`` bits, its borrow out
    is ``t < d``); then ``rem`` becomes ``t - d`` if there was no borrow and ``t`` otherwise (both
    below ``d``, so both fit ``M`` bits) and ``q`` shifts left taking the inverted borrow as its new
    bit 0. After ``N`` steps ``q`` is the quotient and ``rem`` the remainder. The critical path
    is that one ``M + 1``-bit subtract with its borrow selecting ``rem``'s next value; the
    result payload is wired straight from ``q`` and ``rem``. A step counter of
    ``bits_for(N - 1)`` bits and two control flops (busy, result valid) complete the unit.

    A zero divisor is loaded as dividend 0 with divisor 1 (one OR gate on ``d[0]`` and an AND
    per dividend bit, on the load path only): every step then has ``t = 0 < 1``, so the quotient
    and remainder come out 0 with the same timing as any other division.

    Timing: a request transferred in cycle ``c`` (``request.valid & request.ready`` sampled at
    the clock edge ending cycle ``c``) is computed in cycles ``c + 1`` to ``c + N`` and its result
    is valid from cycle ``c + N + 1`` on: :attr:`latency` ``= N + 1``, independent of the
    operands. ``request.ready`` is high when the unit is idle (including after reset) and in the
    cycle the result transfers, so with ``result.ready`` held high back-to-back requests are taken
    every ``N + 1`` cycles (:attr:`interval`) and each result leaves in the cycle the next request
    is taken. ``request.ready`` is low while a division is in progress and while a result waits
    for ``result.ready``: there is one division in flight at most. ``result.valid`` never depends
    on ``result.ready`` and the result payload is held unchanged while ``valid & ~ready``.
    ``request.ready`` does depend on ``result.ready`` (combinationally, through one AND-OR).
    """

    def __init__(self, dividend_bits: int, divisor_bits: int, wide: bool = False):
        self.dividend_bits = check_bits("dividend_bits", dividend_bits)
        self.divisor_bits = check_bits("divisor_bits", divisor_bits)
        if not isinstance(wide, bool):
            raise TypeError(f"wide must be a bool, not {wide!r}")
        self.wide = wide
        super().__init__({
            "request": In(stream.Signature(request_layout(dividend_bits, divisor_bits, wide))),
            "result": Out(stream.Signature(result_layout(dividend_bits, divisor_bits))),
        })

    @property
    def latency(self) -> int:
        """Cycles from a request's transfer to its result's first valid cycle: ``N + 1``."""
        return self.dividend_bits + 1

    @property
    def interval(self) -> int:
        """Cycles between back-to-back request transfers with ``result.ready`` held high."""
        return self.dividend_bits + 1

    def elaborate(self, platform):
        m = Module()
        N, M = self.dividend_bits, self.divisor_bits
        req, res = self.request, self.result

        busy = Signal(name="busy")                        # dividing: one step per cycle
        valid = Signal(name="result_valid")               # = result.valid
        d = Signal(M, name="divisor", reset_less=True)
        rem = Signal(M, name="rem", reset_less=True)      # partial remainder, always < d
        q = Signal(N, name="quotient", reset_less=True)   # dividend bits out, quotient bits in
        steps_left = Signal(range(max(N, 2)), name="steps_left", reset_less=True)

        # One step: the (M+1)-bit trial value, one subtract whose top bit is the borrow.
        trial = Signal(M + 1, name="trial")
        diff = Signal(M + 2, name="diff")
        fits = Signal(name="fits")                        # trial >= d: the next quotient bit
        m.d.comb += [
            trial.eq(Cat(q[N - 1], rem)),
            diff.eq(trial - d),
            fits.eq(~diff[M + 1]),
        ]

        m.d.comb += [
            res.valid.eq(valid),
            res.payload.quotient.eq(q),
            res.payload.remainder.eq(rem),
            req.ready.eq(~busy & (~valid | res.ready)),
        ]

        zero = Signal(name="divide_by_zero")
        m.d.comb += zero.eq(req.payload.divisor == 0)
        with m.If(req.valid & req.ready):
            m.d.sync += [
                q.eq(Mux(zero, 0, req.payload.dividend)),
                d.eq(req.payload.divisor | zero),
                rem.eq(Mux(zero, 0, req.payload.high) if self.wide else 0),
                steps_left.eq(N - 1),
                busy.eq(1),
                valid.eq(0),
            ]
        with m.Elif(busy):
            m.d.sync += [
                rem.eq(Mux(fits, diff[:M], trial[:M])),
                q.eq(Cat(fits, q[:N - 1])),
                steps_left.eq(steps_left - 1),
            ]
            with m.If(steps_left == 0):
                m.d.sync += [busy.eq(0), valid.eq(1)]
        with m.Elif(res.ready):
            m.d.sync += valid.eq(0)
        return m
