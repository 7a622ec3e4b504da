"""Weight-stationary MAC array, dense or N:M sparse (DESIGN.md §4.1)."""

from .config import MacArrayConfig

__all__ = ["MacArrayConfig"]
