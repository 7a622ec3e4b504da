"""Overflow rules in Amaranth, matching :mod:`hwgen.fixedpoint` bit for bit."""

from amaranth import Mux
from amaranth.hdl import Value

__all__ = ["lut_product", "overflow"]


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


def lut_product(a: Value, b: Value) -> Value:
    """``a * b`` for a narrow signed ``b``, as a sum of shifted partial products.

    Yosys maps every ``$mul`` cell wider than 1 bit to a DSP block on ECP5; a 4-bit x 4-bit
    product costs a whole 18x18 multiplier there but only a few LUTs as logic. Written as
    ``sum_i b_i * (a << i)`` with the sign bit's term subtracted (two's complement), it contains
    no ``$mul`` and stays in LUTs. Exact for any signed or unsigned ``a`` and signed ``b``.
    """
    a, b = Value.cast(a), Value.cast(b)
    if not b.shape().signed:
        raise TypeError("lut_product: b must be signed")
    w = len(b)
    total = Mux(b[w - 1], -(a << (w - 1)), 0)
    for i in range(w - 1):
        total = total + Mux(b[i], a << i, 0)
    return total
