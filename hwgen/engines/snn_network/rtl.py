"""An SNN network in one core: snn layers chained through compressed-fiber streams
(docs/architecture.md §4.2.1).

Dataflow
--------
::

    spikes ─> gate ─> layer 0 ─ link0 ─> layer 1 ─ link1 ─> ... ─> layer L-1 ─> out
    weights ─> weight router ─> layer (wl).weights

* **Links**: layer i's fiber ``out`` is layer i+1's fiber ``spikes``, with its handshake; each
  link is also an output (``link<i>``: payload, valid and ``taken``) so a testbench or a logic
  analyser sees every layer's output spikes.
* **Weights**: a weight load is the weight sets of layers 0, 1, ..., L-1 in order, each in the
  layer's format (:mod:`hwgen.engines.snn.weights`, values in the low ``weight_bits`` of that
  layer) and ending with ``last``. A load offered on ``weights`` between two samples (no sample
  partly taken on ``spikes``) goes first: the gate stops taking samples, the network *drains*
  (every sample already taken leaves ``out`` under the weights it was sent under — the layers
  are empty one cycle after none of them is ``working``), then the router passes each set to its
  layer, and samples flow again once every layer has written its last row. So a sample is
  processed by every layer with the weights of the last load before it, with no reset; a load
  costs the drain plus its beats.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.engines.snn.fiber import fiber_layout
from hwgen.engines.snn.rtl import SnnLayer, out_layout, spikes_layout
from hwgen.hdl.perf import PerfCounters, PerfSignature

from .config import SnnNetworkConfig

__all__ = ["link_signature", "weights_layout", "SnnNetwork"]


def link_signature(cfg: SnnNetworkConfig) -> wiring.Signature:
    """A link seen from outside: the fiber beat, its ``valid`` and ``taken`` (valid and the next
    layer's ready: a transfer)."""
    return wiring.Signature({"payload": Out(fiber_layout(cfg.chunk, cfg.timesteps)),
                             "valid": Out(1), "taken": Out(1)})


def weights_layout(cfg: SnnNetworkConfig):
    """A beat of the ``weights`` port: a weight-fiber beat of the widest layer."""
    return fiber_layout(cfg.chunk, cfg.weight_bits)


class SnnNetwork(wiring.Component):
    """The layers of ``cfg`` in one core.

    Attributes
    ----------
    weights : stream, in
        Weight loads: layer 0's weight set, then layer 1's, ..., each ending with ``last``.
    spikes : stream, in
        Samples in the first layer's ``in_format``.
    out : stream, out
        Per sample the last layer's output in ``out_format``.
    link0 .. link{L-2} : out
        Layer i's output fiber as it passes to layer i+1 (:func:`link_signature`).
    perf : :data:`hwgen.hdl.perf.PerfSignature`, out
        ``busy``: a beat is offered on an input, a layer is working, or a weight load is under
        way; ``stall``: ``out`` waits for ``ready``.
    """

    def __init__(self, cfg: SnnNetworkConfig):
        self.cfg = cfg
        self.layer_cfgs = cfg.layer_configs
        members = {
            "weights": In(stream.Signature(weights_layout(cfg))),
            "spikes": In(stream.Signature(spikes_layout(self.layer_cfgs[0]))),
            "out": Out(stream.Signature(out_layout(self.layer_cfgs[-1]))),
        }
        for i in range(len(self.layer_cfgs) - 1):
            members[f"link{i}"] = Out(link_signature(cfg))
        members["perf"] = Out(PerfSignature)
        super().__init__(members)

    def elaborate(self, platform):
        L = len(self.layer_cfgs)
        m = Module()
        layers = [SnnLayer(c) for c in self.layer_cfgs]
        for i, layer in enumerate(layers):
            m.submodules[f"layer{i}"] = layer

        # --- links --------------------------------------------------------------------------
        for i in range(L - 1):
            src, dst, tap = layers[i].out, layers[i + 1].spikes, getattr(self, f"link{i}")
            wiring.connect(m, src, dst)
            m.d.comb += [tap.payload.eq(src.payload), tap.valid.eq(src.valid),
                         tap.taken.eq(src.valid & dst.ready)]
        wiring.connect(m, layers[-1].out, wiring.flipped(self.out))

        # --- gate and weight router -------------------------------------------------------------
        mid = Signal()                  # a sample is partly taken on ``spikes``
        quiet = Signal()                # in the cycle before, no layer was working
        wl = Signal(range(max(L, 2)))   # the layer whose set the router passes
        gate = Signal()
        m.d.sync += quiet.eq(~Cat(layer.working for layer in layers).any())
        first = layers[0].spikes
        m.d.comb += [first.payload.eq(self.spikes.payload),
                     first.valid.eq(self.spikes.valid & gate),
                     self.spikes.ready.eq(first.ready & gate)]
        with m.If(self.spikes.valid & self.spikes.ready):
            m.d.sync += mid.eq(~self.spikes.payload.last)
        beat = self.weights.payload
        for i, layer in enumerate(layers):
            m.d.comb += [layer.weights.payload.data.eq(beat.data),
                         layer.weights.payload.mask.eq(beat.mask),
                         layer.weights.payload.last.eq(beat.last)]
        routing = Signal()
        m.d.comb += self.weights.ready.eq(routing & Cat(layer.weights.ready
                                                         for layer in layers).bit_select(wl, 1))
        for i, layer in enumerate(layers):
            m.d.comb += layer.weights.valid.eq(routing & self.weights.valid & (wl == i))
        with m.FSM():
            with m.State("SAMPLES"):
                # A load offered between samples goes before the next sample.
                m.d.comb += gate.eq(mid | ~self.weights.valid)
                with m.If(self.weights.valid & ~mid):
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                # Nothing enters now, so once no layer works the network is empty.
                with m.If(quiet):
                    m.next = "LOAD"
            with m.State("LOAD"):
                m.d.comb += routing.eq(1)
                with m.If(self.weights.valid & self.weights.ready & beat.last):
                    m.d.sync += wl.eq(Mux(wl == L - 1, 0, wl + 1))
                    with m.If(wl == L - 1):
                        m.next = "SETTLE"
            with m.State("SETTLE"):
                # The last set's loader is ``working`` from the cycle after its first beat, so
                # ``quiet`` is trusted from the second cycle after the final beat.
                m.next = "FINISH"
            with m.State("FINISH"):
                with m.If(quiet):
                    m.next = "SAMPLES"

        # --- performance counters -----------------------------------------------------------------
        m.submodules.perf = perf = PerfCounters()
        wiring.connect(m, wiring.flipped(self.perf), perf.perf)
        loading = Signal()
        m.d.comb += loading.eq(~gate)
        m.d.comb += [perf.busy.eq(self.weights.valid | self.spikes.valid | loading
                                  | Cat(layer.working for layer in layers).any()),
                     perf.stall.eq(self.out.valid & ~self.out.ready)]
        return m
