"""The dual-sparse SNN layer (docs/architecture.md §4.2, after LoAS): compressor, P TPPEs, LIF,
compressor.

Dataflow of one sample
----------------------
::

    spikes ─> SpikeCompressor(K) ─ fiber ─┐
                                           ├─ chunk job ─> TPPE 0 .. P-1 ─ O[t] ─> LIF ─┐
    weights (once) ─> weight memory / PE ──┘                                            │
    out <─ SpikeDecompressor <─ SpikeCompressor(N) <─ output spike words (n = 0..N-1) ──┘

* **Weights** arrive once, before the first sample, already compressed per (neuron n, chunk c)
  (``golden.compress_weights``): one beat per chunk, n-major. PE p stores the chunks of neurons
  ``n = g*P + p`` at row ``g * chunks + c`` of its own weight memory.
* **A sample** enters as K packed spike words and is compressed into the input buffer.
* **Join.** Output neurons are processed in groups of P (group g: n = g*P .. g*P+P-1). For every
  chunk c the scheduler builds the spike part of the job and reads each PE's weight chunk, then
  offers the job to all P TPPEs; the next chunk is prepared as soon as all have taken it (a TPPE
  latches its job), so preparing overlaps joining. Group 0 fetches the spike chunk from the
  input buffer (mask and base, then the kept words one per cycle; for the sequential dataflow it
  also builds the T per-timestep masks) and stores the finished job in a job memory; later
  groups read the job from there in one cycle.
* **Fire.** After a group's last chunk, the TPPE results go through one unrolled LIF in neuron
  order; PEs past N in the last group are drained without output.
* **Out.** The spike words pass through a compressor (``min_spikes`` applies to outputs too) and a
  decompressor, so ``out`` carries N words per sample in the same format ``spikes`` accepts:
  layers chain. Two such buffers take samples in turn, so one sample's words stream out while
  the next sample's are compressed.

The input buffer is released once group 0 has fetched every chunk, so the next sample is
compressed while the other groups join and fire.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.hdl.perf import PerfCounters, PerfSignature

from .compress import PingPongRoundTrip, SpikeCompressor, word_layout
from .config import SnnConfig
from .join import Tppe, chunk_layout
from .lif import UnrolledLif

__all__ = ["weight_layout", "SnnLayer"]


def weight_layout(cfg: SnnConfig) -> data.StructLayout:
    """One compressed weight chunk: mask and the nonzero weights packed from rank 0."""
    return data.StructLayout({"wmask": cfg.chunk,
                              "wvals": data.ArrayLayout(signed(cfg.weight_bits), cfg.chunk)})


def _lowest(mask):
    return mask & -mask, mask & (mask - 1)


class SnnLayer(wiring.Component):
    """One SNN layer for ``cfg``.

    Attributes
    ----------
    weights : stream, in
        ``out_neurons * chunks`` compressed weight chunks, n-major, before the first sample.
    spikes : stream, in
        ``in_neurons`` packed spike words per sample (``last`` on the final one).
    out : stream, out
        ``out_neurons`` packed output spike words per sample, after compression.
    perf : :data:`hwgen.hdl.perf.PerfSignature`, out
        ``busy``: a weight, spike or output beat moves, the join/fire pipeline works or an output
        word is offered; ``stall``: an output word waits for ``out.ready`` (a subset of busy).
    """

    def __init__(self, cfg: SnnConfig):
        self.cfg = cfg
        super().__init__({
            "weights": In(stream.Signature(weight_layout(cfg))),
            "spikes": In(stream.Signature(word_layout(cfg))),
            "out": Out(stream.Signature(word_layout(cfg))),
            "perf": Out(PerfSignature),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        N, P, C, T = cfg.out_neurons, cfg.pes, cfg.chunks, cfg.timesteps
        groups = -(-N // P)
        m = Module()

        m.submodules.inbuf = inbuf = SpikeCompressor(cfg, cfg.in_neurons)
        wiring.connect(m, wiring.flipped(self.spikes), inbuf.words)
        m.submodules.outbuf = outbuf = PingPongRoundTrip(cfg, N)
        wiring.connect(m, outbuf.words_out, wiring.flipped(self.out))
        m.submodules.lif = lif = UnrolledLif(cfg)

        tppes, wreads, wwrites = [], [], []
        for p in range(P):
            tppe = Tppe(cfg)
            mem = memory.Memory(shape=weight_layout(cfg), depth=max(groups * C, 2), init=[])
            m.submodules[f"tppe{p}"] = tppe
            m.submodules[f"weights{p}"] = mem
            tppes.append(tppe)
            wwrites.append(mem.write_port())
            wreads.append(mem.read_port())

        # --- counters of the schedule -----------------------------------------------------
        g = Signal(range(max(groups, 2)))             # neuron group being joined
        c = Signal(range(max(C, 2)))                  # chunk being fetched / dispatched
        load_n = Signal(range(max(N, 2)))             # weight loading: neuron, its PE and group
        load_p = Signal(range(max(P, 2)))
        load_g = Signal(range(max(groups, 2)))
        load_c = Signal(range(max(C, 2)))
        out_n = Signal(range(max(N, 2)))              # output word counter (sets ``last``)

        job = Signal(chunk_layout(cfg))               # spike part of a job, built by group 0
        # The spike part of every chunk job of the sample, written while group 0 fetches it, so
        # later groups read a whole job in one cycle instead of refetching the kept words.
        job_bits = len(job.as_value())
        m.submodules.jobs = jobs = memory.Memory(shape=job_bits, depth=max(C, 2), init=[])
        job_write, job_read = jobs.write_port(), jobs.read_port()
        m.d.comb += [job_write.addr.eq(c), job_write.data.eq(job.as_value())]
        taken = Signal(P)                             # TPPEs that took the current job
        issue_left = Signal(cfg.chunk)                # kept positions whose word is not requested
        fill_left = Signal(cfg.chunk)                 # kept positions whose word has not arrived
        fill_rank = Signal(range(cfg.chunk + 1))
        next_addr = Signal.like(inbuf.value_read.addr)
        arriving = Signal()                           # a value read was issued last cycle

        # The job on offer: its weight part straight from the weight memories' read ports and,
        # in later groups, its spike part straight from the job memory's (a read port's data
        # holds while its ``en`` is low, so nothing is copied into registers).
        spike_part = Signal(chunk_layout(cfg))
        m.d.comb += spike_part.as_value().eq(Mux(g == 0, job.as_value(), job_read.data))
        for p in range(P):
            m.d.comb += [
                tppes[p].chunks.payload.eq(spike_part),
                tppes[p].chunks.payload.wmask.eq(wreads[p].data.wmask),
                tppes[p].chunks.payload.wvals.eq(wreads[p].data.wvals),
                tppes[p].chunks.payload.first.eq(c == 0),
                tppes[p].chunks.payload.last.eq(c == C - 1),
            ]

        # Reading a job: (read_g, read_c) is the chunk whose weights (and, after group 0, spike
        # part) the read ports fetch when ``read`` is high; the data is there the next cycle.
        read, read_g, read_c = Signal(), Signal.like(g), Signal.like(c)
        m.d.comb += [read_g.eq(g), read_c.eq(c),
                     inbuf.chunk_read.addr.eq(read_c), job_read.addr.eq(read_c),
                     inbuf.chunk_read.en.eq(read), job_read.en.eq(read)]
        for rd in wreads:
            m.d.comb += [rd.addr.eq(read_g * C + read_c), rd.en.eq(read)]

        # --- value fill: requested words arrive one cycle later, in rank order ------------
        m.d.sync += arriving.eq(0)
        with m.If(arriving):
            word = inbuf.value_read.data
            onehot, rest = _lowest(fill_left)
            m.d.sync += [fill_left.eq(rest), fill_rank.eq(fill_rank + 1)]
            if cfg.dataflow == "ftp":
                m.d.sync += job.svals[fill_rank].eq(word)
            else:
                for t in range(T):
                    with m.If(word[t]):
                        m.d.sync += job.tmasks[t].eq(job.tmasks[t] | onehot)

        with m.FSM(name="sched") as sched:
            with m.State("LOAD"):
                m.d.comb += self.weights.ready.eq(1)
                with m.If(self.weights.valid):
                    for p in range(P):
                        m.d.comb += [wwrites[p].addr.eq(load_g * C + load_c),
                                     wwrites[p].data.eq(self.weights.payload),
                                     wwrites[p].en.eq(load_p == p)]
                    with m.If(load_c == C - 1):
                        m.d.sync += load_c.eq(0)
                        with m.If(load_n == N - 1):
                            m.next = "WAIT"
                        m.d.sync += load_n.eq(load_n + 1)
                        with m.If(load_p == P - 1):
                            m.d.sync += [load_p.eq(0), load_g.eq(load_g + 1)]
                        with m.Else():
                            m.d.sync += load_p.eq(load_p + 1)
                    with m.Else():
                        m.d.sync += load_c.eq(load_c + 1)
            with m.State("WAIT"):
                with m.If(inbuf.done.valid):
                    m.d.sync += [g.eq(0), c.eq(0)]
                    m.next = "FETCH_INFO"
            with m.State("FETCH_INFO"):              # group 0: read chunk info and weights
                m.d.comb += read.eq(1)
                m.next = "FETCH_MASK"
            with m.State("FETCH_MASK"):
                info = inbuf.chunk_read.data
                m.d.sync += [issue_left.eq(info.mask), fill_left.eq(info.mask), fill_rank.eq(0),
                             next_addr.eq(info.base)]
                if cfg.dataflow == "ftp":
                    m.d.sync += job.smask.eq(info.mask)
                else:
                    m.d.sync += job.tmasks.eq(0)
                m.next = "FETCH_VALUES"
            with m.State("FETCH_VALUES"):
                with m.If(issue_left != 0):
                    m.d.comb += [inbuf.value_read.addr.eq(next_addr), inbuf.value_read.en.eq(1)]
                    m.d.sync += [next_addr.eq(next_addr + 1), arriving.eq(1),
                                 issue_left.eq(_lowest(issue_left)[1])]
                with m.Elif(~arriving):
                    m.d.comb += job_write.en.eq(1)
                    m.d.sync += taken.eq(0)
                    m.next = "DISPATCH"
            with m.State("DISPATCH"):
                takes = Signal(P)
                for p in range(P):
                    m.d.comb += [tppes[p].chunks.valid.eq(~taken[p]),
                                 takes[p].eq(tppes[p].chunks.valid & tppes[p].chunks.ready)]
                m.d.sync += taken.eq(taken | takes)
                with m.If((taken | takes).all()):
                    m.d.sync += taken.eq(0)
                    with m.If((g == 0) & (c == C - 1)):
                        # Every job of the sample is in the job memory: free the input buffer
                        # so the next sample is compressed while later groups join.
                        m.d.comb += inbuf.done.ready.eq(1)
                    last_chunk = c == C - 1
                    m.d.sync += [c.eq(Mux(last_chunk, 0, c + 1)), g.eq(Mux(last_chunk, g + 1, g))]
                    with m.If(last_chunk & (g == groups - 1)):
                        m.next = "WAIT"
                    with m.Elif(last_chunk | (g != 0)):
                        # The next job comes from the memories: read it now, offer it next cycle.
                        m.d.comb += [read.eq(1), read_c.eq(Mux(last_chunk, 0, c + 1)),
                                     read_g.eq(Mux(last_chunk, g + 1, g))]
                    with m.Else():
                        m.next = "FETCH_INFO"

        # --- collect: TPPE results through the LIF in neuron order ---------------------------
        # Concurrent with the schedule: a TPPE takes the first chunk of its next pair only once
        # its result has left, so results of one group are taken while the next group starts.
        collect_p = Signal(range(max(P, 2)))
        collect_g = Signal(range(max(groups, 2)))
        collected = Signal()                          # the selected TPPE's result moves on
        for p in range(P):
            with m.If(collect_p == p):
                active = collect_g * P + p < N        # PEs past N in the last group: drained
                sums = tppes[p].sums
                m.d.comb += [lif.sums.payload.eq(sums.payload),
                             lif.sums.valid.eq(sums.valid & active),
                             sums.ready.eq(lif.sums.ready | ~active),
                             collected.eq(sums.valid & sums.ready)]
        with m.If(collected):
            m.d.sync += collect_p.eq(Mux(collect_p == P - 1, 0, collect_p + 1))
            with m.If(collect_p == P - 1):
                m.d.sync += collect_g.eq(Mux(collect_g == groups - 1, 0, collect_g + 1))

        # --- LIF -> output compressor ------------------------------------------------------
        m.d.comb += [outbuf.words_in.valid.eq(lif.spikes.valid),
                     outbuf.words_in.payload.word.eq(lif.spikes.payload.spikes),
                     outbuf.words_in.payload.last.eq(out_n == N - 1),
                     lif.spikes.ready.eq(outbuf.words_in.ready)]
        with m.If(outbuf.words_in.valid & outbuf.words_in.ready):
            m.d.sync += out_n.eq(Mux(out_n == N - 1, 0, out_n + 1))

        # --- performance counters -----------------------------------------------------------
        m.submodules.perf = perf = PerfCounters()
        wiring.connect(m, wiring.flipped(self.perf), perf.perf)
        moving = Signal()
        m.d.comb += moving.eq((self.weights.valid & self.weights.ready)
                              | (self.spikes.valid & self.spikes.ready)
                              | (self.out.valid & self.out.ready)
                              | lif.spikes.valid | lif.sums.valid | self.out.valid)
        pes_busy = Cat(tppe.busy for tppe in tppes).any()
        m.d.comb += [perf.busy.eq(moving | pes_busy
                                  | ~(sched.ongoing("LOAD") | sched.ongoing("WAIT"))),
                     perf.stall.eq(self.out.valid & ~self.out.ready)]
        return m
