"""Output folders (hwgen/emit/folders.py): a folder is the old one or the new one, never
half-written, and a folder hwgen did not write is never replaced -- through the API, through the
command line, and when a command is interrupted by a signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hwgen import cli
from hwgen.emit import folders
from hwgen.emit.folders import (
    MARKER,
    FolderError,
    check_output_folder,
    is_hwgen_folder,
    publish_folder,
)
from hwgen.engines.mac_array import MacArrayConfig

M1X1 = MacArrayConfig(name="m1x1", rows=1, cols=1)


def write(text):
    def fill(folder: Path) -> str:
        (folder / "f.txt").write_text(text)
        return text
    return fill


def fail(folder: Path) -> None:
    (folder / "half.txt").write_text("half")
    raise OSError("disk full")


def tree(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def user_folder(path: Path) -> dict[str, bytes]:
    """A folder of the user's with files named like hwgen's; returns its content."""
    path.mkdir(parents=True)
    (path / "report.json").write_text('{"mine": true}\n')
    (path / "notes.txt").write_text("keep me\n")
    return tree(path)


def hwgen(*args, cwd):
    return subprocess.run([sys.executable, "-m", "hwgen.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def assert_one_line_error(proc, message):
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"hwgen: error: {message}\n"
    assert proc.stdout == ""


# --- publish_folder ------------------------------------------------------------------------------

def test_replaces_the_previous_folder(tmp_path):
    assert publish_folder(tmp_path, "out", write("one")) == "one"
    (tmp_path / "out" / "stale.txt").write_text("x")
    publish_folder(tmp_path, "out", write("two"), marker={"command": "test", "config_hash": "ab"})
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [MARKER, "f.txt"]
    assert (tmp_path / "out" / "f.txt").read_text() == "two"
    record = json.loads((tmp_path / "out" / MARKER).read_text())
    assert record["command"] == "test" and record["config_hash"] == "ab"
    assert record["written_by"].startswith("hwgen ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failure_keeps_the_previous_folder(tmp_path):
    publish_folder(tmp_path, "out", write("one"))
    with pytest.raises(OSError, match="disk full"):
        publish_folder(tmp_path, "out", fail)
    assert (tmp_path / "out" / "f.txt").read_text() == "one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failure_removes_every_folder_it_created(tmp_path):
    with pytest.raises(OSError):
        publish_folder(tmp_path / "a" / "b", "out", fail)
    assert list(tmp_path.iterdir()) == []


def test_a_failure_keeps_what_a_concurrent_run_put_in_a_folder_it_created(tmp_path):
    def concurrent_run_then_fail(folder: Path) -> None:
        publish_folder(tmp_path / "a" / "b", "theirs", write("theirs"))
        fail(folder)

    with pytest.raises(OSError):
        publish_folder(tmp_path / "a" / "b", "out", concurrent_run_then_fail)
    assert sorted(p.name for p in (tmp_path / "a" / "b").iterdir()) == ["theirs"]


def test_an_interrupt_cleans_up_like_a_failure(tmp_path):
    publish_folder(tmp_path / "a", "out", write("one"))

    def interrupted(folder: Path) -> None:
        (folder / "half.txt").write_text("half")
        raise cli.Interrupted(signal.SIGTERM)

    for out_dir in (tmp_path / "a", tmp_path / "b" / "c"):
        with pytest.raises(cli.Interrupted):
            publish_folder(out_dir, "out", interrupted)
    assert tree(tmp_path) == {"a/out/f.txt": b"one", f"a/out/{MARKER}": (
        tmp_path / "a" / "out" / MARKER).read_bytes()}


def test_the_previous_folder_comes_back_if_the_final_rename_fails(tmp_path, monkeypatch):
    publish_folder(tmp_path, "out", write("one"))
    real_rename = Path.rename

    def rename(self, target):
        if Path(target) == tmp_path / "out" and ".out-new-" in self.name:
            raise OSError("rename failed")
        return real_rename(self, target)

    monkeypatch.setattr(folders.Path, "rename", rename)
    with pytest.raises(OSError, match="rename failed"):
        publish_folder(tmp_path, "out", write("two"))
    assert (tmp_path / "out" / "f.txt").read_text() == "one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_folder_hwgen_did_not_write_is_never_replaced(tmp_path):
    before = user_folder(tmp_path / "out")
    called = []
    with pytest.raises(FolderError) as info:
        publish_folder(tmp_path, "out", called.append)
    assert str(info.value) == (f"{tmp_path / 'out'}: exists and was not written by hwgen (it "
                               f"has no {MARKER} file); choose another folder or remove it")
    assert called == []                       # refused before any work
    assert tree(tmp_path / "out") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_empty_folder_may_be_replaced(tmp_path):
    (tmp_path / "out").mkdir()
    publish_folder(tmp_path, "out", write("one"))
    assert (tmp_path / "out" / "f.txt").read_text() == "one"


# --- check_output_folder -------------------------------------------------------------------------

def test_check_names_the_option_and_the_path_in_the_way(tmp_path):
    (tmp_path / "file").write_text("not a folder\n")
    cases = [
        (tmp_path / "file", tmp_path / "file", "exists and is not a directory"),
        (tmp_path / "file" / "mac", tmp_path / "file", "exists and is not a directory"),
        (tmp_path / "file" / "out" / "mac", tmp_path / "file" / "out",
         f"{tmp_path / 'file'} exists and is not a directory"),
    ]
    for folder, option, message in cases:
        with pytest.raises(FolderError) as info:
            check_output_folder(folder, option)
        assert str(info.value) == f"-o {option}: {message}"
    with pytest.raises(FolderError) as info:
        check_output_folder(tmp_path / "file" / "out")
    assert str(info.value) == (f"{tmp_path / 'file' / 'out'}: {tmp_path / 'file'} exists and "
                               f"is not a directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_check_refuses_the_current_folder(tmp_path, monkeypatch):
    publish_folder(tmp_path, "out", write("one"))
    monkeypatch.chdir(tmp_path / "out")
    with pytest.raises(FolderError, match=r"^-o \.: is or contains the current folder; "):
        check_output_folder(Path("."), ".")
    monkeypatch.chdir(tmp_path)
    assert check_output_folder(Path("out"), "out") == Path("out")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_check_refuses_a_folder_it_cannot_write_in(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    with pytest.raises(FolderError, match=r"cannot create folders in .*locked \(permission "):
        check_output_folder(locked / "out", locked)


def test_what_counts_as_hwgen_output(tmp_path):
    publish_folder(tmp_path / "design", "synth-ecp5-85k", write("report"))
    # What `hwgen synth` leaves in a design folder it created: hwgen's, so generate may fill it.
    assert is_hwgen_folder(tmp_path / "design")
    (tmp_path / "design" / "synth-mine").mkdir()
    assert not is_hwgen_folder(tmp_path / "design")
    # A folder of designs is not one design folder: `synth -o rtl_out` must not replace it.
    publish_folder(tmp_path / "rtl_out", "a", write("a"))
    assert not is_hwgen_folder(tmp_path / "rtl_out")
    with pytest.raises(FolderError):
        check_output_folder(tmp_path / "rtl_out")


# --- generate keeps the synthesis results of identical RTL ---------------------------------------

def fake_synth_result(design_dir: Path, target: str, verilog: bytes) -> None:
    """A ``synth-<target>`` folder as ``hwgen synth`` publishes it (its own copy of the RTL)."""
    def fill(folder: Path) -> None:
        (folder / "m1x1.v").write_bytes(verilog)
        (folder / "report.json").write_text('{"target": "%s"}\n' % target)

    publish_folder(design_dir, f"synth-{target}", fill)


def test_regenerating_the_same_rtl_keeps_synthesis_results(tmp_path):
    from hwgen.emit.verilog import generate

    art = generate(M1X1, tmp_path)
    verilog = art.verilog.read_bytes()
    fake_synth_result(art.directory, "ecp5-85k", verilog)
    fake_synth_result(art.directory, "ice40-up5k", b"// other RTL\n")
    (art.directory / "synth-mine").mkdir()          # not hwgen's result
    kept = tree(art.directory / "synth-ecp5-85k")

    generate(M1X1, tmp_path, axis=True)             # same core Verilog, one more file
    assert sorted(p.name for p in art.directory.iterdir()) == [
        MARKER, "m1x1.core", "m1x1.v", "m1x1_axis.v", "manifest.json", "synth-ecp5-85k"]
    assert tree(art.directory / "synth-ecp5-85k") == kept

    generate(MacArrayConfig(name="m1x1", rows=1, cols=2), tmp_path)      # other RTL
    assert not (art.directory / "synth-ecp5-85k").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m1x1"]


def test_generate_fills_a_design_folder_hwgen_synth_created(tmp_path):
    from hwgen.emit.verilog import generate, write_design

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    verilog = write_design(M1X1, scratch).verilog.read_bytes()
    fake_synth_result(tmp_path / "out" / "m1x1", "ice40-up5k", verilog)
    kept = tree(tmp_path / "out" / "m1x1" / "synth-ice40-up5k")
    art = generate(M1X1, tmp_path / "out")
    assert tree(art.directory / "synth-ice40-up5k") == kept
    assert art.verilog.read_bytes() == verilog


# --- the command line ----------------------------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "mac_array_4x4.toml"


@pytest.mark.parametrize("command", ["generate", "synth", "flow", "hls"])
def test_output_under_a_file_fails_before_any_stage(tmp_path, command):
    (tmp_path / "somefile").write_text("not a folder\n")
    extra = ["--target", "ice40-up5k"] if command == "synth" else []
    proc = hwgen(command, EXAMPLE, *extra, "-o", "somefile/out", cwd=tmp_path)
    # Named for the option, with the path in the way; no stage line before it.
    assert_one_line_error(proc, "-o somefile/out: somefile exists and is not a directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["somefile"]


def test_generate_refuses_to_replace_a_users_folder(tmp_path):
    """A config named `sim` generated with `-o .` must not replace the user's ./sim/."""
    (tmp_path / "sim.toml").write_text('engine = "mac_array"\nname = "sim"\nrows = 1\ncols = 1\n')
    before = user_folder(tmp_path / "sim")
    for command in ("generate", "flow", "hls"):
        proc = hwgen(command, "sim.toml", "-o", ".", cwd=tmp_path)
        assert_one_line_error(proc, f"-o .: sim exists and was not written by hwgen (it has no "
                                    f"{MARKER} file); choose another folder or remove it")
    assert tree(tmp_path / "sim") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sim", "sim.toml"]


def test_synth_refuses_to_replace_a_users_folder(tmp_path):
    before = user_folder(tmp_path / "results")
    proc = hwgen("synth", EXAMPLE, "--target", "ice40-up5k", "-o", "results", cwd=tmp_path)
    assert_one_line_error(proc, f"-o results: exists and was not written by hwgen (it has no "
                                f"{MARKER} file); choose another folder or remove it")
    assert tree(tmp_path / "results") == before


INTERRUPT_ELABORATION = """
import os, signal, sys
from hwgen.cli import main
from hwgen.hdl.dsp import RegisteredProduct

real = RegisteredProduct.elaborate

def signal_then_elaborate(self, platform):
    os.kill(os.getpid(), signal.SIGTERM)
    return real(self, platform)

RegisteredProduct.elaborate = signal_then_elaborate
sys.exit(main(sys.argv[1:]))
"""


def test_a_signal_inside_elaboration_gives_one_error_line(tmp_path):
    """SIGTERM while Amaranth elaborates: the blocks built but not yet elaborated must not each
    warn "created but never used" after the error line (a real process: the warnings come when
    the interpreter frees them)."""
    (tmp_path / "interrupt.py").write_text(INTERRUPT_ELABORATION)
    (tmp_path / "m4x4.toml").write_text('engine = "mac_array"\nname = "m4x4"\n')
    proc = subprocess.run([sys.executable, "interrupt.py", "generate", "m4x4.toml", "-o", "out"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 143
    assert proc.stderr.splitlines() == ["[1/2] generate ... failed",
                                        "hwgen: error: interrupted (SIGTERM)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["interrupt.py", "m4x4.toml"]


@pytest.fixture
def default_stop_signals():
    """SIGTERM and SIGHUP with their default handlers for the test, as in a shell: pytest run
    under ``nohup`` inherits an ignored SIGHUP, which hwgen (rightly) leaves ignored."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    for sig in saved:
        signal.signal(sig, signal.SIG_DFL)
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_during_generate_leaves_nothing(tmp_path, monkeypatch, capsys, signum, code,
                                                 default_stop_signals):
    """SIGTERM (or SIGHUP) while the staging folder is being filled: exit 128 + signal, one error
    line, no staging folder and none of the parent folders the run created; a previous design
    stays."""
    from hwgen.emit import verilog

    real = verilog.write_design

    def write_then_signal(*args, **kwargs):
        written = real(*args, **kwargs)
        os.kill(os.getpid(), signum)
        return written

    config = tmp_path / "m1x1.toml"
    config.write_text('engine = "mac_array"\nname = "m1x1"\nrows = 1\ncols = 1\n')
    verilog.generate(M1X1, tmp_path / "old")
    before = tree(tmp_path / "old")
    monkeypatch.setattr(verilog, "write_design", write_then_signal)
    for out in (tmp_path / "new" / "a" / "b", tmp_path / "old"):
        assert cli.main(["generate", str(config), "-o", str(out)]) == code
        err = capsys.readouterr().err.splitlines()
        assert err[-2:] == ["[1/2] generate ... failed",
                            f"hwgen: error: interrupted ({signal.Signals(signum).name})"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m1x1.toml", "old"]
    assert tree(tmp_path / "old") == before
    # main put the default handlers back.
    assert signal.getsignal(signal.SIGTERM) is signal.getsignal(signal.SIGHUP) is signal.SIG_DFL
