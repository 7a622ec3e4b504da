"""The files of ``hwgen select``: reading the layers, the report, writing the output folder.

:func:`read_layers` loads ``--weights`` / ``--acts`` (``.npy``: one layer named ``layer``;
``.npz``: one layer per key, the same keys in both). :func:`selection_report` measures the full
energy proxy before and after (:func:`.layer.layer_energy`, every tile and every activation row,
nothing subsampled: about 5 s for K = 256, C_out = 128, B = 2000 on a 4x4 array, 4 million array
cycles). :func:`selection_files` renders every output file and
:func:`write_folder` writes them into a staging folder that takes the final name only when it is
complete, so the output folder is always either absent, the previous run's, or this run's:

``weights_selected.npy`` / ``.npz``
    the projected weights (int64), with the input's keys
``<cfg.name>_<layer>.toml``
    one config per layer: the input config with ``weight_set`` = the chosen set
``report.json``
    per layer: the set, its size before and after, the output error, the surrogate energy and
    the full energy proxy (per category) before and after, the reduction; the global error, the
    budget and the greedy path
``report.md``
    the same as tables, and what the energy numbers are (and are not)
``energy_vs_set_size.svg``
    surrogate energy against set size along the greedy path, one line per layer
"""

from __future__ import annotations

import importlib.metadata
import io
import json
from pathlib import Path

import numpy as np

from hwgen.config import config_to_dict, config_toml
from hwgen.datafile import load_npy, load_npz
from hwgen.emit.folders import publish_folder
from hwgen.engines.mac_array.config import MacArrayConfig
from hwgen.report.plot import line_plot_svg
from hwgen.report.table import format_table

from .calibration import MultiplierCost
from .energy import CATEGORIES
from .layer import layer_energy
from .select import _NAME_RE, Layer, Selection, check_layer, layer_config

__all__ = ["ENERGY_UNITS", "TOOL", "energy_plot_svg", "read_layers", "report_markdown",
           "selection_files", "selection_report", "summary_rows", "write_folder"]

#: The ``tool`` entry of ``report.json``.
TOOL = "hwgen select"

#: What the energy numbers are, for the reports.
ENERGY_UNITS = (
    "The energy proxy is a switching-activity count, not joules. Its unit is the toggle: "
    "register bit toggles of every PE register (partial sums split into LSB and MSB groups, "
    "activations, products, weights or codebook indices), counted exactly from the golden "
    "model's cycle-by-cycle register trace of the layer's tiles streamed back to back, plus "
    "calibrated gate-output toggles inside the multipliers (per weight value, from a Yosys "
    "gate-level netlist simulated at zero delay: glitches are not counted). A register bit "
    "toggle and a gate-output toggle count the same, and wire loads, clock power and leakage "
    "are not modelled, so compare the numbers between weight sets of the same array; do not "
    "read them as power. The surrogate that ranks the greedy removals counts the multiplier and "
    "product-register toggles only (no partial sums), so it is lower than the proxy.")


# --- inputs ------------------------------------------------------------------------------------

def _load(path: Path) -> tuple[dict[str, np.ndarray], bool]:
    """Arrays of a .npy (key "layer") or .npz file, and whether it was an .npz.

    The files are user data: :mod:`hwgen.datafile` refuses headers that claim more data than
    the file holds or more than :data:`hwgen.datafile.MAX_BYTES`, pickles, and NaN or infinite
    values before anything large is allocated.
    Floating-point arrays are let through so that :func:`.select.check_layer` can say that the
    values need quantizing.
    """
    if path.suffix == ".npy":
        return {"layer": load_npy(path)}, False
    arrays = load_npz(path)
    if not arrays:
        raise ValueError(f"{path}: holds no arrays")
    return arrays, True


def read_layers(cfg: MacArrayConfig, weights_path, acts_path) -> tuple[list[Layer], bool]:
    """The layers in ``weights_path`` / ``acts_path``, validated against ``cfg``.

    Returns
    -------
    (layers, npz)
        ``npz`` is True for ``.npz`` inputs (one layer per key, in the weights file's order).

    Raises
    ------
    ValueError
        One line naming the file (and key): missing or unreadable file, one
        :mod:`hwgen.datafile` refuses (bad header, pickles, NaN), ``.npy`` mixed with ``.npz``,
        keys that differ, a key that is not an identifier, or an array that
        :func:`.select.check_layer` rejects.
    """
    weights_path, acts_path = Path(weights_path), Path(acts_path)
    # From the names alone, before either file is read.
    for path, what in ((weights_path, "weights"), (acts_path, "activations")):
        if path.suffix not in (".npy", ".npz"):
            raise ValueError(f"{path}: expected a .npy or .npz file of {what}")
    if weights_path.suffix != acts_path.suffix:
        raise ValueError(f"{acts_path}: expected a {weights_path.suffix} file like the weights "
                         f"{weights_path.name} (.npz: one array per layer, the same keys in both)")
    weights, npz = _load(weights_path)
    acts, _ = _load(acts_path)
    for key in weights:
        if key not in acts:
            raise ValueError(f"{acts_path}: no array {key!r} (the weights {weights_path.name} "
                             f"have {', '.join(map(repr, weights))})")
    for key in acts:
        if key not in weights:
            raise ValueError(f"{weights_path}: no array {key!r} (the activations "
                             f"{acts_path.name} have {', '.join(map(repr, acts))})")
    layers = []
    for key in weights:
        if not _NAME_RE.match(key):
            raise ValueError(f"{weights_path}: array name {key!r}: expected an identifier "
                             f"matching [A-Za-z_][A-Za-z0-9_]* (it names the layer and its "
                             f"config)")
        labels = ((f"{weights_path}[{key!r}]", f"{acts_path}[{key!r}]") if npz
                  else (str(weights_path), str(acts_path)))
        layers.append(check_layer(cfg, Layer(key, weights[key], acts[key]), *labels))
    return layers, npz


# --- the report --------------------------------------------------------------------------------

def _start_sizes(selection: Selection) -> dict[str, int]:
    removed = {ls.name: 0 for ls in selection.layers}
    for point in selection.path:
        removed[point.layer] += 1
    return {ls.name: len(ls.values) + removed[ls.name] for ls in selection.layers}


def selection_report(cfg: MacArrayConfig, layers: list[Layer], selection: Selection,
                     cost: MultiplierCost | None = None, inputs: dict | None = None,
                     progress=None) -> dict:
    """``report.json``'s content; runs :func:`.layer.layer_energy` before and after per layer.

    ``inputs`` (e.g. the input file names) is stored as is; ``progress`` (optional) is called
    with one line per layer before its two energy runs.
    """
    sizes = _start_sizes(selection)
    per_layer = {}
    for layer, chosen in zip(layers, selection.layers):
        if progress is not None:
            k, c = layer.weights.shape
            tiles = -(-k // cfg.k) * -(-c // cfg.cols)
            progress(f"{chosen.name}: {tiles} tile{'s' if tiles > 1 else ''} x "
                     f"{layer.acts.shape[0]} rows, before and after")
        before = layer_energy(cfg, layer.weights, layer.acts, cost=cost)
        after_cfg = layer_config(cfg, chosen)
        after = layer_energy(after_cfg, chosen.projected, layer.acts, cost=cost)
        per_layer[chosen.name] = {
            "config": f"{after_cfg.name}.toml",
            "weights_shape": list(layer.weights.shape),
            "act_rows": int(layer.acts.shape[0]),
            "values": list(chosen.values),
            "size_before": sizes[chosen.name],
            "size": len(chosen.values),
            "error": chosen.error,
            "surrogate_before": chosen.surrogate_before,
            "surrogate_after": chosen.surrogate_after,
            "energy_before": before.as_dict(),
            "energy_after": after.as_dict(),
            "reduction_percent": (100.0 * (1.0 - after.total / before.total)
                                  if before.total else 0.0),
        }
    return {
        "tool": TOOL,
        "hwgen": importlib.metadata.version("hwgen"),
        "inputs": dict(inputs or {}),
        "config": config_to_dict(cfg),
        "energy_units": ENERGY_UNITS,
        "error_definition": "per layer ||A (Wp - W)||_F / ||A W||_F (ideal outputs); the global "
                            "error is the sum over layers",
        "max_error": selection.max_error,
        "max_values": selection.max_values,
        "error": selection.error,
        "layers": per_layer,
        "path": [{"layer": p.layer, "removed": p.removed, "sizes": dict(p.sizes),
                  "error": p.error, "surrogate": dict(p.surrogate)} for p in selection.path],
    }


def _g(x: float) -> str:
    return f"{x:.4g}"


def summary_rows(report: dict) -> tuple[list[str], list[list]]:
    """The table ``hwgen select`` prints: headers and one row per layer."""
    headers = ["layer", "values", "error", "energy proxy", "reduction"]
    rows = [[name, f"{r['size_before']} -> {r['size']}", _g(r["error"]),
             f"{_g(r['energy_before']['total'])} -> {_g(r['energy_after']['total'])}",
             f"{r['reduction_percent']:.1f}%"] for name, r in report["layers"].items()]
    return headers, rows


def _budget(report: dict) -> str:
    parts = []
    if report["max_error"] is not None:
        parts.append(f"max_error {report['max_error']:g}")
    if report["max_values"] is not None:
        parts.append(f"max_values {report['max_values']}")
    return ", ".join(parts)


def report_markdown(report: dict) -> str:
    """``report.md``: summary table, per-layer sets and energy breakdown, the units."""
    headers, rows = summary_rows(report)
    budget = (f"Budget: {_budget(report)}. Global output error (sum of the layers' relative "
              f"errors ||A (Wp - W)||_F / ||A W||_F): {report['error']:.6g}.")
    lines = ["# hwgen select: power-aware weight sets", "", budget, "",
             "```", format_table(headers, rows), "```", ""]
    for name, r in report["layers"].items():
        b, a = r["energy_before"], r["energy_after"]
        breakdown = [[key, b["register_toggles"][key], a["register_toggles"][key]]
                     for key in CATEGORIES]
        breakdown += [["multiplier", round(b["multiplier_toggles"]),
                       round(a["multiplier_toggles"])],
                      ["total", round(b["total"]), round(a["total"])],
                      ["surrogate", round(r["surrogate_before"]), round(r["surrogate_after"])]]
        shape = (f"Weights {r['weights_shape'][0]} x {r['weights_shape'][1]}, "
                 f"{r['act_rows']} activation rows; config `{r['config']}`.")
        values = (f"Allowed set ({r['size']} of {r['size_before']} values): "
                  f"{', '.join(map(str, r['values']))}.")
        energy = (f"Output error {r['error']:.6g}; energy proxy {b['total']:.6g} -> "
                  f"{a['total']:.6g} toggles ({r['reduction_percent']:.1f}% less), "
                  f"{b['cycles']} -> {a['cycles']} cycles.")
        lines += [f"## {name}", "", shape, "", values, "", energy, "",
                  "```", format_table(["toggles", "before", "after"], breakdown), "```", ""]
    path = (f"The greedy path ({len(report['path'])} removals) is in `report.json` and "
            f"plotted in `energy_vs_set_size.svg`.")
    lines += ["## What the energy numbers are", "", ENERGY_UNITS, "", path, ""]
    return "\n".join(lines)


def energy_plot_svg(selection: Selection) -> str:
    """Surrogate energy against set size along the greedy path, one series per layer."""
    sizes = _start_sizes(selection)
    series = {ls.name: [(sizes[ls.name], ls.surrogate_before)] for ls in selection.layers}
    for point in selection.path:
        series[point.layer].append((point.sizes[point.layer], point.surrogate[point.layer]))
    return line_plot_svg(series, "Surrogate energy along the greedy path",
                         "allowed weight values |S|", "surrogate energy (toggles)")


def selection_files(cfg: MacArrayConfig, selection: Selection, report: dict, npz: bool,
                    weights_name: str | None = None) -> dict[str, bytes]:
    """Every output file's name and content (see the module docstring)."""
    buffer = io.BytesIO()
    projected = {ls.name: ls.projected.astype(np.int64) for ls in selection.layers}
    if npz:
        np.savez(buffer, **projected)
    else:
        np.save(buffer, projected[selection.layers[0].name])
    files = {f"weights_selected.{'npz' if npz else 'npy'}": buffer.getvalue()}
    budget = _budget(report)
    source = f" of {weights_name}" if weights_name else ""
    for ls in selection.layers:
        layer_cfg = layer_config(cfg, ls)
        notes = [(f"Written by hwgen select for layer '{ls.name}'{source}: {len(ls.values)} "
                  f"allowed weight values,"),
                 (f"relative output error {ls.error:.4g} (global error {selection.error:.4g}; "
                  f"budget: {budget}).")]
        files[f"{layer_cfg.name}.toml"] = config_toml(layer_cfg, notes).encode()
    files["report.json"] = (json.dumps(report, indent=1) + "\n").encode()
    files["report.md"] = report_markdown(report).encode()
    files["energy_vs_set_size.svg"] = energy_plot_svg(selection).encode()
    return files


# --- the output folder -------------------------------------------------------------------------

def write_folder(out_dir, files: dict[str, bytes]) -> Path:
    """Write ``files`` as the folder ``out_dir``, replacing earlier hwgen output atomically
    (:func:`hwgen.emit.folders.publish_folder`, which refuses any other existing folder with a
    :class:`hwgen.emit.folders.FolderError`; the command line checks that before it computes)."""
    out_dir = Path(out_dir)

    def fill(folder: Path) -> None:
        for name, content in files.items():
            (folder / name).write_bytes(content)

    publish_folder(out_dir.parent, out_dir.name, fill, marker={"command": "select"})
    return out_dir
