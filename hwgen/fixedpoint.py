"""Two's-complement integer helpers shared by the golden models (numpy, int64).

These implement docs/architecture.md §3 exactly: ``wrap`` keeps the low ``bits`` bits as a signed
value,
``saturate`` clamps to the signed range of ``bits`` bits.
"""

from __future__ import annotations

import numpy as np

__all__ = ["signed_range", "unsigned_range", "wrap", "saturate", "overflow"]


def signed_range(bits: int) -> tuple[int, int]:
    """(min, max) of a ``bits``-bit two's-complement number."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def unsigned_range(bits: int) -> tuple[int, int]:
    return 0, (1 << bits) - 1


def wrap(x, bits: int) -> np.ndarray:
    """Keep the low ``bits`` bits of ``x`` and read them as a signed number."""
    x = np.asarray(x, dtype=np.int64)
    half = np.int64(1) << (bits - 1)
    return ((x + half) & ((np.int64(1) << bits) - 1)) - half


def saturate(x, bits: int) -> np.ndarray:
    lo, hi = signed_range(bits)
    return np.clip(np.asarray(x, dtype=np.int64), lo, hi)


def overflow(x, bits: int, mode: str) -> np.ndarray:
    """Apply the configured overflow rule (``"wrap"`` or ``"saturate"``)."""
    if mode == "wrap":
        return wrap(x, bits)
    if mode == "saturate":
        return saturate(x, bits)
    raise ValueError(f"overflow mode {mode!r} is not 'wrap' or 'saturate'")
