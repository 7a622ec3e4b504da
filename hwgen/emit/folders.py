"""Writing an output folder so that it is never seen half-written (docs/architecture.md §5), and
never over a
folder hwgen did not write.

Every command that writes (``generate``, ``synth``, ``flow``, ``hls``, ``select``) publishes its
output folder with :func:`publish_folder`: the files go to a hidden staging folder next to it,
which takes the final name only when it is complete. A failure or an interruption (Ctrl-C, or
SIGTERM / SIGHUP, which ``hwgen.cli.main`` turns into an exception for this) leaves the previous
folder as it was and removes the staging folder and every folder created on the way.

How hwgen recognizes its own output: every folder :func:`publish_folder` writes holds a marker
file, ``.hwgen`` (JSON: the hwgen version that wrote it and what the command passed, e.g.
``{"command": "generate", "config_hash": ...}``). :func:`check_output_folder` allows a folder to
be replaced only if it is absent, empty or holds that marker. One more case counts as hwgen's: a
design folder that ``hwgen synth`` created around its ``synth-<target>/`` result (nothing in it but
``synth-*`` folders holding the marker), so that ``generate`` may later fill it. Commands call
:func:`check_output_folder` with the ``-o`` value before any work, so a refusal is the first
thing a user sees; :func:`publish_folder` checks again, for callers of the Python API.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Callable, TypeVar

from hwgen.versions import package_versions

__all__ = ["MARKER", "RESULT_PREFIX", "FolderError", "is_hwgen_folder", "check_output_folder",
           "publish_folder", "copy_results"]

T = TypeVar("T")

#: The file that marks a folder as hwgen's output (see the module doc).
MARKER = ".hwgen"

#: Results hwgen nests in a design folder: ``<name>/synth-<target>/``.
RESULT_PREFIX = "synth-"


class FolderError(ValueError):
    """An output folder cannot be written or must not be replaced; one line for the user."""


def is_hwgen_folder(folder: Path) -> bool:
    """Whether the existing directory ``folder`` is hwgen output: it holds :data:`MARKER`, or it
    holds nothing but ``synth-*`` folders that do (see the module doc)."""
    if (folder / MARKER).is_file():
        return True
    entries = list(folder.iterdir())
    return bool(entries) and all(entry.is_dir() and entry.name.startswith(RESULT_PREFIX)
                                 and (entry / MARKER).is_file() for entry in entries)


def check_output_folder(folder: str | Path, option: str | Path | None = None) -> Path:
    """``folder`` if :func:`publish_folder` may write it, else :class:`FolderError`.

    It may be written if every existing path on the way to it is a directory, the nearest
    existing one is writable (the staging folder is created next to ``folder``), and ``folder``
    is absent, an empty directory or hwgen output (:func:`is_hwgen_folder`) that is not and does
    not contain the current working directory.

    Parameters
    ----------
    folder : the folder that would be written or replaced
    option : the ``-o`` value the user gave, when ``folder`` comes from it (the folder itself or
        ``<option>/<name>``); the message then starts with ``-o <option>:``, else with the folder.
    """
    folder = Path(folder)
    base = folder if option is None else Path(option)
    head = f"{folder}: " if option is None else f"-o {option}: "

    def named(path: Path) -> str:
        return "" if path == base else f"{path} "

    nearest = next(p for p in (folder.parent, *folder.parent.parents) if p.exists())
    if not nearest.is_dir():
        raise FolderError(f"{head}{named(nearest)}exists and is not a directory")
    if not os.access(nearest, os.W_OK | os.X_OK):
        raise FolderError(f"{head}cannot create folders in {nearest} (permission denied)")
    if not folder.exists():
        return folder
    if not folder.is_dir():
        raise FolderError(f"{head}{named(folder)}exists and is not a directory")
    if Path.cwd().resolve().is_relative_to(folder.resolve()):
        raise FolderError(f"{head}{named(folder)}is or contains the current folder; choose a new "
                          f"folder for the results")
    if any(folder.iterdir()) and not is_hwgen_folder(folder):
        raise FolderError(f"{head}{named(folder)}exists and was not written by hwgen (it has no "
                          f"{MARKER} file); choose another folder or remove it")
    return folder


def publish_folder(out_dir: str | Path, name: str, fill: Callable[[Path], T],
                   marker: Mapping[str, object] | None = None) -> T:
    """Create ``<out_dir>/<name>/`` with ``fill(folder)``, replacing a previous version.

    ``fill`` writes into a staging folder, which takes the final name only when ``fill``
    returned: the old folder is first moved aside, so at every moment ``<out_dir>/<name>`` is
    either the old or the new one. If anything fails (an exception, or a signal that ``hwgen``
    turned into one), the old folder is put back, the staging folder goes, and so does every
    folder this call created on the way to ``out_dir`` that is still empty (a concurrent run may
    have put its own output there).

    Parameters
    ----------
    out_dir, name : where the folder goes
    fill : writes the folder's content into the directory it is given; its return value is
        returned
    marker : what the :data:`MARKER` file records besides the hwgen version, e.g.
        ``{"command": "synth", "config_hash": ...}`` (JSON-serializable)

    Raises
    ------
    FolderError
        Before ``fill`` runs, if :func:`check_output_folder` refuses ``<out_dir>/<name>``.
    """
    out_dir = Path(out_dir)
    final = check_output_folder(out_dir / name)
    record = {"written_by": f"hwgen {package_versions(('hwgen',))['hwgen']}", **(marker or {})}
    absolute = out_dir.resolve()
    created = next((p for p in reversed([absolute, *absolute.parents]) if not p.exists()), None)
    staging = retired = None
    published = False
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-new-", dir=out_dir))
        staging.chmod(0o755)
        result = fill(staging)
        # Written last: a folder with the marker is one hwgen finished.
        (staging / MARKER).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        if final.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{name}-old-", dir=out_dir))
            final.rename(retired / name)
        staging.rename(final)
        published = True
    except BaseException:
        if retired is not None and (retired / name).exists() and not final.exists():
            (retired / name).rename(final)           # put the previous folder back
        raise
    finally:
        for leftover in (staging, retired):
            if leftover is not None and leftover.exists():
                shutil.rmtree(leftover)
        if not published and created is not None:
            for folder in (absolute, *absolute.parents):
                try:
                    folder.rmdir()
                except FileNotFoundError:
                    pass         # the run stopped before it was created
                except OSError:
                    break        # not empty: no longer only this call's
                if folder == created:
                    break
    return result


def copy_results(previous: Path, folder: Path, same: str) -> list[str]:
    """Copy into ``folder`` the results nested in ``previous`` that still describe it.

    A result is a ``synth-*`` folder hwgen wrote in ``previous`` whose own copy of the file
    ``same`` (the design's Verilog) is byte-identical to ``folder / same``; anything else in
    ``previous`` describes other RTL and is not copied. Copies, not moves: if publishing
    ``folder`` fails, ``previous`` is still whole. Returns the names of the copied folders.
    """
    if not previous.is_dir() or not is_hwgen_folder(previous):
        return []
    current = (folder / same).read_bytes()
    kept = []
    for result in sorted(previous.glob(f"{RESULT_PREFIX}*")):
        if (result.is_dir() and (result / MARKER).is_file() and (result / same).is_file()
                and (result / same).read_bytes() == current):
            shutil.copytree(result, folder / result.name, symlinks=True)
            kept.append(result.name)
    return kept
