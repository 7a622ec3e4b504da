"""The README's ``hwgen flow``: every stage runs, the table says so, and the design is elaborated
once generically — generate, lint and simulate share one :class:`hwgen.emit.design.Design` — and
once more with the ECP5 primitives synthesis reads (the MAC array's products are DSP blocks,
``hwgen.emit.design.for_family``); no stage parses the Verilog back. In-process, so the
elaborations can be counted."""

from __future__ import annotations

import json

import pytest
from amaranth.back import verilog as amaranth_verilog
from pyverilog.vparser.parser import VerilogParser

from hwgen.cli import main
from hwgen.flows.cache import cache_root


@pytest.mark.sim
@pytest.mark.synth
def test_flow_quickstart_elaborates_once(tmp_path, monkeypatch, capsys):
    calls = {"convert": 0, "parse": 0}
    convert, parse = amaranth_verilog.convert, VerilogParser.parse

    def counting_convert(*args, **kwargs):
        calls["convert"] += 1
        return convert(*args, **kwargs)

    def counting_parse(self, *args, **kwargs):
        calls["parse"] += 1
        return parse(self, *args, **kwargs)

    monkeypatch.setattr(amaranth_verilog, "convert", counting_convert)
    monkeypatch.setattr(VerilogParser, "parse", counting_parse)
    # The session's Verilator builds are shared (the README test builds the same design).
    monkeypatch.setenv("HWGEN_CACHE", str(cache_root()))
    monkeypatch.chdir(tmp_path)
    assert main(["flow", "--vectors", "16"]) == 0
    assert calls == {"convert": 2, "parse": 0}

    out, err = capsys.readouterr()
    header, _, row = out.splitlines()[-3:]
    values = dict(zip(header.replace("Fmax MHz", "Fmax_MHz").split(), row.split()))
    assert values["design"] == "mac_array_4x4" and values["target"] == "ecp5-85k"
    assert (values["lint"], values["sim"], values["fits"]) == ("clean", "pass", "yes")
    assert int(values["cycles"]) > 16 and values["util"].endswith("%")
    assert int(values["LUT"]) > 0 and int(values["DSP"]) > 0 and float(values["Fmax_MHz"]) > 0
    report = tmp_path / "rtl_out" / "mac_array_4x4" / "synth-ecp5-85k" / "report.json"
    assert json.loads(report.read_text())["luts"] == int(values["LUT"])
    stages = [line.split(" ...")[0] for line in err.splitlines() if line[:1] == "["]
    assert sorted(set(stages)) == ["[1/4] generate", "[2/4] lint",
                                   "[3/4] simulate 16 vectors, seed 1",
                                   "[4/4] synthesize for ecp5-85k"]
