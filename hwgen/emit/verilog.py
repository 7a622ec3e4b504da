"""A :class:`~hwgen.emit.design.Design` -> ``rtl_out/<name>/``: Verilog, ``manifest.json`` and a
FuseSoC ``.core``.

With ``axis=True`` also ``<name>_axis.v``, the AXI4-Stream wrapper (:mod:`hwgen.emit.axis`), listed
in the manifest (``axis``) and the ``.core`` file.

The output is deterministic: the Verilog has no source locations (see :mod:`hwgen.emit.design`),
the manifest has no timestamps and sorted keys, so the same config and tool versions give
byte-identical files. Files are written to a temporary sibling folder and moved into place at the
end, so a failure never leaves a half-written output folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from hwgen.config import EngineConfig, config_hash, config_to_dict
from hwgen.emit.axis import axis_manifest, axis_ports, render_axis_wrapper, wrapper_name
from hwgen.emit.design import Design, Port, as_design
from hwgen.emit.folders import copy_results, publish_folder
from hwgen.emit.templates import render
from hwgen.versions import package_versions

__all__ = ["Artifacts", "generate", "write_design"]


@dataclass(frozen=True)
class Artifacts:
    """Paths of one generated design; ``axis_verilog`` and ``axis_ports`` (the AXI4-Stream
    wrapper ``<name>_axis.v`` and its ports) only with ``axis=True``. ``design`` is what was
    written: hand it to lint, simulate and synthesize to reuse its elaboration."""

    directory: Path
    verilog: Path
    manifest: Path
    core: Path
    ports: tuple[Port, ...]
    axis_verilog: Path | None = None
    axis_ports: tuple[Port, ...] = ()
    design: Design | None = None


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


def _artifacts(design: Design, directory: Path, axis: bool) -> Artifacts:
    cfg = design.cfg
    return Artifacts(directory, directory / f"{cfg.name}.v", directory / "manifest.json",
                     directory / f"{cfg.name}.core", design.ports,
                     directory / f"{wrapper_name(cfg)}.v" if axis else None,
                     axis_ports(design) if axis else (), design)


def write_design(design: Design | EngineConfig, directory: Path, axis: bool = False
                 ) -> Artifacts:
    """Write Verilog, manifest and core of ``design`` (elaborated here if given a config) into
    an existing ``directory``; with ``axis`` also the AXI4-Stream wrapper ``<name>_axis.v``."""
    design = as_design(design)
    cfg = design.cfg
    paths = _artifacts(design, directory, axis)
    paths.verilog.write_text(design.verilog)
    if axis:
        paths.axis_verilog.write_text(render_axis_wrapper(design))
    axis_entry = axis_manifest(design) if axis else None
    paths.manifest.write_text(_manifest(cfg, design.ports, axis_entry))
    core_axis = None if not axis else {"file": paths.axis_verilog.name, "top": wrapper_name(cfg)}
    paths.core.write_text(render("fusesoc/core.yml.j2", name=cfg.name, engine=cfg.kind,
                                 verilog=paths.verilog.name, config_hash=config_hash(cfg),
                                 version=package_versions(("hwgen",))["hwgen"], axis=core_axis))
    return paths


def generate(design: Design | EngineConfig, out_dir: str | Path = "rtl_out", axis: bool = False
             ) -> Artifacts:
    """Generate ``<out_dir>/<name>/`` for ``design`` (elaborated here if given a config),
    replacing a previous version; with ``axis`` the folder also holds the AXI4-Stream wrapper
    ``<name>_axis.v``.

    The new folder is complete before it takes the final name: the old one is first renamed aside,
    so at every moment ``<out_dir>/<cfg.name>`` is either the old or the new design
    (:func:`~hwgen.emit.folders.publish_folder`, which also refuses to replace a folder hwgen did
    not write). Synthesis results of the old folder whose Verilog is byte-identical to the new one
    (``synth-<target>/``) are copied into the new folder, so regenerating the same RTL keeps
    them; anything else under the old folder goes with it: it belonged to other RTL.
    """
    design = as_design(design)
    final = Path(out_dir) / design.name

    def fill(folder: Path) -> None:
        # ``final`` is still the previous version while the new one is staged.
        copy_results(final, folder, write_design(design, folder, axis=axis).verilog.name)

    publish_folder(out_dir, design.name, fill,
                   marker={"command": "generate", "config_hash": config_hash(design.cfg)})
    return _artifacts(design, final, axis)
