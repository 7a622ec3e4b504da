"""The one table that names every engine kind (DESIGN.md §1).

Each built-in engine is one line of :data:`BUILT_IN`: the package whose ``ENGINE`` is its
:class:`~hwgen.engines.base.Engine`. :func:`register` adds an engine at run time (a plug-in, or a
test's throwaway engine); it must be importable by the simulator too, so a testbench module of an
engine registered this way registers it on import.
"""

from __future__ import annotations

import importlib

from hwgen.engines.base import Engine, EngineError

__all__ = ["BUILT_IN", "ENGINES", "register", "unregister"]

#: The packages of the built-in engines, one line each.
BUILT_IN = (
    "hwgen.engines.mac_array",
    "hwgen.engines.snn",
    "hwgen.engines.sparse_attention",
)

#: Every registered engine by kind, in registration order.
ENGINES: dict[str, Engine] = {}


def register(engine: Engine) -> Engine:
    """Add ``engine`` (checked when it was built) under its kind; returns it.

    Registering the same object twice is allowed (a module imported again); another engine
    under a kind that is taken raises :class:`~hwgen.engines.base.EngineError`.
    """
    if not isinstance(engine, Engine):
        raise EngineError(f"register({engine!r}): expected an hwgen.engines.base.Engine")
    known = ENGINES.get(engine.kind)
    if known is not None and known is not engine:
        raise EngineError(f"engine {engine.kind!r} is already registered")
    ENGINES[engine.kind] = engine
    return engine


def unregister(kind: str) -> None:
    """Remove the engine ``kind`` (a no-op if it is not registered)."""
    ENGINES.pop(kind, None)


for _package in BUILT_IN:
    register(importlib.import_module(_package).ENGINE)
