"""The one table that names every engine kind (DESIGN.md §1).

Adding an engine touches its own folder plus one line in :data:`ENGINES`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from hwgen.engines.mac_array.config import MacArrayConfig
from hwgen.engines.snn.config import SnnConfig
from hwgen.engines.sparse_attention.config import SparseAttentionConfig

__all__ = ["Engine", "ENGINES", "get_engine"]


@dataclass(frozen=True)
class Engine:
    """What the flows need to know about one engine kind.

    kind : the ``engine`` value in a config file
    config_class : its validated config dataclass
    package : the engine's Python package, holding ``rtl.py`` (class ``component``),
        ``golden.py``, ``stimulus.py``
    component : name of the ``wiring.Component`` class in ``rtl.py``, built as ``cls(cfg)``
    sim_module : the cocotb test module in ``sim/`` that checks it against the golden model
    """

    kind: str
    config_class: type
    package: str
    component: str
    sim_module: str

    def build_component(self, cfg):
        rtl = importlib.import_module(f"{self.package}.rtl")
        return getattr(rtl, self.component)(cfg)

    def module(self, name: str):
        """One of the engine's modules, e.g. ``module("golden")``."""
        return importlib.import_module(f"{self.package}.{name}")


ENGINES: dict[str, Engine] = {
    e.kind: e for e in (
        Engine("mac_array", MacArrayConfig, "hwgen.engines.mac_array", "MacArray",
               "test_mac_array"),
        Engine("snn", SnnConfig, "hwgen.engines.snn", "SnnLayer", "test_snn"),
        Engine("sparse_attention", SparseAttentionConfig, "hwgen.engines.sparse_attention",
               "SparseAttention", "test_sparse_attention"),
    )
}


def get_engine(kind: str) -> Engine:
    return ENGINES[kind]
