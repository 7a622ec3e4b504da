"""Spike-compressing buffer of the snn engine (docs/architecture.md §4.2, snn spec rules 1, 2 and
5).

A vector of ``length`` packed spike words (K input neurons of one sample, or the N output neurons of
a layer) is stored as a *fiber*: per chunk of ``cfg.chunk`` neurons a bitmask of the kept neurons,
and the packed words of all kept neurons contiguously in one value memory. A neuron is kept when
``popcount(word) >= cfg.min_spikes``. Chunk c covers neurons ``c*chunk .. min(length,
(c+1)*chunk) - 1``; bit i of its mask is neuron ``c*chunk + i``, so the last chunk of a length that
is not a multiple of ``chunk`` has zero high bits. Besides the mask, every chunk stores its *base*:
the value-memory index of its first kept word (the number of kept neurons in chunks 0..c-1), so a
consumer can start reading at any chunk without summing the masks before it::

    word of neuron c*chunk + i, if bit i of mask_c is set:
        values[base_c + popcount(mask_c & ((1 << i) - 1))]

Blocks
------
:class:`SpikeCompressor`
    Takes one word per cycle, writes the three memories and, when a vector is complete, holds it
    (``done`` stream) until the consumer releases it. Consumers read through two synchronous memory
    read ports (``chunk_read``: mask and base of chunk c; ``value_read``: one packed word).
:class:`SpikeDecompressor`
    Walks a stored fiber through those ports and streams all ``length`` words back out, dropped
    neurons as 0, one word per cycle with backpressure.
:class:`CompressRoundTrip`
    Compressor feeding decompressor: compress a vector, stream it back (a test and lint top).

Read ports
----------
Both read ports have the signature of :class:`amaranth.lib.memory.ReadPort` (``addr``, ``en`` in,
``data`` out, from the compressor's side): ``data`` shows the row addressed in a cycle with ``en``
high from the next cycle on, and holds while ``en`` is low. Their contents are defined while
``done.valid`` is high, i.e. from the cycle ``done.valid`` rises until the cycle ``done`` transfers;
the compressor writes nothing in that time. A read issued in the transfer cycle itself still
returns the old vector (the next vector's first write is at least two cycles later).
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, unsigned
from amaranth.hdl import Value
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for, ceil_log2

from hwgen.hdl.popcount import popcount

from .config import SnnConfig

__all__ = [
    "keep_neuron", "FiberGeometry", "word_layout", "chunk_info_layout", "done_layout",
    "chunk_read_signature", "value_read_signature",
    "SpikeCompressor", "SpikeDecompressor", "round_trip_signature", "CompressRoundTrip",
    "PingPongRoundTrip",
]


def keep_neuron(word: Value, cfg: SnnConfig) -> Value:
    """1 when ``word`` (T spike bits) has at least ``cfg.min_spikes`` spikes (spec rule 2)."""
    if cfg.min_spikes == 1:
        return word.any()           # the common case needs no adders: an OR over T bits
    if cfg.min_spikes == cfg.timesteps:
        return word.all()
    return popcount(word) >= cfg.min_spikes   # T <= 16: a 4-level adder tree


class FiberGeometry:
    """Sizes of a stored fiber of ``length`` neurons, shared by compressor, decompressor and tests.

    Parameters
    ----------
    cfg : SnnConfig
    length : int
        Neurons per vector; a positive integer, else ``ValueError``.

    Attributes
    ----------
    length : int
        Neurons per vector.
    chunk : int
        Neurons per chunk (``cfg.chunk``).
    chunks : int
        ``ceil(length / chunk)``. Note: ``cfg.chunks`` is the same for ``length = cfg.in_neurons``
        only; a buffer of output spikes (``length = cfg.out_neurons``) uses this value.
    last_chunk : int
        Neurons in the last chunk (``chunk`` when ``length`` is a multiple of it).
    value_depth, chunk_depth : int
        Rows of the value memory (``length``) and of the mask and pointer memories (``chunks``),
        each at least 2 so that no address port is zero bits wide (Verilog cannot declare one).
    value_addr_bits, chunk_addr_bits : int
        Address widths of the two read ports.
    """

    def __init__(self, cfg: SnnConfig, length: int):
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ValueError(f"length must be a positive integer, not {length!r}")
        self.length = length
        self.chunk = cfg.chunk
        self.chunks = -(-length // cfg.chunk)
        self.last_chunk = length - (self.chunks - 1) * cfg.chunk
        self.value_depth = max(length, 2)
        self.chunk_depth = max(self.chunks, 2)
        self.value_addr_bits = ceil_log2(self.value_depth)
        self.chunk_addr_bits = ceil_log2(self.chunk_depth)


def word_layout(cfg: SnnConfig) -> data.StructLayout:
    """One neuron per beat: its packed word (bit t = spike at step t); ``last`` on the final one."""
    return data.StructLayout({"word": unsigned(cfg.timesteps), "last": 1})


def chunk_info_layout(cfg: SnnConfig, length: int) -> data.StructLayout:
    """A row of ``chunk_read``: the chunk's bitmask and the value index of its first kept word."""
    geo = FiberGeometry(cfg, length)
    return data.StructLayout({"mask": unsigned(cfg.chunk), "base": unsigned(geo.value_addr_bits)})


def done_layout(length: int) -> data.StructLayout:
    """The ``done`` beat: number of kept neurons of the stored vector (0..length)."""
    return data.StructLayout({"kept": unsigned(bits_for(length))})


def chunk_read_signature(cfg: SnnConfig, length: int) -> wiring.Signature:
    """The ``chunk_read`` port (memory read port side): ``addr`` = chunk, ``data`` =
    :func:`chunk_info_layout`, ``en``."""
    geo = FiberGeometry(cfg, length)
    return memory.ReadPort.Signature(addr_width=geo.chunk_addr_bits,
                                     shape=chunk_info_layout(cfg, length))


def value_read_signature(cfg: SnnConfig, length: int) -> wiring.Signature:
    """The ``value_read`` port (memory read port side): ``addr`` = value index, ``data`` = a
    T-bit packed word, ``en``."""
    geo = FiberGeometry(cfg, length)
    return memory.ReadPort.Signature(addr_width=geo.value_addr_bits,
                                     shape=unsigned(cfg.timesteps))


class SpikeCompressor(wiring.Component):
    """Compresses one vector of ``length`` packed spike words into a stored fiber.

    Microarchitecture
    -----------------
    Two stages, one input beat per cycle::

        stage 1 (input register)   word, keep = popcount(word) >= min_spikes, chunk number,
                                   chunk_end, vector_end (from the neuron counters)
        stage 2 (memory writes)    value[vptr] <= word if keep;   vptr += keep
                                   mask shift register <= {keep, mask[chunk-1:1]}
                                   at chunk_end: mask[c] <= shift register, ptr[c] <= base,
                                                 base <= vptr + keep
                                   at vector_end: full <= 1 (``done.valid``)

    The keep decision (an adder tree for ``min_spikes >= 2``) sits between the input port and
    stage 1; stage 2 holds only the ``vptr`` incrementer in front of the memory address.
    The bitmask is built in a shift register (each keep bit enters at the top, so after ``chunk``
    beats bit i belongs to neuron i) rather than by setting bit i through a decoder; the partial
    last chunk of ``n`` neurons has its bits in the top ``n`` positions and is written shifted down
    by the constant ``chunk - n``, which costs one 2:1 mux per bit and no clearing between chunks.

    Vectors are delimited by counting: every vector is exactly ``length`` beats. ``last`` is only
    checked. A beat whose ``last`` disagrees with the count (``last`` on another neuron, or missing
    on neuron ``length - 1``) sets the sticky ``error`` output (cleared only by reset); the beat is
    stored as usual, so the stored vector is the ``length`` beats as counted, and every following
    vector stays aligned to the count, not to the sender's ``last``.

    The buffer is single: after the final beat ``words.ready`` stays low until the consumer
    releases the fiber by taking the ``done`` beat. The next vector's first beat can be accepted in
    the cycle after that transfer. With ``words.valid`` high every cycle, a vector enters in
    ``length`` consecutive cycles and ``done.valid`` rises 2 cycles after the final beat's transfer
    cycle.

    Parameters
    ----------
    cfg : SnnConfig
        Uses ``timesteps`` (word width T), ``chunk`` and ``min_spikes``.
    length : int
        Neurons per vector (K for input spikes, N for output spikes).

    Attributes
    ----------
    words : stream, in
        One neuron per beat in neuron order, see :func:`word_layout`.
    done : stream, out
        Valid while a complete fiber is stored; payload ``kept`` (see :func:`done_layout`). The
        consumer sets ``ready`` when it has finished reading; the transfer frees the buffer.
    chunk_read : :class:`amaranth.lib.memory.ReadPort.Signature`, out
        ``addr`` = chunk c; ``data`` = {mask, base} of chunk c one cycle after ``en``.
    value_read : :class:`amaranth.lib.memory.ReadPort.Signature`, out
        ``addr`` = value index; ``data`` = packed word one cycle after ``en``.
    error : Signal, out
        Sticky: a ``last`` bit disagreed with the neuron count.
    geometry : FiberGeometry
        Memory depths and address widths.
    """

    def __init__(self, cfg: SnnConfig, length: int):
        self.cfg = cfg
        self.geometry = FiberGeometry(cfg, length)
        super().__init__({
            "words": In(stream.Signature(word_layout(cfg))),
            "done": Out(stream.Signature(done_layout(length))),
            "chunk_read": Out(chunk_read_signature(cfg, length)),
            "value_read": Out(value_read_signature(cfg, length)),
            "error": Out(1),
        })

    def elaborate(self, platform):
        cfg, geo = self.cfg, self.geometry
        C = cfg.chunk
        m = Module()

        # --- the three memories --------------------------------------------------------------
        m.submodules.values = values = memory.Memory(
            shape=unsigned(cfg.timesteps), depth=geo.value_depth, init=[])
        m.submodules.masks = masks = memory.Memory(
            shape=unsigned(C), depth=geo.chunk_depth, init=[])
        m.submodules.ptrs = ptrs = memory.Memory(
            shape=unsigned(geo.value_addr_bits), depth=geo.chunk_depth, init=[])
        value_w, mask_w, ptr_w = values.write_port(), masks.write_port(), ptrs.write_port()
        value_r, mask_r, ptr_r = values.read_port(), masks.read_port(), ptrs.read_port()

        # Read ports: mask and pointer memories share one address, so a chunk read returns both.
        m.d.comb += [
            mask_r.addr.eq(self.chunk_read.addr), mask_r.en.eq(self.chunk_read.en),
            ptr_r.addr.eq(self.chunk_read.addr), ptr_r.en.eq(self.chunk_read.en),
            self.chunk_read.data.mask.eq(mask_r.data), self.chunk_read.data.base.eq(ptr_r.data),
            value_r.addr.eq(self.value_read.addr), value_r.en.eq(self.value_read.en),
            self.value_read.data.eq(value_r.data),
        ]

        # --- control state (reset) -------------------------------------------------------------
        full = Signal()                                    # a stored fiber waits for release
        pos = Signal(range(C))                             # neuron in chunk, at stage 1 input
        chunk_no = Signal(range(geo.chunk_depth))          # chunk number, at stage 1 input
        s1_valid = Signal()
        s1_vec_end = Signal()
        vptr = Signal(range(geo.length + 1))               # kept words so far = next value index
        base = Signal(range(geo.length + 1))               # vptr at the current chunk's start
        error = Signal()

        # --- stage 1 datapath (no reset: only meaningful under s1_valid) ----------------------
        s1_word = Signal(cfg.timesteps, reset_less=True)
        s1_keep = Signal(reset_less=True)
        s1_chunk_end = Signal(reset_less=True)
        s1_chunk = Signal(range(geo.chunk_depth), reset_less=True)
        shift = Signal(C, reset_less=True)                 # keep bits of the current chunk

        # --- stage 1: accept a beat ------------------------------------------------------------
        # Not ready while a fiber is stored, nor while the final beat of a vector sits in stage 1
        # (it sets `full` at the next edge).
        m.d.comb += self.words.ready.eq(~full & ~(s1_valid & s1_vec_end))
        accept = Signal()
        m.d.comb += accept.eq(self.words.valid & self.words.ready)
        in_chunk_end = Signal()
        in_vec_end = Signal()
        m.d.comb += [
            in_vec_end.eq((chunk_no == geo.chunks - 1) & (pos == geo.last_chunk - 1)),
            in_chunk_end.eq((pos == C - 1) | in_vec_end),
        ]
        m.d.sync += s1_valid.eq(accept)
        with m.If(accept):
            m.d.sync += [
                s1_word.eq(self.words.payload.word),
                s1_keep.eq(keep_neuron(self.words.payload.word, cfg)),
                s1_chunk.eq(chunk_no),
                s1_chunk_end.eq(in_chunk_end),
                s1_vec_end.eq(in_vec_end),
            ]
            with m.If(self.words.payload.last != in_vec_end):
                m.d.sync += error.eq(1)
            with m.If(in_vec_end):
                m.d.sync += [pos.eq(0), chunk_no.eq(0)]
            with m.Elif(in_chunk_end):
                m.d.sync += [pos.eq(0), chunk_no.eq(chunk_no + 1)]
            with m.Else():
                m.d.sync += pos.eq(pos + 1)
        m.d.comb += self.error.eq(error)

        # --- stage 2: write value, mask and pointer memories -----------------------------------
        shift_next = Signal(C)
        m.d.comb += shift_next.eq(Cat(shift[1:], s1_keep))
        # The last chunk (the only one ending with the vector) holds `last_chunk` bits at the top.
        mask_word = Mux(s1_vec_end, shift_next[C - geo.last_chunk:], shift_next)
        vptr_next = vptr + s1_keep
        m.d.comb += [
            value_w.addr.eq(vptr), value_w.data.eq(s1_word), value_w.en.eq(s1_valid & s1_keep),
            mask_w.addr.eq(s1_chunk), mask_w.data.eq(mask_word),
            ptr_w.addr.eq(s1_chunk), ptr_w.data.eq(base),
            mask_w.en.eq(s1_valid & s1_chunk_end), ptr_w.en.eq(s1_valid & s1_chunk_end),
        ]
        with m.If(s1_valid):
            m.d.sync += [shift.eq(shift_next), vptr.eq(vptr_next)]
            with m.If(s1_vec_end):
                m.d.sync += [base.eq(0), full.eq(1)]
            with m.Elif(s1_chunk_end):
                m.d.sync += base.eq(vptr_next)

        # --- release ---------------------------------------------------------------------------
        m.d.comb += [self.done.valid.eq(full), self.done.payload.kept.eq(vptr)]
        with m.If(self.done.valid & self.done.ready):
            m.d.sync += [full.eq(0), vptr.eq(0)]
        return m


class SpikeDecompressor(wiring.Component):
    """Streams a stored fiber back out as ``length`` words, dropped neurons as 0.

    Microarchitecture
    -----------------
    A three-step pipeline over the compressor's read ports, moving only when the output register
    can advance (``adv = ~words.valid | words.ready``)::

        fetch   chunk_read.addr = c, en         at the start and in the walk's last step of a chunk
        walk    neuron i of chunk c:            kept = mask bit i,  value_read.addr = ptr, en = adv
                ptr <= ptr + kept               (ptr starts at the chunk's base)
        output  words.payload.word = kept ? value_read.data : 0,  valid, last

    A chunk's mask and base are used straight from ``chunk_read.data`` in the chunk's first walk
    step and copied into a shift register and the running pointer there, so the next chunk's row
    is fetched in the current chunk's last step and chunks follow each other without a bubble.
    When the output stalls, ``value_read.en`` is low and the read port's own data register holds
    the word of the waiting beat; the walk and fetch registers hold too.

    The fiber is released (``fiber.ready``, one cycle) in the walk step of the final neuron: every
    read has then been issued, and the compressor cannot overwrite the read port's data register.

    Cycles: with ``words.ready`` high, the first word is valid 2 cycles after ``fiber.valid``
    rises (chunk read, value read) and then one word per cycle, so the last word leaves in cycle
    ``length + 1`` counting the cycle ``fiber.valid`` rose as 0. Fed back to back, a new vector
    starts ``length + 1`` cycles after the previous one.

    Parameters
    ----------
    cfg : SnnConfig
    length : int
        Neurons per vector, the compressor's ``length``.

    Attributes
    ----------
    fiber : stream, in
        The compressor's ``done`` stream; ``valid`` starts a walk, the transfer releases the fiber.
    chunk_read, value_read : read ports, in (the compressor's ports, flipped)
    words : stream, out
        One neuron per beat, see :func:`word_layout`; ``last`` on neuron ``length - 1``.
    """

    def __init__(self, cfg: SnnConfig, length: int):
        self.cfg = cfg
        self.geometry = FiberGeometry(cfg, length)
        super().__init__({
            "fiber": In(stream.Signature(done_layout(length))),
            "chunk_read": In(chunk_read_signature(cfg, length)),
            "value_read": In(value_read_signature(cfg, length)),
            "words": Out(stream.Signature(word_layout(cfg))),
        })

    def elaborate(self, platform):
        cfg, geo = self.cfg, self.geometry
        C = cfg.chunk
        m = Module()

        adv = Signal()
        m.d.comb += adv.eq(~self.words.valid | self.words.ready)

        # --- walk state ---------------------------------------------------------------------
        running = Signal()
        pos = Signal(range(C))
        chunk_no = Signal(range(geo.chunk_depth))
        ptr = Signal(range(geo.value_depth), reset_less=True)
        shift = Signal(C, reset_less=True)                  # mask bits of positions > pos

        # --- output register (data is the value read port's own register) ------------------
        out_valid = Signal()
        out_kept = Signal(reset_less=True)
        out_last = Signal(reset_less=True)

        first = Signal()                                    # first walk step of a chunk
        m.d.comb += first.eq(pos == 0)
        kept = Signal()
        cur_ptr = Signal(range(geo.value_depth))
        cur_mask = Signal(C)
        m.d.comb += [
            cur_mask.eq(Mux(first, self.chunk_read.data.mask, shift)),
            cur_ptr.eq(Mux(first, self.chunk_read.data.base, ptr)),
            kept.eq(cur_mask[0]),
        ]
        vec_end = Signal()
        chunk_end = Signal()
        m.d.comb += [
            vec_end.eq((chunk_no == geo.chunks - 1) & (pos == geo.last_chunk - 1)),
            chunk_end.eq((pos == C - 1) | vec_end),
        ]
        step = Signal()
        m.d.comb += step.eq(running & adv)

        # Reads: values every advancing cycle (a bubble's read is harmless), chunks only when a
        # new row is needed so that `chunk_read.data` holds until the chunk's first step.
        start = Signal()
        m.d.comb += start.eq(~running & self.fiber.valid)
        m.d.comb += [
            self.value_read.addr.eq(cur_ptr),
            self.value_read.en.eq(adv),
            self.chunk_read.addr.eq(Mux(running, chunk_no + 1, 0)),
            self.chunk_read.en.eq(start | (step & chunk_end & ~vec_end)),
            self.fiber.ready.eq(step & vec_end),
        ]

        with m.If(start):
            m.d.sync += [running.eq(1), pos.eq(0), chunk_no.eq(0)]
        with m.If(step):
            m.d.sync += [shift.eq(cur_mask >> 1), ptr.eq(cur_ptr + kept)]
            with m.If(vec_end):
                m.d.sync += [running.eq(0), pos.eq(0), chunk_no.eq(0)]
            with m.Elif(chunk_end):
                m.d.sync += [pos.eq(0), chunk_no.eq(chunk_no + 1)]
            with m.Else():
                m.d.sync += pos.eq(pos + 1)
        with m.If(adv):
            m.d.sync += [out_valid.eq(step), out_kept.eq(kept), out_last.eq(vec_end)]

        m.d.comb += [
            self.words.valid.eq(out_valid),
            self.words.payload.word.eq(Mux(out_kept, self.value_read.data, 0)),
            self.words.payload.last.eq(out_last),
        ]
        return m


def round_trip_signature(cfg: SnnConfig) -> wiring.Signature:
    """Words in, the same words (after compression) out, and a sticky ``last`` error flag."""
    return wiring.Signature({
        "words_in": In(stream.Signature(word_layout(cfg))),
        "words_out": Out(stream.Signature(word_layout(cfg))),
        "error": Out(1),
    })


class CompressRoundTrip(wiring.Component):
    """Compressor feeding decompressor: each vector of ``words_in`` comes back on ``words_out``.

    Every word with fewer than ``cfg.min_spikes`` spikes comes back as 0. The buffer is single, so
    vectors do not overlap: with both streams never waiting, a vector takes ``2 * length + 2``
    cycles from its first input beat to the next vector's first input beat (``length`` input
    beats, 1 cycle for the final beat's memory writes, 1 to fetch chunk 0, ``length`` walk steps;
    the release in the last walk step lets the next beat in the following cycle).

    Attributes
    ----------
    words_in : stream, in
    words_out : stream, out
        Both :func:`word_layout`.
    error : Signal, out
        The compressor's sticky ``last`` protocol error.
    compressor : SpikeCompressor
    decompressor : SpikeDecompressor
    """

    def __init__(self, cfg: SnnConfig, length: int):
        self.cfg = cfg
        self.compressor = SpikeCompressor(cfg, length)
        self.decompressor = SpikeDecompressor(cfg, length)
        super().__init__(round_trip_signature(cfg))

    def elaborate(self, platform):
        m = Module()
        m.submodules.compressor = comp = self.compressor
        m.submodules.decompressor = decomp = self.decompressor
        wiring.connect(m, wiring.flipped(self.words_in), comp.words)
        wiring.connect(m, comp.done, decomp.fiber)
        wiring.connect(m, comp.chunk_read, decomp.chunk_read)
        wiring.connect(m, comp.value_read, decomp.value_read)
        wiring.connect(m, decomp.words, wiring.flipped(self.words_out))
        m.d.comb += self.error.eq(comp.error)
        return m


class PingPongRoundTrip(wiring.Component):
    """Two :class:`CompressRoundTrip` buffers taking vectors in turn, so vectors overlap.

    Vector v goes into buffer ``v % 2`` and comes out of it, in order: while one buffer streams a
    vector out, the other takes the next one in. With both streams never waiting, a vector takes
    ``length`` cycles in steady state instead of ``2 * length + 2``. A vector's end is its beat
    with ``last`` set (the buffers also end a vector after ``length`` beats; ``error`` reports a
    misplaced ``last`` in either, as for :class:`CompressRoundTrip`).

    Attributes
    ----------
    words_in : stream, in
    words_out : stream, out
        Both :func:`word_layout`.
    error : Signal, out
    """

    def __init__(self, cfg: SnnConfig, length: int):
        self.cfg = cfg
        self.buffers = [CompressRoundTrip(cfg, length) for _ in range(2)]
        super().__init__(round_trip_signature(cfg))

    def elaborate(self, platform):
        m = Module()
        into, outof = Signal(), Signal()          # buffer taking / giving the current vector
        for i, buf in enumerate(self.buffers):
            m.submodules[f"buffer{i}"] = buf
            m.d.comb += [buf.words_in.payload.eq(self.words_in.payload),
                         buf.words_in.valid.eq(self.words_in.valid & (into == i)),
                         buf.words_out.ready.eq(self.words_out.ready & (outof == i))]
            with m.If(into == i):
                m.d.comb += self.words_in.ready.eq(buf.words_in.ready)
            with m.If(outof == i):
                m.d.comb += [self.words_out.valid.eq(buf.words_out.valid),
                             self.words_out.payload.eq(buf.words_out.payload)]
        with m.If(self.words_in.valid & self.words_in.ready & self.words_in.payload.last):
            m.d.sync += into.eq(~into)
        with m.If(self.words_out.valid & self.words_out.ready & self.words_out.payload.last):
            m.d.sync += outof.eq(~outof)
        m.d.comb += self.error.eq(self.buffers[0].error | self.buffers[1].error)
        return m
