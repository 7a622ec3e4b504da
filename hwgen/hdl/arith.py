"""Overflow rules in Amaranth, matching :mod:`hwgen.fixedpoint` bit for bit."""

from amaranth import Mux
from amaranth.hdl import Value

__all__ = ["overflow", "partial_products", "tree_level"]


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


def partial_products(a: Value, b: Value) -> list[Value]:
    """The shifted partial products of ``a * b``, one per bit of ``b``: ``b_i * (a << i)``,
    the sign bit's term negated when ``b`` is signed (two's complement). Their sum is exactly
    ``a * b`` for any signed or unsigned ``a`` and ``b``, and none of them is a ``$mul``.
    """
    a, b = Value.cast(a), Value.cast(b)
    w = len(b)
    terms = [Mux(b[i], a << i, 0) for i in range(w)]
    if b.shape().signed:
        terms[-1] = Mux(b[w - 1], -(a << (w - 1)), 0)
    return terms


def tree_level(level: list[Value], op) -> list[Value]:
    """One level of a balanced binary tree: ``op`` of each pair; the odd one out moves up a
    level unchanged."""
    pairs = [op(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    return pairs + ([level[-1]] if len(level) % 2 else [])
