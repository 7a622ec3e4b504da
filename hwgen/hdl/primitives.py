"""The platform hwgen elaborates a design for, and the simulation models of the FPGA primitives
it may instantiate (docs/architecture.md §3, "Pipelining and DSP blocks").

Amaranth hands every ``elaborate`` the platform given to the converter. Blocks that have a
vendor primitive with registers Yosys would not use (:mod:`hwgen.hdl.dsp`, :mod:`hwgen.hdl.bram`)
describe themselves generically for no platform, and instantiate the primitive for a
:class:`Primitives` of a family in :data:`FAMILIES`. Both descriptions give the same values in
the same cycles; the family's netlist is simulated on :func:`cell_models`.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["FAMILIES", "Primitives", "cell_models"]

#: FPGA families whose primitives hwgen instantiates.
FAMILIES = ("ecp5",)


class Primitives:
    """The platform hwgen elaborates a design for: generic (``family`` None) or one that may
    instantiate the primitives of FPGA ``family`` (one of :data:`FAMILIES`).

    It counts the blocks elaborated for it that have a primitive on a family
    (``dsp_products``: :class:`~hwgen.hdl.dsp.RegisteredProduct`; ``bram_reads``: read ports of a
    :class:`~hwgen.hdl.bram.BlockMemory`), so a generic elaboration tells whether elaborating
    for a family would change anything (:attr:`blocks`).
    """

    def __init__(self, family: str | None = None):
        if family is not None and family not in FAMILIES:
            raise ValueError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
        self.family = family
        self.dsp_products = 0
        self.bram_reads = 0

    @property
    def blocks(self) -> int:
        """Blocks elaborated so far that instantiate a primitive on a family."""
        return self.dsp_products + self.bram_reads


def cell_models(family: str | None) -> list[Path]:
    """Verilog simulation models of the primitives a design elaborated for ``family``
    instantiates (none for the generic design)."""
    if family is None:
        return []
    Primitives(family)      # refuses an unknown family
    return [Path(__file__).parent.parent / "data" / f"{family}_cells_sim.v"]
