"""The temporal-parallel PE (TPPE): inner join of a spike fiber with a weight fiber (LoAS, §4.2).

One TPPE owns one output neuron n at a time and accumulates ``O[t]`` for t = 0..T-1 of one
(sample, neuron) pair, chunk by chunk. A chunk arrives as one beat holding both compressed chunks
(masks plus the kept values packed from rank 0); ``first`` clears the accumulators, ``last`` makes
the TPPE emit ``O`` when the chunk is done. The numerics are rule 3 of the snn spec, as written in
:mod:`hwgen.engines.snn.golden`.

Modes (``cfg.join`` x ``cfg.dataflow``)
---------------------------------------
``fast``/``ftp``
    Fast prefix sums on both masks give every position's rank. Each cycle the lowest remaining
    matched position i (``matched & -matched``) selects spike word ``s`` and weight ``w`` and all T
    accumulators add ``w`` where ``s`` has a spike. Cycles per chunk: ``max(1, matches)``.
``laggy``/``ftp``
    The weight side is as fast: each cycle one matched weight goes into the pseudo-accumulator
    (``pseudo += w``, as if the neuron fired at every t). The spike side has only a slow prefix sum
    (:class:`hwgen.hdl.prefix_sum.SlowPrefixSum`, ``laggy_adders`` ranks per cycle, in order); the
    correction unit takes the matched pairs in the same order, at most one per cycle and never before
    the slow prefix sum has ranked that position, and adds ``w`` to ``corr[t]`` for every t where the
    spike word has no spike. ``O[t] = pseudo - corr[t]`` when both sides are done.
``*``/``sequential``
    The baseline: one timestep after another with the per-timestep spike masks ``tmasks[t]``
    (SparTen-style); the join iterates ``tmasks[t] & wmask`` one match per cycle and adds ``w`` to
    ``O[t]``. Cycles per chunk: ``sum_t max(1, matches_t)``.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hwgen.hdl.arith import overflow
from hwgen.hdl.prefix_sum import FastPrefixSum, SlowPrefixSum, rank_shape

from .config import SnnConfig

__all__ = ["chunk_layout", "sums_layout", "Tppe"]


def chunk_layout(cfg: SnnConfig) -> data.StructLayout:
    """One chunk job: the weight chunk, and the spike chunk in the dataflow's format."""
    fields = {
        "wmask": cfg.chunk,
        "wvals": data.ArrayLayout(signed(cfg.weight_bits), cfg.chunk),
        "first": 1,
        "last": 1,
    }
    if cfg.dataflow == "ftp":
        fields["smask"] = cfg.chunk
        fields["svals"] = data.ArrayLayout(unsigned(cfg.timesteps), cfg.chunk)
    else:
        fields["tmasks"] = data.ArrayLayout(cfg.chunk, cfg.timesteps)
    return data.StructLayout(fields)


def sums_layout(cfg: SnnConfig) -> data.StructLayout:
    return data.StructLayout({"o": data.ArrayLayout(signed(cfg.acc_bits), cfg.timesteps)})


def _lowest(mask: Signal):
    """One-hot of the lowest set bit of ``mask`` and ``mask`` with that bit cleared."""
    return mask & -mask, mask & (mask - 1)


def _onehot_select(onehot, values, shape):
    """``values[i]`` for the set bit i of ``onehot`` (an AND-OR mux; zero if none is set)."""
    out = 0
    for i, value in enumerate(values):
        out = out | Mux(onehot[i], value, 0)
    return out.as_unsigned() if not shape.signed else out.as_signed()


class Tppe(wiring.Component):
    """One temporal-parallel PE for ``cfg`` (see the module docstring for the modes).

    Attributes
    ----------
    chunks : stream, in
        Chunk jobs, see :func:`chunk_layout`; a (sample, neuron) pair is the chunks from ``first``
        to ``last``.
    sums : stream, out
        ``O[0..T-1]`` of a pair, one beat after its ``last`` chunk, see :func:`sums_layout`.

    busy : out
        A chunk is being joined or a result waits (for the layer's perf counters).

    A chunk takes one cycle to accept plus its join cycles. ``fast`` and ``sequential`` accept the
    next chunk in the last join cycle of the current one (back to back, a chunk costs
    ``max(1, join cycles)``); ``laggy`` accepts it the cycle after, when its slow prefix sum is
    free again. A finished pair's ``O`` (its value after the last add) moves into the ``sums``
    output register in the pair's last join cycle if that register is free (or is being emptied)
    — and then the next pair's first chunk may be accepted in that same cycle; otherwise the
    accumulators hold it until the register frees and no new pair starts. So a result waits to be
    collected while the next pair is joined.
    """

    def __init__(self, cfg: SnnConfig):
        self.cfg = cfg
        super().__init__({
            "chunks": In(stream.Signature(chunk_layout(cfg))),
            "sums": Out(stream.Signature(sums_layout(cfg))),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        W = cfg.chunk
        m = Module()

        cur = Signal(chunk_layout(cfg))               # the chunk being joined
        remaining = Signal(W)                         # matched positions the weight side still owes
        busy = Signal()                               # a chunk is being joined
        done = Signal()                               # ... and this is its last cycle
        accept = Signal()                             # a chunk transfers this cycle
        can_accept = Signal()
        held = Signal()                               # the accumulators hold a finished pair
        out_free = Signal()                           # the output register can take a result
        m.d.comb += out_free.eq(~self.sums.valid | self.sums.ready)
        # Accepting in the last join cycle: the accumulators take their last addend and, for a
        # new pair (``first``), are cleared at the same edge the finished O (its value after the
        # add) moves to the output register, so that register must be free.
        overlap = done & (~cur.last | out_free) \
            if cfg.join == "fast" or cfg.dataflow == "sequential" else 0
        m.d.comb += [can_accept.eq(~held & (~busy | overlap)),
                     self.chunks.ready.eq(can_accept), accept.eq(self.chunks.valid & can_accept),
                     self.busy.eq(busy | held | self.sums.valid)]

        # Weight side, shared by every mode: the lowest remaining matched position and its weight
        # through a fast prefix sum of the weight mask; 0 in a cycle without a match.
        m.submodules.wranks = wranks = FastPrefixSum(W)
        m.d.comb += wranks.mask.eq(cur.wmask)
        onehot, rest = _lowest(remaining)
        w = Signal(signed(cfg.weight_bits))
        wrank = _onehot_select(onehot, [wranks.ranks[i] for i in range(W)], rank_shape(W))
        m.d.comb += w.eq(Mux(remaining.any(), cur.wvals[wrank], 0))
        with m.If(busy):
            m.d.sync += remaining.eq(rest)

        chunk = self.chunks.payload
        finishing = busy & done & cur.last            # a pair's last join cycle
        with m.If(busy & done):
            m.d.sync += busy.eq(0)
            with m.If(cur.last & ~out_free):
                m.d.sync += held.eq(1)
        with m.If(accept):
            m.d.sync += [cur.eq(chunk), busy.eq(1)]

        if cfg.dataflow == "sequential":
            o = self._sequential(m, cur, remaining, rest, w, busy, done, accept)
        elif cfg.join == "fast":
            o = self._fast(m, cur, remaining, onehot, rest, w, busy, done, accept)
        else:
            o = self._laggy(m, cur, remaining, rest, w, busy, done, accept, can_accept)

        # Output register: O of the finished pair (``o`` is the accumulators' value after this
        # cycle's add, equal to the registers once the join is over).
        with m.If((finishing | held) & out_free):
            m.d.sync += [held.eq(0), self.sums.valid.eq(1)]
            m.d.sync += [self.sums.payload.o[t].eq(value) for t, value in enumerate(o)]
        with m.Elif(self.sums.valid & self.sums.ready):
            m.d.sync += self.sums.valid.eq(0)
        return m

    def _accumulators(self, m, name, bits):
        return [Signal(signed(bits), name=f"{name}{t}") for t in range(self.cfg.timesteps)]

    def _clear(self, m, regs, first_accept):
        """Clear on a pair's first chunk; after the adds, so the clear wins when a new pair is
        accepted in the old pair's last join cycle."""
        with m.If(first_accept):
            m.d.sync += [r.eq(0) for r in regs]

    def _add(self, m, reg, addend, bits):
        m.d.sync += reg.eq(overflow(reg + addend, bits, self.cfg.acc_overflow))

    def _update(self, m, regs, addends, enable):
        """``reg += addend`` (with the overflow rule) where ``enable``; returns the values after
        this cycle (the registers themselves where nothing is added)."""
        cfg = self.cfg
        after = [Mux(enable, overflow(reg + addend, cfg.acc_bits, cfg.acc_overflow), reg)
                 for reg, addend in zip(regs, addends)]
        with m.If(enable):
            m.d.sync += [reg.eq(value) for reg, value in zip(regs, after)]
        return after

    def _fast(self, m, cur, remaining, onehot, rest, w, busy, done, accept):
        """Both prefix sums fast: one matched pair per cycle, all T accumulators at once."""
        cfg, W = self.cfg, self.cfg.chunk
        chunk = self.chunks.payload
        o = self._accumulators(m, "o", cfg.acc_bits)
        with m.If(accept):
            m.d.sync += remaining.eq(chunk.smask & chunk.wmask)
        m.submodules.sranks = sranks = FastPrefixSum(W)
        m.d.comb += sranks.mask.eq(cur.smask)
        s = Signal(cfg.timesteps)
        m.d.comb += s.eq(cur.svals[_onehot_select(onehot, [sranks.ranks[i] for i in range(W)],
                                                  rank_shape(W))])
        after = self._update(m, o, [Mux(s[t], w, 0) for t in range(cfg.timesteps)], busy)
        self._clear(m, o, accept & chunk.first)
        m.d.comb += done.eq(rest == 0)
        return after

    def _sequential(self, m, cur, remaining, rest, w, busy, done, accept):
        """Timestep by timestep over the per-timestep spike masks, one match per cycle."""
        cfg, T = self.cfg, self.cfg.timesteps
        chunk = self.chunks.payload
        o = self._accumulators(m, "o", cfg.acc_bits)
        step = Signal(range(max(T, 2)))
        with m.If(accept):
            m.d.sync += [remaining.eq(chunk.tmasks[0] & chunk.wmask), step.eq(0)]
        last_step = step == T - 1
        after = [self._update(m, [acc], [w], busy & (step == t))[0] for t, acc in enumerate(o)]
        self._clear(m, o, accept & chunk.first)
        with m.If(busy):
            with m.If((rest == 0) & ~last_step):
                m.d.sync += [step.eq(step + 1), remaining.eq(cur.tmasks[step + 1] & cur.wmask)]
        m.d.comb += done.eq((rest == 0) & last_step)
        return after

    def _laggy(self, m, cur, remaining, rest, w, busy, done, accept, can_accept):
        """LoAS: pseudo-accumulate weights at once; correct per timestep when the slow spike-side
        prefix sum reaches the position.

        The weight side pushes every matched weight into a FIFO as it adds it to ``pseudo``; the
        correction side walks the slow prefix sum's groups (``adders`` positions each) and, for
        each matched position in the group, pops that weight (positions come in the same order on
        both sides) and adds it to ``corr[t]`` for every t where the spike word is 0. A group with
        no (more) matched positions is acknowledged; the chunk is done when the weight side, the
        last group and the FIFO are all done.
        """
        cfg, T, W, A = self.cfg, self.cfg.timesteps, self.cfg.chunk, self.cfg.adders
        chunk = self.chunks.payload
        first = accept & chunk.first
        pseudo = Signal(signed(cfg.acc_bits))
        with m.If(first):
            m.d.sync += pseudo.eq(0)
        corr = self._accumulators(m, "corr", cfg.correction_bits)
        self._clear(m, corr, first)     # laggy never accepts while busy: no add in this cycle

        m.submodules.slow = slow = SlowPrefixSum(W, A)
        m.d.comb += [slow.mask.payload.eq(chunk.smask),
                     slow.mask.valid.eq(self.chunks.valid & can_accept)]
        # The slow prefix sum takes a mask whenever the TPPE is idle (it finished the last one).
        m.submodules.pending = pending = SyncFIFOBuffered(width=cfg.weight_bits, depth=W)

        with m.If(accept):
            m.d.sync += remaining.eq(chunk.smask & chunk.wmask)
        with m.If(busy & remaining.any()):
            self._add(m, pseudo, w, cfg.acc_bits)
        m.d.comb += [pending.w_data.eq(w), pending.w_en.eq(busy & remaining.any())]

        # Correction side: matched bits of the current group not yet corrected.
        groups = -(-W // A)
        matched = Signal(groups * A)                  # shifted right by A per finished group
        handled = Signal(A)
        with m.If(accept):
            m.d.sync += [matched.eq(chunk.smask & chunk.wmask), handled.eq(0)]
        todo = Signal(A)
        m.d.comb += todo.eq(matched[:A] & ~handled)
        g_onehot, _ = _lowest(todo)
        group = slow.groups.payload
        srank = _onehot_select(g_onehot, [group.ranks[j] for j in range(A)], rank_shape(W))
        s = Signal(T)
        m.d.comb += s.eq(cur.svals[srank])
        correct = Signal()
        m.d.comb += correct.eq(slow.groups.valid & todo.any() & pending.r_rdy)
        m.d.comb += pending.r_en.eq(correct)
        with m.If(correct):
            m.d.sync += handled.eq(handled | g_onehot)
            for t, acc in enumerate(corr):
                self._add(m, acc, Mux(s[t], 0, pending.r_data.as_signed()), cfg.correction_bits)
        m.d.comb += slow.groups.ready.eq(todo == 0)
        spikes_done = Signal()                        # the chunk's last group was acknowledged
        with m.If(accept):
            m.d.sync += spikes_done.eq(0)
        with m.If(slow.groups.valid & slow.groups.ready):
            m.d.sync += [matched.eq(matched >> A), handled.eq(0)]
            with m.If(group.last):
                m.d.sync += spikes_done.eq(1)
        m.d.comb += done.eq(spikes_done & (remaining == 0) & ~pending.r_rdy)
        return [overflow(pseudo - corr[t], cfg.acc_bits, cfg.acc_overflow) for t in range(T)]
