"""The folder hwgen keeps reusable results in (Verilator builds, calibration tables), and the
file lock that lets parallel processes (pytest-xdist workers, two CLI runs) share it."""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

__all__ = ["cache_root", "file_lock"]


def cache_root() -> Path:
    """``$HWGEN_CACHE``, or ``.hwgen-cache`` in the working directory."""
    return Path(os.environ.get("HWGEN_CACHE", Path.cwd() / ".hwgen-cache")).resolve()


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
