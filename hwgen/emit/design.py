"""One elaboration of an engine: the :class:`Design` every stage takes (docs/architecture.md §1).

:func:`elaborate` builds the engine's Amaranth component for a config and converts it to Verilog,
once. The :class:`Design` it returns carries the Verilog text, the component's signature and the
ports and streams read from that signature, so generating files, linting, simulating and
synthesizing need no second elaboration and no Verilog parsing: ``hwgen flow`` elaborates once.

The port list follows Amaranth's rules for a top-level component: ``clk`` and ``rst`` of the
``sync`` domain first, then every signature member flattened with ``__`` (a stream ``acts`` gives
``acts__payload``, ``acts__valid``, ``acts__ready``). :func:`verilog_ports` reads the same list
back from Verilog text with pyverilog; the tests hold the two equal for every example config.

Amaranth is asked not to emit source locations (they hold absolute paths), so the same config and
tool versions give byte-identical Verilog.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field

from amaranth.back import verilog as amaranth_verilog
from amaranth.hdl import Shape
from amaranth.lib import data, stream, wiring

from hwgen.config import EngineConfig
from hwgen.engines.registry import ENGINES
from hwgen.hdl.primitives import FAMILIES, Primitives

__all__ = ["Port", "AxisStream", "Design", "elaborate", "as_design", "for_family", "component",
           "signature_ports", "signature_streams", "verilog_ports"]


@dataclass(frozen=True)
class Port:
    """One port of a Verilog module."""

    name: str
    direction: str   # "input" or "output"
    width: int


@dataclass(frozen=True)
class AxisStream:
    """One valid/ready stream of a core and the AXI4-Stream interface a wrapper makes of it.

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


def signature_streams(signature: wiring.Signature) -> tuple[AxisStream, ...]:
    """The valid/ready streams among ``signature``'s members, in order."""
    streams = []
    for name, member in signature.members.items():
        sig = _stream_signature(member)
        if sig is None:
            continue
        shape = sig.members["payload"].shape
        width = Shape.cast(shape).width
        last, fields = None, []
        if isinstance(shape, data.StructLayout):
            for field_name, fld in shape:
                if field_name == "last" and Shape.cast(fld.shape).width == 1:
                    last = fld.offset
                else:
                    fields.append((field_name, fld.offset, Shape.cast(fld.shape).width))
        elif width:
            fields.append(("payload", 0, width))
        streams.append(AxisStream(name, "s" if member.flow == wiring.In else "m", width, last,
                                  tuple(fields)))
    return tuple(streams)


def signature_ports(signature: wiring.Signature) -> tuple[Port, ...]:
    """The Verilog ports Amaranth gives a top-level component with ``signature``: ``clk``,
    ``rst``, then every port member flattened with ``__``."""
    ports = [Port("clk", "input", 1), Port("rst", "input", 1)]
    for path, member in signature.members.flatten():
        if member.is_port:
            ports.append(Port("__".join(map(str, path)),
                              "input" if member.flow == wiring.In else "output",
                              Shape.cast(member.shape).width))
    return tuple(ports)


def component(cfg: EngineConfig):
    """The engine's component for ``cfg``, built only to read its signature (never elaborated)."""
    built = ENGINES[cfg.kind].component(cfg)
    built._MustUse__used = True     # no "UnusedElaboratable" warning when it is collected
    return built


@dataclass(frozen=True)
class Design:
    """One elaborated engine, ready for every stage.

    cfg : the validated config
    verilog : the core's Verilog text, top module ``cfg.name``
    signature : the component's Amaranth signature
    ports : the core's ports in declaration order, from the signature
    streams : its valid/ready streams, from the signature
    family : the FPGA family whose primitives the Verilog instantiates (DSP and block-RAM
        blocks with their registers, :mod:`hwgen.hdl.dsp`, :mod:`hwgen.hdl.bram`), or None for
        the generic Verilog that simulates, lints and synthesizes anywhere
    dsp_products : registered products that are DSP blocks on a family with primitives
    bram_reads : read ports of block memories that use the block's output register there (with
        no products and no such ports the Verilog is the same for every family)
    """

    cfg: EngineConfig
    verilog: str = field(repr=False)
    signature: wiring.Signature = field(repr=False)
    ports: tuple[Port, ...]
    streams: tuple[AxisStream, ...]
    family: str | None = None
    dsp_products: int = 0
    bram_reads: int = 0

    @property
    def name(self) -> str:
        return self.cfg.name


def elaborate(cfg: EngineConfig, family: str | None = None) -> Design:
    """Elaborate the engine for ``cfg`` and convert it to Verilog (top module ``cfg.name``);
    with a ``family`` of :data:`hwgen.hdl.primitives.FAMILIES`, Verilog that instantiates that
    family's DSP and block-RAM primitives (what synthesis for it uses)."""
    top = ENGINES[cfg.kind].component(cfg)
    platform = Primitives(family)
    text = amaranth_verilog.convert(top, name=cfg.name, platform=platform, emit_src=False)
    return Design(cfg, text, top.signature, signature_ports(top.signature),
                  signature_streams(top.signature), family, platform.dsp_products,
                  platform.bram_reads)


def for_family(design: Design, family: str) -> Design:
    """``design`` as synthesis for FPGA ``family`` takes it: elaborated again with the family's
    primitives if hwgen has them (:data:`hwgen.hdl.primitives.FAMILIES`) and the design has
    DSP products or block-memory read ports, else the generic design (``design`` itself when it
    is that already)."""
    uses = design.dsp_products or design.bram_reads
    wanted = family if family in FAMILIES and uses else None
    return design if design.family == wanted else elaborate(design.cfg, wanted)


def as_design(design_or_cfg: Design | EngineConfig) -> Design:
    """``design_or_cfg`` itself if it is a :class:`Design`, else its elaboration."""
    return design_or_cfg if isinstance(design_or_cfg, Design) else elaborate(design_or_cfg)


_ATTRIBUTE = re.compile(r"\(\*.*?\*\)", re.S)


def verilog_ports(text: str, top: str) -> tuple[Port, ...]:
    """The ports of module ``top`` in Verilog ``text``, in declaration order, read with pyverilog.

    For cross-checks and for Verilog hwgen did not elaborate itself; a :class:`Design` already
    knows its ports. pyverilog cannot parse ``(* ... *)`` attributes, so they are stripped first;
    its parser tables go to a temporary directory, never the working directory.
    """
    from pyverilog.vparser import ast  # slow to import; only needed here
    from pyverilog.vparser.parser import VerilogParser

    with tempfile.TemporaryDirectory(prefix="hwgen-pyverilog-") as tables:
        tree = VerilogParser(outputdir=tables, debug=False).parse(_ATTRIBUTE.sub("", text))
    modules = [d for d in tree.description.definitions
               if isinstance(d, ast.ModuleDef) and d.name == top]
    if not modules:
        raise ValueError(f"module {top!r} not found in the Verilog text")
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
