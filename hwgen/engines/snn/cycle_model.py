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
* **collector and LIF** — a result per cycle in neuron order into a register, then
  ``T * LIF_STEP_STAGES`` stages.
* **output** — dense: each word as the LIF offers it. Fiber: :class:`.fiber.FiberEmitter`: a
  chunk's buffer is handed over with its last word; the mask beat and the kept words are issued
  one per cycle while the output FIFO (``QUEUE`` entries, a ``SyncFIFOBuffered``) has room.

The model assumes the weights are loaded before the samples arrive (the testbench waits for
that) and ``out`` always ready.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import golden
from .config import SnnConfig
from .fiber import FiberEmitter
from .rtl import LIF_STEP_STAGES
from .tppe import JOB_FIFO, READ_LATENCY, RESULT_FIFO, neurons_of

__all__ = ["SampleTiming", "layer_timing", "layer_cycles"]


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
    """:class:`.fiber.FiberEmitter` fed by the LIF; ``kept`` lists each sample's kept output
    neurons per chunk."""

    def __init__(self, cfg: SnnConfig, kept):
        self.W, self.N, self.kept = cfg.chunk, cfg.out_neurons, kept
        self.full = [False, False]
        self.count = [0, 0]
        self.end = [None, None]                  # the sample a buffer's chunk ends, if it does
        self.fb = self.eb = 0
        self.n = 0                               # output neuron of the next word
        self.sample = 0
        self.sent, self.started, self.inflight = 0, False, None
        self.queue = _Fifo()

    @property
    def ready(self) -> bool:
        return not self.full[self.fb]

    def step(self, word: bool) -> int | None:
        """One cycle (``word``: the LIF's word is taken); returns the sample whose last beat
        leaves in it, if one does."""
        out = self.queue.head if self.queue.ready else None
        issue = self.full[self.eb] and self.queue.level + (self.inflight is not None) \
            < FiberEmitter.QUEUE
        beat = None
        if issue:
            count, end = self.count[self.eb], self.end[self.eb]
            final = (self.sent == count - 1) if self.started else count == 0
            beat = end if final else None
            if final:
                self.full[self.eb], self.started, self.sent, self.eb = False, False, 0, 1 - self.eb
            elif self.started:
                self.sent += 1
            else:
                self.started = True
        if word:
            c, pos = divmod(self.n, self.W)
            if pos == self.W - 1 or self.n == self.N - 1:
                self.full[self.fb] = True
                self.count[self.fb] = self.kept[self.sample][c]
                self.end[self.fb] = self.sample if self.n == self.N - 1 else None
                self.fb = 1 - self.fb
            self.n += 1
            if self.n == self.N:
                self.n, self.sample = 0, self.sample + 1
        self.queue.step(self.inflight, True)
        self.inflight = ("beat", beat) if issue else None
        return out[1] if out is not None else None


def _kept(mask: int) -> int:
    return bin(mask).count("1")


def layer_timing(cfg: SnnConfig, trace: golden.LayerTrace, alone: bool) -> list[SampleTiming]:
    """Timing of every sample of a :func:`golden.layer` trace, sent back to back (the next
    sample's first beat offered right after the previous one's last) or ``alone`` (each sample
    offered after the previous one's last output beat)."""
    K, N, T, W, C = cfg.in_neurons, cfg.out_neurons, cfg.timesteps, cfg.chunk, cfg.chunks
    samples = len(trace.spike_fibers)
    P = min(cfg.pes, N)

    # Matched positions of (sample, g, c, t) for TPPE p's neuron g*P + p.
    def matcher(p):
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

    # The input beats of every sample: dense words, or per chunk its mask and kept values.
    def beats(s):
        if cfg.in_format == "dense":
            return [("word", None)] * K
        out = []
        for c, mask in enumerate(trace.spike_fibers[s].masks):
            out.append(("mask", _kept(mask)))
            out += [("value", None)] * _kept(mask)
        return out

    pes = [_Tppe(cfg, p, matcher(p)) for p in range(P)]
    full, bank_in, filled = [False, False], 0, {}      # filled: cycle -> bank becoming full
    bank_sample = [None, None]
    released = [[False] * P for _ in range(2)]
    col_valid, col_p, col_n = False, 0, 0
    lif = [False] * (T * LIF_STEP_STAGES)
    out_n, out_sample = 0, 0
    emitter = _Emitter(cfg, [[_kept(mk) for mk in f.masks] for f in trace.out_fibers]) \
        if cfg.out_format == "fiber" else None
    rx = _Walker()
    rx_chunk = 0                                       # chunk of the next mask beat
    in_sample, in_beats, in_pos = 0, beats(0), 0
    offer_from = 0                                     # cycle the current sample is offered
    first_in, last_out = [None] * samples, [None] * samples
    store_sample = 0                                   # sample whose events the store takes
    now = 0
    while last_out[-1] is None:
        if now > 100_000 + 100 * samples * (K + N) * T:
            raise RuntimeError("the cycle model did not finish (a model bug)")
        # --- decisions from the registers ---------------------------------------------------
        store_ready = not full[bank_in]
        offered = None
        if in_sample < samples and now >= offer_from:
            offered = in_beats[in_pos]
        accept = event = vector_end = False
        if cfg.in_format == "dense":
            accept = event = offered is not None and store_ready
            vector_end = accept and in_pos == K - 1
            rx_in = None
            rx_adv = False
        else:
            pos_valid = rx.cur is not None
            empty = pos_valid and rx.cur[0] == 0
            value = offered is not None and offered[0] == "value"
            event = pos_valid and (empty or value) and store_ready
            rx_adv = event
            vector_end = event and rx.left == 1 and rx.cur[1] == C - 1
            rx_in = None
            if offered is not None and offered[0] == "mask" and rx.takes(rx_adv):
                accept, rx_in = True, (offered[1], rx_chunk)
            elif value and event and not empty:
                accept = True
        if accept and first_in[in_sample] is None:
            first_in[in_sample] = now
        # collector, LIF and output
        if emitter is not None:
            lif_ready = emitter.ready
        else:
            lif_ready = True
        lif_en = not lif[-1] or lif_ready
        col_adv = not col_valid or lif_en
        offered_result = pes[col_p].results.ready
        pop = col_adv and offered_result
        # --- register updates ----------------------------------------------------------------
        for p, unit in enumerate(pes):
            for b in unit.step(now, full, bank_sample, pop and p == col_p):
                released[b][p] = True
        for b in range(2):
            if all(released[b]):
                full[b], released[b] = False, [False] * P
        if now in filled:
            b = filled.pop(now)
            full[b] = True
        if event and vector_end:
            filled[now + 1] = bank_in
            bank_sample[bank_in] = store_sample
            bank_in, store_sample = 1 - bank_in, store_sample + 1
        if cfg.in_format == "fiber":
            rx.step(rx_in, rx_adv)
            if rx_in is not None:
                rx_chunk = (rx_chunk + 1) % C
        if accept:
            in_pos += 1
            if in_pos == len(in_beats):
                in_sample, in_pos = in_sample + 1, 0
                if in_sample < samples:
                    in_beats = beats(in_sample)
                    offer_from = now + 1 if not alone else float("inf")
        # output
        word_taken = lif[-1] and lif_ready
        if emitter is not None:
            done = emitter.step(word_taken)
            if done is not None:
                last_out[done] = now
        elif word_taken:
            if out_n == N - 1:
                last_out[out_sample] = now
                out_sample += 1
            out_n = (out_n + 1) % N
        if lif_en:
            lif = [col_valid] + lif[:-1]
        if col_adv:
            col_valid = offered_result
            if pop:
                last = col_n == N - 1
                col_n = 0 if last else col_n + 1
                col_p = 0 if last or col_p == P - 1 else col_p + 1
        if alone and in_sample < samples and offer_from == float("inf") \
                and last_out[in_sample - 1] is not None:
            offer_from = now + 1
        now += 1
    return [SampleTiming(f, o) for f, o in zip(first_in, last_out)]


def layer_cycles(cfg: SnnConfig, trace: golden.LayerTrace) -> list[int]:
    """Cycles of each sample alone, from its first input beat to its last output beat."""
    return [t.cycles for t in layer_timing(cfg, trace, alone=True)]
