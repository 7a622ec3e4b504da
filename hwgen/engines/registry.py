"""The one table that names every engine kind, and building configs by kind (docs/architecture.md
§1).

Each built-in engine is one line of :data:`BUILT_IN`: the package whose ``ENGINE`` is its
:class:`~hwgen.engines.base.Engine`. :func:`register` adds an engine at run time (a plug-in, or a
test's throwaway engine); it must be importable by the simulator too, so a testbench module of an
engine registered this way registers it on import.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
from pathlib import Path
from typing import Any

from hwgen.config import ConfigError, EngineConfig, format_value, invalid, read_config_file
from hwgen.engines.base import Engine, EngineError

__all__ = ["BUILT_IN", "ENGINES", "register", "unregister", "config_from_dict", "load_config"]

#: The packages of the built-in engines, one line each.
BUILT_IN = (
    "hwgen.engines.mac_array",
    "hwgen.engines.snn",
    "hwgen.engines.snn_network",
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


def _field_text(key: Any) -> str:
    """An unknown key as the message quotes it (``'rowz'``), on one short line."""
    return repr(key) if isinstance(key, str) and len(key) <= 64 else format_value(key)


def config_from_dict(data: dict[str, Any], source: str = "<config>") -> EngineConfig:
    """Build the engine config described by ``data`` (with an ``engine`` key).

    Raises
    ------
    ConfigError
        One line starting with ``source``: the engine is missing or unknown, a key is not a field
        of that engine, or a field's value is not allowed.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a table of fields, got {type(data).__name__}")
    data = dict(data)
    kind = data.pop("engine", None)
    kinds = "one of " + ", ".join(format_value(k) for k in ENGINES)
    if kind is None:
        raise ConfigError(f"{source}: engine is missing: expected {kinds}")
    # Checked as a string first: a list or a table cannot be looked up in the registry.
    if not isinstance(kind, str) or kind not in ENGINES:
        raise ConfigError(f"{source}: {invalid('engine', kind, kinds)}")
    cls = ENGINES[kind].config_class
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1) if isinstance(key, str) else []
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{source}: unknown field {_field_text(key)} for engine {kind!r}"
                              f"{hint} (allowed: {', '.join(names)})")
    try:
        return cls(**data)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def load_config(path: str | Path) -> EngineConfig:
    """Read and validate a ``.toml`` or ``.json`` config file.

    Raises
    ------
    ConfigError
        One line naming the file (see :func:`hwgen.config.read_config_file` and
        :func:`config_from_dict`).
    """
    return config_from_dict(*read_config_file(path))


for _package in BUILT_IN:
    register(importlib.import_module(_package).ENGINE)
