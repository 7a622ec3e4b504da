"""Tiles in a file: how a list of golden-model tiles travels to and from the cocotb testbench.

:func:`save_tiles` writes the ``.npz`` that the testbench option ``{"tiles": "<file.npz>"}``
streams (:mod:`hwgen.power.layer` uses it to run a layer through the RTL), and the testbench
records the tiles it sent the same way; :func:`load_tiles` reads either back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .golden import Tile

__all__ = ["save_tiles", "load_tiles"]


def save_tiles(path: str | Path, tiles: list[Tile]) -> None:
    """Store tiles as ``values<i>``, ``indices<i>``, ``acts<i>`` arrays in one ``.npz``."""
    arrays = {}
    for i, tile in enumerate(tiles):
        arrays |= {f"values{i}": tile.values, f"indices{i}": tile.indices, f"acts{i}": tile.acts}
    np.savez(path, **arrays)


def load_tiles(path: str | Path) -> list[Tile]:
    """Inverse of :func:`save_tiles`."""
    with np.load(path) as data:
        count = sum(1 for key in data.files if key.startswith("values"))
        return [Tile(data[f"values{i}"], data[f"indices{i}"], data[f"acts{i}"])
                for i in range(count)]
