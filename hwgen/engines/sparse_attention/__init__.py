"""Length-adaptive top-k sparse attention, one head (DESIGN.md §4.3, after Peng et al.)."""

from .config import SparseAttentionConfig

__all__ = ["SparseAttentionConfig"]
