"""A block-RAM memory whose read data leaves from the block's own output register where the
target has one (docs/architecture.md §3, "Pipelining and DSP blocks").

Yosys maps an Amaranth memory with a synchronous read port to ECP5 ``DP16KD`` / ``PDPW16KD``
blocks without their output register (``techlibs/lattice/brams_16kd.txt`` has no option for
it), and sometimes with a LUT after the read data. nextpnr then times the block at about 5.8 ns
from the clock to its data, so a fabric register after it must sit right beside the block:
placed 26 rows away, that path was a critical path of the attention engine (10.7 ns). With the
output register on (``REGMODE = "OUTREG"``) the data leaves the block from a register.

:class:`BlockMemory` is a memory with one write port and any number of read ports, each read
port followed by ``registers`` data registers. Like :class:`~hwgen.hdl.dsp.RegisteredProduct`,
its description depends on the platform it is elaborated for:

* generic (no platform, or a family without primitives here): an Amaranth
  :class:`~amaranth.lib.memory.Memory` with a synchronous read port per read port, then the
  registers in the fabric;
* :class:`~hwgen.hdl.primitives.Primitives` for ``"ecp5"``: per read port, a copy of the
  memory in ``DP16KD`` blocks (a block has two ports: port A writes, port B reads) with
  ``REGMODE_B = "OUTREG"`` as the first register, the others in the fabric. A block holds
  16 Kbit as 1024 x 18, 2048 x 9, 4096 x 4, 8192 x 2 or 16384 x 1 bits: the narrowest
  arrangement deep enough is used, and the width is split into that many-bit slices.

Both give the same data in the same cycle. The data registers have no reset (the block's output
register is not reset either), and the contents start as zeros.

A write port may be *registered* (:meth:`BlockMemory.write_port`): its address, data and enable
are registered at the memory and the word is written a cycle later. On ECP5 every copy of the
memory gets its own flip-flops (``TRELLIS_FF`` instances, which Yosys does not merge as it would
identical registers of the description), so each set is placed beside its copy's blocks instead
of one register driving the blocks of every copy across the chip.
"""

from __future__ import annotations

from amaranth import ClockSignal, Module, ResetSignal, Signal
from amaranth.hdl import Instance, Shape, Value
from amaranth.lib import memory, wiring

from hwgen.hdl.primitives import Primitives

__all__ = ["BLOCK_WIDTHS", "BlockMemory", "block_width"]

#: ``(data width, words)`` of one ECP5 ``DP16KD`` arrangement, narrowest last.
BLOCK_WIDTHS = ((18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384))

#: Low address pins that are not word address bits, per data width: the 18-bit width's two are
#: its byte write enables.
_ADDRESS_SHIFT = {18: 4, 9: 3, 4: 2, 2: 1, 1: 0}


def block_width(depth: int) -> int:
    """The data width of the widest ``DP16KD`` arrangement with at least ``depth`` words."""
    for width, words in BLOCK_WIDTHS:
        if depth <= words:
            return width
    raise ValueError(f"depth must be at most {BLOCK_WIDTHS[-1][1]}, not {depth!r}")


class _WritePort:
    """``addr``, ``data`` and ``en``: the word at ``addr`` becomes ``data`` at the clock edge
    that ends a cycle with ``en`` (``registered``: at the edge one cycle later)."""

    def __init__(self, shape, abits, name, registered):
        self.addr = Signal(abits, name=f"{name}_addr")
        self.data = Signal(shape, name=f"{name}_data")
        self.en = Signal(name=f"{name}_en")
        self.registered = registered


class _ReadPort:
    """``addr`` and ``en`` in, ``data`` out: the word at ``addr`` in a cycle with ``en`` is on
    ``data`` ``1 + registers`` cycles later and stays there until the next read; a word written
    in the cycle it is read gives its old value."""

    def __init__(self, shape, abits, registers, name):
        self.addr = Signal(abits, name=f"{name}_addr")
        self.en = Signal(name=f"{name}_en")
        self.data = Signal(shape, name=f"{name}_data", reset_less=True)
        self.registers, self.name = registers, name


class BlockMemory(wiring.Component):
    """``depth`` words of ``shape``, one write port, read ports with registered data.

    Parameters
    ----------
    shape : ShapeCastable
        A word (a layout gives :class:`~amaranth.lib.data.View` data, as for an Amaranth
        memory).
    depth : int
        Words, 1 to 16384.

    Raises
    ------
    ValueError
        ``depth`` is out of range.
    """

    def __init__(self, shape, depth: int):
        if not isinstance(depth, int) or isinstance(depth, bool) or not 1 <= depth <= 16384:
            self._MustUse__silence = True       # refused, so never elaborated
            raise ValueError(f"depth must be an integer from 1 to 16384, not {depth!r}")
        self.shape, self.depth = shape, depth
        self.width = Shape.cast(shape).width
        self._abits = max((depth - 1).bit_length(), 1)
        self._write = None
        self._reads: list[_ReadPort] = []
        super().__init__(wiring.Signature({}))

    def write_port(self, registered: bool = False) -> _WritePort:
        """The write port (there is one): ``addr``, ``data``, ``en``.

        ``registered``: the three are registered at the memory and the word is written a cycle
        later, from one set of registers per copy of the memory on ECP5 (a register that drove
        the blocks of all copies of the attention engine's K memory had 10.7 ns of routing)."""
        if self._write is not None:
            raise ValueError("a BlockMemory has one write port")
        if not isinstance(registered, bool):
            raise ValueError(f"registered must be True or False, not {registered!r}")
        self._write = _WritePort(self.shape, self._abits, "write", registered)
        return self._write

    def read_port(self, registers: int = 1, name: str | None = None) -> _ReadPort:
        """A new read port whose data is ``1 + registers`` cycles after its address (the block's
        read, then ``registers`` >= 1 data registers, the first the block's own where it has
        one)."""
        if not isinstance(registers, int) or registers < 1:
            raise ValueError(f"registers must be an integer of at least 1, not {registers!r}")
        port = _ReadPort(self.shape, self._abits, registers, name or f"read{len(self._reads)}")
        self._reads.append(port)
        return port

    def elaborate(self, platform):
        m = Module()
        if isinstance(platform, Primitives):
            platform.bram_reads += len(self._reads)
        w = self._write
        ecp5 = getattr(platform, "family", None) == "ecp5"
        if not ecp5:
            mem = memory.Memory(shape=self.width, depth=self.depth, init=[])
            m.submodules.memory = mem
            if w is not None:
                wp = mem.write_port()
                if w.registered:     # written a cycle later, as by the ECP5 flip-flops
                    m.d.sync += [wp.addr.eq(w.addr), wp.data.eq(w.data), wp.en.eq(w.en)]
                else:
                    m.d.comb += [wp.addr.eq(w.addr), wp.data.eq(w.data), wp.en.eq(w.en)]
        for p, port in enumerate(self._reads):
            if ecp5:
                data = self._blocks(m, port, f"{port.name}_block")
                more = port.registers - 1
            else:
                rp = mem.read_port()
                m.d.comb += [rp.addr.eq(port.addr), rp.en.eq(port.en)]
                data, more = rp.data, port.registers
            for n in range(more):
                reg = port.data if n == more - 1 else Signal(self.width, reset_less=True,
                                                            name=f"{port.name}_q{n}")
                m.d.sync += reg.eq(data)
                data = reg
            if not more:
                m.d.comb += port.data.eq(data)
        return m

    def _blocks(self, m, port, name):
        """One copy of the memory in DP16KD blocks, read by ``port``: its data after the
        blocks' output registers."""
        w = self._write
        if w is not None:
            waddr, wdata, wen = w.addr, Value.cast(w.data), w.en
            if w.registered:
                waddr, wdata = (_flip_flops(m, v, f"{name}_write_{n}")
                                for v, n in ((waddr, "addr"), (wdata, "data")))
                wen = _flip_flops(m, wen, f"{name}_write_en", reset=True)
        bw = block_width(self.depth)
        shift = _ADDRESS_SHIFT[bw]
        data = Signal(self.width, name=f"{name}_data")
        for k, low in enumerate(range(0, self.width, bw)):
            bits = min(bw, self.width - low)
            din = Signal(18, name=f"{name}{k}_din")
            dout = Signal(18, name=f"{name}{k}_dout")
            wa, ra = Signal(14, name=f"{name}{k}_wa"), Signal(14, name=f"{name}{k}_ra")
            m.d.comb += [wa.eq(waddr << shift) if w is not None else wa.eq(0),
                         ra.eq(port.addr << shift), data[low:low + bits].eq(dout[:bits])]
            if w is not None:
                m.d.comb += din.eq(wdata[low:low + bits])
            if bw == 18:        # both byte write enables of the 18-bit width
                m.d.comb += wa[:2].eq(0b11)
            m.submodules[f"{name}{k}"] = Instance(
                "DP16KD",
                p_DATA_WIDTH_A=bw, p_DATA_WIDTH_B=bw, p_REGMODE_A="NOREG", p_REGMODE_B="OUTREG",
                p_RESETMODE="SYNC", p_ASYNC_RESET_RELEASE="SYNC", p_CSDECODE_A="0b000",
                p_CSDECODE_B="0b000", p_WRITEMODE_A="NORMAL", p_WRITEMODE_B="NORMAL",
                p_GSR="DISABLED",
                i_CLKA=ClockSignal(), i_CEA=1, i_OCEA=1, i_WEA=wen if w is not None else 0,
                i_RSTA=0, i_CSA0=0, i_CSA1=0, i_CSA2=0,
                i_CLKB=ClockSignal(), i_CEB=port.en, i_OCEB=1, i_WEB=0, i_RSTB=0,
                i_CSB0=0, i_CSB1=0, i_CSB2=0,
                **{f"i_ADA{n}": wa[n] for n in range(14)},
                **{f"i_ADB{n}": ra[n] for n in range(14)},
                **{f"i_DIA{n}": din[n] for n in range(18)},
                **{f"i_DIB{n}": 0 for n in range(18)},
                **{f"o_DOA{n}": Signal(name=f"{name}{k}_doa{n}") for n in range(18)},
                **{f"o_DOB{n}": dout[n] for n in range(18)})
        return data


def _flip_flops(m, value, name, reset=False):
    """``value`` registered in ECP5 ``TRELLIS_FF`` instances, one per bit, no enable, starting
    at 0 and (``reset``) cleared by the domain's synchronous reset: a set of them per memory
    copy stays one set per copy through Yosys."""
    value = Value.cast(value)
    q = Signal(len(value), name=f"{name}_q")
    for n in range(len(value)):
        m.submodules[f"{name}_ff{n}"] = Instance(
            "TRELLIS_FF", p_GSR="DISABLED", p_CEMUX="1", p_CLKMUX="CLK", p_LSRMUX="LSR",
            p_REGSET="RESET", p_SRMODE="LSR_OVER_CE",
            i_CLK=ClockSignal(), i_LSR=ResetSignal() if reset else 0, i_CE=1, i_DI=value[n],
            o_Q=q[n])
    return q
