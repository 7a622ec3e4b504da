"""The spike store of the snn layer: two banks of one sample's spikes, read by every TPPE
(docs/architecture.md §4.2).

A sample's write events (:mod:`.fiber`, from dense or fiber input) fill one bank while the TPPEs
join the sample in the other. A bank holds

* the *words*: the packed spike word of neuron ``k`` at row ``k`` (block RAM; a word is written
  only where the neuron is kept, and only read where the mask says it is kept), and
* the *masks*: per chunk c the chunk's keep mask (``ftp``) or the T per-timestep masks
  ``keep & bit t`` (``sequential``), one row per chunk (LUT RAM, a copy per TPPE).

So a TPPE finds the spike word of a matched position by its position, with no prefix sum over
the spike mask: the ranks LoAS computes per TPPE are, in effect, computed once where the chunk
is stored. Every TPPE has its own read port on each memory (on ECP5 its own copy of the block
RAM, ``hdl/bram.BlockMemory``), since the TPPEs walk different positions.

Timing: an event taken in cycle e is registered, then written at the end of e + 1 (the masks;
from ``REGISTERED_MASK_WRITE`` TPPEs on at the end of e + 2, from registers) and of e + 2 (the
words, through each copy's registered write port); the bank is ``full`` from e + 2 on, when the
vector's last event was taken in e, and a TPPE reads its first mask at the end of e + 3 at the
earliest and its first word several cycles after that, so no read sees an old row.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from hwgen.hdl.bram import BlockMemory
from hwgen.hdl.pipeline import register_copies

from .config import SnnConfig
from .fiber import event_layout, keep_word
from .tppe import COPY_PER_TPPE_FROM

__all__ = ["REGISTERED_MASK_WRITE", "mask_row_layout", "SpikeStore"]

#: From this many TPPEs (mask copies) on, the mask write leaves from registers, a cycle later:
#: its ``chunk`` (``sequential``: T x ``chunk``) flip-flops buy nothing with a few copies.
REGISTERED_MASK_WRITE = COPY_PER_TPPE_FROM


def mask_row_layout(cfg: SnnConfig):
    """A mask row of a chunk: its keep mask (``ftp``), or T per-timestep masks (``sequential``)."""
    if cfg.dataflow == "ftp":
        return data.ArrayLayout(cfg.chunk, 1)
    return data.ArrayLayout(cfg.chunk, cfg.timesteps)


class SpikeStore(wiring.Component):
    """Two banks of spike words and masks with one read port per TPPE.

    Attributes
    ----------
    events : stream, in
        Write events of the input receiver (:func:`.fiber.event_layout`); taken while the bank
        being written is free.
    full : out, 2 bits
        Bank b holds a complete sample.
    full_next : out, 2 bits
        ``full`` of the next cycle, so a user can register what it gates.
    free : in, 2 bits
        A pulse on bit b empties bank b (every TPPE is done with it).
    busy : out
        An event taken in the cycle before is being written.
    busy_next : out
        ``busy`` of the next cycle: an event is taken in this one.
    word_reads, mask_reads : list of read ports, one per TPPE
        ``addr`` = ``Cat(k, bank)`` (``kbits`` + 1 bits) with data 2 cycles later; ``addr`` =
        ``Cat(c, bank)`` (``cbits`` + 1 bits) with data the next cycle.
    """

    def __init__(self, cfg: SnnConfig, readers: int):
        self.cfg = cfg
        self.kbits = max(ceil_log2(cfg.in_neurons), 1)
        self.cbits = max(ceil_log2(cfg.chunks), 1)
        self.words = BlockMemory(cfg.timesteps, 2 << self.kbits)
        self.word_reads = [self.words.read_port(1, f"spike_word{p}") for p in range(readers)]
        # One mask memory per TPPE, each with one read port: Yosys's memory mapping stopped on
        # one memory with 16 read ports (snn_paper), and a copy per TPPE sits beside it.
        self.masks = [memory.Memory(shape=mask_row_layout(cfg), depth=2 << self.cbits, init=[])
                      for _ in range(readers)]
        self.mask_reads = [mem.read_port() for mem in self.masks]
        super().__init__({
            "events": In(stream.Signature(event_layout(cfg.chunk, cfg.chunks, cfg.timesteps))),
            "full": Out(2),
            "full_next": Out(2),
            "free": In(2),
            "busy": Out(1),
            "busy_next": Out(1),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        W, T = cfg.chunk, cfg.timesteps
        m = Module()
        m.submodules.words = self.words
        for p, mem in enumerate(self.masks):
            m.submodules[f"masks{p}"] = mem
        word_w = self.words.write_port(registered=True)
        mask_ws = [mem.write_port() for mem in self.masks]

        # --- accept: the bank being written, and the first neuron of the event's chunk --------
        bank = Signal()
        kbase = Signal(range(max(cfg.chunks * W, 2)))
        ev = self.events.payload
        m.d.comb += self.events.ready.eq(~self.full.bit_select(bank, 1))
        took = self.events.valid & self.events.ready
        with m.If(took & ev.chunk_end):
            m.d.sync += kbase.eq(Mux(ev.vector_end, 0, kbase + W))
            with m.If(ev.vector_end):
                m.d.sync += bank.eq(~bank)

        # --- registered event, then the writes ------------------------------------------------
        s_valid, s_bank = Signal(), Signal()
        s_k = Signal(self.kbits)
        s = Signal.like(ev)
        m.d.sync += s_valid.eq(took)
        m.d.comb += [self.busy.eq(s_valid), self.busy_next.eq(took)]
        with m.If(took):
            m.d.sync += [s.eq(ev), s_bank.eq(bank), s_k.eq(kbase + ev.pos)]
        keep = s.has_value & keep_word(s.value, cfg.min_spikes, T)
        bit = Signal(W)                                   # a signal: used once per timestep
        m.d.comb += bit.eq(Mux(keep, Const(1, W) << s.pos, 0))
        row = Signal(mask_row_layout(cfg))                # the chunk's masks so far
        row_next = Signal.like(row)
        if cfg.dataflow == "ftp":
            m.d.comb += row_next[0].eq(row[0] | bit)
        else:
            m.d.comb += [row_next[t].eq(row[t] | Mux(s.value[t], bit, 0)) for t in range(T)]
        m.d.comb += [word_w.addr.eq(Cat(s_k, s_bank)), word_w.data.eq(s.value),
                     word_w.en.eq(s_valid & keep)]
        q_en, q_addr, q_row = s_valid & s.chunk_end, Cat(s.c[:self.cbits], s_bank), row_next
        P = len(mask_ws)
        q_ens, q_addrs = [q_en] * P, [q_addr] * P
        if P >= REGISTERED_MASK_WRITE:
            # The mask write leaves from registers, a cycle later (at the end of e + 2): the
            # row's decoder and OR in front of the write ports of every TPPE's copy is a long
            # path with many copies (snn_paper: 16). A TPPE that starts on ``full`` (from e + 2)
            # reads its first mask at the end of e + 3 at the earliest, after the write;
            # ``full`` and ``busy`` keep their cycles. Each copy has its own address and enable
            # registers: one address register drove the write address of all 16 x 32 LUT-RAM
            # cells (snn_paper, 11.1 ns of routing at 85.8 MHz); the row's bits reach one cell
            # per copy, so it stays one register.
            q_row_reg = Signal.like(row_next, name="q_row")
            m.d.sync += q_row_reg.eq(q_row)
            q_row = q_row_reg
            q_ens = register_copies(m, q_en, P, name="q_en")
            q_addrs = register_copies(m, q_addr, P, name="q_addr")
        for mask_w, en, addr in zip(mask_ws, q_ens, q_addrs):
            m.d.comb += [mask_w.addr.eq(addr), mask_w.data.eq(q_row), mask_w.en.eq(en)]
        with m.If(s_valid):
            m.d.sync += row.eq(Mux(s.chunk_end, 0, row_next))

        # --- bank flags: a sample's last event fills its bank (before a same-cycle free) --------
        for b in range(2):
            filled = s_valid & s.vector_end & (s_bank == b)
            m.d.comb += self.full_next[b].eq(filled | (self.full[b] & ~self.free[b]))
        m.d.sync += self.full.eq(self.full_next)
        return m
