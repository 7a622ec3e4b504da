"""Population count as a balanced adder tree (an Amaranth expression, no registers).

The bits of ``value`` are summed pairwise, level by level: ``ceil(log2(n))`` adder levels for an
``n``-bit value, ``n - 1`` adders in all, each adder one bit wider than its operands. Amaranth's
``+`` widens by one bit, which is exactly enough at every level, so nothing is truncated and the
result has ``ceil(log2(n)) + 1`` bits (at least enough to hold ``n``).
"""

from __future__ import annotations

from amaranth import Const
from amaranth.hdl import Value

__all__ = ["popcount", "adder_tree"]


def adder_tree(terms) -> Value:
    """Sum ``terms`` (Amaranth values) as a balanced binary tree; ``Const(0, 1)`` for no terms."""
    level = [Value.cast(t) for t in terms]
    if not level:
        return Const(0, 1)
    while len(level) > 1:
        pairs = [level[i] + level[i + 1] for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            pairs.append(level[-1])    # the odd one out moves up a level unchanged
        level = pairs
    return level[0]


def popcount(value) -> Value:
    """The number of set bits of ``value``: unsigned, ``ceil(log2(len(value))) + 1`` bits."""
    value = Value.cast(value)
    if len(value) == 0:
        return Const(0, 1)
    # Every sum is one bit wider than its wider operand, so no node can overflow: a node's value
    # is below 2**width for each operand, and the sum of two is below 2**(width + 1).
    return adder_tree(value[i] for i in range(len(value))).as_unsigned()
