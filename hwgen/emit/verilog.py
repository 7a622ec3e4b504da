"""Config -> ``rtl_out/<name>/``: Verilog, ``manifest.json`` and a FuseSoC ``.core``.

With ``axis=True`` also ``<name>_axis.v``, the AXI4-Stream wrapper (:mod:`hwgen.emit.axis`), listed
in the manifest (``axis``) and the ``.core`` file.

The output is deterministic: Amaranth is asked not to emit source locations (which hold absolute
paths), the manifest has no timestamps and sorted keys, so the same config and tool versions give
byte-identical files. Files are written to a temporary sibling folder and moved into place at the
end, so a failure never leaves a half-written output folder.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog as amaranth_verilog

from hwgen.config import EngineConfig, config_hash, config_to_dict
from hwgen.emit.axis import axis_manifest, render_axis_wrapper, wrapper_name
from hwgen.emit.folders import publish_folder
from hwgen.emit.templates import render
from hwgen.engines.registry import ENGINES
from hwgen.flows.toolchain import package_versions

__all__ = ["Port", "Artifacts", "emit_verilog", "extract_ports", "generate", "write_design"]


@dataclass(frozen=True)
class Port:
    name: str
    direction: str   # "input" or "output"
    width: int


@dataclass(frozen=True)
class Artifacts:
    """Paths of one generated design; ``axis_verilog`` and ``axis_ports`` (the AXI4-Stream
    wrapper ``<name>_axis.v`` and its ports) only with ``axis=True``."""

    directory: Path
    verilog: Path
    manifest: Path
    core: Path
    ports: tuple[Port, ...]
    axis_verilog: Path | None = None
    axis_ports: tuple[Port, ...] = ()


def emit_verilog(cfg: EngineConfig) -> str:
    """Elaborate the engine for ``cfg`` and convert it to Verilog text (top module ``cfg.name``)."""
    component = ENGINES[cfg.kind].build_component(cfg)
    return amaranth_verilog.convert(component, name=cfg.name, emit_src=False)


_ATTRIBUTE = re.compile(r"\(\*.*?\*\)", re.S)


def extract_ports(text: str, top: str) -> tuple[Port, ...]:
    """The ports of module ``top`` in declaration order, read with pyverilog.

    pyverilog cannot parse ``(* ... *)`` attributes, so they are stripped first; its parser tables
    go to a temporary directory, never the working directory.
    """
    from pyverilog.vparser import ast
    from pyverilog.vparser.parser import VerilogParser

    with tempfile.TemporaryDirectory(prefix="hwgen-pyverilog-") as tables:
        tree = VerilogParser(outputdir=tables, debug=False).parse(_ATTRIBUTE.sub("", text))
    modules = [d for d in tree.description.definitions
               if isinstance(d, ast.ModuleDef) and d.name == top]
    if not modules:
        raise RuntimeError(f"module {top!r} not found in generated Verilog")
    # Non-ANSI headers list Port(name); ANSI headers (the AXI-Stream wrapper) Ioport(Input, ...).
    order = [p.first.name if isinstance(p, ast.Ioport) else p.name
             for p in modules[0].portlist.ports]
    found: dict[str, Port] = {}

    def visit(node):
        if isinstance(node, (ast.Input, ast.Output)) and node.name in order:
            width = 1
            if node.width is not None:
                width = abs(int(node.width.msb.value) - int(node.width.lsb.value)) + 1
            kind = "input" if isinstance(node, ast.Input) else "output"
            found[node.name] = Port(node.name, kind, width)
        for child in node.children():
            visit(child)

    visit(modules[0])
    return tuple(found[name] for name in order)


def _manifest(cfg: EngineConfig, ports: tuple[Port, ...], axis: dict | None = None) -> str:
    manifest = {
        "name": cfg.name,
        "engine": cfg.kind,
        "config": config_to_dict(cfg),
        "config_hash": config_hash(cfg),
        "ports": [{"name": p.name, "direction": p.direction, "width": p.width} for p in ports],
        "tools": package_versions(),
        "files": {"verilog": f"{cfg.name}.v", "core": f"{cfg.name}.core"},
    }
    if axis is not None:
        manifest["axis"] = axis
        manifest["files"]["axis_wrapper"] = axis["file"]
    return json.dumps(manifest, indent=2, sort_keys=True) + "\n"


def _artifacts(cfg: EngineConfig, directory: Path, ports: tuple[Port, ...],
               axis_ports: tuple[Port, ...] | None = None) -> Artifacts:
    return Artifacts(directory, directory / f"{cfg.name}.v", directory / "manifest.json",
                     directory / f"{cfg.name}.core", ports,
                     None if axis_ports is None else directory / f"{wrapper_name(cfg)}.v",
                     axis_ports or ())


def write_design(cfg: EngineConfig, directory: Path, text: str | None = None,
                 axis: bool = False) -> Artifacts:
    """Write Verilog, manifest and core for ``cfg`` into an existing ``directory``; with ``axis``
    also the AXI4-Stream wrapper ``<name>_axis.v``."""
    text = emit_verilog(cfg) if text is None else text
    ports = extract_ports(text, cfg.name)
    wrapper = axis_entry = axis_ports = None
    if axis:
        wrapper = render_axis_wrapper(cfg, ports)
        axis_ports = extract_ports(wrapper, wrapper_name(cfg))
        axis_entry = axis_manifest(cfg, axis_ports)
    paths = _artifacts(cfg, directory, ports, axis_ports)
    paths.verilog.write_text(text)
    if wrapper is not None:
        paths.axis_verilog.write_text(wrapper)
    paths.manifest.write_text(_manifest(cfg, ports, axis_entry))
    core_axis = None if not axis else {"file": paths.axis_verilog.name, "top": wrapper_name(cfg)}
    paths.core.write_text(render("fusesoc/core.yml.j2", name=cfg.name, engine=cfg.kind,
                                 verilog=paths.verilog.name, config_hash=config_hash(cfg),
                                 version=package_versions(("hwgen",))["hwgen"], axis=core_axis))
    return paths


def generate(cfg: EngineConfig, out_dir: str | Path = "rtl_out", axis: bool = False) -> Artifacts:
    """Generate ``<out_dir>/<cfg.name>/`` for ``cfg``, replacing a previous version; with
    ``axis`` the folder also holds the AXI4-Stream wrapper ``<name>_axis.v``.

    The new folder is complete before it takes the final name: the old one is first renamed aside,
    so at every moment ``<out_dir>/<cfg.name>`` is either the old or the new design. Anything else
    under the old folder (e.g. synthesis results) goes with it: they belonged to the old RTL.
    """
    written = publish_folder(out_dir, cfg.name, lambda folder: write_design(cfg, folder,
                                                                           axis=axis))
    final = Path(out_dir) / cfg.name
    return _artifacts(cfg, final, written.ports, written.axis_ports if axis else None)
