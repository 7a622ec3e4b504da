"""The dual-sparse SNN layer (docs/architecture.md §4.2, after LoAS): spike store, P TPPEs,
collector, LIF, output formatter.

Dataflow
--------
::

    spikes ─> receiver (dense | fiber) ─ events ─> SpikeStore (2 banks) ─┬─> TPPE 0 ─┐
    weights ─> WeightLoader ─ rows ─> each TPPE's weight memories         ├─> ...     ├─> collector
                                                                          └─> TPPE P-1┘      │
    out <─ dense words | FiberEmitter <─ UnrolledLif (one timestep per stage) <──────────────┘

* **Weights** (:mod:`.weights`) arrive as weight sets of fibers, whenever the store is empty;
  no reset is needed between sets.
* **Spikes** arrive dense or as fibers (``in_format``); either receiver (:mod:`.fiber`) turns
  them into write events that fill one bank of the store (:mod:`.store`) while the TPPEs join the
  sample in the other.
* **Join** (:mod:`.tppe`): TPPE p joins its neurons ``n = g*P + p`` one after another, each
  chunk's matched positions one per cycle, independently of the other TPPEs; a bank is emptied
  once every TPPE has released it.
* **Fire**: the collector takes the TPPEs' results in neuron order into a register, and the LIF
  (:class:`.lif.UnrolledLif`, ``LIF_STEP_STAGES`` pipeline stages per timestep) turns each into
  an output word.
* **Out** (``out_format``): dense words (a word with fewer than ``min_spikes`` spikes as 0, as
  the compressor of golden rule 5 drops it) or fibers (:class:`.fiber.FiberEmitter`), so one
  layer's fiber output is the next one's input.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.hdl.perf import PerfCounters, PerfSignature

from .config import SnnConfig
from .fiber import DenseReceiver, FiberEmitter, FiberReceiver, fiber_layout, keep_word, word_layout
from .lif import UnrolledLif
from .store import SpikeStore
from .tppe import Tppe
from .weights import WeightLoader

__all__ = ["LIF_STEP_STAGES", "spikes_layout", "out_layout", "weights_layout", "SnnLayer"]

#: Pipeline stages per LIF step: the sum, the threshold and reset, the leak, one carry chain each
#: (one stage per step had 15 ns: snn_small at 65 MHz).
LIF_STEP_STAGES = 3


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
        # Nor while a sample whose last beat was taken is still on its way into the store (its
        # last event being written, or a fiber's final empty chunk not yet walked): that sample
        # is complete, so it is joined with the weights it arrived under. (A sample still
        # arriving when the set starts is joined with the new set.)
        closing = receiver.closing if cfg.in_format == "fiber" else 0
        m.d.comb += loader.allowed.eq(~store.full.any() & ~store.busy & ~closing)
        pes = []
        for p in range(P):
            pe = Tppe(cfg, p, store.word_reads[p], store.mask_reads[p])
            m.submodules[f"tppe{p}"] = pe
            pes.append(pe)
            mine = loader.pe == p
            m.d.comb += [pe.full.eq(store.full), pe.loading.eq(loader.loading),
                         pe.weight_write.addr.eq(loader.row), pe.weight_write.data.eq(loader.value),
                         pe.weight_write.en.eq(loader.write & mine),
                         pe.mask_write.addr.eq(loader.mask_row), pe.mask_write.data.eq(loader.mask),
                         pe.mask_write.en.eq(loader.mask_write & mine)]

        # A bank is emptied once every TPPE has released it.
        for b in range(2):
            released = Signal(P, name=f"released{b}")
            done = Signal(name=f"free{b}")
            m.d.comb += [done.eq((released | Cat(pe.release[b] for pe in pes)).all()),
                         store.free[b].eq(done)]
            m.d.sync += released.eq(Mux(done, 0, released | Cat(pe.release[b] for pe in pes)))

        # --- collector: results in neuron order into a register -----------------------------------
        m.submodules.lif = lif = UnrolledLif(cfg, steps_per_stage=1, step_stages=LIF_STEP_STAGES)
        col_valid = Signal()
        col = Signal.like(lif.sums.payload)
        col_p = Signal(range(max(P, 2)))
        col_n = Signal(range(max(N, 2)))
        advance = ~col_valid | lif.sums.ready
        for p, pe in enumerate(pes):
            with m.If(col_p == p):
                m.d.comb += pe.results.ready.eq(advance)
                with m.If(advance):
                    m.d.sync += [col_valid.eq(pe.results.valid), col.eq(pe.results.payload)]
                with m.If(advance & pe.results.valid):
                    last = col_n == N - 1
                    m.d.sync += [col_n.eq(Mux(last, 0, col_n + 1)),
                                 col_p.eq(Mux(last | (col_p == P - 1), 0, col_p + 1))]
        m.d.comb += [lif.sums.valid.eq(col_valid), lif.sums.payload.eq(col)]

        # --- output ------------------------------------------------------------------------------
        out_n = Signal(range(max(N, 2)))
        words = lif.spikes
        with m.If(words.valid & words.ready):
            m.d.sync += out_n.eq(Mux(out_n == N - 1, 0, out_n + 1))
        spikes = words.payload.spikes
        if cfg.out_format == "dense":
            m.d.comb += [self.out.valid.eq(words.valid), words.ready.eq(self.out.ready),
                         self.out.payload.word.eq(Mux(keep_word(spikes, cfg.min_spikes, T),
                                                      spikes, 0)),
                         self.out.payload.last.eq(out_n == N - 1)]
            emitting = 0
        else:
            m.submodules.emitter = emitter = FiberEmitter(cfg.chunk, N, T, cfg.min_spikes)
            m.d.comb += [emitter.words.valid.eq(words.valid), words.ready.eq(emitter.words.ready),
                         emitter.words.payload.word.eq(spikes),
                         emitter.words.payload.last.eq(out_n == N - 1)]
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
                                     | Cat(pe.busy for pe in pes).any() | col_valid | lif.busy
                                     | self.out.valid | emitting)]
        m.d.comb += [perf.busy.eq(moving | self.working),
                     perf.stall.eq(self.out.valid & ~self.out.ready)]
        return m
