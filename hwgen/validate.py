"""The checks every hwgen input goes through, and the one message format they share.

A bad value is reported as one :class:`ConfigError` line, ``field = value: expected <allowed>``
(:func:`invalid`), e.g. ``rows = 0: expected an integer from 1 to 64``. The value is printed as a
TOML config writes it, shortened when it would not fit one short line (:func:`format_value`), so
the message holds for any input: a table where a number belongs, a nan, an integer of thousands
of digits, a list of a million values. :mod:`hwgen.config` re-exports every name here.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from hwgen.names import name_problem

__all__ = ["ConfigError", "toml_literal", "format_value", "invalid", "check_int", "check_float",
           "check_probability", "check_bool", "check_choice", "check_name"]


class ConfigError(ValueError):
    """A configuration value is not allowed. The message is one line, ready to show a user."""


#: Longest text a message shows for one value (longer values are cut).
_MAX_TEXT = 80
#: Integers with more digits are shown by their size: Python refuses to print integers of more
#: than 4300 digits, and nobody reads 30.
_MAX_DIGITS = 30
#: Nesting levels of lists and tables a message shows.
_MAX_DEPTH = 3

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+\Z")


def _toml_key(key: Any) -> str:
    """A table key: bare when TOML allows it, else a basic string."""
    if not isinstance(key, str):
        raise TypeError(f"cannot write {type(key).__name__} {key!r} as a TOML key")
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def toml_literal(value: Any) -> str:
    """``value`` as a TOML literal, exactly (the scalar types, lists and tables config fields
    use).

    ``repr`` of a float is TOML (``nan``, ``inf``, ``4.0``); a JSON string is a TOML basic string
    (same quotes and escapes).

    Raises
    ------
    TypeError
        For any other type.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)          # also for subclasses such as IntEnum
    if isinstance(value, float):
        return float.__repr__(value)        # also for numpy.float64
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    if isinstance(value, dict):             # an inline table (a network's layers)
        return "{" + ", ".join(f"{_toml_key(k)} = {toml_literal(v)}"
                               for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as a TOML value")


def _items(texts, count: int, brackets: str, noun: str) -> str:
    """``texts`` (formatted lazily) between ``brackets``, cut once the line is long enough."""
    shown, length = [], 0
    for text in texts:
        if shown and length + len(text) > _MAX_TEXT:
            break
        shown.append(text)
        length += len(text) + 2
    if len(shown) < count:
        shown.append(f"... ({count} {noun})")
    return brackets[0] + ", ".join(shown) + brackets[1]


def _key(key: Any) -> str:
    if isinstance(key, str) and _BARE_KEY_RE.match(key) and len(key) <= _MAX_TEXT:
        return key
    return format_value(key)


def _shown(value: Any, depth: int) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and \
            abs(value) >= 10 ** _MAX_DIGITS:
        return f"<{'negative ' if value < 0 else ''}integer of {value.bit_length()} bits>"
    if isinstance(value, str) and len(value) > _MAX_TEXT:
        return json.dumps(value[:_MAX_TEXT // 2])[:-1] + f'..." ({len(value)} characters)'
    if isinstance(value, (bool, int, float, str)):
        return toml_literal(value)
    if isinstance(value, (list, tuple)):
        if depth >= _MAX_DEPTH:
            return "[...]"
        return _items((_shown(v, depth + 1) for v in value), len(value), "[]", "values")
    if isinstance(value, dict):
        if depth >= _MAX_DEPTH:
            return "{...}"
        return _items((f"{_key(k)} = {_shown(v, depth + 1)}" for k, v in value.items()),
                      len(value), "{}", "fields")
    # Anything else comes from the Python API (None, a numpy number, an object): its repr, on
    # one line and cut.
    text = " ".join(repr(value).split())
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "..."


def format_value(value: Any) -> str:
    """``value`` as a TOML config writes it, on one short line.

    ``"text"``, ``true``, ``3``, ``nan``, ``[1, 2]``, ``{a = 1}``; an integer of more than 30
    digits as ``<integer of 4000 bits>``, a long string, list or table cut with ``...`` and its
    length, nesting below three levels as ``[...]``; any other object by its ``repr``.

    Parameters
    ----------
    value : object
        Anything a config file or the Python API may give.

    Returns
    -------
    str
        One line of at most a few hundred characters.
    """
    return _shown(value, 0)


def invalid(field: str, value: Any, allowed: str) -> ConfigError:
    """The one-line error for ``field = value``, saying what is ``allowed``."""
    return ConfigError(f"{field} = {format_value(value)}: expected {allowed}")


def check_int(field: str, value: Any, lo: int, hi: int | None = None) -> int:
    """Return ``value`` if it is an integer (not a bool) from ``lo`` to ``hi`` (no upper bound
    when ``hi`` is None), else raise :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < lo \
            or (hi is not None and value > hi):
        raise invalid(field, value, f"an integer from {lo} to {hi}" if hi is not None
                      else f"an integer >= {lo}")
    return value


def check_float(field: str, value: Any, lo: float = -math.inf, hi: float = math.inf, *,
                lo_open: bool = False) -> float:
    """Return ``value`` as a float if it is a finite number within the bounds.

    Parameters
    ----------
    field : str
        The name the message gives the value.
    value : object
        An int or a float (not a bool); nan, an infinity and an int beyond the float range are
        refused.
    lo, hi : float
        The bounds, inclusive; an infinite bound is no bound.
    lo_open : bool
        Exclude ``lo`` itself (``value > lo``).

    Returns
    -------
    float

    Raises
    ------
    ConfigError
        ``field = value: expected a number from lo to hi`` (or ``a finite number >= lo``, ...).
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:       # an int beyond the float range
            number = math.inf
        if math.isfinite(number) and (number > lo if lo_open else number >= lo) and number <= hi:
            return number
    raise invalid(field, value, _number_range(lo, hi, lo_open))


def _number_range(lo: float, hi: float, lo_open: bool) -> str:
    low = f"{'above' if lo_open else 'from'} {lo:g}"
    if math.isfinite(lo) and math.isfinite(hi):
        return f"a number {low} {'and at most' if lo_open else 'to'} {hi:g}"
    if math.isfinite(lo):
        return f"a finite number {'>' if lo_open else '>='} {lo:g}"
    if math.isfinite(hi):
        return f"a finite number <= {hi:g}"
    return "a finite number"


def check_probability(field: str, value: Any, lo: float = 0.0) -> float:
    """Return ``value`` as a float if it is a probability from ``lo`` to 1, else raise
    :class:`ConfigError` (``field = value: expected a number from lo to 1``)."""
    return check_float(field, value, lo, 1.0)


def check_bool(field: str, value: Any) -> bool:
    """Return ``value`` if it is ``True`` or ``False``, else raise :class:`ConfigError`."""
    if not isinstance(value, bool):
        raise invalid(field, value, "true or false")
    return value


def check_choice(field: str, value: Any, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of the strings ``choices``, else raise
    :class:`ConfigError` listing them."""
    if not isinstance(value, str) or value not in choices:
        raise invalid(field, value, "one of " + ", ".join(format_value(c) for c in choices))
    return value


def check_name(field: str, value: Any) -> str:
    """Return ``value`` if it can name a design, else raise :class:`ConfigError`.

    A name becomes a Verilog module, an HLS C++ top function and file and folder names
    (docs/architecture.md §3): an identifier of at most 64 characters that none of them reserves
    (:func:`hwgen.names.name_problem`).
    """
    if not isinstance(value, str) or not _NAME_RE.match(value) or len(value) > 64:
        raise invalid(field, value, "an identifier matching [A-Za-z_][A-Za-z0-9_]* of at most 64 "
                                    "characters")
    problem = name_problem(value)
    if problem is not None:
        raise invalid(field, value, problem)
    return value
