"""``hwgen flow`` elaborates the design once: generate, lint, simulate and synthesize share one
:class:`hwgen.emit.design.Design`, and no stage parses the Verilog back."""

from __future__ import annotations

from pathlib import Path

import pytest
from amaranth.back import verilog as amaranth_verilog
from pyverilog.vparser.parser import VerilogParser

from hwgen.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "mac_array_2x2.toml"


@pytest.mark.sim
@pytest.mark.synth
def test_flow_elaborates_once_and_parses_no_verilog(tmp_path, monkeypatch, capsys):
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
    assert main(["flow", str(EXAMPLE), "--vectors", "8", "-o", str(tmp_path / "out")]) == 0
    assert calls == {"convert": 1, "parse": 0}
    table = capsys.readouterr().out.splitlines()[-1]
    assert table.split()[:3] == ["mac_array_2x2", "clean", "pass"]
