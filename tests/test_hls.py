"""HLS C++ output: rendering, the C simulation with g++, the ``hwgen hls`` command; mac_array.

The snn and sparse_attention kernels have their own files (test_hls_snn.py,
test_hls_attention.py); this one checks the shared machinery and the mac_array kernel.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys

import jinja2
import pytest

from hwgen.config import ConfigError
from hwgen.emit import hls
from hwgen.emit.hls import CsimError, csim, render_files, render_hls
from hwgen.emit.templates import TEMPLATE_DIR
from hwgen.engines.mac_array import MacArrayConfig
from hwgen.engines.mac_array import hls as mac_hls
from hwgen.engines.registry import ENGINES

SEED = 20261123

CONFIGS = {
    "dense_1x1": MacArrayConfig(name="hls_1x1", rows=1, cols=1),
    "dense_4x4": MacArrayConfig(name="hls_4x4"),
    "nm_2of4_pow2": MacArrayConfig(name="hls_2of4_pow2", rows=3, cols=2, sparsity="2:4",
                                   weight_set="pow2"),
    "nm_2of4_pow2_multiply": MacArrayConfig(name="hls_2of4_pow2_mul", rows=3, cols=2,
                                            sparsity="2:4", weight_set="pow2", pe="multiply"),
    "pow2_w5_unsigned_sat": MacArrayConfig(name="hls_pow2_w5", rows=2, cols=3, weight_bits=5,
                                           act_signed=False, acc_bits=13, overflow="saturate",
                                           weight_set="pow2"),
    "pow2_16bit": MacArrayConfig(name="hls_pow2_16", rows=2, cols=2, weight_bits=16,
                                 act_bits=16, acc_bits=33, weight_set="pow2"),
    "nm_1of3_set5_unsigned_sat": MacArrayConfig(
        name="hls_1of3_set5", rows=2, cols=3, sparsity="1:3", act_signed=False, acc_bits=17,
        overflow="saturate", weight_set=[-7, -1, 0, 2, 5]),
    "wrap_acc16": MacArrayConfig(name="hls_wrap16", rows=4, cols=3, acc_bits=16),
    "wide_16bit_sat": MacArrayConfig(name="hls_wide16", rows=2, cols=2, weight_bits=16,
                                     act_bits=16, acc_bits=33, overflow="saturate"),
}


@pytest.mark.parametrize("key", CONFIGS)
def test_csim_matches_golden(tmp_path, key):
    cfg = CONFIGS[key]
    artifacts = render_hls(cfg, tmp_path)
    result = csim(cfg, artifacts.directory, seed=SEED, vectors=24)
    assert result.passed, f"seed {SEED}: {result.message}"
    assert result.message == f"PASS {result.outputs} outputs"


def test_csim_catches_a_wrong_expectation(tmp_path, monkeypatch):
    cfg = CONFIGS["nm_2of4_pow2"]
    artifacts = render_hls(cfg, tmp_path)
    right = mac_hls.hls_vectors

    def one_off(cfg, seed, vectors):
        data = right(cfg, seed, vectors)
        expected = list(data.expected)
        expected[5] += 1
        return dataclasses.replace(data, expected=expected)

    monkeypatch.setitem(ENGINES, "mac_array",
                        dataclasses.replace(ENGINES["mac_array"], hls_vectors=one_off))
    result = csim(cfg, artifacts.directory, seed=SEED, vectors=8)
    assert not result.passed
    assert re.fullmatch(r"FAIL 1 of \d+ outputs differ \(first at 5: got -?\d+, expected -?\d+\)",
                        result.message), result.message


def test_rendering_is_deterministic_and_complete():
    cfg = CONFIGS["nm_1of3_set5_unsigned_sat"]
    first, second = render_files(cfg), render_files(cfg)
    assert first == second
    assert sorted(first) == sorted(["hls_1of3_set5.h", "hls_1of3_set5.cpp", "hls_1of3_set5_tb.cpp",
                                    "hwgen_hls.h", "run_hls.tcl"])
    kernel = first["hls_1of3_set5.cpp"]
    for pragma in ("#pragma HLS PIPELINE II=1", "#pragma HLS ARRAY_PARTITION",
                   "#pragma HLS INTERFACE axis port=acts"):
        assert pragma in kernel
    assert "set_top hls_1of3_set5" in first["run_hls.tcl"]


def test_templates_print_values_only():
    """Every {{ ... }} in the HLS templates is a bare name: Python computes, templates print."""
    for path in sorted((TEMPLATE_DIR / "hls").rglob("*.j2")):
        for expr in re.findall(r"\{\{(.*?)\}\}", path.read_text()):
            assert re.fullmatch(r"\s*[a-z_]+\s*", expr), f"{path}: {{{{{expr}}}}}"


def test_decode_table_is_the_config_codebook():
    """The printed table is cfg.codebook (padded with zeros to 2^code_bits), in order."""
    cfg = CONFIGS["nm_1of3_set5_unsigned_sat"]
    kernel = render_files(cfg)["hls_1of3_set5.cpp"]
    body = re.search(r"DECODE\[(\d+)\] = \{([^}]*)\}", kernel)
    values = [int(v) for v in body[2].replace(",", " ").split()]
    assert int(body[1]) == 8 and values == [-7, -1, 0, 2, 5, 0, 0, 0]
    assert "DECODE" not in render_files(CONFIGS["dense_4x4"])["hls_4x4.cpp"]


def test_shift_pes_multiply_by_shifting():
    """With shift PEs the kernel holds {nonzero, neg, shift} per weight, decoded by a table of
    the codebook's codes (-128 = {1, 1, 7}, 0 = {0, 0, 0}, 1 = {1, 0, 0}), and has no `*`
    between a weight and an activation; with pe = "multiply" it multiplies the decoded value."""
    shift = render_files(CONFIGS["nm_2of4_pow2"])["hls_2of4_pow2.cpp"]
    table = re.search(r"shift_code_t DECODE\[16\] = \{(.*?)\n\};", shift, re.S)[1]
    entries = re.findall(r"\{ (\d), (\d), (\d+) \}", table)
    assert entries[0] == ("1", "1", "7") and entries[8] == ("0", "0", "0")
    assert entries[9] == ("1", "0", "0") and len(entries) == 16
    assert "return w * a;" not in shift and "<< w.shift" in shift
    multiply = render_files(CONFIGS["nm_2of4_pow2_multiply"])["hls_2of4_pow2_mul.cpp"]
    assert "return w * a;" in multiply and "shift_code_t" not in multiply


def test_templates_are_strict(monkeypatch):
    """A value the template needs but Python did not provide is an error, never empty text."""
    full = mac_hls.hls_context
    monkeypatch.setitem(ENGINES, "mac_array", dataclasses.replace(
        ENGINES["mac_array"],
        hls_context=lambda cfg: {k: v for k, v in full(cfg).items() if k != "acc_bits"}))
    with pytest.raises(jinja2.UndefinedError, match="acc_bits"):
        render_files(CONFIGS["dense_4x4"])


def test_render_replaces_the_folder_atomically(tmp_path, monkeypatch):
    cfg = CONFIGS["dense_4x4"]
    render_hls(cfg, tmp_path)
    (tmp_path / cfg.name / "stale.txt").write_text("from an earlier run")
    render_hls(cfg, tmp_path)
    assert not (tmp_path / cfg.name / "stale.txt").exists()
    monkeypatch.setattr(hls, "render", lambda *a, **k: (_ for _ in ()).throw(OSError("disk")))
    with pytest.raises(OSError):
        render_hls(cfg, tmp_path / "new")
    assert not (tmp_path / "new").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [cfg.name]


@pytest.mark.parametrize("name", ["main", "template", "hls", "std", "hwgen", "int64_t"])
def test_names_that_clash_in_cpp_are_refused(name):
    """Refused when the config is built, before anything is rendered (tests/test_hostile_config.py
    covers every identifier the generated C++ declares)."""
    with pytest.raises(ConfigError) as info:
        dataclasses.replace(CONFIGS["dense_1x1"], name=name)
    assert str(info.value).startswith(f'name = "{name}": expected a name that ')


def test_missing_compiler_is_one_clear_error(tmp_path, monkeypatch):
    cfg = CONFIGS["dense_1x1"]
    artifacts = render_hls(cfg, tmp_path)
    monkeypatch.setattr(hls.shutil, "which", lambda name: None)
    with pytest.raises(CsimError, match=r"^g\+\+ not found: the C simulation needs a C\+\+17 "
                                        r"compiler on PATH"):
        csim(cfg, artifacts.directory)


def hwgen(*args, cwd):
    return subprocess.run([sys.executable, "-m", "hwgen.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_cli_hls_csim(tmp_path):
    (tmp_path / "mac.toml").write_text('engine = "mac_array"\nname = "cli_hls"\nrows = 2\n'
                                       'cols = 2\nsparsity = "2:4"\nweight_set = "pow2"\n')
    proc = hwgen("hls", "mac.toml", "--csim", "--seed", "3", "--vectors", "5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("wrote hls_out/cli_hls/\n")
    assert re.search(r"^csim: pass: PASS \d+ outputs", proc.stdout, re.M)
    assert sorted(p.name for p in (tmp_path / "hls_out" / "cli_hls").iterdir()) == sorted([
        ".hwgen", "cli_hls.h", "cli_hls.cpp", "cli_hls_tb.cpp", "hwgen_hls.h", "run_hls.tcl",
        "stimulus.txt", "expected.txt", "output.txt", "csim.log", "cli_hls_csim"])


def test_cli_hls_bad_config_writes_nothing(tmp_path):
    (tmp_path / "mac.toml").write_text('engine = "mac_array"\nweight_set = "pow3"\n')
    proc = hwgen("hls", "mac.toml", "--csim", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith('hwgen: error: mac.toml: weight_set = "pow3": expected ')
    assert proc.stderr.count("\n") == 1 and proc.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mac.toml"]
