"""The weight loader of the snn layer: weight fibers in, rows of the TPPEs' weight memories out
(docs/architecture.md §4.2).

A *weight set* is the weight fibers of the output neurons n = 0..N-1 in order (each one fiber of
K input neurons in the format of :mod:`.fiber`, ``last`` on the set's final beat). Neuron n
belongs to TPPE ``p = n % P`` as its neuron ``g = n // P``: its nonzero weight of input neuron k
goes to row ``g*K + k`` of that TPPE's weight memory, and the nonzero mask of its chunk c to row
``g*C + c`` of its mask memory. A weight beat equal to 0 writes nothing, so it is dropped as
``golden.compress_weights`` drops it.

A set may start whenever the layer's spike store holds no complete sample and no sample whose
last beat was taken is still on its way into it (``allowed``); from its first beat until its last
row is written
``loading`` is high and no TPPE starts a sample, so a sample whose last beat was taken before the
set's first beat is joined with the weights before it, and one completed later with the new set.
Sets can follow each other at any time, with no reset.
"""

from __future__ import annotations

from amaranth import Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hwgen.hdl.pipeline import register_copies

from .config import SnnConfig
from .fiber import FiberReceiver, fiber_layout
from .tppe import COPY_PER_TPPE_FROM, neurons_of

__all__ = ["INPUT_FIFO", "WeightLoader"]

#: Beats the loader's input FIFO holds.
INPUT_FIFO = 3


class WeightLoader(wiring.Component):
    """Loads weight sets into the weight and mask memories of ``min(P, N)`` TPPEs.

    Attributes
    ----------
    beats : stream, in
        The weight fibers (:func:`.fiber.fiber_layout` with ``weight_bits`` values).
    allowed_next : in
        In the next cycle a new set may start (the spike store is empty): the loader registers
        it, so the gate of its input port is a register.
    loading : out
        A set is being loaded.
    loading_next : out
        ``loading`` of the next cycle, so a user can register copies of it.
    row, value : out
        Weight write: row ``g*K + k`` and weight (registers, two cycles after the receiver's
        event).
    write : out, one per TPPE
        Weight write enable of TPPE p (a register).
    mask, mask_row, mask_write : out, one per TPPE
        Mask write to TPPE p: the chunk's nonzero mask, row ``g*C + c`` and enable (all
        registers, in the cycle of the weight write; the masks are one register below
        :data:`~.tppe.COPY_PER_TPPE_FROM` TPPEs, a copy per TPPE from there on).
    error : out
        The receiver's sticky format error.
    """

    def __init__(self, cfg: SnnConfig):
        self.cfg = cfg
        self.pes = min(cfg.pes, cfg.out_neurons)
        groups = neurons_of(cfg, 0)
        K, C = cfg.in_neurons, cfg.chunks
        super().__init__({
            "beats": In(stream.Signature(fiber_layout(cfg.chunk, cfg.weight_bits))),
            "allowed_next": In(1),
            "loading": Out(1),
            "loading_next": Out(1),
            "row": Out(range(max(groups * K, 2))),
            "value": Out(signed(cfg.weight_bits)),
            "write": Out(1).array(self.pes),
            "mask": Out(cfg.chunk).array(self.pes),
            "mask_row": Out(range(max(groups * C, 2))).array(self.pes),
            "mask_write": Out(1).array(self.pes),
            "error": Out(1),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        K, C, W, N, P = cfg.in_neurons, cfg.chunks, cfg.chunk, cfg.out_neurons, self.pes
        m = Module()
        m.submodules.receiver = rx = FiberReceiver(W, K, cfg.weight_bits)
        # After a set's final beat (``last``) no beat is taken until its last row is written, so
        # ``loading`` ends with the set it began with.
        # ``allowed`` is registered from the layer's next-state flags, so it equals the layer's
        # ``allowed`` of this cycle while the port's gate starts from registers: the store's
        # ``full`` -> ``allowed`` -> ``weights.ready`` -> the input FIFO's write enable was the
        # critical path of snn_paper (13.6 ns at seed 1, 11.7 of them routing to the FIFO's
        # flip-flops). After reset the store is empty: allowed.
        allowed = Signal(init=1)
        m.d.sync += allowed.eq(self.allowed_next)
        closing = Signal()
        open_ = (allowed | self.loading) & ~closing
        # The beats pass a FIFO before the receiver, so the gating above and the port do not sit
        # in front of the receiver's walker (``full`` -> ``allowed`` -> a value beat's valid ->
        # the walker's advance -> its next slice was 10.0 ns: the default config at 99.8 MHz).
        m.submodules.buffer = buf = SyncFIFOBuffered(width=len(self.beats.payload.as_value()),
                                                     depth=INPUT_FIFO)
        m.d.comb += [buf.w_data.eq(self.beats.payload.as_value()),
                     buf.w_en.eq(self.beats.valid & open_),
                     self.beats.ready.eq(buf.w_rdy & open_),
                     rx.beats.valid.eq(buf.r_rdy), rx.beats.payload.eq(buf.r_data),
                     buf.r_en.eq(rx.beats.ready), self.error.eq(rx.error)]

        # --- the event's neuron: its TPPE, and its rows ------------------------------------------
        n = Signal(range(max(N, 2)))
        p = Signal(range(max(P, 2)))
        group_row = Signal(range(max(neurons_of(cfg, 0) * K + K, 2)))     # g*K
        group_mask = Signal(range(max(neurons_of(cfg, 0) * C + C, 2)))    # g*C
        row0 = Signal.like(group_row)                                     # g*K + c*chunk
        mask_row = Signal.like(group_mask)                                # g*C + c
        ev = rx.events.payload
        m.d.comb += rx.events.ready.eq(1)
        took = rx.events.valid
        set_end = ev.vector_end & (n == N - 1)
        with m.If(took & ev.vector_end):
            wrap = p == P - 1
            next_row = Mux(wrap, group_row + K, group_row)
            next_mask = Mux(wrap, group_mask + C, group_mask)
            m.d.sync += [n.eq(n + 1), p.eq(Mux(wrap, 0, p + 1)), group_row.eq(next_row),
                         group_mask.eq(next_mask), row0.eq(next_row), mask_row.eq(next_mask)]
            with m.If(set_end):
                m.d.sync += [n.eq(0), p.eq(0), group_row.eq(0), group_mask.eq(0), row0.eq(0),
                             mask_row.eq(0)]
        with m.Elif(took & ev.chunk_end):
            m.d.sync += [row0.eq(row0 + W), mask_row.eq(mask_row + 1)]

        # --- registered event, then the writes, registered -----------------------------------
        s_valid, s_end = Signal(), Signal()
        s = Signal.like(ev)
        s_pe, s_row = Signal.like(p), Signal.like(self.row)
        s_mask_row = Signal.like(mask_row)
        # The event's nonzero test and its mask bit (one-hot) are registered with it: decoded
        # after the register, the position and the test fanned out to all W bits of the mask
        # accumulator (snn_paper seeds 2 and 3: 11.4-12.5 ns of routing, the critical path).
        s_nonzero, s_bit = Signal(), Signal(W)
        m.d.sync += [s_valid.eq(took), s_end.eq(took & set_end)]
        with m.If(took):
            m.d.sync += [s.eq(ev), s_pe.eq(p), s_row.eq(row0 + ev.pos), s_mask_row.eq(mask_row)]
            ev_nonzero = ev.has_value & ev.value.any()
            m.d.sync += [s_nonzero.eq(ev_nonzero),
                         s_bit.eq(Mux(ev_nonzero, Const(1, W) << ev.pos, 0))]
        value = s.value.as_signed()
        acc = Signal(W)                                   # the chunk's nonzero mask so far
        mask = Signal(W)                                  # ... with this event's bit
        m.d.comb += mask.eq(acc | s_bit)
        with m.If(s_valid):
            m.d.sync += acc.eq(Mux(s.chunk_end, 0, mask))
        # Every write leaves from a register, a cycle after the event's registered stage: the
        # mask's decoder and OR in front of the mask write ports of all P TPPEs was a critical
        # path of snn_paper (P = 16). Still early enough: the set's last event is registered in
        # cycle e + 1 (taken in e), so ``loading`` is low from e + 2, the cycle its writes now
        # leave in (the mask is written at the end of e + 2, the weight, through the memory's
        # registered port, at the end of e + 3). A TPPE that starts in e + 2 reads its first
        # weight mask at the end of e + 3 and its first weight cycles later. No cycle of any
        # handshake moves.
        # Each TPPE has its own copy of the mask row and of both enables, its TPPE decoded in:
        # one mask row register drove the write address of every LUT-RAM cell of all P mask
        # memories (snn_paper: 16 x 32 cells across the device, 13.0 ns of routing, the
        # critical path at seed 1). A copy loads only with its TPPE's events (the only ones
        # its write uses), so the copies differ and synthesis cannot merge them back into one.
        # From COPY_PER_TPPE_FROM TPPEs on the chunk's mask too leaves from a copy per TPPE
        # (kept apart in synthesis, hwgen.hdl.pipeline.register_copies): one 128-bit register
        # fanned out to the LUT-RAM write data of all 16 TPPEs of snn_paper sat among them,
        # and pulled the event's bit decoder in front of it away from the receiver (13.9 ns,
        # 12.2 of it routing, at seed 2 of 3349d15). Each copy is written in the same cycle.
        if P >= COPY_PER_TPPE_FROM:
            masks = register_copies(m, mask, P, name="mask_copy")
        else:
            masks = [Signal(W, name="mask_reg")] * P
            m.d.sync += masks[0].eq(mask)
        m.d.comb += [self.mask[q].eq(masks[q]) for q in range(P)]
        m.d.sync += [self.row.eq(s_row), self.value.eq(value)]
        for q in range(P):
            mine = s_valid & (s_pe == q)
            m.d.sync += [self.write[q].eq(mine & s_nonzero),
                         self.mask_write[q].eq(mine & s.chunk_end)]
            with m.If(mine):
                m.d.sync += self.mask_row[q].eq(s_mask_row)
        # ``loading`` rises with a set's first beat taken, ``closing`` with its final one; both
        # fall after the set's last event (``s_end``; never while ``loading`` is low). Written
        # as next states rather than as enables behind ``beats.ready``: the store's ``full`` /
        # ``busy`` -> ``allowed`` -> ``beats.ready`` -> the enable of ``closing`` was five LUTs
        # and 8.6 ns of routing (the critical path of seq_fast at seed 1: 95.5 MHz, 97.0 with the
        # walker's registered slice selects). Same values in every cycle.
        space = Signal()                                  # a beat is offered and fits
        m.d.comb += space.eq(self.beats.valid & buf.w_rdy)
        m.d.comb += self.loading_next.eq(~s_end & (self.loading | (space & allowed)))
        m.d.sync += [
            self.loading.eq(self.loading_next),
            closing.eq(~s_end & (closing | (space & self.beats.payload.last
                                            & (allowed | self.loading)))),
        ]
        return m
