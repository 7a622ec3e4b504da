"""The temporal-parallel PE (TPPE) of the snn layer: the inner join of every sample with the
weights of its output neurons (docs/architecture.md §4.2, golden rule 3).

TPPE p owns the output neurons ``n = g*P + p`` (g = 0, 1, ...). Its weights live in its own
memories, written by the layer's weight loader: ``weights`` holds neuron n's weight of input
neuron k at row ``g*K + k`` (block RAM; only rows of nonzero weights are written, and only those
are read), ``masks`` the nonzero mask of chunk c at row ``g*C + c`` (LUT RAM).

Microarchitecture
-----------------
A *job* is one (neuron, chunk) pair (``sequential``: one (neuron, chunk, timestep)); the TPPE
works through the jobs of a sample in order, one pipeline for all of them::

    issue ─> masks read ─> AND ─> job FIFO ─> walker ─> beat register ─> address registers
                                                                          ─> words + weight read
    ─> accumulate ─> result FIFO ─> (collector, LIF)

* **issue** (a job per cycle): reads the chunk's spike mask (the store, :mod:`.store`) and weight
  mask; the next cycle their AND (``sequential``: the timestep's spike mask AND the weight mask)
  goes into the job FIFO. A job is issued only while the FIFO has room for it counting the one
  in flight, and a neuron's first job only while the result FIFO has a free place for its
  result, so nothing downstream of the issue ever waits.
* **walk**: :class:`~hwgen.hdl.walker.SetBitWalker` offers the matched positions of one job per
  cycle, and one beat for a job without any (``empty``).
* **read**: position ``pos`` of chunk c is input neuron ``k = c*chunk + pos``: its spike word is
  row k of the sample's bank, its weight row ``g*K + k``; both addresses are registered, the
  data comes from the blocks' output registers two cycles later.
* **accumulate** (golden rule 3, one matched pair per cycle, in position order): ``fast`` adds
  ``w`` to O[t] where the spike word has bit t; ``laggy`` adds ``w`` to the pseudo-accumulator
  and to corr[t] where it has not; ``sequential`` adds ``w`` to O[t] of the job's timestep. A
  neuron's first beat starts from zero; after its last beat O (``laggy``: ``pseudo - corr[t]``)
  goes into the result FIFO.

So a job costs ``max(1, matched positions)`` walker cycles, with no bubble between jobs: the
join visits only slices (the laggy prefix sum's groups) that hold a matched position.

Samples: the TPPE joins the store's banks in turn; it starts bank b when the bank is full and it
has not joined it yet, and reports (``release``) when its last result of the bank is in the
result FIFO, so every read of the bank is done.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hwgen.hdl.arith import overflow
from hwgen.hdl.bram import BlockMemory
from hwgen.hdl.walker import SetBitWalker

from .config import SnnConfig
from .lif import sums_layout

__all__ = ["COPY_PER_TPPE_FROM", "JOB_FIFO", "RESULT_FIFO", "READ_LATENCY", "neurons_of", "Tppe"]

#: From this many TPPEs on, what the layer broadcasts to every TPPE (the store's ``full`` and
#: mask writes, the weight loader's ``loading`` and mask writes) leaves from a register copy per
#: TPPE, placed beside it: one register routed to 16 TPPEs spread over an ECP5-85K had 11-14 ns
#: of routing (snn_paper). With a few TPPEs the copies buy nothing but flip-flops.
COPY_PER_TPPE_FROM = 8

#: Jobs the job FIFO holds (issued jobs not yet taken by the walker, including one in flight).
JOB_FIFO = 4
#: Results the result FIFO holds: a TPPE starts a neuron only while it can place its result,
#: so this many neurons can be between issue and collector. It covers the pipeline from issue
#: to result (about 10 cycles) with room to spare: the collector takes a result of every TPPE of
#: a row at once, and with 3 entries a TPPE idled at 3 neurons per ~10 cycles (a join-bound
#: layer with 4 LIF lanes: 58 cycles per sample at vgg16 sparsity against 45 with 16).
RESULT_FIFO = 16
#: Cycles from a walker beat to its spike word and weight (beat register, address registers,
#: block read, block output register).
READ_LATENCY = 4


def neurons_of(cfg: SnnConfig, p: int) -> int:
    """Output neurons of TPPE p: ``n = g*P + p < N``."""
    return len(range(p, cfg.out_neurons, cfg.pes))


class Tppe(wiring.Component):
    """TPPE ``p`` of the layer for ``cfg``, reading the store through ``word_read`` and
    ``mask_read`` (its read ports of :class:`.store.SpikeStore`).

    Attributes
    ----------
    full : in, 2 bits
        The store's bank flags.
    loading : in
        A weight set is being loaded: no bank is started.
    results : stream, out
        O[0..T-1] of each of its neurons, in order (:func:`.lif.sums_layout`).
    release : out, 2 bits
        A pulse on bit b: the TPPE is done with bank b.
    busy : out
        A bank is being joined or a result of it is not yet taken.
    weight_write, mask_write : write ports
        The weight loader's: rows ``g*K + k`` (registered write) and ``g*C + c``.
    """

    def __init__(self, cfg: SnnConfig, p: int, word_read, mask_read):
        self.cfg, self.p = cfg, p
        self.groups = neurons_of(cfg, p)
        K, C = cfg.in_neurons, cfg.chunks
        self.word_read, self.mask_read = word_read, mask_read
        self.weights = BlockMemory(signed(cfg.weight_bits), max(self.groups * K, 2))
        self.weight_read = self.weights.read_port(1, f"weight{p}")
        self.weight_write = self.weights.write_port(registered=True)
        self.masks = memory.Memory(shape=cfg.chunk, depth=max(self.groups * C, 2), init=[])
        self.wmask_read = self.masks.read_port()
        self.mask_write = self.masks.write_port()
        super().__init__({
            "full": In(2),
            "loading": In(1),
            "results": Out(stream.Signature(sums_layout(cfg))),
            "release": Out(2),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        K, C, T, W = cfg.in_neurons, cfg.chunks, cfg.timesteps, cfg.chunk
        G = self.groups
        seq = cfg.dataflow == "sequential"
        m = Module()
        m.submodules.weights = self.weights
        m.submodules.masks = self.masks

        tag = data.StructLayout({
            "k0": range(max(C * W, 2)),                   # first input neuron of the chunk
            "row0": range(max(G * K, 2)),                 # its weight row
            "t": range(max(T, 2)),
            "first": 1, "last": 1,                        # the neuron's first / last job
            "final": 1,                                   # the bank's last job
            "bank": 1,
        })

        # --- issue ------------------------------------------------------------------------------
        active, bank = Signal(), Signal()
        seen = Signal(2)                                  # banks started since they were filled
        g = Signal(range(max(G, 2)))
        c = Signal(range(max(C, 2)))
        t = Signal(range(max(T, 2)))
        k0 = Signal(range(max(C * W, 2)))
        group_row = Signal(range(max(G * K + K, 2)))      # g*K
        row0 = Signal.like(group_row)                     # g*K + c*chunk
        mask_row = Signal(range(max(G * C, 2)))           # g*C + c
        jobs = Signal(range(JOB_FIFO + 1))                # issued, not yet taken by the walker
        pending = Signal(range(RESULT_FIFO + 1))          # neurons started, result not taken
        first_job = (c == 0) & (t == 0)
        last_t = (t == T - 1) if seq else Const(1, 1)
        last_job = (c == C - 1) & last_t
        issue = Signal()
        m.d.comb += issue.eq(active & (jobs < JOB_FIFO) & (~first_job | (pending < RESULT_FIFO)))

        start = ~active & self.full.bit_select(bank, 1) & ~seen.bit_select(bank, 1) \
            & ~self.loading
        with m.If(start):
            m.d.sync += [active.eq(1), g.eq(0), c.eq(0), t.eq(0), k0.eq(0), group_row.eq(0),
                         row0.eq(0), mask_row.eq(0)]
            for b in range(2):
                with m.If(bank == b):
                    m.d.sync += seen[b].eq(1)
        for b in range(2):
            with m.If(~self.full[b]):
                m.d.sync += seen[b].eq(0)

        with m.If(issue):
            with m.If(~last_t):
                m.d.sync += t.eq(t + 1)
            with m.Elif(~last_job):
                m.d.sync += [t.eq(0), c.eq(c + 1), k0.eq(k0 + W), row0.eq(row0 + W),
                             mask_row.eq(mask_row + 1)]
            with m.Elif(g != G - 1):
                m.d.sync += [t.eq(0), c.eq(0), g.eq(g + 1), k0.eq(0),
                             group_row.eq(group_row + K), row0.eq(group_row + K),
                             mask_row.eq(mask_row + 1)]
            with m.Else():
                m.d.sync += [active.eq(0), bank.eq(~bank)]

        job = Signal(tag)
        # The two mask reads are enabled in every cycle, not only on ``issue``: their data is
        # used only in the cycle after an issue (``issued``), so reading in the other cycles
        # changes nothing, and ``issue`` as the clock enable of the 2 x ``chunk`` data registers
        # (``sequential``: T + 1 masks) was a critical path of snn_paper (the issue logic, then
        # the enable's fanout).
        m.d.comb += [job.k0.eq(k0), job.row0.eq(row0), job.t.eq(t), job.first.eq(first_job),
                     job.last.eq(last_job), job.final.eq(last_job & (g == G - 1)),
                     job.bank.eq(bank),
                     self.mask_read.addr.eq(Cat(c[:len(self.mask_read.addr) - 1], bank)),
                     self.mask_read.en.eq(1),
                     self.wmask_read.addr.eq(mask_row), self.wmask_read.en.eq(1)]

        # --- AND into the job FIFO ------------------------------------------------------------
        m.submodules.jobs = fifo = SyncFIFOBuffered(width=W + len(job.as_value()),
                                                    depth=JOB_FIFO)
        issued = Signal()
        job_d = Signal(tag)
        m.d.sync += [issued.eq(issue), job_d.eq(job)]
        spikes = self.mask_read.data[job_d.t] if seq else self.mask_read.data[0]
        m.d.comb += [fifo.w_data.eq(Cat(spikes & self.wmask_read.data, job_d.as_value())),
                     fifo.w_en.eq(issued)]

        # --- walk -----------------------------------------------------------------------------
        m.submodules.walker = walker = SetBitWalker(W, cfg.adders, tag=tag, always_ready=True)
        m.d.comb += [walker.masks.valid.eq(fifo.r_rdy),
                     walker.masks.payload.mask.eq(fifo.r_data[:W]),
                     walker.masks.payload.tag.eq(fifo.r_data[W:]),
                     fifo.r_en.eq(walker.masks.ready), walker.positions.ready.eq(1)]
        taken = walker.masks.valid & walker.masks.ready
        m.d.sync += jobs.eq(jobs + issue - taken)

        # --- beat register, then address registers --------------------------------------------
        beat_layout = data.StructLayout({"valid": 1, "add": 1, "first": 1, "last": 1,
                                         "final": 1, "t": range(max(T, 2)), "bank": 1})
        pos = walker.positions.payload
        b0 = Signal(beat_layout)
        b_pos = Signal.like(pos.pos)
        b_k0, b_row0 = Signal.like(k0), Signal.like(row0)
        m.d.sync += [b0.valid.eq(walker.positions.valid), b0.add.eq(~pos.empty),
                     b0.first.eq(pos.first & pos.tag.first), b0.last.eq(pos.last & pos.tag.last),
                     b0.final.eq(pos.last & pos.tag.final), b0.t.eq(pos.tag.t),
                     b0.bank.eq(pos.tag.bank),
                     b_pos.eq(pos.pos), b_k0.eq(pos.tag.k0), b_row0.eq(pos.tag.row0)]
        b1 = Signal(beat_layout)
        word_addr = Signal.like(self.word_read.addr)
        weight_addr = Signal.like(self.weight_read.addr)
        m.d.sync += [b1.eq(b0), word_addr.eq(Cat((b_k0 + b_pos)[:len(word_addr) - 1], b0.bank)),
                     weight_addr.eq(b_row0 + b_pos)]
        m.d.comb += [self.word_read.addr.eq(word_addr), self.word_read.en.eq(1),
                     self.weight_read.addr.eq(weight_addr), self.weight_read.en.eq(1)]
        b2 = Signal(beat_layout)
        b3 = Signal(beat_layout)
        m.d.sync += [b2.eq(b1), b3.eq(b2)]            # the block read and its output register

        # --- accumulate -----------------------------------------------------------------------
        s, w = self.word_read.data, self.weight_read.data
        if cfg.dataflow == "ftp" and cfg.join == "laggy":
            pseudo = Signal(signed(cfg.acc_bits))
            corr = [Signal(signed(cfg.correction_bits), name=f"corr{tt}") for tt in range(T)]
            with m.If(b3.valid):
                m.d.sync += pseudo.eq(overflow(Mux(b3.first, 0, pseudo) + Mux(b3.add, w, 0),
                                               cfg.acc_bits, cfg.acc_overflow))
                m.d.sync += [corr[tt].eq(overflow(Mux(b3.first, 0, corr[tt])
                                                  + Mux(b3.add & ~s[tt], w, 0),
                                                  cfg.correction_bits, cfg.acc_overflow))
                             for tt in range(T)]
            result = [overflow(pseudo - corr[tt], cfg.acc_bits, cfg.acc_overflow)
                      for tt in range(T)]
        else:
            acc = [Signal(signed(cfg.acc_bits), name=f"o{tt}") for tt in range(T)]
            for tt in range(T):
                hit = (b3.t == tt) if seq else s[tt]
                with m.If(b3.valid):
                    m.d.sync += acc[tt].eq(overflow(Mux(b3.first, 0, acc[tt])
                                                    + Mux(b3.add & hit, w, 0),
                                                    cfg.acc_bits, cfg.acc_overflow))
            result = acc

        # --- result FIFO ------------------------------------------------------------------------
        done, done_final, done_bank = Signal(), Signal(), Signal()
        m.d.sync += [done.eq(b3.valid & b3.last), done_final.eq(b3.valid & b3.final),
                     done_bank.eq(b3.bank)]
        m.submodules.results = results = SyncFIFOBuffered(width=T * cfg.acc_bits,
                                                          depth=RESULT_FIFO)
        m.d.comb += [results.w_data.eq(Cat(result)), results.w_en.eq(done),
                     self.results.valid.eq(results.r_rdy),
                     self.results.payload.eq(results.r_data),
                     results.r_en.eq(self.results.ready)]
        popped = self.results.valid & self.results.ready
        m.d.sync += pending.eq(pending + (issue & first_job) - popped)
        for b in range(2):
            m.d.comb += self.release[b].eq(done_final & (done_bank == b))
        m.d.comb += self.busy.eq(active | (pending != 0))
        return m
