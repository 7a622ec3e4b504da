"""The AXI4-Stream wrapper: every valid/ready stream of a core as an AXI4-Stream interface.

``hwgen generate CONFIG --axis`` writes ``<name>_axis.v`` next to the core: module
``<name>_axis`` instantiates the core ``<name>`` and renames its ports (DESIGN.md §3):

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

:func:`axis_streams` derives the interfaces from the engine's Amaranth signature;
:func:`render_axis_wrapper` renders ``templates/verilog/axis_wrapper.v.j2`` with every width and
bit range computed here (the template does no arithmetic), after checking that the ports of the
emitted core (parsed with pyverilog) agree with the signature.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Shape
from amaranth.lib import data, stream, wiring

from hwgen.config import EngineConfig, config_hash
from hwgen.emit.templates import render
from hwgen.engines.registry import ENGINES
from hwgen.flows.toolchain import package_versions

__all__ = ["AxisStream", "axis_streams", "axis_ports", "core_ports", "axis_manifest",
           "render_axis_wrapper", "wrapper_name"]

#: Template rendered by :func:`render_axis_wrapper` (relative to ``templates/``).
TEMPLATE = "verilog/axis_wrapper.v.j2"


def wrapper_name(cfg: EngineConfig) -> str:
    """Module (and file stem) of the wrapper: ``<cfg.name>_axis``."""
    return f"{cfg.name}_axis"


@dataclass(frozen=True)
class AxisStream:
    """One stream of the core and the AXI4-Stream interface the wrapper makes of it.

    name : the core's stream, e.g. ``"acts"`` (ports ``acts__payload/valid/ready``)
    direction : ``"s"`` into the core (the wrapper's slave interface), ``"m"`` out of it
    payload_width : bits of the core's payload
    last_offset : bit of the top-level 1-bit ``last`` field in the payload, or None
    fields : the payload's other top-level fields in order, as (name, payload offset, width)
    """

    name: str
    direction: str
    payload_width: int
    last_offset: int | None
    fields: tuple[tuple[str, int, int], ...]

    @property
    def interface(self) -> str:
        """Port prefix of the interface, e.g. ``"s_axis_acts"``."""
        return f"{self.direction}_axis_{self.name}"

    @property
    def has_last(self) -> bool:
        return self.last_offset is not None

    @property
    def data_width(self) -> int:
        """Payload bits carried by ``tdata`` (all but ``last``)."""
        return self.payload_width - self.has_last

    @property
    def tdata_width(self) -> int:
        """``data_width`` rounded up to whole bytes (at least one byte)."""
        return max(8, -(-self.data_width // 8) * 8)

    @property
    def tlast(self) -> str:
        """What ``tlast`` means: ``"last"`` (the payload field), ``"ignored"`` (an input without
        ``last``) or ``"constant_1"`` (an output without ``last``: every beat is a packet)."""
        if self.has_last:
            return "last"
        return "ignored" if self.direction == "s" else "constant_1"

    def _tdata_offset(self, payload_offset: int) -> int:
        below = self.last_offset is None or payload_offset < self.last_offset
        return payload_offset if below else payload_offset - 1

    def segments(self) -> tuple[tuple[int, int, int, int], ...]:
        """Contiguous payload bit ranges and where they sit in ``tdata``:
        ``(payload_msb, payload_lsb, tdata_msb, tdata_lsb)``, low bits first."""
        width, last = self.payload_width, self.last_offset
        if last is None:
            return ((width - 1, 0, width - 1, 0),) if width else ()
        out = []
        if last > 0:
            out.append((last - 1, 0, last - 1, 0))
        if last < width - 1:
            out.append((width - 1, last + 1, width - 2, last))
        return tuple(out)

    def tdata_fields(self) -> tuple[tuple[str, int, int], ...]:
        """``(field, tdata_msb, tdata_lsb)`` of every field in ``tdata``."""
        return tuple((name, self._tdata_offset(offset) + width - 1, self._tdata_offset(offset))
                     for name, offset, width in self.fields)

    def split(self, payload: int) -> tuple[int, int]:
        """A payload value as ``(tdata, tlast)``; ``tlast`` is 1 for a stream without ``last``."""
        if self.last_offset is None:
            return payload, 1
        last = self.last_offset
        low = payload & ((1 << last) - 1)
        return low | (payload >> (last + 1)) << last, (payload >> last) & 1

    def merge(self, tdata: int, tlast: int) -> int:
        """The payload value of a beat (padding bits of ``tdata`` and, without ``last``, ``tlast``
        are ignored)."""
        tdata &= (1 << self.data_width) - 1
        if self.last_offset is None:
            return tdata
        last = self.last_offset
        low = tdata & ((1 << last) - 1)
        return low | (tlast & 1) << last | (tdata >> last) << (last + 1)


def _stream_signature(member) -> stream.Signature | None:
    if not member.is_signature:
        return None
    sig = member.signature
    if isinstance(sig, wiring.FlippedSignature):
        sig = sig.flip()
    return sig if isinstance(sig, stream.Signature) else None


def _component(cfg: EngineConfig):
    """The engine's component, built only to read its signature (never elaborated)."""
    component = ENGINES[cfg.kind].build_component(cfg)
    component._MustUse__used = True     # no "UnusedElaboratable" warning when it is collected
    return component


def _streams(signature) -> list[AxisStream]:
    streams = []
    for name, member in signature.members.items():
        sig = _stream_signature(member)
        if sig is None:
            continue
        shape = sig.members["payload"].shape
        width = Shape.cast(shape).width
        last, fields = None, []
        if isinstance(shape, data.StructLayout):
            for field_name, field in shape:
                if field_name == "last" and Shape.cast(field.shape).width == 1:
                    last = field.offset
                else:
                    fields.append((field_name, field.offset, Shape.cast(field.shape).width))
        elif width:
            fields.append(("payload", 0, width))
        streams.append(AxisStream(name, "s" if member.flow == wiring.In else "m", width, last,
                                  tuple(fields)))
    return streams


def _signature_ports(signature) -> tuple:
    from hwgen.emit.verilog import Port

    ports = [Port("clk", "input", 1), Port("rst", "input", 1)]
    for path, member in signature.members.flatten():
        if member.is_port:
            ports.append(Port("__".join(map(str, path)),
                              "input" if member.flow == wiring.In else "output",
                              Shape.cast(member.shape).width))
    return tuple(ports)


def axis_streams(cfg: EngineConfig) -> list[AxisStream]:
    """The AXI4-Stream interfaces of ``cfg``'s core, in the order of its signature."""
    return _streams(_component(cfg).signature)


def core_ports(cfg: EngineConfig) -> tuple:
    """The core's ports as its Amaranth signature defines them (``clk``, ``rst``, then every
    member flattened with ``__``) as :class:`hwgen.emit.verilog.Port`, without emitting Verilog.
    """
    return _signature_ports(_component(cfg).signature)


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


def render_axis_wrapper(cfg: EngineConfig, ports=None) -> str:
    """Verilog of module ``<cfg.name>_axis`` (ends with a newline; deterministic).

    ``ports`` are the core's ports from :func:`hwgen.emit.verilog.extract_ports` of the emitted
    Verilog; if ``clk``, ``rst`` or a stream port is missing or differs in direction or width from
    the Amaranth signature, ``RuntimeError``. Without ``ports`` the signature's own
    (:func:`core_ports`) are used, which needs no Verilog.
    """
    signature = _component(cfg).signature
    ports = _signature_ports(signature) if ports is None else ports
    return render(TEMPLATE, **_context(cfg, _streams(signature), ports))


def axis_ports(cfg: EngineConfig, ports=None) -> tuple:
    """The wrapper's ports in order as :class:`hwgen.emit.verilog.Port` — the declarations the
    template prints, so ``extract_ports`` of the rendered wrapper gives the same tuple."""
    from hwgen.emit.verilog import Port

    signature = _component(cfg).signature
    streams = _streams(signature)
    passthrough = _check_ports(cfg, streams,
                               _signature_ports(signature) if ports is None else ports)
    return tuple(Port(name, direction, width)
                 for direction, width, name, _ in _declarations(streams, passthrough))


def axis_manifest(cfg: EngineConfig, wrapper_ports) -> dict:
    """The manifest's ``axis`` entry: wrapper file and top module, clock and reset, its ports and,
    per stream, the interface, tdata width, where each payload field sits in tdata and what tlast
    means (``last``, ``ignored`` or ``constant_1``)."""
    return {
        "file": f"{wrapper_name(cfg)}.v",
        "top": wrapper_name(cfg),
        "clock": "aclk",
        "reset": "aresetn",
        "reset_polarity": "active_low_synchronous",
        "ports": [{"name": p.name, "direction": p.direction, "width": p.width}
                  for p in wrapper_ports],
        "streams": [{
            "stream": s.name, "interface": s.interface,
            "direction": "in" if s.direction == "s" else "out",
            "payload_width": s.payload_width, "tdata_width": s.tdata_width,
            "tdata_fields": {name: [msb, lsb] for name, msb, lsb in s.tdata_fields()},
            "tlast": s.tlast, "last_bit": s.last_offset,
        } for s in axis_streams(cfg)],
    }
