"""Overflow rules in Amaranth, matching :mod:`hwgen.fixedpoint` bit for bit."""

from amaranth import Mux
from amaranth.hdl import Value

__all__ = ["overflow"]


def overflow(value: Value, bits: int, mode: str) -> Value:
    """Bring a signed ``value`` into ``bits`` bits by ``"wrap"`` or ``"saturate"``.

    ``value`` must be wide enough to hold the exact result (no overflow before this point).
    """
    if mode == "wrap":
        return value[:bits].as_signed()
    if mode == "saturate":
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        clamped = Mux(value > hi, hi, Mux(value < lo, lo, value))
        return clamped[:bits].as_signed()
    raise ValueError(f"overflow mode {mode!r} is not 'wrap' or 'saturate'")
