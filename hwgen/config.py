"""Loading and validating engine configurations.

A configuration is a TOML (or JSON) file whose ``engine`` key names a registered engine kind; every
other key is a field of that engine's config dataclass. The same dataclasses are the Python API::

    from hwgen.engines.mac_array import MacArrayConfig
    cfg = MacArrayConfig(name="mac8", rows=8, cols=8)

Every problem is reported as one :class:`ConfigError` whose message names the source, the field, the
bad value and what is allowed, e.g. ``mac.toml: rows = 0: expected an integer from 1 to 64``.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import re
import textwrap
import tomllib
from pathlib import Path
from typing import Any

__all__ = [
    "ConfigError", "EngineConfig", "load_config", "config_from_dict", "config_to_dict",
    "config_hash", "example_toml", "config_toml", "check_int", "check_bool", "check_choice", "check_name",
    "invalid", "format_value",
]


class ConfigError(ValueError):
    """A configuration value is not allowed. The message is one line, ready to show a user."""


# Verilog-2005 and SystemVerilog keywords a module name must not collide with.
_VERILOG_KEYWORDS = frozenset("""
    always and assign automatic begin buf bufif0 bufif1 case casex casez cell cmos config deassign
    default defparam design disable edge else end endcase endconfig endfunction endgenerate endmodule
    endprimitive endspecify endtable endtask event for force forever fork function generate genvar
    highz0 highz1 if ifnone incdir include initial inout input instance integer join large liblist
    library localparam macromodule medium module nand negedge nmos nor noshowcancelled not notif0
    notif1 or output parameter pmos posedge primitive pull0 pull1 pulldown pullup
    pulsestyle_onevent pulsestyle_ondetect rcmos real realtime reg release repeat rnmos rpmos rtran
    rtranif0 rtranif1 scalared showcancelled signed small specify specparam strong0 strong1 supply0
    supply1 table task time tran tranif0 tranif1 tri tri0 tri1 triand trior trireg unsigned use
    uwire vectored wait wand weak0 weak1 while wire wor xnor xor
    alias always_comb always_ff always_latch assert assume before bind bins binsof bit break byte
    chandle class clocking const constraint context continue cover covergroup coverpoint cross
    dist do endclass endclocking endgroup endinterface endpackage endprogram endproperty endsequence
    enum expect export extends extern final first_match foreach forkjoin iff ignore_bins
    illegal_bins import inside int interface intersect join_any join_none local logic longint
    matches modport new null package packed priority program property protected pure rand randc
    randcase randsequence ref return sequence shortint shortreal solve static string struct super
    tagged this throughout timeprecision timeunit type typedef union unique var virtual void
    wait_order wildcard with within
""".split())

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def format_value(value: Any) -> str:
    """A value as it is written in a TOML config: ``"text"``, ``true``, ``3``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, str) else repr(value)


def invalid(field: str, value: Any, allowed: str) -> ConfigError:
    """The one-line error for ``field = value``, saying what is ``allowed``."""
    return ConfigError(f"{field} = {format_value(value)}: expected {allowed}")


def check_int(field: str, value: Any, lo: int, hi: int) -> int:
    """Return ``value`` if it is an integer (not a bool) in ``lo..hi``, else raise ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise invalid(field, value, f"an integer from {lo} to {hi}")
    return value


def check_bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise invalid(field, value, "true or false")
    return value


def check_choice(field: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise invalid(field, value, "one of " + ", ".join(format_value(c) for c in choices))
    return value


def check_name(field: str, value: Any) -> str:
    """A name that becomes a Verilog module name and a file/folder name (DESIGN.md §3)."""
    if not isinstance(value, str) or not _NAME_RE.match(value) or len(value) > 64:
        raise invalid(field, value, "an identifier matching [A-Za-z_][A-Za-z0-9_]* of at most 64 "
                                  "characters")
    if value in _VERILOG_KEYWORDS:
        raise invalid(field, value, "a name that is not a Verilog keyword")
    return value


class EngineConfig:
    """Base of every engine's frozen config dataclass.

    Subclasses set ``kind`` (the registry name), declare their fields with a default and a
    ``metadata={"doc": ...}`` description, and validate in ``validate()``. A field whose default
    is ``None`` (absent) may add ``"example"`` to its metadata: :func:`example_toml` shows that
    value commented out.
    """

    kind: str = ""

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:  # pragma: no cover - every engine overrides it
        raise NotImplementedError


def config_to_dict(cfg: EngineConfig) -> dict[str, Any]:
    """The config as plain data with ``engine`` first; fields left at ``None`` are omitted."""
    out: dict[str, Any] = {"engine": cfg.kind}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if value is not None:
            out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def config_hash(cfg: EngineConfig) -> str:
    """SHA-256 of the canonical JSON form of the config (stable across runs and machines)."""
    canon = json.dumps(config_to_dict(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


def config_from_dict(data: dict[str, Any], source: str = "<config>") -> EngineConfig:
    """Build the engine config described by ``data`` (with an ``engine`` key)."""
    from hwgen.engines.registry import ENGINES

    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a table of fields, got {type(data).__name__}")
    data = dict(data)
    kind = data.pop("engine", None)
    if kind is None:
        raise ConfigError(f"{source}: engine is missing: expected one of "
                          + ", ".join(format_value(k) for k in ENGINES))
    if kind not in ENGINES:
        raise ConfigError(f"{source}: " + str(invalid("engine", kind, "one of " + ", ".join(
            format_value(k) for k in ENGINES))))
    cls = ENGINES[kind].config_class
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{source}: unknown field {key!r} for engine {kind!r}{hint} "
                              f"(allowed: {', '.join(names)})")
    try:
        return cls(**data)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def load_config(path: str | Path) -> EngineConfig:
    """Read and validate a ``.toml`` or ``.json`` config file."""
    path = Path(path)
    source = path.name
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read: {exc}") from None
    try:
        if path.suffix == ".json":
            data = json.loads(text)
        elif path.suffix == ".toml":
            data = tomllib.loads(text)
        else:
            raise ConfigError(f"{source}: file type {path.suffix!r} is not supported: expected "
                              f"a .toml or .json file")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{source}: not valid {path.suffix[1:].upper()}: {exc}") from None
    return config_from_dict(data, source)


def _toml_value(value: Any) -> str:
    """``value`` as a TOML literal (only the scalar types config fields use)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        # A JSON string is a valid TOML basic string: same quotes and escapes.
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as a TOML value")


def example_toml(config_class: type[EngineConfig]) -> str:
    """A commented TOML config holding every field of ``config_class`` at its default.

    Each field is preceded by its ``doc`` metadata as a comment. Fields whose default is ``None``
    are absent from a config, so they are shown commented out, with their ``example`` metadata as
    the value when there is one. The text loads with :func:`load_config` as is and gives
    ``config_class()``.

    Parameters
    ----------
    config_class : type
        A registered engine config dataclass (``kind`` set, every field with a ``doc``).

    Returns
    -------
    str
        TOML text ending in a newline.
    """
    return config_toml(config_class(), ["Every field is shown with its default. Generate with: "
                                        "hwgen generate <this file>"])


def config_toml(cfg: EngineConfig, notes: list[str] = ()) -> str:
    """``cfg`` as a commented TOML config that :func:`load_config` reads back as ``cfg``.

    The header names the engine and quotes the config class's summary, then ``notes`` (one
    comment line each); every field follows with its ``doc`` as a comment. A field left at
    ``None`` is shown commented out, with its ``example`` metadata when there is one.
    """
    config_class = type(cfg)
    # The class docstring's first line, without reStructuredText literal markup.
    summary = (config_class.__doc__ or "").strip().splitlines()[0].replace("``", "")
    lines = [f"# hwgen {config_class.kind} config.",
             *textwrap.wrap(summary, width=98, initial_indent="# ", subsequent_indent="# "),
             *(f"# {note}" for note in notes),
             "",
             f"engine = {_toml_value(config_class.kind)}"]
    for f in dataclasses.fields(config_class):
        lines.append("")
        lines += textwrap.wrap(f.metadata["doc"], width=98, initial_indent="# ",
                               subsequent_indent="# ")
        value = getattr(cfg, f.name)
        if value is None:
            example = f.metadata.get("example")
            shown = "..." if example is None else _toml_value(example)
            lines.append(f"# {f.name} = {shown}")
        else:
            lines.append(f"{f.name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"
