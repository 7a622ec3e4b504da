"""The folder hwgen keeps reusable results in (Verilator builds, calibration tables), and the
file lock that lets parallel processes (pytest-xdist workers, two CLI runs) share it."""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path

from hwgen.config import ConfigError

__all__ = ["cache_root", "file_lock"]

#: The cache folder, in the working directory, when ``HWGEN_CACHE`` is not set (or empty).
DEFAULT_CACHE = ".hwgen-cache"

_ALLOWED = "a folder (or a path where one can be created)"


def _folder_problem(root: Path) -> str | None:
    """Why ``root`` (absolute) cannot be the cache folder, or None when it is one or can be
    created."""
    path = root
    try:
        # The nearest existing entry decides: nothing can be created under a file.
        while not path.exists() and not path.is_symlink():
            path = path.parent
        if path.is_dir():
            if os.access(path, os.W_OK | os.X_OK):
                return None
            return f"{path} is not writable" if path == root else \
                f"it cannot be created: {path} is not writable"
    except OSError as exc:
        return f"cannot look at {path}: {exc.strerror or exc}"
    if not path.exists():
        return f"{path} is a broken symbolic link"
    return f"{path} is a file" if path == root else f"{path} is a file, not a folder"


def _cache_error(value: str | None, root: Path, problem: str) -> ConfigError:
    """The one-line error for the cache folder ``root``, ``value`` being ``$HWGEN_CACHE`` (None
    when it is not set)."""
    # The path in full (JSON-quoted, so it stays one line): a shortened path would hide which
    # folder is meant.
    if value is None:
        field, shown = f"cache folder (HWGEN_CACHE is not set: ./{DEFAULT_CACHE})", str(root)
    else:
        field, shown = "HWGEN_CACHE", value
    return ConfigError(f"{field} = {json.dumps(shown)}: expected {_ALLOWED}; {problem}")


def _variable() -> str | None:
    """``$HWGEN_CACHE``, None when it is not set or empty."""
    return os.environ.get("HWGEN_CACHE") or None


def cache_root() -> Path:
    """The cache folder: ``$HWGEN_CACHE``, or ``.hwgen-cache`` in the working directory.

    The folder need not exist yet (whoever writes into it creates it).

    Returns
    -------
    Path
        Absolute, symbolic links resolved.

    Raises
    ------
    ConfigError
        One line naming ``HWGEN_CACHE`` and its value when the path cannot be a folder: it is a
        file, it lies under a file, it cannot be created there, or it is relative to a working
        directory that no longer exists.
    """
    value = _variable()
    path = Path(value if value is not None else DEFAULT_CACHE)
    try:
        root = path.resolve()
    except FileNotFoundError:
        raise _cache_error(value, path, "the working directory it is relative to no longer "
                                        "exists") from None
    except (OSError, RuntimeError) as exc:      # RuntimeError: a loop of symbolic links
        raise _cache_error(value, path, f"cannot resolve it: {exc}") from None
    problem = _folder_problem(root)
    if problem is not None:
        raise _cache_error(value, root, problem)
    return root


@contextmanager
def file_lock(path: Path):
    """Hold an exclusive lock on ``path`` (created, with its folder, if missing) for the
    ``with`` block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
