"""The snn engine's stream formats and the blocks that read and write them (docs/architecture.md
§4.2).

Formats
-------
*dense* (:func:`word_layout`): one beat per neuron, its packed spike word (bit t = spike at step
t), ``last`` on the vector's final neuron.

*fiber* (:func:`fiber_layout`): the compressed format of golden rule 2 on the wire. Per chunk of
``chunk`` neurons (the last chunk may be partial) one *mask beat* (``mask`` = 1, ``data`` = the
chunk's bitmask, bit i = neuron ``c*chunk + i`` kept), then one beat per kept neuron in
increasing order (``mask`` = 0, ``data`` = its value in the low bits: a spike word, or a weight
as a two's-complement ``weight_bits`` number). ``last`` marks the vector's final beat (the last
kept value of the last chunk, or the last chunk's mask beat if that chunk keeps nothing)::

    chunk 0:  [mask=1 data=0b0101_0010]  [mask=0 data=w1]  [mask=0 data=w4]  [mask=0 data=w6]
    chunk 1:  [mask=1 data=0b0000_0000]                       (no kept neuron: the mask alone)
    chunk 2:  [mask=1 data=0b1000_0001]  [mask=0 data=w16]  [mask=0 data=w23, last=1]

The ``mask`` flag is redundant with the masks' popcounts, but it lets a receiver take every beat
as it comes, without counting ahead (a 256-bit popcount would sit right behind the input port).

Blocks
------
Both receivers turn their format into the same *write events* (:func:`event_layout`), at most
one per cycle, so what follows them does not know the format:

:class:`DenseReceiver`
    A word per beat; its position comes from counters.
:class:`FiberReceiver`
    Mask beats go to a :class:`~hwgen.hdl.walker.SetBitWalker`, whose positions pair up with the
    value beats. A chunk with kept neurons costs its mask beat, one cycle while the walker loads
    the mask, and one cycle per kept value; a chunk that keeps nothing costs its mask beat.
:class:`FiberEmitter`
    The other way: dense words in, fiber beats out, through two chunk buffers.
"""

from __future__ import annotations

from amaranth import Array, Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hwgen.hdl.popcount import popcount
from hwgen.hdl.walker import SetBitWalker

__all__ = ["word_layout", "row_layout", "fiber_layout", "event_layout", "keep_word", "DenseReceiver",
           "FiberReceiver", "FiberEmitter"]

#: Bits per slice of the walker that pairs mask bits with value beats.
RECEIVER_SLICE = 16


def word_layout(timesteps: int) -> data.StructLayout:
    """A dense beat: one neuron's packed word (bit t = spike at step t); ``last`` on the final
    one."""
    return data.StructLayout({"word": unsigned(timesteps), "last": 1})


def row_layout(timesteps: int, lanes: int) -> data.StructLayout:
    """A row of ``lanes`` dense words (the :class:`FiberEmitter`'s input): neurons ``r*lanes``
    on."""
    return data.StructLayout({"words": data.ArrayLayout(unsigned(timesteps), lanes)})


def fiber_layout(chunk: int, value_bits: int) -> data.StructLayout:
    """A fiber beat: ``data`` (a chunk's mask, or a value in the low ``value_bits`` bits),
    ``mask`` (1 on a mask beat) and ``last`` (the vector's final beat)."""
    return data.StructLayout({"data": max(chunk, value_bits), "mask": 1, "last": 1})


def event_layout(chunk: int, chunks: int, value_bits: int) -> data.StructLayout:
    """A write event: the value (``has_value``) of neuron ``c*chunk + pos``; ``chunk_end`` closes
    chunk ``c`` (with or without a value), ``vector_end`` the vector."""
    return data.StructLayout({"c": range(max(chunks, 2)), "pos": range(max(chunk, 2)),
                              "value": value_bits, "has_value": 1, "chunk_end": 1,
                              "vector_end": 1})


def keep_word(word, min_spikes: int, timesteps: int):
    """1 when a packed spike ``word`` has at least ``min_spikes`` spikes (golden rule 2)."""
    if min_spikes == 1:
        return word.any()           # the common case needs no adders: an OR over T bits
    if min_spikes == timesteps:
        return word.all()
    return popcount(word) >= min_spikes


class DenseReceiver(wiring.Component):
    """Dense beats of vectors of ``length`` neurons in, write events out (one per beat).

    Vectors are delimited by counting; a beat whose ``last`` disagrees with the count sets the
    sticky ``error`` (the beat is used as counted, so later vectors stay aligned to the count).
    """

    def __init__(self, chunk: int, length: int, value_bits: int):
        self.chunk, self.length, self.value_bits = chunk, length, value_bits
        self.chunks = -(-length // chunk)
        super().__init__({
            "beats": In(stream.Signature(word_layout(value_bits))),
            "events": Out(stream.Signature(event_layout(chunk, self.chunks, value_bits))),
            "error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        c = Signal(range(max(self.chunks, 2)))
        pos = Signal(range(max(self.chunk, 2)))
        last_chunk = self.length - (self.chunks - 1) * self.chunk
        ev = self.events.payload
        vector_end = (c == self.chunks - 1) & (pos == last_chunk - 1)
        m.d.comb += [
            self.events.valid.eq(self.beats.valid), self.beats.ready.eq(self.events.ready),
            ev.c.eq(c), ev.pos.eq(pos), ev.value.eq(self.beats.payload.word),
            ev.has_value.eq(1), ev.vector_end.eq(vector_end),
            ev.chunk_end.eq((pos == self.chunk - 1) | vector_end),
        ]
        error = Signal()
        m.d.comb += self.error.eq(error)
        with m.If(self.beats.valid & self.beats.ready):
            with m.If(self.beats.payload.last != vector_end):
                m.d.sync += error.eq(1)
            with m.If(vector_end):
                m.d.sync += [c.eq(0), pos.eq(0)]
            with m.Elif(ev.chunk_end):
                m.d.sync += [c.eq(c + 1), pos.eq(0)]
            with m.Else():
                m.d.sync += pos.eq(pos + 1)
        return m


class FiberReceiver(wiring.Component):
    """Fiber beats of vectors of ``length`` neurons in, write events out.

    A mask beat is taken when the walker can take a mask; a value beat is taken with the walker's
    next position, as one event; a chunk that keeps nothing gives one event without a value. So
    ``events`` carries one event per value plus one per empty chunk.

    ``error`` (sticky) reports a stream that breaks the format: a mask beat while the chunk before
    still expects values, or ``last`` on a beat that is not the vector's final one (or missing
    there). Such a stream is not recovered from. ``busy``: the walker holds a chunk's mask (taken,
    its last event not yet taken). ``closing_next``: by the next cycle a vector's final beat
    will have been taken and its last event not yet (a final chunk that keeps nothing gives its
    event cycles after its mask beat); a next state, so a user can register what it gates.
    """

    def __init__(self, chunk: int, length: int, value_bits: int):
        self.chunk, self.length, self.value_bits = chunk, length, value_bits
        self.chunks = -(-length // chunk)
        super().__init__({
            "beats": In(stream.Signature(fiber_layout(chunk, value_bits))),
            "events": Out(stream.Signature(event_layout(chunk, self.chunks, value_bits))),
            "error": Out(1),
            "busy": Out(1),
            "closing_next": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        beat = self.beats.payload
        m.submodules.walker = walker = SetBitWalker(self.chunk, RECEIVER_SLICE,
                                                    tag=range(max(self.chunks, 2)))
        pos = walker.positions
        c_in = Signal(range(max(self.chunks, 2)))          # chunk of the next mask beat
        is_mask = self.beats.valid & beat.mask
        is_value = self.beats.valid & ~beat.mask
        m.d.comb += [walker.masks.valid.eq(is_mask), walker.masks.payload.mask.eq(beat.data),
                     walker.masks.payload.tag.eq(c_in)]

        ev = self.events.payload
        final = pos.payload.last & (pos.payload.tag == self.chunks - 1)
        m.d.comb += [
            self.events.valid.eq(pos.valid & (pos.payload.empty | is_value)),
            ev.c.eq(pos.payload.tag), ev.pos.eq(pos.payload.pos), ev.value.eq(beat.data),
            ev.has_value.eq(~pos.payload.empty), ev.chunk_end.eq(pos.payload.last),
            ev.vector_end.eq(final),
            pos.ready.eq(self.events.valid & self.events.ready),
            self.beats.ready.eq(Mux(beat.mask, walker.masks.ready,
                                    pos.valid & ~pos.payload.empty & self.events.ready)),
        ]
        took_mask = walker.masks.valid & walker.masks.ready
        with m.If(took_mask):
            m.d.sync += c_in.eq(Mux(c_in == self.chunks - 1, 0, c_in + 1))
        held = Signal(range(3))                  # masks in the walker: pending and walked
        m.d.sync += held.eq(held + took_mask - (pos.valid & pos.ready & pos.payload.last))
        m.d.comb += self.busy.eq(held != 0)

        error = Signal()
        m.d.comb += self.error.eq(error)
        took = self.beats.valid & self.beats.ready
        mask_final = (c_in == self.chunks - 1) & ~beat.data[:self.chunk].any()
        with m.If(took & (beat.last != Mux(beat.mask, mask_final, final))):
            m.d.sync += error.eq(1)
        with m.If(is_mask & pos.valid & ~pos.payload.empty):
            m.d.sync += error.eq(1)

        # Vectors between their final beat and their last event (at most two: one walked, one
        # pending). A final value beat is its last event, so it never counts.
        ending = Signal(range(3))
        final_beat = took & Mux(beat.mask, mask_final, final)
        final_event = self.events.valid & self.events.ready & final
        ending_next = Signal.like(ending)
        m.d.comb += [ending_next.eq(ending + final_beat - final_event),
                     self.closing_next.eq(ending_next != 0)]
        m.d.sync += ending.eq(ending_next)
        return m


class FiberEmitter(wiring.Component):
    """Rows of ``lanes`` dense words of vectors of ``length`` neurons in, fiber beats out.

    A row holds neurons ``r*lanes .. r*lanes + lanes-1`` of a vector (the vector's last row may
    hold fewer: its other lanes are ignored); ``lanes`` is a power of two dividing ``chunk``, so
    a row never crosses a chunk.

    Microarchitecture
    -----------------
    Two chunk buffers take turns. The *fill* side takes a row per cycle: it writes each kept word
    (``keep_word``) of the row into the current buffer at its rank (its place among the chunk's
    kept words) and sets the row's mask bits; at the chunk's end the buffer is handed to the
    *emit* side and filling goes on in the other one (if it is free). A buffer is ``lanes``
    banks, rank ``q`` in bank ``q mod lanes``: a row's kept words have consecutive ranks, so each
    goes to its own bank in the same cycle. The emit side issues the mask beat, then one read per
    kept word (every bank at the word's row, the bank chosen after the read), into a one-cycle
    stage that writes an output FIFO; issues stop while the FIFO could overflow, so ``out``
    backpressure never reaches the buffer reads.

    ``busy``: a buffer is full or a beat is on its way out.

    Timing, with ``out.ready`` high: a chunk's mask beat leaves 3 cycles after its last row was
    taken, then one beat per cycle.
    """

    #: Entries of the output FIFO (an issue needs a free entry counting those in flight).
    QUEUE = 3

    def __init__(self, chunk: int, length: int, timesteps: int, min_spikes: int,
                 lanes: int = 1):
        if lanes < 1 or lanes & (lanes - 1) or chunk % lanes:
            raise ValueError(f"lanes must be a power of two dividing chunk = {chunk}, "
                             f"not {lanes}")
        self.chunk, self.length, self.lanes = chunk, length, lanes
        self.timesteps, self.min_spikes = timesteps, min_spikes
        self.chunks = -(-length // chunk)
        super().__init__({
            "rows": In(stream.Signature(row_layout(timesteps, lanes))),
            "out": Out(stream.Signature(fiber_layout(chunk, timesteps))),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        W, T, L = self.chunk, self.timesteps, self.lanes
        lg = L.bit_length() - 1                           # rank q: bank q[:lg], row q[lg:]
        R = W // L                                        # rows per chunk
        last_chunk = self.length - (self.chunks - 1) * W
        last_row = -(-last_chunk // L) - 1                # the vector's last row in its chunk
        last_lanes = (self.length - 1) % L + 1            # neurons in the vector's last row
        ibits = max(R - 1, 1).bit_length()                # a row of a bank in one buffer
        banks = [memory.Memory(shape=T, depth=2 << ibits, init=[]) for _ in range(L)]
        for i, bank in enumerate(banks):
            m.submodules[f"bank{i}"] = bank
        wrs = [bank.write_port() for bank in banks]
        rds = [bank.read_port() for bank in banks]

        # Per buffer: its mask, kept words and whether it ends the vector, valid while ``full``.
        full = Signal(2)
        masks = [Signal(W, name=f"mask{b}") for b in range(2)]
        counts = [Signal(range(W + 1), name=f"count{b}") for b in range(2)]
        ends = [Signal(name=f"end{b}") for b in range(2)]

        # --- fill ------------------------------------------------------------------------------
        fb = Signal()                                     # buffer being filled
        c = Signal(range(max(self.chunks, 2)))
        r = Signal(range(max(R, 2)))                      # row within the chunk
        vector_end = (c == self.chunks - 1) & (r == last_row)
        chunk_end = (r == R - 1) | vector_end
        words = self.rows.payload.words
        keep = Signal(L)
        for i in range(L):
            present = ~vector_end if i >= last_lanes else 1
            m.d.comb += keep[i].eq(keep_word(words[i], self.min_spikes, T) & present)
        mask = Signal(W)                                  # the chunk's mask bits so far
        count = Signal(range(W + 1))                      # its kept words so far
        # Kept lane i has rank count + (kept lanes before it); bank j takes the kept lane
        # whose rank is j mod L, at the row count >> lg, or the next one for the banks below
        # count's own.
        took = self.rows.valid & self.rows.ready
        rank = count
        for i in range(L):
            for j, wr in enumerate(wrs):
                with m.If(keep[i] & (rank[:lg] == j) if lg else keep[i]):
                    m.d.comb += [wr.data.eq(words[i]), wr.en.eq(took)]
            rank = rank + keep[i]
        for j, wr in enumerate(wrs):
            # (no comparison for the last bank: count[:lg] > L-1 never holds, and lint says so)
            row = count[lg:] + (count[:lg] > j) if j < L - 1 else count[lg:]
            m.d.comb += wr.addr.eq(Cat(row[:ibits], fb))
        mask_next = Signal(W)
        m.d.comb += mask_next.eq(mask)
        m.d.comb += mask_next.word_select(r, L).eq(keep)
        count_next = count + popcount(keep) if L > 1 else count + keep
        m.d.comb += self.rows.ready.eq(~full.bit_select(fb, 1))
        with m.If(took):
            m.d.sync += [mask.eq(mask_next), count.eq(count_next), r.eq(r + 1)]
            with m.If(chunk_end):
                m.d.sync += [mask.eq(0), count.eq(0), r.eq(0), fb.eq(~fb),
                             c.eq(Mux(vector_end, 0, c + 1))]
                for b in range(2):
                    with m.If(fb == b):
                        m.d.sync += [full[b].eq(1), masks[b].eq(mask_next),
                                     counts[b].eq(count_next), ends[b].eq(vector_end)]

        # --- emit ------------------------------------------------------------------------------
        m.submodules.queue = queue = SyncFIFOBuffered(width=len(self.out.payload.as_value()),
                                                      depth=self.QUEUE)
        eb = Signal()                                     # buffer being emitted
        sent = Signal(range(W + 1))                       # words issued, after the mask beat
        started = Signal()                                # the mask beat is issued
        inflight = Signal()                               # an issue is in the one-cycle stage
        held = Signal(queue.level.shape())                # queue entries, counting in flight
        m.d.comb += held.eq(queue.level + inflight)
        e_mask = Mux(eb, masks[1], masks[0])
        e_count = Mux(eb, counts[1], counts[0])
        e_end = Mux(eb, ends[1], ends[0])
        issue = Signal()
        m.d.comb += issue.eq(full.bit_select(eb, 1) & (held < self.QUEUE))
        m.d.comb += [rd.addr.eq(Cat(sent[lg:lg + ibits], eb)) for rd in rds]
        m.d.comb += [rd.en.eq(issue) for rd in rds]
        # The one-cycle stage: a mask beat travels in registers, a word comes from its bank.
        s_mask, s_last = Signal(), Signal()
        s_data = Signal(W)
        s_bank = Signal(max(lg, 1))                     # (a 0-bit signal fails lint)
        m.d.sync += inflight.eq(issue)
        with m.If(issue):
            m.d.sync += [s_mask.eq(~started), s_data.eq(e_mask), s_bank.eq(sent[:lg])]
            final = Mux(started, sent == e_count - 1, e_count == 0)
            m.d.sync += s_last.eq(e_end & final)
            with m.If(final):
                m.d.sync += [started.eq(0), sent.eq(0), eb.eq(~eb)]
                for b in range(2):
                    with m.If(eb == b):
                        m.d.sync += full[b].eq(0)
            with m.Elif(started):
                m.d.sync += sent.eq(sent + 1)
            with m.Else():
                m.d.sync += started.eq(1)
        stage = Signal(self.out.payload.shape())
        word = Array(rd.data for rd in rds)[s_bank] if L > 1 else rds[0].data
        m.d.comb += [stage.data.eq(Mux(s_mask, s_data, word)), stage.mask.eq(s_mask),
                     stage.last.eq(s_last),
                     queue.w_data.eq(stage.as_value()), queue.w_en.eq(inflight),
                     self.out.valid.eq(queue.r_rdy), self.out.payload.eq(queue.r_data),
                     queue.r_en.eq(self.out.ready),
                     self.busy.eq(full.any() | inflight | queue.r_rdy)]
        return m
