"""Loading user arrays (hwgen/datafile.py): what numpy.load reads, and hostile files refused.

Hostile files are built byte by byte here: .npy headers that claim more data than the file
holds, pickles, NaN, broken archives. The memory check uses tracemalloc: refusing a header that
claims petabytes must not allocate more than a small buffer.
"""

from __future__ import annotations

import io
import tracemalloc
import zipfile

import numpy as np
import pytest

from hwgen.datafile import MAX_HEADER_BYTES, DataFileError, load_npy, load_npz

HUGE = (1 << 40, 1024)       # int64: 8 PiB


def _npy_bytes(header: dict, data: bytes = b"", version=(1, 0)) -> bytes:
    """A .npy file with ``header`` written as numpy writes headers, followed by ``data``."""
    buffer = io.BytesIO()
    writer = (np.lib.format.write_array_header_1_0 if version == (1, 0)
              else np.lib.format.write_array_header_2_0)
    writer(buffer, header)
    return buffer.getvalue() + data


def _huge_npy() -> bytes:
    return _npy_bytes({"descr": "<i8", "fortran_order": False, "shape": HUGE}, b"\0" * 64)


def _zip(tmp_path, members: dict[str, bytes], method=zipfile.ZIP_STORED, name="a.npz"):
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", compression=method) as archive:
        for member, content in members.items():
            archive.writestr(member, content)
    return path


def _refused(loader, path, **kwargs) -> str:
    with pytest.raises(DataFileError) as info:
        loader(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def _refused_within_a_mebibyte(loader, path, **kwargs) -> str:
    """:func:`_refused`, checking that the refusal allocated less than 1 MiB on the way."""
    tracemalloc.start()
    try:
        message = _refused(loader, path, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    return message


# --- what numpy writes is read back unchanged ----------------------------------------------------

@pytest.mark.parametrize("array", [
    np.arange(12, dtype=np.int64).reshape(3, 4),
    np.asfortranarray(np.arange(12, dtype=np.int16).reshape(4, 3)),
    np.arange(6, dtype=">i4").reshape(2, 3),
    np.array([[0.5, -1.25]], dtype=np.float32),
    np.array([True, False]),
    np.zeros((0, 5), dtype=np.uint8),
    np.array(7, dtype=np.int8),
], ids=["int64", "fortran", "big-endian", "float32", "bool", "empty", "scalar"])
def test_npy_round_trip(tmp_path, array):
    path = tmp_path / "a.npy"
    np.save(path, array)
    back = load_npy(path)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    back[...] = 0                      # writable, like numpy.load's result


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed], ids=["stored", "deflated"])
def test_npz_round_trip_keeps_names_and_order(tmp_path, save):
    arrays = {"fc2": np.arange(6).reshape(2, 3), "fc1": np.array([[1.5]]), "b": np.zeros(0)}
    save(tmp_path / "a.npz", **arrays)
    back = load_npz(tmp_path / "a.npz")
    assert list(back) == ["fc2", "fc1", "b"]
    for key, array in arrays.items():
        np.testing.assert_array_equal(back[key], array)
    np.savez(tmp_path / "empty.npz")
    assert load_npz(tmp_path / "empty.npz") == {}


def test_version_2_header(tmp_path):
    array = np.arange(5, dtype=np.int32)
    path = tmp_path / "a.npy"
    path.write_bytes(_npy_bytes({"descr": "<i4", "fortran_order": False, "shape": (5,)},
                                array.tobytes(), version=(2, 0)))
    np.testing.assert_array_equal(load_npy(path), array)


# --- headers that claim more than the file holds --------------------------------------------------

def test_npy_claiming_petabytes_is_refused_without_allocating(tmp_path):
    path = tmp_path / "W.npy"
    path.write_bytes(_huge_npy())
    message = _refused_within_a_mebibyte(load_npy, path)
    assert message == (f"{path}: header claims shape {HUGE} of int64 (8 PiB) but only 64 bytes "
                       f"of data follow it: expected a complete .npy array")


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED],
                         ids=["stored", "deflated"])
def test_npz_member_claiming_petabytes_is_refused(tmp_path, method):
    ok = io.BytesIO()
    np.save(ok, np.arange(3))
    path = _zip(tmp_path, {"fine.npy": ok.getvalue(), "fc1.npy": _huge_npy()}, method)
    assert _refused(load_npz, path) == (
        f"{path}: fc1: header claims shape {HUGE} of int64 (8 PiB) but only 64 bytes of data "
        f"follow it: expected a complete .npy array")


def test_an_npz_bomb_is_refused_before_it_is_decompressed(tmp_path):
    # A true header and a true zip directory: 16 MiB of zeros deflate to about 16 KiB. The limit
    # refuses it from the header, before any of it is inflated.
    zeros = io.BytesIO()
    np.save(zeros, np.zeros(1 << 24, dtype=np.int8))
    path = _zip(tmp_path, {"fc1.npy": zeros.getvalue()}, zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 1 << 16
    message = _refused_within_a_mebibyte(load_npz, path, max_bytes=1 << 20)
    assert message == (f"{path}: fc1: header claims shape (16777216,) of int8 (16 MiB): "
                       f"expected at most 1 MiB of data in one file")


def test_max_bytes_counts_every_array_of_a_file(tmp_path):
    members = {}
    for name in ("fc1", "fc2"):
        buffer = io.BytesIO()
        np.save(buffer, np.ones(600 * 1024, dtype=np.int8))
        members[f"{name}.npy"] = buffer.getvalue()
    path = _zip(tmp_path, members, zipfile.ZIP_DEFLATED)
    assert _refused(load_npz, path, max_bytes=1 << 20) == (
        f"{path}: fc2: header claims shape (614400,) of int8 (600 KiB) after 600 KiB in the "
        f"arrays before it: expected at most 1 MiB of data in one file")
    assert sorted(load_npz(path, max_bytes=1200 * 1024)) == ["fc1", "fc2"]
    single = tmp_path / "fc1.npy"
    single.write_bytes(members["fc1.npy"])
    assert _refused(load_npy, single, max_bytes=1000) == (
        f"{single}: header claims shape (614400,) of int8 (600 KiB): expected at most "
        f"0.977 KiB of data in one file")
    assert load_npy(single, max_bytes=600 * 1024).shape == (614400,)


@pytest.mark.parametrize("max_bytes", [-1, 1.5, True, "1"])
def test_max_bytes_must_be_a_count(tmp_path, max_bytes):
    with pytest.raises(ValueError, match=r"^max_bytes = .*: expected an integer >= 0$"):
        load_npy(tmp_path / "missing.npy", max_bytes=max_bytes)


def test_header_length_is_checked_before_the_header_is_read(tmp_path):
    path = tmp_path / "a.npy"
    path.write_bytes(b"\x93NUMPY\x02\x00" + (1 << 31).to_bytes(4, "little") + b"{")
    assert _refused(load_npy, path) == (f"{path}: header of 2147483648 bytes: expected at most "
                                        f"{MAX_HEADER_BYTES} (numpy writes about a hundred)")


@pytest.mark.parametrize("content, problem", [
    (b"", "ends inside the numpy magic string: expected a complete .npy array"),
    (b"PK\x03\x04 not numpy", "does not start with the .npy magic string: expected an array "
                              "written by numpy.save"),
    (b"\x93NUMPY\x01\x00\x40\x00{", "ends inside the header: expected a complete .npy array"),
    (b"\x93NUMPY\x07\x00\x10\x00", ".npy format version 7.0: expected version 1.0 or 2.0 "
                                   "(numeric arrays)"),
    (b"\x93NUMPY\x01\x00\x11\x00{'descr': '<i8'}\n",
     "unreadable .npy header (Header does not contain the correct keys: ['descr']): expected "
     "an array written by numpy.save"),
    (_npy_bytes({"descr": "<i8", "fortran_order": False, "shape": (-1, 2)}),
     "header claims shape (-1, 2): expected dimensions >= 0"),
], ids=["empty", "magic", "short-header", "version", "keys", "negative-shape"])
def test_malformed_npy(tmp_path, content, problem):
    path = tmp_path / "a.npy"
    path.write_bytes(content)
    assert _refused(load_npy, path) == f"{path}: {problem}"


# --- contents -------------------------------------------------------------------------------------

def test_pickled_objects_are_never_loaded(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.array([1, "two"], dtype=object), allow_pickle=True)
    assert _refused(load_npy, path) == (f"{path}: dtype object holds pickled Python objects, "
                                        f"which are never loaded: expected booleans, integers or "
                                        f"floating-point numbers")


@pytest.mark.parametrize("array, kinds, expected", [
    (np.array([1.5]), "iu", "dtype float64: expected integers"),
    (np.array([1j]), "biuf", "dtype complex128: expected booleans, integers or floating-point "
                             "numbers"),
    (np.array([-1]), "u", "dtype int64: expected unsigned integers"),
    (np.array(["x"]), "biufc", "dtype <U1: expected booleans, integers, floating-point numbers "
                               "or complex numbers"),
    (np.zeros(2, dtype=[("a", "<i4")]), "i", "dtype [('a', '<i4')]: expected signed integers"),
], ids=["float", "complex", "signed", "string", "structured"])
def test_dtype_kinds(tmp_path, array, kinds, expected):
    path = tmp_path / "a.npy"
    np.save(path, array)
    assert _refused(load_npy, path, kinds=kinds) == f"{path}: {expected}"


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_and_infinity_are_refused(tmp_path, value):
    weights = np.zeros((2, 3))
    weights[1, 2] = value
    np.savez(tmp_path / "a.npz", fc1=weights)
    assert _refused(load_npz, tmp_path / "a.npz") == (
        f"{tmp_path / 'a.npz'}: fc1: value {value} at index (1, 2): expected finite numbers")


def test_bad_kinds_argument(tmp_path):
    with pytest.raises(ValueError, match=r"kinds = 'iO': expected a non-empty string of the "
                                         r"numpy dtype kinds biufc"):
        load_npy(tmp_path / "a.npy", kinds="iO")


# --- files and archives ---------------------------------------------------------------------------

def test_missing_file_and_folder(tmp_path):
    assert _refused(load_npy, tmp_path / "nope.npy") == f"{tmp_path / 'nope.npy'}: file not found"
    (tmp_path / "d.npz").mkdir()
    assert _refused(load_npz, tmp_path / "d.npz") == (f"{tmp_path / 'd.npz'}: not a regular file: "
                                                      f"expected a .npz file")


def test_broken_archives(tmp_path):
    path = tmp_path / "a.npz"
    path.write_bytes(b"not a zip at all")
    assert _refused(load_npz, path) == (f"{path}: not a zip archive (File is not a zip file): "
                                        f"expected an .npz written by numpy.savez")
    path = _zip(tmp_path, {"notes.txt": b"hello"})
    assert _refused(load_npz, path) == (f"{path}: member 'notes.txt' is not a .npy array: "
                                        f"expected only .npy members, as numpy.savez writes")
    ok = io.BytesIO()
    np.save(ok, np.arange(3))
    with pytest.warns(UserWarning, match="Duplicate name"):
        path = _zip(tmp_path, {"x.npy": ok.getvalue()})
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr("x.npy", ok.getvalue())
    assert _refused(load_npz, path) == f"{path}: x: stored twice: expected each array name once"


def test_corrupt_member(tmp_path):
    ok = io.BytesIO()
    np.save(ok, np.arange(1000))
    path = _zip(tmp_path, {"x.npy": ok.getvalue()}, zipfile.ZIP_DEFLATED)
    raw = bytearray(path.read_bytes())
    start = raw.index(b"x.npy") + len("x.npy")      # the deflated data follow the local header
    raw[start + 40:start + 60] = b"\xff" * 20
    path.write_bytes(bytes(raw))
    message = _refused(load_npz, path)
    assert message.startswith(f"{path}: x: ")
