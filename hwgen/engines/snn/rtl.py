"""The dual-sparse SNN layer (docs/architecture.md §4.2, after LoAS): spike store, P TPPEs,
collector, LIF, output formatter.

Dataflow
--------
::

    spikes ─> receiver (dense | fiber) ─ events ─> SpikeStore (2 banks) ─┬─> TPPE 0 ─┐
    weights ─> WeightLoader ─ rows ─> each TPPE's weight memories         ├─> ...     ├─> collector
                                                                          └─> TPPE P-1┘      │
    out <─ dense words | FiberEmitter <─ L x UnrolledLif (one timestep per stage) <──────────┘

* **Weights** (:mod:`.weights`) arrive as weight sets of fibers, whenever the store is empty;
  no reset is needed between sets.
* **Spikes** arrive dense or as fibers (``in_format``); either receiver (:mod:`.fiber`) turns
  them into write events that fill one bank of the store (:mod:`.store`) while the TPPEs join the
  sample in the other.
* **Join** (:mod:`.tppe`): TPPE p joins its neurons ``n = g*P + p`` one after another, each
  chunk's matched positions one per cycle, independently of the other TPPEs; a bank is emptied
  once every TPPE has released it.
* **Fire**: the collector takes the TPPEs' results a row of L = ``cfg.lanes`` neurons at a time
  (in neuron order) into a register, and L LIFs in lockstep (:class:`.lif.UnrolledLif`,
  ``LIF_STEP_STAGES`` pipeline stages per timestep) turn the row into output words. One lane
  fired one neuron per cycle, which bound a join-bound layer: with N = 128 and P = 4 the TPPEs
  join a neuron in about 1.2 cycles, so P lanes keep up with them.
* **Out** (``out_format``): dense words, one per cycle (a word with fewer than ``min_spikes``
  spikes as 0, as the compressor of golden rule 5 drops it), or fibers
  (:class:`.fiber.FiberEmitter`, a row per cycle), so one layer's fiber output is the next
  one's input.
"""

from __future__ import annotations

from amaranth import Array, Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from hwgen.hdl.perf import PerfCounters, PerfSignature
from hwgen.hdl.pipeline import register_copies
from hwgen.hdl.walker import onehot_select

from .config import SnnConfig
from .fiber import DenseReceiver, FiberEmitter, FiberReceiver, fiber_layout, keep_word, word_layout
from .lif import UnrolledLif
from .store import SpikeStore
from .tppe import COPY_PER_TPPE_FROM, Tppe
from .weights import WeightLoader

__all__ = ["LIF_STEP_STAGES", "COLLECT_ROWS", "spikes_layout", "out_layout", "weights_layout",
           "SnnLayer"]

#: Pipeline stages per LIF step: the sum, the threshold and reset, the leak, one carry chain each
#: (one stage per step had 15 ns: snn_small at 65 MHz).
LIF_STEP_STAGES = 3
#: Rows in the collector in front of the LIFs: its row buffer's depth, and the most rows the
#: buffer and its gather register hold together. The collector takes a row while the buffer's level and the gather register leave
#: room, so no ready from the LIFs or the output reaches the TPPEs' result FIFOs; with three rows
#: it still takes a row per cycle while the LIFs take one.
COLLECT_ROWS = 3


def spikes_layout(cfg: SnnConfig):
    """A beat of the ``spikes`` port: dense or fiber (``in_format``)."""
    if cfg.in_format == "dense":
        return word_layout(cfg.timesteps)
    return fiber_layout(cfg.chunk, cfg.timesteps)


def out_layout(cfg: SnnConfig):
    """A beat of the ``out`` port: dense or fiber (``out_format``)."""
    if cfg.out_format == "dense":
        return word_layout(cfg.timesteps)
    return fiber_layout(cfg.chunk, cfg.timesteps)


def weights_layout(cfg: SnnConfig):
    """A beat of the ``weights`` port: weight fibers (:mod:`.weights`)."""
    return fiber_layout(cfg.chunk, cfg.weight_bits)


class SnnLayer(wiring.Component):
    """One SNN layer for ``cfg``.

    Attributes
    ----------
    weights : stream, in
        Weight sets (:mod:`.weights`), before the samples they apply to.
    spikes : stream, in
        Samples: K dense words, or K neurons as fibers (:func:`spikes_layout`).
    out : stream, out
        Per sample N dense words, or N neurons as fibers (:func:`out_layout`).
    perf : :data:`hwgen.hdl.perf.PerfSignature`, out
        ``busy``: a beat is offered on an input or ``out``, or the layer is ``working``;
        ``stall``: ``out`` waits for ``ready`` (a subset of busy).
    working : Signal (not a port)
        A sample is being received, stored or joined, a weight set loads, or a result is in the
        collector, the LIF or the output: low only when nothing is inside the layer (a network
        drains its layers on it before a weight load).
    """

    def __init__(self, cfg: SnnConfig):
        self.cfg = cfg
        self.working = Signal()
        super().__init__({
            "weights": In(stream.Signature(weights_layout(cfg))),
            "spikes": In(stream.Signature(spikes_layout(cfg))),
            "out": Out(stream.Signature(out_layout(cfg))),
            "perf": Out(PerfSignature),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        N, T = cfg.out_neurons, cfg.timesteps
        P = min(cfg.pes, N)
        m = Module()

        # --- spikes into the store ----------------------------------------------------------
        receiver = (DenseReceiver if cfg.in_format == "dense" else FiberReceiver)(
            cfg.chunk, cfg.in_neurons, T)
        m.submodules.receiver = receiver
        m.submodules.store = store = SpikeStore(cfg, P)
        wiring.connect(m, wiring.flipped(self.spikes), receiver.beats)
        wiring.connect(m, receiver.events, store.events)

        # --- weights and TPPEs ------------------------------------------------------------------
        m.submodules.loader = loader = WeightLoader(cfg)
        wiring.connect(m, wiring.flipped(self.weights), loader.beats)
        # A weight set may start while the store holds no complete sample, nor one whose last
        # beat was taken and that is still on its way in (its last event being written, or a
        # fiber's final empty chunk not yet walked): such a sample is complete, so it is joined
        # with the weights it arrived under. (A sample still arriving when the set starts is
        # joined with the new set.) Given as the next cycle's value: the loader registers it.
        closing_next = receiver.closing_next if cfg.in_format == "fiber" else 0
        m.d.comb += loader.allowed_next.eq(~store.full_next.any() & ~store.busy_next
                                           & ~closing_next)
        # The flags a TPPE starts a bank on: from COPY_PER_TPPE_FROM TPPEs on a copy per TPPE,
        # registered from the next state (the same value in every cycle). ``loading`` through a
        # TPPE's start and issue logic to its mask read address was a critical path of
        # snn_paper (13.2 ns at seed 3 of 3349d15, 7.5 of it the broadcast).
        if P >= COPY_PER_TPPE_FROM:
            fulls = register_copies(m, store.full_next, P, name="full")
            loadings = register_copies(m, loader.loading_next, P, name="loading")
        else:
            fulls, loadings = [store.full] * P, [loader.loading] * P
        pes = []
        for p in range(P):
            pe = Tppe(cfg, p, store.word_reads[p], store.mask_reads[p])
            m.submodules[f"tppe{p}"] = pe
            pes.append(pe)
            m.d.comb += [pe.full.eq(fulls[p]), pe.loading.eq(loadings[p]),
                         pe.weight_write.addr.eq(loader.row), pe.weight_write.data.eq(loader.value),
                         pe.weight_write.en.eq(loader.write[p]),
                         pe.mask_write.addr.eq(loader.mask_row[p]),
                         pe.mask_write.data.eq(loader.mask[p]),
                         pe.mask_write.en.eq(loader.mask_write[p])]

        # A bank is emptied once every TPPE has released it.
        for b in range(2):
            released = Signal(P, name=f"released{b}")
            done = Signal(name=f"free{b}")
            m.d.comb += [done.eq((released | Cat(pe.release[b] for pe in pes)).all()),
                         store.free[b].eq(done)]
            m.d.sync += released.eq(Mux(done, 0, released | Cat(pe.release[b] for pe in pes)))

        # --- collector: rows of L results in neuron order, a gather register, a row buffer -----
        # Row r is neurons r*L .. r*L + L-1 (fewer in the last row): lane i's neuron belongs to
        # TPPE (r*L + i) mod P. L divides P, so the row's TPPEs are group q: q*L .. q*L + L-1
        # with q = r mod (P / L), and lane i chooses among P / L TPPEs. The row is taken (``pop``)
        # once each of its TPPEs offers a result and the buffer has room for it.
        #
        # The 16 TPPEs of snn_paper are spread over the whole FPGA, and choosing a row's results
        # with a binary row counter straight into the row buffer's LUT-RAM write data was its
        # critical path (12-14 ns, 10.5-12.6 of it routing: the counter out to every TPPE and
        # the results back). So the group is a one-hot register, each bit ANDed with its own
        # TPPEs' results (an AND-OR multiplexer, each AND beside its TPPE), and the chosen row
        # goes into a gather register, loaded every cycle, which writes the buffer the cycle
        # after the pop. A popped row counts against the buffer's room from the pop on, so
        # nothing needs the buffer's write-ready.
        L = cfg.lanes
        R = -(-N // L)
        Q = P // L
        lifs = [UnrolledLif(cfg, steps_per_stage=1, step_stages=LIF_STEP_STAGES)
                for _ in range(L)]
        for i, lif in enumerate(lifs):
            m.submodules[f"lif{i}"] = lif
        sums_width = len(lifs[0].sums.payload.as_value())
        m.submodules.rows = rows = SyncFIFO(width=L * sums_width, depth=COLLECT_ROWS)
        group = Signal(Q, init=1)                          # one-hot: the row's TPPE group
        col_r = Signal(range(max(R, 2)))
        col_last = Signal(init=R == 1)                     # col_r == R - 1
        last_lanes = N - (R - 1) * L                       # lanes with a neuron in the last row
        pop = Signal()
        held = Signal(range(COLLECT_ROWS + 1))             # rows in the buffer and gatherer
        gathered = Signal()                                # the gather register holds a row
        gather = Signal(L * sums_width)
        lane_valid = []
        lane_payload = []
        for i in range(L):
            valid = Signal(name=f"lane{i}_valid")
            payload = Signal(sums_width, name=f"lane{i}_sums")
            group_pes = [pes[q * L + i] for q in range(Q)]
            m.d.comb += [valid.eq(onehot_select(group, [pe.results.valid for pe in group_pes])),
                         payload.eq(onehot_select(group, [pe.results.payload
                                                          for pe in group_pes]))]
            # Lanes past the last neuron (in the last row only) are not waited for.
            lane_valid.append(valid | col_last if i >= last_lanes else valid)
            lane_payload.append(payload)
        # Whether the collector has room is a register, with a copy for each TPPE group and
        # one for the pop: the LIF's ready (through ``take``) and the pop reach only its next
        # value. As logic after the buffer's level it went out to all P result FIFOs' read
        # enables and their output registers (snn_paper, 11.9 ns at 84.2 MHz).
        take = rows.r_en & rows.r_rdy
        held_next = Signal.like(held)
        m.d.comb += held_next.eq(held + pop - take)
        m.d.sync += held.eq(held_next)
        *rooms, room = register_copies(m, held_next < COLLECT_ROWS, Q + 1, name="room", init=1)
        m.d.comb += [pop.eq(room & Cat(lane_valid).all()),
                     rows.w_en.eq(gathered), rows.w_data.eq(gather)]
        m.d.sync += [gathered.eq(pop), gather.eq(Cat(lane_payload))]
        # A result is taken when the collector has room (registers, not the LIF's ready: the
        # output's ready through the LIF's enable into all P result FIFOs' read enables was
        # snn_paper's critical path, 14.9 ns at 67 MHz) and the row's other lanes are valid,
        # whatever its own valid: a ready without a valid takes nothing, and with one lane the
        # TPPEs' valid multiplexer stays out of the read enables.
        for q in range(Q):
            for i in range(L):
                pe = pes[q * L + i]
                present = ~col_last if i >= last_lanes else 1
                others = Cat(lane_valid[j] for j in range(L) if j != i).all() if L > 1 else 1
                m.d.comb += pe.results.ready.eq(rooms[q] & others & group[q] & present)
        with m.If(pop):
            m.d.sync += [col_r.eq(Mux(col_last, 0, col_r + 1)),
                         col_last.eq(Mux(col_last, R == 1, col_r == R - 2) if R > 1 else 1),
                         group.eq(Mux(col_last, 1, group.rotate_left(1)))]
        # The L LIFs share valid and ready, so they advance in lockstep.
        m.d.comb += rows.r_en.eq(lifs[0].sums.ready)
        row_valid, row_ready = lifs[0].spikes.valid, lifs[0].spikes.ready
        for i, lif in enumerate(lifs):
            m.d.comb += [lif.sums.valid.eq(rows.r_rdy),
                         lif.sums.payload.eq(rows.r_data[i * sums_width:(i + 1) * sums_width])]
            if i:
                m.d.comb += lif.spikes.ready.eq(row_ready)
        row = [lif.spikes.payload.spikes for lif in lifs]

        # --- output ------------------------------------------------------------------------------
        if cfg.out_format == "dense":
            # The row's words one per beat; the LIFs advance with the row's last one.
            out_n = Signal(range(max(N, 2)))
            lane = Signal(range(max(L, 2)))
            row_done = (lane == L - 1) | (out_n == N - 1)
            word = Array(row)[lane] if L > 1 else row[0]
            m.d.comb += [self.out.valid.eq(row_valid), row_ready.eq(self.out.ready & row_done),
                         self.out.payload.word.eq(Mux(keep_word(word, cfg.min_spikes, T),
                                                      word, 0)),
                         self.out.payload.last.eq(out_n == N - 1)]
            with m.If(self.out.valid & self.out.ready):
                m.d.sync += [out_n.eq(Mux(out_n == N - 1, 0, out_n + 1)),
                             lane.eq(Mux(row_done, 0, lane + 1))]
            emitting = 0
        else:
            m.submodules.emitter = emitter = FiberEmitter(cfg.chunk, N, T, cfg.min_spikes, L)
            m.d.comb += [emitter.rows.valid.eq(row_valid), row_ready.eq(emitter.rows.ready)]
            m.d.comb += [emitter.rows.payload.words[i].eq(row[i]) for i in range(L)]
            wiring.connect(m, emitter.out, wiring.flipped(self.out))
            emitting = emitter.busy

        # --- performance counters -----------------------------------------------------------------
        m.submodules.perf = perf = PerfCounters()
        wiring.connect(m, wiring.flipped(self.perf), perf.perf)
        # A beat offered on an input counts, taken or not: the ready logic behind a transfer
        # (the loader's and the receiver's walkers) in front of the counters' enables was a
        # critical path (10.9 ns, the default config at 92 MHz). While an offered beat waits,
        # the layer is busy anyway (a bank is full, a set is loading, a mask is being loaded).
        moving = Signal()
        receiving = receiver.busy if cfg.in_format == "fiber" else 0
        m.d.comb += [moving.eq(self.weights.valid | self.spikes.valid),
                     self.working.eq(receiving | store.busy | store.full.any() | loader.loading
                                     | Cat(pe.busy for pe in pes).any() | gathered | rows.r_rdy
                                     | lifs[0].busy
                                     | self.out.valid | emitting)]
        m.d.comb += [perf.busy.eq(moving | self.working),
                     perf.stall.eq(self.out.valid & ~self.out.ready)]
        return m
