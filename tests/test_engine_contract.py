"""The engine contract: an incomplete engine fails when it is built, and a new engine is its own
folder(s) plus one registration — proved with the throwaway ``passthrough`` engine
(tests/passthrough_engine.py, tests/passthrough_hls/) through generate, lint, simulate and hls."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import passthrough_engine
import pytest

from hwgen.config import EngineConfig, check_name
from hwgen.emit.hls import csim, render_hls
from hwgen.emit.verilog import generate
from hwgen.engines.base import Engine, EngineError
from hwgen.engines.registry import BUILT_IN, ENGINES, config_from_dict, register, unregister
from hwgen.flows.lint import lint
from hwgen.flows.sim import simulate

ENGINE = passthrough_engine.ENGINE


@pytest.fixture
def registered():
    """The passthrough engine, registered for one test."""
    register(ENGINE)
    yield ENGINE
    unregister(ENGINE.kind)


def _fields(**changes):
    values = {f.name: getattr(ENGINE, f.name) for f in dataclasses.fields(Engine)}
    return values | changes


def test_only_built_in_engines_are_registered_unless_a_test_asks():
    assert list(ENGINES) == ["mac_array", "snn", "snn_network", "sparse_attention"]


def test_built_in_engines_are_registered_by_their_package():
    assert [ENGINES[kind].config_class.__module__.rsplit(".", 1)[0] for kind in
            ("mac_array", "snn", "snn_network", "sparse_attention")] == list(BUILT_IN)


@dataclass(frozen=True)
class _Undocumented(EngineConfig):
    kind = "passthrough"
    name: str = field(default="x")       # no doc

    def validate(self) -> None:
        check_name("name", self.name)


@pytest.mark.parametrize("changes, message", [
    ({"kind": "not a name"}, "kind = \"not a name\""),
    ({"kind": "other"}, "PassthroughConfig.kind = 'passthrough': expected 'other'"),
    ({"config_class": dict}, "config_class = <class 'dict'>: expected an EngineConfig dataclass"),
    ({"config_class": _Undocumented}, "_Undocumented.name: every config field needs metadata"),
    ({"golden": None}, "golden = None: expected a callable"),
    ({"hls_vectors": 3}, "hls_vectors = 3: expected a callable"),
    ({"testbench": "no_such_testbench_module"}, "testbench = 'no_such_testbench_module': "
                                                "expected the dotted name of an importable"),
    ({"hls_templates": passthrough_engine.Path("/nonexistent")},
     "hls_templates = '/nonexistent': missing kernel.h.j2, kernel.cpp.j2, testbench.cpp.j2"),
])
def test_an_incomplete_engine_fails_when_built(changes, message):
    with pytest.raises(EngineError) as info:
        Engine(**_fields(**changes))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_kind_is_registered_once(registered):
    assert register(ENGINE) is ENGINE                      # the same object again: allowed
    with pytest.raises(EngineError, match="'passthrough' is already registered"):
        register(Engine(**_fields()))
    with pytest.raises(EngineError, match="expected an hwgen.engines.base.Engine"):
        register("passthrough")


def test_configs_of_a_registered_engine_load_like_the_built_in_ones(registered):
    cfg = config_from_dict({"engine": "passthrough", "name": "pt", "width": 5})
    assert cfg == passthrough_engine.PassthroughConfig(name="pt", width=5)


@pytest.mark.sim
def test_a_new_engine_runs_through_generate_lint_simulate_and_hls(registered, tmp_path):
    cfg = passthrough_engine.PassthroughConfig(name="pt_contract", width=5)
    artifacts = generate(cfg, tmp_path / "rtl")
    assert [p.name for p in artifacts.ports][:2] == ["clk", "rst"]
    assert lint(artifacts.verilog, cfg.name).clean
    result = simulate(artifacts.design, seed=3, vectors=40)
    assert result.passed, result.message
    assert result.beats == 2 * 42 and result.cycles > 0
    hls = render_hls(cfg, tmp_path / "hls")
    check = csim(cfg, hls.directory, seed=3, vectors=40)
    assert check.passed and check.outputs == 42, check.message


@pytest.mark.sim
def test_the_new_engines_testbench_catches_a_wrong_model(registered, tmp_path):
    """The passthrough testbench is not hollow: a golden model off by one fails it."""
    from hwgen.flows.sim import build, run_testbench

    cfg = passthrough_engine.PassthroughConfig(name="pt_wrong", width=4)
    build_dir = build(cfg)
    wrong = passthrough_engine.PassthroughConfig(name="pt_wrong", width=3)   # wraps at 8, not 16
    result = run_testbench(wrong, build_dir, seed=1, vectors=20, waves=False, valid_prob=0.7,
                           ready_prob=0.7, progress=lambda line: None)
    assert not result.passed and result.errors > 0
