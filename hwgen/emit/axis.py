"""The AXI4-Stream wrapper: every valid/ready stream of a core as an AXI4-Stream interface.

``hwgen generate CONFIG --axis`` writes ``<name>_axis.v`` next to the core: module
``<name>_axis`` instantiates the core ``<name>`` and renames its ports (docs/architecture.md §3):

* ``aclk`` is the core's ``clk``; ``aresetn`` is active low and synchronous, the core's
  ``rst = ~aresetn``. While ``aresetn`` is low every ``m_axis_*_tvalid`` and ``s_axis_*_tready``
  is held low (AXI4-Stream: a master drives TVALID low during reset).
* A stream *into* the core becomes the slave interface ``s_axis_<stream>_tdata/tvalid/tready/
  tlast``, a stream *out of* it the master interface ``m_axis_<stream>_...``.
* ``tdata`` is the payload without its top-level 1-bit ``last`` field (the remaining bits in their
  order: a field keeps its offset if it lies below ``last`` and moves down one bit if above),
  zero-padded to a multiple of 8 bits (AXI4-Stream byte lanes; TKEEP/TSTRB are not used, every
  byte is a data byte; the wrapper ignores the padding of an input and drives it 0 on an output).
  ``tlast`` is ``last``.
* A stream without ``last``: ``s_axis_*_tlast`` is accepted and ignored; ``m_axis_*_tlast`` is
  always 1 (every beat is a packet of its own).
* Every other port (the ``perf__*`` counters) passes through under its own name.

:func:`axis_streams` gives the interfaces (:class:`hwgen.emit.design.AxisStream`, read from the
engine's Amaranth signature); :func:`render_axis_wrapper` renders
``templates/verilog/axis_wrapper.v.j2`` for a :class:`~hwgen.emit.design.Design` with every width
and bit range computed here (the template does no arithmetic), after checking that the design's
ports agree with its streams.
"""

from __future__ import annotations

from hwgen.config import EngineConfig, config_hash
from hwgen.emit.design import AxisStream, Design, Port, component, signature_streams
from hwgen.emit.templates import render
from hwgen.versions import package_versions

__all__ = ["axis_streams", "axis_ports", "axis_manifest", "render_axis_wrapper", "wrapper_name"]

#: Template rendered by :func:`render_axis_wrapper` (relative to ``templates/``).
TEMPLATE = "verilog/axis_wrapper.v.j2"


def wrapper_name(cfg: EngineConfig) -> str:
    """Module (and file stem) of the wrapper: ``<cfg.name>_axis``."""
    return f"{cfg.name}_axis"


def axis_streams(design_or_cfg: Design | EngineConfig) -> tuple[AxisStream, ...]:
    """The AXI4-Stream interfaces of a core, in the order of its signature (from a config, the
    component is built for its signature only, never elaborated)."""
    if isinstance(design_or_cfg, Design):
        return design_or_cfg.streams
    return signature_streams(component(design_or_cfg).signature)


def _check_ports(cfg: EngineConfig, streams: list[AxisStream], ports) -> list:
    """The core's ports that are not ``clk``, ``rst`` or stream ports (they pass through);
    raises ``RuntimeError`` if ``ports`` disagree with the signature on any of those."""
    by_name = {p.name: p for p in ports}
    expected = {"clk": ("input", 1), "rst": ("input", 1)}
    for s in streams:
        fwd, back = ("input", "output") if s.direction == "s" else ("output", "input")
        expected |= {f"{s.name}__payload": (fwd, s.payload_width), f"{s.name}__valid": (fwd, 1),
                     f"{s.name}__ready": (back, 1)}
    for name, (direction, width) in expected.items():
        port = by_name.get(name)
        found = None if port is None else (port.direction, port.width)
        if found != (direction, width):
            raise RuntimeError(f"{cfg.name}: port {name} is {found or 'missing'} in the Verilog "
                               f"but ({direction!r}, {width}) in the Amaranth signature")
    return [p for p in ports if p.name not in expected]


_TLAST_NOTE = {"last": "the payload's last field",
               "ignored": "ignored: the stream has no last field",
               "constant_1": "always 1: the stream has no last field"}


def _tdata_note(s: AxisStream) -> str:
    """Where the payload's fields sit in tdata, e.g. ``wmask [15:0], wvals [143:16]``."""
    parts = [f"{name} [{msb}:{lsb}]" for name, msb, lsb in s.tdata_fields()]
    if s.tdata_width > s.data_width:
        parts.append(f"padding [{s.tdata_width - 1}:{s.data_width}]")
    return ", ".join(parts)


def _declarations(streams: list[AxisStream], passthrough) -> list[tuple[str, int, str, str]]:
    """(direction, width, name, comment) of every wrapper port, in order."""
    decls = [("input", 1, "aclk", "the core's clk"),
             ("input", 1, "aresetn", "synchronous, active low: the core's rst = ~aresetn")]
    for s in streams:
        fwd, back = ("input", "output") if s.direction == "s" else ("output", "input")
        decls += [(fwd, s.tdata_width, f"{s.interface}_tdata", _tdata_note(s)),
                  (fwd, 1, f"{s.interface}_tvalid", ""),
                  (back, 1, f"{s.interface}_tready", ""),
                  (fwd, 1, f"{s.interface}_tlast", _TLAST_NOTE[s.tlast])]
    decls += [(p.direction, p.width, p.name, "from the core") for p in passthrough]
    return decls


def _range(width: int) -> str:
    return f"[{width - 1}:0]" if width > 1 else ""


def _bits(msb: int, lsb: int) -> str:
    return f"[{msb}:{lsb}]"


def _stream_context(s: AxisStream) -> dict:
    padding = s.tdata_width > s.data_width
    return {
        "name": s.name, "interface": s.interface, "into": s.direction == "s",
        "payload_range": _bits(s.payload_width - 1, 0),
        "payload": f"core_{s.name}_payload", "ready": f"core_{s.name}_ready",
        "valid": f"core_{s.name}_valid",
        "segments": [{"payload": _bits(pm, pl), "tdata": _bits(tm, tl)}
                     for pm, pl, tm, tl in s.segments()],
        "last": None if s.last_offset is None else f"[{s.last_offset}]",
        "padding": _bits(s.tdata_width - 1, s.data_width) if padding else None,
        "padding_zero": f"{s.tdata_width - s.data_width}'d0",
    }


def _context(cfg: EngineConfig, streams: list[AxisStream], ports) -> dict:
    top = wrapper_name(cfg)
    passthrough = _check_ports(cfg, streams, ports)
    decls = _declarations(streams, passthrough)
    items = [_stream_context(s) for s in streams]
    names = [d[2] for d in decls] + ["core_rst", "unused_inputs", "core", cfg.name, top]
    names += [it[k] for it in items for k in ("payload", "valid", "ready")]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise RuntimeError(f"{top}: names used twice in the AXI-Stream wrapper: {clashes}")
    # Columns of the port list, aligned here so the template only prints.
    ranges = [_range(width) for _, width, _, _ in decls]
    dir_w = max(len(d[0]) for d in decls)
    range_w = max(len(r) for r in ranges)
    name_w = max(len(d[2]) for d in decls) + 2
    port_decls = []
    for n, ((direction, _, name, comment), rng) in enumerate(zip(decls, ranges)):
        name = name + ("," if n < len(decls) - 1 else "")
        port_decls.append({"direction": direction.ljust(dir_w), "range": rng.ljust(range_w),
                           "name": name.ljust(name_w) if comment else name,
                           "comment": comment})
    unused = []
    for s, it in zip(streams, items):
        if it["into"] and it["padding"]:
            unused.append(f"{s.interface}_tdata{it['padding']}")
        if s.tlast == "ignored":
            unused.append(f"{s.interface}_tlast")
    connections = [("clk", "aclk"), ("rst", "core_rst")]
    for it in items:
        valid = f"{it['interface']}_tvalid" if it["into"] else it["valid"]
        ready = it["ready"] if it["into"] else f"{it['interface']}_tready"
        connections += [(f"{it['name']}__payload", it["payload"]),
                        (f"{it['name']}__valid", valid), (f"{it['name']}__ready", ready)]
    connections += [(p.name, p.name) for p in passthrough]
    return {
        "module": top, "core": cfg.name, "engine": cfg.kind, "config_hash": config_hash(cfg),
        "version": package_versions(("hwgen",))["hwgen"],
        "ports": port_decls, "streams": items,
        "connections": [{"port": port, "signal": signal} for port, signal in connections],
        "unused": unused,
    }


def render_axis_wrapper(design: Design) -> str:
    """Verilog of module ``<name>_axis`` around ``design`` (ends with a newline; deterministic)."""
    return render(TEMPLATE, **_context(design.cfg, design.streams, design.ports))


def axis_ports(design: Design) -> tuple[Port, ...]:
    """The wrapper's ports in order — the declarations the template prints, so
    :func:`hwgen.emit.design.verilog_ports` of the rendered wrapper gives the same tuple."""
    passthrough = _check_ports(design.cfg, design.streams, design.ports)
    return tuple(Port(name, direction, width)
                 for direction, width, name, _ in _declarations(design.streams, passthrough))


def axis_manifest(design: Design) -> dict:
    """The manifest's ``axis`` entry: wrapper file and top module, clock and reset, its ports and,
    per stream, the interface, tdata width, where each payload field sits in tdata and what tlast
    means (``last``, ``ignored`` or ``constant_1``)."""
    cfg = design.cfg
    return {
        "file": f"{wrapper_name(cfg)}.v",
        "top": wrapper_name(cfg),
        "clock": "aclk",
        "reset": "aresetn",
        "reset_polarity": "active_low_synchronous",
        "ports": [{"name": p.name, "direction": p.direction, "width": p.width}
                  for p in axis_ports(design)],
        "streams": [{
            "stream": s.name, "interface": s.interface,
            "direction": "in" if s.direction == "s" else "out",
            "payload_width": s.payload_width, "tdata_width": s.tdata_width,
            "tdata_fields": {name: [msb, lsb] for name, msb, lsb in s.tdata_fields()},
            "tlast": s.tlast, "last_bit": s.last_offset,
        } for s in design.streams],
    }
