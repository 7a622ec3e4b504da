"""The AXI4-Stream wrapper (``hwgen generate --axis``, :mod:`hwgen.emit.axis`).

* tdata/tlast mapping: widths worked out by hand from the configs, a ``last`` field in the middle
  of a payload, ports that disagree with the signature;
* the generated folder: wrapper file, manifest entry, FuseSoC core, determinism, the CLI;
* per engine, a Verilator build of core + wrapper (toplevel ``<name>_axis``): its port list as
  derived here from the config, lint with ``verilator -Wall`` (the Amaranth waivers limited to the
  core file, so the wrapper must be clean on its own), and the engine's own testbench run through
  the wrapper with valid gaps and backpressure, stress phases included.

The three builds run in parallel worker processes (their C++ compiles overlap); each is shared by
the tests of its engine.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

import hwgen.emit.verilog as verilog
from hwgen import cli
from hwgen.emit.axis import axis_ports, axis_streams, render_axis_wrapper
from hwgen.emit.design import AxisStream, Port, elaborate, verilog_ports
from hwgen.emit.verilog import generate
from hwgen.engines.mac_array import MacArrayConfig
from hwgen.engines.snn import SnnConfig
from hwgen.engines.sparse_attention import SparseAttentionConfig
from hwgen.flows.lint import lint
from hwgen.flows.sim import build, simulate

SEED = int(os.environ.get("HWGEN_TEST_SEED", "20261124"))
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "mac_array_4x4.toml"

MAC_4X4 = MacArrayConfig(name="mac_array_4x4", rows=4, cols=4)

#: One elaboration per config for the whole module.
design_of = functools.cache(elaborate)

#: Small configs for the wrapper simulations: (config, vectors). Between them they have input and
#: output tdata padding, streams without ``last`` and N:M index fields.
SIM_CONFIGS = {
    "mac_array": (MacArrayConfig(name="axis_mac", rows=2, cols=2, sparsity="2:4",
                                 act_signed=False, acc_bits=18), 16),
    "snn": (SnnConfig(name="axis_snn", timesteps=2, in_neurons=12, out_neurons=2, chunk=8,
                      pes=1, join="laggy", laggy_adders=4, reset="subtract", leak="none",
                      threshold=10), 3),
    "sparse_attention": (SparseAttentionConfig(name="axis_attn", max_len=6, head_dim=2, topk=2,
                                               lanes=2, out_bits=6), 2),
}

#: (interface, tdata bits, stream has last) per wrapper, worked out by hand from the configs.
#: mac_array_4x4: weights 4 x 8 bits; acts 4 x 8 + last = 33 -> 32; results 4 x 22 + last -> 88.
#: axis_mac (2x2, 2:4): weights 2 cols x 2 x (8 + 2-bit index) = 40; acts 2 rows x 4 x 8 = 64;
#:     results 2 x 18 = 36 -> 40 (padded to bytes).
#: axis_snn (T = 2, chunk 8, 8-bit weights): weights fiber beats, data max(8, 8) + mask 1 = 9 -> 16
#:     with last; spikes word 2 -> 8; out 2 -> 8.
#: axis_attn (head_dim 2, 8-bit data, 6-bit out): tokens 3 x 2 x 8 = 48; out 2 x 6 = 12 -> 16.
BY_HAND = {
    "mac_array_4x4": [("s_axis_weights", 32, False), ("s_axis_acts", 32, True),
                      ("m_axis_results", 88, True)],
    "axis_mac": [("s_axis_weights", 40, False), ("s_axis_acts", 64, True),
                 ("m_axis_results", 40, True)],
    "axis_snn": [("s_axis_weights", 16, True), ("s_axis_spikes", 8, True),
                 ("m_axis_out", 8, True)],
    "axis_attn": [("s_axis_tokens", 48, True), ("m_axis_out", 16, True)],
}


def expected_wrapper_ports(name: str) -> list[tuple[str, str, int]]:
    ports = [("aclk", "input", 1), ("aresetn", "input", 1)]
    for interface, tdata, _ in BY_HAND[name]:
        fwd, back = ("input", "output") if interface.startswith("s_") else ("output", "input")
        ports += [(f"{interface}_tdata", fwd, tdata), (f"{interface}_tvalid", fwd, 1),
                  (f"{interface}_tready", back, 1), (f"{interface}_tlast", fwd, 1)]
    return ports + [(f"perf__{c}", "output", 32) for c in ("cycles", "busy", "stall")]


def tree(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


# --- the mapping ------------------------------------------------------------------------------

def test_streams_by_hand():
    streams = {s.name: s for s in axis_streams(MAC_4X4)}
    assert list(streams) == ["weights", "acts", "results"]
    w, a, r = streams["weights"], streams["acts"], streams["results"]
    assert (w.direction, w.payload_width, w.last_offset, w.tdata_width) == ("s", 32, None, 32)
    assert (a.direction, a.payload_width, a.last_offset, a.tdata_width) == ("s", 33, 32, 32)
    assert (r.direction, r.payload_width, r.last_offset, r.tdata_width) == ("m", 89, 88, 88)
    assert (w.tlast, a.tlast, r.tlast) == ("ignored", "last", "last")
    for cfg, _ in SIM_CONFIGS.values():
        got = [(s.interface, s.tdata_width, s.has_last) for s in axis_streams(cfg)]
        assert got == BY_HAND[cfg.name]
    for cfg in (MAC_4X4, *(c for c, _ in SIM_CONFIGS.values())):
        assert [(p.name, p.direction, p.width) for p in axis_ports(design_of(cfg))] == \
            expected_wrapper_ports(cfg.name)


def test_last_in_the_middle_of_a_payload():
    """tdata keeps the other bits in order: a field above ``last`` moves down one bit."""
    s = AxisStream("x", "s", 10, 3, (("a", 0, 3), ("b", 4, 6)))
    assert (s.data_width, s.tdata_width) == (9, 16)
    assert s.segments() == ((2, 0, 2, 0), (9, 4, 8, 3))
    assert s.tdata_fields() == (("a", 2, 0), ("b", 8, 3))
    for payload in range(1 << 10):
        tdata, tlast = s.split(payload)
        assert tlast == (payload >> 3) & 1
        assert tdata == (payload & 0b111) | (payload >> 4) << 3
        assert s.merge(tdata, tlast) == payload
        assert s.merge(tdata | 0xFE00, tlast) == payload      # padding ignored
    edge = AxisStream("y", "m", 5, 0, (("b", 1, 4),))         # last at bit 0
    assert edge.segments() == ((4, 1, 3, 0),) and edge.tdata_width == 8
    assert edge.split(0b10111) == (0b1011, 1)
    bare = AxisStream("z", "m", 12, None, (("payload", 0, 12),))
    assert bare.tlast == "constant_1" and bare.split(0xABC) == (0xABC, 1)


def test_ports_that_disagree_with_the_signature_are_refused():
    design = design_of(MAC_4X4)
    ports = list(design.ports)
    i = next(n for n, p in enumerate(ports) if p.name == "acts__payload")
    wrong = ports[:i] + [Port("acts__payload", "input", 34)] + ports[i + 1:]
    with pytest.raises(RuntimeError, match=r"acts__payload .* \('input', 34\) .* 33"):
        render_axis_wrapper(dataclasses.replace(design, ports=tuple(wrong)))
    with pytest.raises(RuntimeError, match="results__ready is missing"):
        render_axis_wrapper(dataclasses.replace(
            design, ports=tuple(p for p in ports if p.name != "results__ready")))


# --- generate and the CLI -----------------------------------------------------------------------

def test_generate_axis_cli_writes_wrapper_manifest_and_core(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["generate", "--help"])
    assert "--axis" in capsys.readouterr().out
    code = cli.main(["generate", str(EXAMPLE), "--axis", "-o", str(tmp_path / "cli")])
    out = capsys.readouterr().out
    assert code == 0, out
    folder = tmp_path / "cli" / "mac_array_4x4"
    assert out.splitlines()[:5] == [f"wrote {folder}/", "  mac_array_4x4.v",
                                    "  mac_array_4x4_axis.v", "  manifest.json",
                                    "  mac_array_4x4.core"]
    assert "lint: clean" in out
    assert sorted(p.name for p in folder.iterdir()) == [
        ".hwgen", "mac_array_4x4.core", "mac_array_4x4.v", "mac_array_4x4_axis.v",
        "manifest.json"]

    wrapper = (folder / "mac_array_4x4_axis.v").read_text()
    ports = verilog_ports(wrapper, "mac_array_4x4_axis")
    assert [(p.name, p.direction, p.width) for p in ports] == \
        expected_wrapper_ports("mac_array_4x4")
    assert "    mac_array_4x4 core (\n" in wrapper

    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["files"] == {"verilog": "mac_array_4x4.v", "core": "mac_array_4x4.core",
                                 "axis_wrapper": "mac_array_4x4_axis.v"}
    axis = manifest["axis"]
    assert (axis["file"], axis["top"], axis["clock"], axis["reset"]) == (
        "mac_array_4x4_axis.v", "mac_array_4x4_axis", "aclk", "aresetn")
    assert axis["reset_polarity"] == "active_low_synchronous"
    assert [(p["name"], p["direction"], p["width"]) for p in axis["ports"]] == \
        expected_wrapper_ports("mac_array_4x4")
    assert axis["streams"] == [
        {"stream": "weights", "interface": "s_axis_weights", "direction": "in",
         "payload_width": 32, "tdata_width": 32, "tdata_fields": {"w": [31, 0]},
         "tlast": "ignored", "last_bit": None},
        {"stream": "acts", "interface": "s_axis_acts", "direction": "in",
         "payload_width": 33, "tdata_width": 32, "tdata_fields": {"a": [31, 0]},
         "tlast": "last", "last_bit": 32},
        {"stream": "results", "interface": "m_axis_results", "direction": "out",
         "payload_width": 89, "tdata_width": 88, "tdata_fields": {"y": [87, 0]},
         "tlast": "last", "last_bit": 88},
    ]

    core = (folder / "mac_array_4x4.core").read_text().splitlines()
    assert "      - mac_array_4x4.v" in core and "      - mac_array_4x4_axis.v" in core
    assert core[-3:] == ["  axis:", "    <<: *default", "    toplevel: mac_array_4x4_axis"]

    # The API gives the same bytes (deterministic, CLI or not); without --axis no wrapper and
    # the manifest and core file of a plain generate.
    api = generate(MAC_4X4, tmp_path / "api", axis=True)
    assert api.axis_verilog == api.directory / "mac_array_4x4_axis.v"
    assert api.axis_ports == ports
    assert tree(api.directory) == tree(folder)
    plain = generate(MAC_4X4, tmp_path / "cli")
    assert plain.axis_verilog is None and plain.axis_ports == ()
    assert sorted(p.name for p in folder.iterdir()) == [
        ".hwgen", "mac_array_4x4.core", "mac_array_4x4.v", "manifest.json"]
    assert "axis" not in json.loads(plain.manifest.read_text())
    assert "_axis" not in plain.core.read_text()


def test_failed_wrapper_leaves_the_previous_output(tmp_path, monkeypatch):
    cfg = MacArrayConfig(name="m1x1", rows=1, cols=1)
    before = tree(generate(cfg, tmp_path).directory)

    def broken(*args, **kwargs):
        raise RuntimeError("wrapper exploded")

    monkeypatch.setattr(verilog, "render_axis_wrapper", broken)
    with pytest.raises(RuntimeError, match="wrapper exploded"):
        generate(cfg, tmp_path, axis=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m1x1"]
    assert tree(tmp_path / "m1x1") == before


def test_render_is_deterministic_and_matches_the_parsed_ports():
    cfg = SIM_CONFIGS["snn"][0]
    text = render_axis_wrapper(design_of(cfg))
    assert text == render_axis_wrapper(elaborate(cfg))
    assert verilog_ports(text, "axis_snn_axis") == axis_ports(design_of(cfg))
    # The template did the printing, Python the arithmetic: every bit range is literal.
    assert "assign core_spikes_payload[1:0] = s_axis_spikes_tdata[1:0];" in text
    assert "assign core_spikes_payload[2] = s_axis_spikes_tlast;" in text
    assert "assign m_axis_out_tdata[7:2] = 6'd0;" in text
    assert "s_axis_spikes_tdata[7:2]," in text and "s_axis_weights_tlast," in text


# --- per engine: build, ports, lint, simulation -------------------------------------------------

@pytest.fixture(scope="module")
def builds():
    """key -> Future of the build folder of core + wrapper (toplevel ``<name>_axis``).

    Separate processes (not threads: Amaranth is not known to be thread-safe) so the three
    Verilator/C++ builds overlap; ``build`` caches and locks them like every other build."""
    with ProcessPoolExecutor(len(SIM_CONFIGS),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        yield {key: pool.submit(build, cfg, False, True)
               for key, (cfg, _) in SIM_CONFIGS.items()}


@pytest.mark.sim
@pytest.mark.parametrize("key", SIM_CONFIGS)
def test_wrapper_ports_and_lint(builds, key):
    cfg, _ = SIM_CONFIGS[key]
    build_dir = builds[key].result()
    assert build_dir.name.endswith("-axis")
    core, wrapper = build_dir / f"{cfg.name}.v", build_dir / f"{cfg.name}_axis.v"
    ports = verilog_ports(wrapper.read_text(), f"{cfg.name}_axis")
    assert [(p.name, p.direction, p.width) for p in ports] == expected_wrapper_ports(cfg.name)
    result = lint([core, wrapper], f"{cfg.name}_axis", waived=[core])
    assert result.clean, result.messages


@pytest.mark.sim
@pytest.mark.parametrize("key", SIM_CONFIGS)
def test_engine_testbench_passes_through_the_wrapper(builds, key):
    cfg, vectors = SIM_CONFIGS[key]
    builds[key].result()
    result = simulate(cfg, seed=SEED, vectors=vectors, axis=True)
    assert result.passed, f"seed {SEED}: {result.message}"
    details = result.details
    assert result.errors == 0 and result.beats == details["expected_beats"] > 0
    assert result.log_path.parents[1].name.endswith("-axis")      # the wrapper build ran
    assert result.stall > 0, "backpressure produced no stall cycles"
    if key == "mac_array":
        # The wrapper adds no cycle: the no-stall phase still meets the cycle model exactly.
        assert result.utilization == 1.0
    elif key == "snn":
        # Edge layers and the random stress layer ran, each after a reset through aresetn.
        names = [s["name"] for s in details["segments"]]
        assert names[0] == "random" and names[-1] == "random_stress" and len(names) > 3
        assert details["options"] == {"profile": None, "phase2": True}
    else:
        throughput = details["throughput"]
        assert throughput["cycles_alone"] == throughput["model_alone"]
        assert throughput["cycles_stream"] == throughput["model_stream"]
