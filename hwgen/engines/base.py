"""The engine contract: everything the flows need from one engine kind (docs/architecture.md §1).

An engine is one :class:`Engine` object, built in the engine's package (``ENGINE`` in its
``__init__.py``) and registered by one line in :mod:`hwgen.engines.registry`. Building it checks
that every piece exists and fits together, so an incomplete engine fails at import with one line
naming the engine and the missing piece, not in the middle of a flow.

The engine speaks to the flows through two shared types:

* :class:`HlsVectors` — the stimulus and the golden model's outputs of one C simulation;
* :class:`TestbenchResult` — what every cocotb testbench writes at the end of a run and
  :func:`hwgen.flows.sim.simulate` reads back.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwgen.config import EngineConfig, check_name

__all__ = ["EngineError", "Engine", "HlsVectors", "TestbenchResult", "HLS_TEMPLATES",
           "default_hls_templates"]

#: The files an engine's HLS template folder holds (rendered by :mod:`hwgen.emit.hls`).
HLS_TEMPLATES = ("kernel.h.j2", "kernel.cpp.j2", "testbench.cpp.j2")


class EngineError(TypeError):
    """An engine definition is incomplete or inconsistent; raised when it is built."""


@dataclass(frozen=True)
class HlsVectors:
    """One C-simulation run: ``stimulus`` in the order the testbench reads it, ``expected`` the
    golden model's outputs in the order the testbench writes them (all integers)."""

    stimulus: list[int]
    expected: list[int]


def default_hls_templates(kind: str) -> Path:
    """``templates/hls/<kind>/`` of the installed templates (package ``hwgen.templates``)."""
    return Path(str(importlib.resources.files("hwgen.templates"))) / "hls" / kind


@dataclass(frozen=True)
class Engine:
    """One engine kind, as the flows see it.

    Parameters
    ----------
    kind : str
        The ``engine`` value of a config file; also the config class's ``kind``.
    config_class : type
        Its frozen config dataclass (a subclass of :class:`hwgen.config.EngineConfig`): every
        field has a default and a ``doc`` metadata entry; construction validates.
    component : callable
        ``component(cfg) -> amaranth.lib.wiring.Component``: the RTL top. Its signature's stream
        members become ``<stream>__payload/valid/ready`` ports, ``perf`` the counters.
    golden : callable
        The golden model's entry point, written from the specification: the exact integer
        results the RTL must reproduce (its arguments are the engine's own; the testbench and
        ``hls_vectors`` call it).
    stimulus : callable
        The engine's random stimulus generator, seeded (its arguments are the engine's own).
    cycle_model : callable
        The analytic cycle model the testbench checks the RTL's timing against.
    hls_context : callable
        ``hls_context(cfg) -> dict``: every value the HLS templates print, ready to print.
    hls_vectors : callable
        ``hls_vectors(cfg, seed, vectors) -> HlsVectors``: C-simulation stimulus and expected
        outputs from the golden model.
    testbench : str
        Dotted name of the cocotb test module that checks the RTL against the golden model and
        writes a :class:`TestbenchResult` (the built-in ones live in ``sim/``, installed as
        ``hwgen.testbench``). The simulator imports it by this name.
    hls_templates : Path, optional
        Folder holding the HLS templates :data:`HLS_TEMPLATES`; default
        ``templates/hls/<kind>/``.
    """

    kind: str
    config_class: type
    component: Callable[[EngineConfig], Any]
    golden: Callable[..., Any]
    stimulus: Callable[..., Any]
    cycle_model: Callable[..., Any]
    hls_context: Callable[[EngineConfig], dict]
    hls_vectors: Callable[[EngineConfig, int, int], HlsVectors]
    testbench: str
    hls_templates: Path | None = None

    def __post_init__(self):
        if self.hls_templates is None:
            object.__setattr__(self, "hls_templates", default_hls_templates(self.kind))
        for problem in self._problems():
            raise EngineError(f"engine {self.kind!r}: {problem}")

    def _problems(self):
        """Every way this definition is incomplete, as one-line descriptions (lazily)."""
        try:
            check_name("kind", self.kind)
        except ValueError as exc:
            yield str(exc)
        cls = self.config_class
        if not (isinstance(cls, type) and issubclass(cls, EngineConfig)
                and dataclasses.is_dataclass(cls)):
            yield f"config_class = {cls!r}: expected an EngineConfig dataclass"
            return
        if cls.kind != self.kind:
            yield f"config_class {cls.__name__}.kind = {cls.kind!r}: expected {self.kind!r}"
        for f in dataclasses.fields(cls):
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                yield f"{cls.__name__}.{f.name}: every config field needs a default"
            if not f.metadata.get("doc"):
                yield f"{cls.__name__}.{f.name}: every config field needs metadata={{'doc': ...}}"
        for name in ("component", "golden", "stimulus", "cycle_model", "hls_context",
                     "hls_vectors"):
            if not callable(getattr(self, name)):
                yield f"{name} = {getattr(self, name)!r}: expected a callable"
        if not isinstance(self.testbench, str) or _find_module(self.testbench) is None:
            yield f"testbench = {self.testbench!r}: expected the dotted name of an importable " \
                  f"cocotb test module"
        missing = [t for t in HLS_TEMPLATES if not (Path(self.hls_templates) / t).is_file()]
        if missing:
            yield f"hls_templates = {str(self.hls_templates)!r}: missing {', '.join(missing)}"


def _find_module(name: str):
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


@dataclass(frozen=True)
class TestbenchResult:
    """What one testbench run measured; written as JSON at the end of every run.

    beats : result beats compared with the golden model; expected_beats : beats it expected
    errors : beats that differed
    timeouts : phases that ended with results missing
    timing_errors : transfers off the cycle model
    counter_errors : ``perf`` counters that disagree with what the testbench observed
    counters : ``cycles``, ``busy``, ``stall`` over the checked run
    throughput : what the throughput phase measured; ``steady_state_utilization`` (0..1) is
        required, the rest is the engine's own (with ``utilization_definition`` saying what it
        counts)
    extra : further engine-specific entries, written at the top level of the JSON
    """

    __test__ = False   # not a pytest class

    beats: int
    expected_beats: int
    errors: int
    timeouts: list[str]
    timing_errors: list[str]
    counter_errors: list[str]
    counters: dict[str, int]
    throughput: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def problems(self) -> list[str]:
        """Timeouts, timing and counter errors, each one line."""
        return [f"results missing after {t}" for t in self.timeouts] \
            + self.timing_errors + self.counter_errors

    @property
    def passed(self) -> bool:
        return self.errors == 0 and self.beats == self.expected_beats and not self.problems

    @property
    def utilization(self) -> float:
        return float(self.throughput["steady_state_utilization"])

    def to_dict(self) -> dict[str, Any]:
        core = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "extra"}
        clash = sorted(set(core) & set(self.extra))
        if clash:
            raise ValueError(f"extra entries {clash} would replace result fields")
        return {**core, **self.extra}

    def write(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def read(cls, path: Path) -> "TestbenchResult":
        data = json.loads(Path(path).read_text())
        names = [f.name for f in dataclasses.fields(cls) if f.name != "extra"]
        missing = [n for n in names if n not in data]
        if missing or "steady_state_utilization" not in data.get("throughput", {}):
            raise ValueError(f"{path}: not a testbench result (missing "
                             f"{', '.join(missing) or 'throughput.steady_state_utilization'})")
        return cls(**{n: data.pop(n) for n in names}, extra=data)
