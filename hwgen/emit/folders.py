"""Writing an output folder so that it is never seen half-written (DESIGN.md §5)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Callable, TypeVar

__all__ = ["publish_folder"]

T = TypeVar("T")


def publish_folder(out_dir: str | Path, name: str, fill: Callable[[Path], T]) -> T:
    """Create ``<out_dir>/<name>/`` with ``fill(folder)``, replacing a previous version.

    ``fill`` writes into a staging folder, which takes the final name only when ``fill``
    returned: the old folder is first moved aside, so at every moment ``<out_dir>/<name>`` is
    either the old or the new one. If anything fails, the old folder is put back, the staging
    folder goes, and so does every folder this call created on the way to ``out_dir``. Returns
    what ``fill`` returned.
    """
    out_dir = Path(out_dir)
    absolute = out_dir.resolve()
    created = next((p for p in reversed([absolute, *absolute.parents]) if not p.exists()), None)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / name
    staging = retired = None
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-new-", dir=out_dir))
        staging.chmod(0o755)
        result = fill(staging)
        if final.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{name}-old-", dir=out_dir))
            final.rename(retired / name)
        staging.rename(final)
    except BaseException:
        if retired is not None and (retired / name).exists() and not final.exists():
            (retired / name).rename(final)           # put the previous folder back
        if created is not None and created.exists():
            shutil.rmtree(created)
        raise
    finally:
        for leftover in (staging, retired):
            if leftover is not None and leftover.exists():
                shutil.rmtree(leftover)
    return result
