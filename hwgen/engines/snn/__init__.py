"""Spike-compressing buffers and a dual-sparse SNN layer (DESIGN.md §4.2, after LoAS)."""

from .config import SnnConfig

__all__ = ["SnnConfig"]
