"""Engine configurations: the base class, reading config files, writing them back, validation.

A configuration is a TOML (or JSON) file whose ``engine`` key names a registered engine kind; every
other key is a field of that engine's config dataclass (building the config from that data needs
the registry, so :func:`hwgen.engines.registry.load_config` and ``config_from_dict`` live there;
``hwgen.load_config`` is the same function). The same dataclasses are the Python API::

    from hwgen.engines.mac_array import MacArrayConfig
    cfg = MacArrayConfig(name="mac8", rows=8, cols=8)

Every problem is reported as one :class:`ConfigError` whose message names the source, the field, the
bad value and what is allowed, e.g. ``mac.toml: rows = 0: expected an integer from 1 to 64``. The
checks and that message format are :mod:`hwgen.validate`'s, re-exported here; a hostile file (a
huge integer, nesting 100000 deep, a key of 100000 dotted parts, megabytes of text) gets such a
line too, quickly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

# The validation helpers live in hwgen.validate; engine configs and flows import them from here.
from hwgen.validate import (
    ConfigError,
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_name,
    check_probability,
    format_value,
    invalid,
    toml_literal,
)

__all__ = [
    "ConfigError", "EngineConfig", "read_config_file", "config_to_dict",
    "config_hash", "example_toml", "config_toml", "MAX_CONFIG_CHARS", "NAME_DOC", "check_int",
    "check_float", "check_probability", "check_bool", "check_choice", "check_name", "invalid",
    "format_value",
]

#: The ``doc`` of every engine's ``name`` field (the rules are :func:`check_name`'s).
NAME_DOC = ("Verilog module, HLS C++ top function and output folder name: an identifier of at most "
            "64 characters, not starting with _ nor containing __, that Verilog, C++ and the "
            "generated files do not reserve (see hwgen/names.py).")

#: Longest config file read, in characters: a config is a few hundred, and the bound caps the
#: parsers' work.
MAX_CONFIG_CHARS = 1 << 20

#: Most parts of a dotted TOML key. Config fields are plain keys, and tomllib's work grows with the
#: square of a key's parts: a key of 100000 parts would exhaust memory before any check ran.
_MAX_KEY_PARTS = 32
_KEY_PART = r"""(?:[A-Za-z0-9_-]++|"(?:[^"\\\n]|\\.)*+"|'[^'\n]*+')"""
# Comments and multi-line strings are skipped whole, so only keys (and one-line strings, which look
# like quoted key parts) are counted; possessive quantifiers keep the scan linear in the text.
_DEEP_KEY_RE = re.compile(
    r"#[^\n]*+"
    r'|"""(?:[^"\\]|\\.|"(?!""))*+"""'
    r"|'''(?:[^']|'(?!''))*+'''"
    rf"|(?P<deep>{_KEY_PART}(?:[ \t]*+\.[ \t]*+{_KEY_PART}){{{_MAX_KEY_PARTS}}})"
    rf"|{_KEY_PART}")


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


def _deep_key_line(text: str) -> int | None:
    """The line of the first TOML key of more than ``_MAX_KEY_PARTS`` dotted parts, or None."""
    for match in _DEEP_KEY_RE.finditer(text):
        if match["deep"]:
            return text.count("\n", 0, match.start()) + 1
    return None


def _long_integer_place(text: str) -> str | None:
    """``line N: `` and the key (as written before its ``=`` or ``:``; none inside an array) of
    the first integer literal of more digits than Python converts, or None."""
    limit = sys.get_int_max_str_digits()
    match = re.search(r"[0-9][0-9_]{%d,}" % limit, text)
    if match is None or len(match[0].replace("_", "")) <= limit:
        return None
    line = text.count("\n", 0, match.start()) + 1
    start = text.rfind("\n", 0, match.start()) + 1
    key = re.search(r'"?([^\s"=:{,\[]+)"?\s*[=:]\s*[-+]?$', text[start:match.start()])
    return f"line {line}: {key[1]} = " if key else f"line {line}: "


def read_config_file(path: str | Path) -> tuple[Any, str]:
    """Read a ``.toml`` or ``.json`` config file: its data and the source name for messages.

    :func:`hwgen.engines.registry.load_config` builds the engine config from it.

    Raises
    ------
    ConfigError
        One line naming the file: it is missing, unreadable, larger than
        :data:`MAX_CONFIG_CHARS` characters or not valid TOML/JSON (including nesting too deep
        for the parser and integers of more digits than Python converts).
    """
    path = Path(path)
    source = path.name
    try:
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        language = {".toml": "TOML", ".json": "JSON"}.get(path.suffix)
        if language is None:
            raise ConfigError(f"{source}: file type {path.suffix!r} is not supported: expected "
                              f"a .toml or .json file")
        with path.open(encoding="utf-8") as handle:
            text = handle.read(MAX_CONFIG_CHARS + 1)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read: {exc}") from None
    if len(text) > MAX_CONFIG_CHARS:
        raise ConfigError(f"{source}: more than {MAX_CONFIG_CHARS} characters: expected a config "
                          f"file of a few fields")
    line = _deep_key_line(text) if language == "TOML" else None
    if line is not None:
        raise ConfigError(f"{source}: line {line}: a key of more than {_MAX_KEY_PARTS} dotted "
                          f"parts: expected plain field names")
    try:
        data = json.loads(text) if language == "JSON" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{source}: not valid {language}: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{source}: cannot read: arrays or tables nested too deeply") from None
    except ValueError:
        # Not a syntax error: Python converts no integer literal of more digits than this.
        limit = sys.get_int_max_str_digits()
        raise ConfigError(f"{source}: {_long_integer_place(text) or ''}<integer of more than {limit} digits>: expected an "
                          f"integer of at most {limit} digits") from None
    return data, source


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
             f"engine = {toml_literal(config_class.kind)}"]
    for f in dataclasses.fields(config_class):
        lines.append("")
        lines += textwrap.wrap(f.metadata["doc"], width=98, initial_indent="# ",
                               subsequent_indent="# ")
        value = getattr(cfg, f.name)
        if value is None:
            example = f.metadata.get("example")
            shown = "..." if example is None else toml_literal(example)
            lines.append(f"# {f.name} = {shown}")
        else:
            lines.append(f"{f.name} = {toml_literal(value)}")
    return "\n".join(lines) + "\n"
