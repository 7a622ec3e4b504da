"""Cycle model of the SNN layer (docs/architecture.md §3 and §4.2): the cycle in which each
sample's first input beat is taken and its last output beat leaves, exactly as in the RTL.

The layer's timing depends on the data — the walker spends ``max(1, matched positions)`` cycles
on a job, a fiber costs a beat per kept neuron, the TPPEs run independently and their results
are collected in neuron order — so the model is a cycle-by-cycle simulation of the handshakes of
:mod:`.rtl`'s blocks, without data: only masks and counts, from the golden model. Each cycle
first decides every block's moves from the registers (as the logic does), then updates the
registers. The rules are those the blocks' docstrings state:

* **receiver** — dense: a beat per cycle while the bank being written is free. Fiber: a mask beat
  when the walker can take a mask; a value beat with the walker's position (so a chunk with kept
  neurons costs one cycle more than its beats while the walker loads its mask); an empty chunk's
  walker beat needs no value beat.
* **store** — a sample whose last event is taken in cycle e is ``full`` from e + 2; a bank freed
  in cycle f takes events from f + 1.
* **TPPE** — starts a full bank it has not joined when idle (``active`` the next cycle); issues a
  job per cycle while fewer than ``JOB_FIFO`` jobs are between issue and walker and, for a
  neuron's first job, fewer than ``RESULT_FIFO`` results are pending; a job is written into the
  job FIFO the cycle after its issue (a ``SyncFIFOBuffered``: readable two cycles after the
  write); the walker spends ``max(1, m)`` cycles on it; a neuron's result is written into the
  result FIFO ``READ_LATENCY + 1`` cycles after its last walker beat, and the bank's last result
  releases the bank; a bank is freed in the cycle the last TPPE releases it.
* **collector and LIF** — a row of L = ``cfg.lanes`` results (neurons ``r*L .. r*L + L-1``,
  fewer in the last row) per cycle, in row order, into a gather register and the cycle after
  into a buffer (a ``SyncFIFO``: readable the cycle after the write), once every TPPE of the row
  offers its result and the buffer and the gather register held fewer than ``COLLECT_ROWS`` rows
  at the start of the cycle; then ``T * LIF_STEP_STAGES`` stages (L LIFs in lockstep).
* **output** — dense: the row's words one per cycle, the LIF advancing with its last one. Fiber:
  :class:`.fiber.FiberEmitter` takes a row per cycle; a chunk's buffer is handed over with its
  last row; the mask beat and the kept words are issued one per cycle while the output FIFO
  (``QUEUE`` entries, a ``SyncFIFOBuffered``) has room.

The model assumes the weights are loaded before the samples arrive (the testbench waits for
that). :class:`LayerSim` steps one layer with ``out.ready`` given per cycle (a network chains
them, :mod:`hwgen.engines.snn_network.cycle_model`); :func:`layer_timing` runs it with ``out``
always ready.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import golden
from .config import SnnConfig
from .fiber import FiberEmitter
from .rtl import COLLECT_ROWS, LIF_STEP_STAGES
from .tppe import JOB_FIFO, READ_LATENCY, RESULT_FIFO, neurons_of

__all__ = ["SampleTiming", "LayerSim", "input_beats", "cycle_limit", "layer_timing", "layer_cycles"]


@dataclass(frozen=True)
class SampleTiming:
    """Cycles of one sample, counted from the run's first cycle (0)."""

    first_in: int          # its first input beat is taken
    last_out: int          # its last output beat leaves

    @property
    def cycles(self) -> int:
        """From the first input beat to the last output beat, both included."""
        return self.last_out - self.first_in + 1


class _Fifo:
    """``amaranth.lib.fifo.SyncFIFOBuffered``: an entry written in cycle w is at the output from
    w + 2 if the output register is free; ``step`` is the end of a cycle."""

    def __init__(self):
        self.inner: list = []
        self.ready = False
        self.head = None

    @property
    def level(self) -> int:
        return len(self.inner) + self.ready

    def step(self, write, read: bool) -> None:
        if self.inner and (not self.ready or read):
            self.head, self.ready = self.inner.pop(0), True
        elif read:
            self.ready = False
        if write is not None:
            self.inner.append(write)


class _Walker:
    """:class:`~hwgen.hdl.walker.SetBitWalker`. A mask is ``(beats, info)``; ``cur`` is the mask
    on offer, ``left`` its beats still to offer (the one on offer included)."""

    def __init__(self):
        self.pending = None
        self.cur = None
        self.left = 0

    def load(self, advance: bool) -> bool:
        return self.pending is not None and (self.cur is None or (advance and self.left == 1))

    def takes(self, advance: bool) -> bool:
        return self.pending is None or self.load(advance)

    def step(self, incoming, advance: bool) -> None:
        load, take = self.load(advance), incoming is not None and self.takes(advance)
        if advance:
            self.left -= 1
            if not self.left:
                self.cur = None
        if load:
            self.cur, self.left = self.pending, max(1, self.pending[0])
        if take:
            self.pending = incoming
        elif load:
            self.pending = None


@dataclass
class _Job:
    matches: int
    bank: int
    last: bool            # the neuron's last job
    final: bool           # the bank's last job


class _Tppe:
    """TPPE p (:mod:`.tppe`). ``matches(sample, g, c, t)`` counts a job's matched positions."""

    def __init__(self, cfg: SnnConfig, p: int, matches):
        self.cfg, self.groups, self.matches = cfg, neurons_of(cfg, p), matches
        self.steps = cfg.timesteps if cfg.dataflow == "sequential" else 1
        self.active, self.bank, self.seen = False, 0, [False, False]
        self.job = (0, 0, 0)
        self.jobs = self.pending = 0
        self.issued = None
        self.fifo, self.walker, self.results = _Fifo(), _Walker(), _Fifo()
        self.writes: dict[int, tuple[int, bool]] = {}   # cycle -> (bank, releases the bank)

    def step(self, now: int, full, samples, popped: bool) -> list[int]:
        """One cycle; returns the banks this TPPE releases in it."""
        C = self.cfg.chunks
        g, c, t = self.job
        first = c == 0 and t == 0
        issue = self.active and self.jobs < JOB_FIFO and (not first or self.pending < RESULT_FIFO)
        start = not self.active and full[self.bank] and not self.seen[self.bank]
        advance = self.walker.cur is not None
        if advance and self.walker.left == 1 and self.walker.cur[1].last:
            self.writes[now + READ_LATENCY + 1] = (self.walker.cur[1].bank,
                                                   self.walker.cur[1].final)
        takes = self.walker.takes(advance)
        taken = self.fifo.ready and takes
        write = self.writes.pop(now, None)

        self.walker.step(self.fifo.head if self.fifo.ready else None, advance)
        self.fifo.step(self.issued, takes)
        self.results.step(True if write else None, popped)
        self.issued = None
        if issue:
            last = c == C - 1 and t == self.steps - 1
            m = self.matches(samples[self.bank], g, c, t)
            self.issued = (m, _Job(m, self.bank, last, last and g == self.groups - 1))
            if t < self.steps - 1:
                self.job = (g, c, t + 1)
            elif c < C - 1:
                self.job = (g, c + 1, 0)
            elif g < self.groups - 1:
                self.job = (g + 1, 0, 0)
            else:
                self.active, self.bank = False, 1 - self.bank
        if start:
            self.active, self.seen[self.bank], self.job = True, True, (0, 0, 0)
        for b in range(2):
            if not full[b]:
                self.seen[b] = False
        self.jobs += issue - taken
        self.pending += (issue and first) - popped
        return [write[0]] if write and write[1] else []


class _Emitter:
    """:class:`.fiber.FiberEmitter` fed by the LIF, a row of L neurons per cycle; ``kept`` lists
    each sample's kept output neurons per chunk."""

    def __init__(self, cfg: SnnConfig, kept):
        self.W, self.N, self.L, self.kept = cfg.chunk, cfg.out_neurons, cfg.lanes, kept
        self.full = [False, False]
        self.count = [0, 0]
        self.end = [None, None]                  # the sample a buffer's chunk ends, if it does
        self.fb = self.eb = 0
        self.n = 0                               # output neuron of the next row's first lane
        self.sample = 0
        self.sent, self.started, self.inflight = 0, False, None
        self.queue = _Fifo()

    @property
    def ready(self) -> bool:
        return not self.full[self.fb]

    def offer(self):
        """The beat at the head of the output FIFO, or None."""
        return self.queue.head if self.queue.ready else None

    def step(self, row: bool, out_ready: bool) -> None:
        """One cycle (``row``: the LIF's row is taken; ``out_ready``: the head may leave)."""
        issue = self.full[self.eb] and self.queue.level + (self.inflight is not None) \
            < FiberEmitter.QUEUE
        beat = None
        if issue:
            count, end = self.count[self.eb], self.end[self.eb]
            final = (self.sent == count - 1) if self.started else count == 0
            beat = ("value", None) if self.started else ("mask", count)
            beat += (end if final else None,)
            if final:
                self.full[self.eb], self.started, self.sent, self.eb = False, False, 0, 1 - self.eb
            elif self.started:
                self.sent += 1
            else:
                self.started = True
        if row:
            last_n = min(self.n + self.L, self.N) - 1          # the row's last neuron
            c, pos = divmod(last_n, self.W)
            if pos == self.W - 1 or last_n == self.N - 1:
                self.full[self.fb] = True
                self.count[self.fb] = self.kept[self.sample][c]
                self.end[self.fb] = self.sample if last_n == self.N - 1 else None
                self.fb = 1 - self.fb
            self.n = last_n + 1
            if self.n == self.N:
                self.n, self.sample = 0, self.sample + 1
        self.queue.step(self.inflight, out_ready)
        self.inflight = beat


def _kept(mask: int) -> int:
    return bin(mask).count("1")


class LayerSim:
    """The blocks of one layer, one cycle at a time, without data (the rules above).

    A cycle is :meth:`offer` (the ``out`` beat on offer, from the registers), :meth:`decide`
    (whether the input beat offered in this cycle is taken, from the registers and that beat),
    then :meth:`commit` (the register updates, given whether ``out`` was ready). A beat is
    ``(kind, count, sample)``: kind ``"word"`` (dense), ``"mask"`` (a fiber chunk's mask beat,
    ``count`` its kept neurons) or ``"value"``; ``sample`` is the trace's sample the beat ends,
    if it is that sample's last beat, else None. So a chain of layers (:mod:`hwgen.engines.
    snn_network.cycle_model`) runs one layer's ``out`` into the next one's input.
    """

    def __init__(self, cfg: SnnConfig, trace: golden.LayerTrace):
        self.cfg, self.trace = cfg, trace
        N, T = cfg.out_neurons, cfg.timesteps
        self.P = P = min(cfg.pes, N)
        self.pes = [_Tppe(cfg, p, self._matcher(p)) for p in range(P)]
        self.full, self.bank_in, self.filled = [False, False], 0, {}   # filled: cycle -> bank
        self.bank_sample = [None, None]
        self.released = [[False] * P for _ in range(2)]
        self.L = cfg.lanes
        self.col_rows, self.col_q, self.col_r = 0, 0, 0     # col_rows: rows in the buffer
        self.gathered = False                               # a row in the gather register
        self.lif = [False] * (T * LIF_STEP_STAGES)
        self.out_n, self.out_lane, self.out_sample = 0, 0, 0
        self.emitter = _Emitter(cfg, [[_kept(mk) for mk in f.masks] for f in trace.out_fibers]) \
            if cfg.out_format == "fiber" else None
        self.rx = _Walker()
        self.rx_chunk = 0                                  # chunk of the next mask beat
        self.in_pos = 0                                    # dense: neuron of the next word
        self.store_sample = 0                              # sample whose events the store takes
        self.now = 0
        self._moves = None

    def _matcher(self, p):
        """Matched positions of (sample, g, c, t) for TPPE p's neuron g*P + p."""
        cfg, trace, W, P = self.cfg, self.trace, self.cfg.chunk, self.P

        def matches(s, g, c, t):
            sf, wf = trace.spike_fibers[s], trace.weight_fibers[g * P + p]
            mask = sf.masks[c]
            if cfg.dataflow == "sequential":
                lo = c * W
                words = trace.words[s][lo:lo + W]
                mask = sum(1 << i for i in range(len(words))
                           if mask >> i & 1 and int(words[i]) >> t & 1)
            return _kept(mask & wf.masks[c])
        return matches

    def offer(self):
        """The beat on ``out`` in this cycle, or None."""
        if self.emitter is not None:
            return self.emitter.offer()
        if not self.lif[-1]:
            return None
        return ("word", None, self.out_sample if self.out_n == self.cfg.out_neurons - 1 else None)

    def decide(self, offered) -> bool:
        """Whether the input beat ``offered`` (or None) is taken in this cycle."""
        cfg, rx = self.cfg, self.rx
        store_ready = not self.full[self.bank_in]
        accept = event = vector_end = False
        rx_in, rx_adv = None, False
        if cfg.in_format == "dense":
            accept = event = offered is not None and store_ready
            vector_end = accept and self.in_pos == cfg.in_neurons - 1
        else:
            pos_valid = rx.cur is not None
            empty = pos_valid and rx.cur[0] == 0
            value = offered is not None and offered[0] == "value"
            event = pos_valid and (empty or value) and store_ready
            rx_adv = event
            vector_end = event and rx.left == 1 and rx.cur[1] == cfg.chunks - 1
            if offered is not None and offered[0] == "mask" and rx.takes(rx_adv):
                accept, rx_in = True, (offered[1], self.rx_chunk)
            elif value and event and not empty:
                accept = True
        self._moves = (accept, event, vector_end, rx_in, rx_adv)
        return accept

    def commit(self, out_ready: bool) -> None:
        """The end of the cycle: every register update (after :meth:`decide`)."""
        cfg, now = self.cfg, self.now
        accept, event, vector_end, rx_in, rx_adv = self._moves
        N, P, L = cfg.out_neurons, self.P, self.L
        # Decisions of the collector, the LIF and the output, from the registers.
        row_done = self.out_lane == L - 1 or self.out_n == N - 1     # dense: the row's last word
        if self.emitter is not None:
            lif_ready = self.emitter.ready
        else:
            lif_ready = out_ready and row_done
        lif_en = not self.lif[-1] or lif_ready
        lanes = [self.col_q * L + i for i in range(min(L, N - self.col_r * L))]
        offered_row = all(self.pes[p].results.ready for p in lanes)
        pop = self.col_rows + self.gathered < COLLECT_ROWS and offered_row
        # Register updates.
        for p, unit in enumerate(self.pes):
            for b in unit.step(now, self.full, self.bank_sample, pop and p in lanes):
                self.released[b][p] = True
        for b in range(2):
            if all(self.released[b]):
                self.full[b], self.released[b] = False, [False] * P
        if now in self.filled:
            self.full[self.filled.pop(now)] = True
        if event and vector_end:
            self.filled[now + 1] = self.bank_in
            self.bank_sample[self.bank_in] = self.store_sample
            self.bank_in, self.store_sample = 1 - self.bank_in, self.store_sample + 1
        if cfg.in_format == "fiber":
            self.rx.step(rx_in, rx_adv)
            if rx_in is not None:
                self.rx_chunk = (self.rx_chunk + 1) % cfg.chunks
        elif accept:
            self.in_pos = (self.in_pos + 1) % cfg.in_neurons
        if self.emitter is not None:
            self.emitter.step(self.lif[-1] and lif_ready, out_ready)
        elif self.lif[-1] and out_ready:
            if self.out_n == N - 1:
                self.out_sample += 1
            self.out_n = (self.out_n + 1) % N
            self.out_lane = 0 if row_done else self.out_lane + 1
        if lif_en:                                   # the LIFs take the buffer's head row
            self.lif = [self.col_rows > 0] + self.lif[:-1]
            self.col_rows -= bool(self.col_rows)
        self.col_rows += self.gathered
        self.gathered = pop
        if pop:
            last = self.col_r == -(-N // L) - 1
            self.col_r = 0 if last else self.col_r + 1
            self.col_q = 0 if last else (self.col_q + 1) % (P // L)
        self.now += 1


def input_beats(cfg: SnnConfig, fiber: golden.Fiber, sample: int) -> list[tuple]:
    """The beats of one sample on a layer's input (:class:`LayerSim`'s beats): K dense words,
    or per chunk its mask beat and kept values; the last one marks ``sample``."""
    if cfg.in_format == "dense":
        out = [("word", None, None)] * cfg.in_neurons
    else:
        out = []
        for mask in fiber.masks:
            out.append(("mask", _kept(mask), None))
            out += [("value", None, None)] * _kept(mask)
    out[-1] = out[-1][:2] + (sample,)
    return out


def cycle_limit(samples: int, cfgs) -> int:
    """A bound no run of ``samples`` samples through these layers reaches (a model bug)."""
    return 100_000 + 100 * samples * sum((c.in_neurons + c.out_neurons) * c.timesteps
                                         for c in cfgs)


def layer_timing(cfg: SnnConfig, trace: golden.LayerTrace, alone: bool) -> list[SampleTiming]:
    """Timing of every sample of a :func:`golden.layer` trace, sent back to back (the next
    sample's first beat offered right after the previous one's last) or ``alone`` (each sample
    offered after the previous one's last output beat)."""
    samples = len(trace.spike_fibers)
    sim = LayerSim(cfg, trace)
    beats = [b for s in range(samples) for b in input_beats(cfg, trace.spike_fibers[s], s)]
    pos, offer_from = 0, 0                 # next beat; cycle from which it may be offered
    first_in, last_out = [None] * samples, [None] * samples
    in_sample = 0                          # sample of beats[pos]
    limit = cycle_limit(samples, [cfg])
    while last_out[-1] is None:
        now = sim.now
        if now > limit:
            raise RuntimeError("the cycle model did not finish (a model bug)")
        offered = beats[pos] if pos < len(beats) and now >= offer_from else None
        out = sim.offer()
        if sim.decide(offered):
            if first_in[in_sample] is None:
                first_in[in_sample] = now
            pos += 1
            if offered[2] is not None:
                in_sample += 1
                offer_from = now + 1 if not alone else float("inf")
        if out is not None and out[2] is not None:
            last_out[out[2]] = now
        sim.commit(True)
        if alone and in_sample < samples and last_out[in_sample - 1] is not None \
                and offer_from == float("inf"):
            offer_from = now + 1
    return [SampleTiming(f, o) for f, o in zip(first_in, last_out)]


def layer_cycles(cfg: SnnConfig, trace: golden.LayerTrace) -> list[int]:
    """Cycles of each sample alone, from its first input beat to its last output beat."""
    return [t.cycles for t in layer_timing(cfg, trace, alone=True)]
