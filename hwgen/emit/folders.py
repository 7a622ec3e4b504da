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
    either the old or the new one. If ``fill`` raises, the old folder stays, the staging folder
    goes, and so does ``out_dir`` if this call created it. Returns what ``fill`` returned.
    """
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / name
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-new-", dir=out_dir))
    staging.chmod(0o755)
    retired = None
    try:
        result = fill(staging)
        if final.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{name}-old-", dir=out_dir))
            final.rename(retired / name)
        staging.rename(final)
    except BaseException:
        if created and out_dir.exists():
            shutil.rmtree(out_dir)
        raise
    finally:
        for leftover in (staging, retired):
            if leftover is not None and leftover.exists():
                shutil.rmtree(leftover)
    return result
