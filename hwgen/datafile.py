"""Numeric arrays from user files (``.npy``, ``.npz``), read without trusting their headers.

A ``.npy`` header states the dtype and shape of the data after it, and ``numpy.load`` allocates
what the header claims before reading: a file of a hundred bytes can ask for terabytes. An
``.npz`` is a zip archive of such files, whose directory can also claim any size. The loaders
here read each header first and refuse, with one line naming the file, the array, the problem
and what was expected:

* a header that is not numpy's, or states a shape whose data the file does not hold (the data
  is then read in chunks, so a lying zip directory cannot make them take more memory than the
  archive really decompresses to);
* a file whose arrays together claim more than ``max_bytes`` (default :data:`MAX_BYTES`): a
  2 MB ``.npz`` can hold gigabytes of zeros that really do decompress, so a true header is
  refused too when the data is larger than any layer a caller means to read;
* pickled Python objects (never unpickled), and dtypes outside the kinds the caller accepts;
* NaN and infinite values.

Example::

    arrays = load_npz("weights.npz", kinds="iu")      # {"fc1": ndarray, ...}, integers only
"""

from __future__ import annotations

import io
import math
import os
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

__all__ = ["DataFileError", "load_npy", "load_npz"]

#: Longest ``.npy`` header read, in bytes: numpy's own limit for untrusted files
#: (``numpy.lib.format.read_array_header_1_0``'s ``max_header_size``).
MAX_HEADER_BYTES = 10_000

#: Default limit on the data of one file (all arrays of an ``.npz`` together), in bytes: 1 GiB,
#: some thirty times the activations of a 10,000-sample MNIST set in float32.
MAX_BYTES = 1 << 30

#: Data is read in pieces of this many bytes, so memory grows only with data actually present.
_CHUNK_BYTES = 1 << 20

#: numpy dtype kinds a caller may accept, and how messages name them.
_KINDS = {"b": "booleans", "i": "signed integers", "u": "unsigned integers",
          "f": "floating-point numbers", "c": "complex numbers"}

_MAGIC_BYTES = 8        # "\x93NUMPY" and the two version bytes


class DataFileError(ValueError):
    """A data file cannot be used; one line ``<file>: [<array>: ]<problem>: expected ...``."""


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _expected_kinds(kinds: str) -> str:
    words = list(dict.fromkeys(
        "integers" if set(kinds) >= {"i", "u"} and k in "iu" else _KINDS[k] for k in kinds))
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _check_kinds(kinds) -> str:
    if not isinstance(kinds, str) or not kinds or set(kinds) - set(_KINDS):
        raise ValueError(f"kinds = {kinds!r}: expected a non-empty string of the numpy dtype "
                         f"kinds {''.join(_KINDS)}")
    return kinds


def _bytes(count: int) -> str:
    size = float(count)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        size /= 1024
        if size < 1024:
            return f"{size:.3g} {unit}"
    return f"{size / 1024:.3g} EiB"


def _read_exact(stream: BinaryIO, count: int, label: str, what: str) -> bytes:
    data = stream.read(count)
    if len(data) != count:
        raise DataFileError(f"{label}: ends inside the {what}: expected a complete .npy array")
    return data


def _read_header(stream: BinaryIO, label: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """Shape, Fortran order and dtype from a ``.npy`` header, and the header's length in bytes.

    The header length field is checked before the header is read: a version 2.0 header may
    claim 4 GiB."""
    magic = _read_exact(stream, _MAGIC_BYTES, label, "numpy magic string")
    try:
        version = np.lib.format.read_magic(io.BytesIO(magic))
    except ValueError:
        raise DataFileError(f"{label}: does not start with the .npy magic string: expected an "
                            f"array written by numpy.save") from None
    if version not in ((1, 0), (2, 0)):
        raise DataFileError(f"{label}: .npy format version {version[0]}.{version[1]}: expected "
                            f"version 1.0 or 2.0 (numeric arrays)")
    size_field = _read_exact(stream, 2 if version == (1, 0) else 4, label, "header")
    length = int.from_bytes(size_field, "little")
    if length > MAX_HEADER_BYTES:
        raise DataFileError(f"{label}: header of {length} bytes: expected at most "
                            f"{MAX_HEADER_BYTES} (numpy writes about a hundred)")
    header = _read_exact(stream, length, label, "header")
    reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
              else np.lib.format.read_array_header_2_0)
    try:
        shape, fortran_order, dtype = reader(io.BytesIO(size_field + header))
    except ValueError as exc:
        raise DataFileError(f"{label}: unreadable .npy header ({_one_line(exc)}): expected an "
                            f"array written by numpy.save") from None
    if any(d < 0 for d in shape):
        raise DataFileError(f"{label}: header claims shape {shape}: expected dimensions >= 0")
    return shape, fortran_order, dtype, _MAGIC_BYTES + len(size_field) + length


def _check_max_bytes(max_bytes) -> int:
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
        raise ValueError(f"max_bytes = {max_bytes!r}: expected an integer >= 0")
    return max_bytes


def _read_array(stream: BinaryIO, available: int, label: str, kinds: str, max_bytes: int,
                used: int = 0) -> np.ndarray:
    """The array at ``stream`` (positioned at its header), followed by at most ``available``
    bytes (header included) as far as the container knows; ``used`` bytes of the file's
    ``max_bytes`` went to the arrays before it."""
    shape, fortran_order, dtype, header_bytes = _read_header(stream, label)
    if dtype.hasobject:
        raise DataFileError(f"{label}: dtype {dtype} holds pickled Python objects, which are "
                            f"never loaded: expected {_expected_kinds(kinds)}")
    if dtype.kind not in kinds:
        raise DataFileError(f"{label}: dtype {dtype}: expected {_expected_kinds(kinds)}")
    claimed = math.prod(shape) * dtype.itemsize
    present = max(available - header_bytes, 0)
    if claimed > present:
        raise DataFileError(f"{label}: header claims shape {shape} of {dtype} "
                            f"({_bytes(claimed)}) but only {present} bytes of data follow it: "
                            f"expected a complete .npy array")
    if used + claimed > max_bytes:
        before = f" after {_bytes(used)} in the arrays before it" if used else ""
        raise DataFileError(f"{label}: header claims shape {shape} of {dtype} "
                            f"({_bytes(claimed)}){before}: expected at most "
                            f"{_bytes(max_bytes)} of data in one file")
    data = bytearray()
    while len(data) < claimed:
        chunk = stream.read(min(_CHUNK_BYTES, claimed - len(data)))
        if not chunk:
            raise DataFileError(f"{label}: data ends after {len(data)} of {claimed} bytes: "
                                f"expected a complete .npy array")
        data += chunk
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")
    if dtype.kind in "fc":
        bad = ~np.isfinite(array)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise DataFileError(f"{label}: value {array[where]} at index {where}: expected "
                                f"finite numbers")
    return array


def _open(path: Path):
    if not path.exists():
        raise DataFileError(f"{path}: file not found")
    if not path.is_file():
        raise DataFileError(f"{path}: not a regular file: expected a {path.suffix or 'data'} "
                            f"file")
    try:
        return open(path, "rb")
    except OSError as exc:
        raise DataFileError(f"{path}: cannot open: {exc.strerror}") from None


def load_npy(path: str | Path, kinds: str = "biuf", max_bytes: int = MAX_BYTES) -> np.ndarray:
    """The array in a ``.npy`` file, checked before anything is allocated.

    Parameters
    ----------
    path : str or Path
        The file.
    kinds : str
        numpy dtype kinds accepted: ``b`` booleans, ``i`` signed and ``u`` unsigned integers,
        ``f`` floating point, ``c`` complex. Objects, strings and structured arrays are never
        accepted.
    max_bytes : int
        Largest array data accepted, in bytes (default :data:`MAX_BYTES`).

    Returns
    -------
    numpy.ndarray
        A writable array of the file's dtype (its byte order included) and shape.

    Raises
    ------
    DataFileError
        One line ``<file>: <problem>: expected ...``: missing or unreadable file, not a
        ``.npy`` array, a shape the file holds no data for, data over ``max_bytes``, a dtype
        outside ``kinds``, a NaN or infinite value.
    ValueError
        ``kinds`` is not a string of the letters above, or ``max_bytes`` not an integer >= 0.
    """
    path = Path(path)
    kinds, max_bytes = _check_kinds(kinds), _check_max_bytes(max_bytes)
    with _open(path) as handle:
        try:
            return _read_array(handle, os.fstat(handle.fileno()).st_size, str(path), kinds,
                               max_bytes)
        except OSError as exc:
            raise DataFileError(f"{path}: cannot read: {exc.strerror}") from None


def load_npz(path: str | Path, kinds: str = "biuf",
             max_bytes: int = MAX_BYTES) -> dict[str, np.ndarray]:
    """The arrays in an ``.npz`` file (as ``numpy.savez`` writes it), each checked as by
    :func:`load_npy` before anything is allocated.

    Parameters
    ----------
    path : str or Path
        The file.
    kinds : str
        numpy dtype kinds accepted, as for :func:`load_npy`.
    max_bytes : int
        Largest data of all arrays together, in bytes (default :data:`MAX_BYTES`); each header
        is checked against what is left before its data is decompressed.

    Returns
    -------
    dict of str to numpy.ndarray
        Array name (the member name without ``.npy``) -> array, in archive order; empty if the
        archive holds no members.

    Raises
    ------
    DataFileError
        One line ``<file>: [<array>: ]<problem>: expected ...``: missing or unreadable file, not
        a zip archive, a member that is not a ``.npy`` array or whose name repeats, or any
        problem :func:`load_npy` reports, for the member it concerns.
    ValueError
        ``kinds`` is not a string of the letters :func:`load_npy` accepts, or ``max_bytes``
        not an integer >= 0.
    """
    path = Path(path)
    kinds, max_bytes = _check_kinds(kinds), _check_max_bytes(max_bytes)
    used = 0
    arrays: dict[str, np.ndarray] = {}
    with _open(path) as handle:
        try:
            archive = zipfile.ZipFile(handle)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise DataFileError(f"{path}: not a zip archive ({_one_line(exc)}): expected an "
                                f".npz written by numpy.savez") from None
        with archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy") or info.is_dir():
                    raise DataFileError(f"{path}: member {info.filename!r} is not a .npy "
                                        f"array: expected only .npy members, as numpy.savez "
                                        f"writes")
                name = info.filename[:-len(".npy")]
                label = f"{path}: {name}"
                if name in arrays:
                    raise DataFileError(f"{label}: stored twice: expected each array name once")
                try:
                    with archive.open(info) as member:
                        arrays[name] = _read_array(member, info.file_size, label, kinds,
                                                   max_bytes, used)
                    used += arrays[name].nbytes
                except (zipfile.BadZipFile, zlib.error, EOFError, OSError,
                        NotImplementedError, RuntimeError) as exc:
                    # zipfile's ways of saying a member is corrupt, encrypted (RuntimeError) or
                    # compressed with a method it lacks (NotImplementedError).
                    raise DataFileError(f"{label}: cannot decompress ({_one_line(exc)}): "
                                        f"expected an .npz written by numpy.savez") from None
    return arrays
