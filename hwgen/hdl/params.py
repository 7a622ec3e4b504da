"""Constructor-argument checks shared by the ``hwgen.hdl`` blocks.

The blocks follow ``amaranth.lib``: a wrong type raises ``TypeError``, a value out of range
``ValueError``, both with the message ``<name> must be <what>, not <value>``.
"""

__all__ = ["MAX_BITS", "check_bits"]

#: Widest operand a block accepts.
MAX_BITS = 64


def check_bits(name: str, value) -> int:
    """Return ``value`` if it is an integer width from 1 to :data:`MAX_BITS`."""
    message = f"{name} must be an integer from 1 to {MAX_BITS}, not {value!r}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(message)
    if not 1 <= value <= MAX_BITS:
        raise ValueError(message)
    return value
