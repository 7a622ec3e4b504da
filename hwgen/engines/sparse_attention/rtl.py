"""Length-adaptive top-k sparse attention, one head (docs/architecture.md §4.3, after Peng et al.,
DAC 2022).

Numerics are those of :mod:`.golden` (same config properties, same exp table); this module only
schedules them. Every fixed latency below is a constant of :mod:`.cycle_model`, which the
elaboration checks against the pipelines it builds.

Dataflow
--------
::

    tokens -> loader -> bank 0 / 1 (Q, K, V) -> prepare -> q4, k4 (bank 0 / 1)
                                                              |
       row groups: estimate -> queue -> select -> exact -> softmax -> divide -> weighted sum
                   -> emit -> out

* **Load.** One ``tokens`` beat carries the Q, K and V rows of one position; ``last`` ends the
  sequence, whose length L is whatever arrived. Beats are registered, then written to bank
  ``wbank`` while per-element running maxima of |Q| and |K| are kept; the other bank can be
  computed meanwhile. Q rows are stored in ``rows`` lanes (row i in lane ``i % rows``), so one read
  gives the ``rows`` queries of a group.
* **Prepare** (``topk`` / ``threshold`` only), once per sequence and overlapping the previous
  sequence's rows: max|Q| and max|K| (a pipelined max tree over the lane maxima), both
  quantization reciprocals ``floor((q_max << S) / max|x|)`` on two sequential dividers, then
  every K and Q row, alternately, through one pipelined quantizer (``d`` multipliers) into the
  ``k4`` memories (row j in lane ``j % lanes``, so a read gives ``lanes`` keys) and the ``q4``
  lanes (like Q).
* **Row groups.** Queries are computed ``rows`` at a time by ``rows`` identical row units. A group
  passes through eight stages (five for ``window`` / ``dense``); each stage works on one group at
  a time, and the stages work on consecutive groups at once (of this sequence and the next one).
  A stage takes a group when the previous stage has finished it and when the next stage takes
  the stage's previous group (in the same cycle if that next stage is itself empty, else one
  cycle later: the take chain is two stages long):

  * **estimate** (``topk`` / ``threshold``): the group's q4 rows are read once; the k4 rows
    stream ``lanes`` keys per cycle, *broadcast* to every unit, which computes ``lanes``
    estimated scores per cycle (4-bit products in LUTs, a pipelined adder tree) into its own
    :class:`hwgen.hdl.topk.TopK`. Done at its last issue: the dot products drain on their own;
  * **queue** (``topk`` / ``threshold``): holds an estimated group until the select stage takes
    it, so the estimate stage can stream the next group while a top-k unit finishes a set;
  * **select** (``topk`` / ``threshold``): each unit's top-k results into its index buffer;
  * **exact**: each unit reads the K rows of its selected keys (its own read port), one per
    cycle: ``d`` DSP products and a pipelined adder tree, written to the unit's row buffer
    while the row max is kept. ``window`` / ``dense`` units generate their keys by counting;
  * **softmax**: per key ``z = max - s`` (saturated where exp is 0 anyway), ``z * C_mult``
    (one DSP), the exp table (a synchronous ROM) and the shift, each a pipeline stage; the exps
    go back to the row buffer and into the row sum;
  * **divide**: each unit's row reciprocal ``floor(2**RS / sum)`` on a sequential divider;
  * **weighted sum**: per key ``p = (exp * rr) >> (RS - prob_bits)`` and ``d``
    multiply-accumulates with its V row (each unit its own V read port), then requantization
    into a result register;
  * **emit**: the results move to the output registers and leave one row per beat, in order.

  The row buffers have four banks, one per stage that uses them (exact, softmax, weighted sum
  and the divide in between), so each stage reads and writes its own group.

Memories are read synchronously with a register after the read data (two cycles from address to
data), the token memories (Q, K, V: block RAM, :class:`~hwgen.hdl.bram.BlockMemory`, whose
first register is the block's own on ECP5) with two (:data:`BRAM_READ_REGISTERS`, three
cycles) for the prepare unit and one for the exact and weighted-sum stages, whose products
register the data in the DSPs' input registers, except the small row buffers and the exp ROM
(one cycle). The q4 and k4 rows are
block RAM too: q4 read at the estimate stage's take with one register (the block's own), k4 a
cycle ahead of each block's issue with two.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.hdl.arith import overflow
from hwgen.hdl.bram import BlockMemory
from hwgen.hdl.divider import SequentialDivider
from hwgen.hdl.perf import PerfCounters, PerfSignature
from hwgen.hdl.pipeline import (
    PRODUCT_STAGES,
    delay,
    maximum,
    pipelined_dot_product,
    pipelined_product,
    pipelined_tree,
    pulse_copies,
    replicated_register,
)
from hwgen.hdl.topk import TopK

from . import cycle_model as cm
from .config import SparseAttentionConfig

__all__ = ["token_layout", "out_layout", "SparseAttention"]


def _row(cfg: SparseAttentionConfig, bits: int) -> data.ArrayLayout:
    return data.ArrayLayout(signed(bits), cfg.head_dim)


def token_layout(cfg: SparseAttentionConfig) -> data.StructLayout:
    """One position of a sequence: its Q, K and V rows; ``last`` on position L-1."""
    row = _row(cfg, cfg.data_bits)
    return data.StructLayout({"q": row, "k": row, "v": row, "last": 1})


def out_layout(cfg: SparseAttentionConfig) -> data.StructLayout:
    """One output row o[i]; ``last`` on row L-1."""
    return data.StructLayout({"o": _row(cfg, cfg.out_bits), "last": 1})


def _abs(x, bits):
    """|x| of a signed ``bits``-bit value as unsigned ``bits`` bits (|min| = 2**(bits-1) fits)."""
    return Mux(x[-1], -x, x)[:bits]


def _bits(n: int) -> int:
    """Bits of an index into ``n`` entries: at least 1, since a zero-width signal becomes a
    ``wire [-1:0]`` in Verilog, which Verilator rejects (ASCRANGE)."""
    return max((n - 1).bit_length(), 1)


#: Registers after the read data of the token memories (Q, K, V: :class:`BlockMemory`): the
#: block's own output register, then one in the fabric near the consumer. The path from the
#: block to a register placed near the DSPs it feeds was the critical path of all three
#: placements of the attention example at 99.8 MHz (median) with one register.
BRAM_READ_REGISTERS = 2

#: Banks of each unit's index buffer (the select stage's results; a power of two, so the bank
#: counters wrap by themselves). See :meth:`SparseAttention._select`.
INDEX_BANKS = 4


class _Read:
    """A synchronous read port of a small memory followed by a data register: data two cycles
    after the address."""

    def __init__(self, m, mem, name):
        self.port = mem.read_port()
        self.addr, self.en = self.port.addr, self.port.en
        self.data = Signal(self.port.data.shape(), name=f"{name}_q")
        m.d.sync += self.data.eq(self.port.data)


class _Stage:
    """Control of one row-group stage: ``busy`` while it works on a group, ``full`` from the
    cycle after it finished until the next stage takes the group; ``take`` (combinational) in
    the cycle it takes a group, ``done`` (driven by the stage) in its last busy cycle."""

    def __init__(self, name):
        self.name = name
        self.busy = Signal(name=f"{name}_busy")
        self.full = Signal(name=f"{name}_full")
        self.take = Signal(name=f"{name}_take")
        self.done = Signal(name=f"{name}_done")
        self.token = None


class SparseAttention(wiring.Component):
    """One attention head for ``cfg``.

    Attributes
    ----------
    tokens : stream, in
        L beats per sequence (:func:`token_layout`), sequences back to back.
    out : stream, out
        L output rows per sequence (:func:`out_layout`), in order.
    perf : :data:`hwgen.hdl.perf.PerfSignature`, out
        ``busy``: a token moves, a sequence is loaded, prepared or being computed, or an output
        row waits; ``stall``: an output row waits for ``out.ready`` (a subset of busy).
    """

    def __init__(self, cfg: SparseAttentionConfig):
        self.cfg = cfg
        super().__init__({
            "tokens": In(stream.Signature(token_layout(cfg))),
            "out": Out(stream.Signature(out_layout(cfg))),
            "perf": Out(PerfSignature),
        })

    # --- top level ---------------------------------------------------------------------------

    def elaborate(self, platform):
        cfg = self.cfg
        D, Lmax, R = cfg.data_bits, cfg.max_len, cfg.rows
        m = Module()
        self.m = m
        self.jbits = _bits(Lmax)                       # a key index
        self.gbits = _bits(-(-Lmax // R))              # a group's address in the Q lanes
        self.pos = range(Lmax + 1)                     # a length
        row_shape = _row(cfg, D)

        # Bank memories: address = Cat(position or lane address, bank).
        self.qmem = [BlockMemory(row_shape, 2 << self.gbits)
                     for _ in range(R)]
        for u, mem in enumerate(self.qmem):
            m.submodules[f"qmem{u}"] = mem
        self.kmem = BlockMemory(row_shape, 2 << self.jbits)
        self.vmem = BlockMemory(row_shape, 2 << self.jbits)
        m.submodules.kmem, m.submodules.vmem = self.kmem, self.vmem

        # Bank state. full: loaded and not yet released; loaded: waiting for prepare;
        # prepared: waiting for its row groups to be started.
        self.full, self.loaded, self.prepared = Signal(2), Signal(2), Signal(2)
        self.bank_len = [Signal(self.pos, name=f"bank{b}_len") for b in range(2)]
        self.release = Signal(2)                        # the last group's weighted sum is done

        self._loader()
        if cfg.estimated:
            self._prepare()

        token_layout_ = data.StructLayout({
            "bank": 1, "base": range(Lmax + R), "active": range(R + 1), "last": 1,
            "length": self.pos, "group": self.gbits})
        self.token_layout = token_layout_
        stages = [_Stage(n) for n in cm.stage_names(cfg)]
        for st in stages:
            st.token = Signal(token_layout_, name=f"{st.name}_token")
        self.stages = {st.name: st for st in stages}
        self._group_source(stages)

        self.units = [dict() for _ in range(R)]
        if cfg.estimated:
            self._estimate()
            self._queue()
            self._select()
        self._exact()
        self._softmax()
        self._divide()
        self._weighted_sum()
        self._emit()

        for b in range(2):
            with m.If(self.release[b]):
                m.d.sync += self.full[b].eq(0)

        m.submodules.perf = perf = PerfCounters()
        wiring.connect(m, wiring.flipped(self.perf), perf.perf)
        work = [st.busy | st.full for st in stages] + [self.load_valid, self.loaded.any(),
                                                       self.prepared.any(), self.out.valid]
        if cfg.estimated:
            work.append(self.prep_busy)
        busy = self.tokens.valid & self.tokens.ready
        for w in work:
            busy = busy | w
        m.d.comb += [perf.busy.eq(busy), perf.stall.eq(self.out.valid & ~self.out.ready)]
        return m

    # --- loader ------------------------------------------------------------------------------

    def _loader(self):
        """Tokens -> input register -> bank memories and per-element running max|Q|, max|K|."""
        cfg, m = self.cfg, self.m
        d, D, Lmax, R = cfg.head_dim, cfg.data_bits, cfg.max_len, cfg.rows
        tok = self.tokens.payload
        wbank, wpos = Signal(), Signal(self.jbits)
        wlane, wgroup = Signal(_bits(R)), Signal(self.gbits)     # wpos % rows, wpos // rows
        m.d.comb += self.tokens.ready.eq(~self.full.bit_select(wbank, 1))
        accept = self.tokens.valid & self.tokens.ready
        last = tok.last | (wpos == Lmax - 1)

        # Input register: the beat with where it goes.
        self.load_valid = valid = Signal(name="load_valid")
        beat = Signal(token_layout(self.cfg), name="load_beat")
        bank, pos, lane, group, end = (Signal(), Signal(self.jbits), Signal(_bits(R)),
                                       Signal(self.gbits), Signal())
        m.d.sync += [valid.eq(accept), beat.eq(tok), bank.eq(wbank), pos.eq(wpos),
                     lane.eq(wlane), group.eq(wgroup), end.eq(last)]
        with m.If(accept):
            m.d.sync += [wpos.eq(wpos + 1), wlane.eq(Mux(wlane == R - 1, 0, wlane + 1)),
                         wgroup.eq(Mux(wlane == R - 1, wgroup + 1, wgroup))]
            with m.If(last):
                m.d.sync += [wpos.eq(0), wlane.eq(0), wgroup.eq(0), wbank.eq(~wbank)]
                for b in range(2):
                    with m.If(wbank == b):
                        m.d.sync += [self.full[b].eq(1), self.bank_len[b].eq(wpos + 1)]

        # The token memories register the write at each copy (one register for the blocks of
        # every copy had 10.7 ns of routing to them, the rows-2 head's seed 2 at 9dc1e0d, 87.0
        # MHz): a row is written two cycles after its take.
        for u, mem in enumerate(self.qmem):
            w = mem.write_port(registered=True)
            m.d.comb += [w.addr.eq(Cat(group, bank)), w.data.eq(beat.q),
                         w.en.eq(valid & (lane == u))]
        for mem, rowdata in ((self.kmem, beat.k), (self.vmem, beat.v)):
            w = mem.write_port(registered=True)
            m.d.comb += [w.addr.eq(Cat(pos, bank)), w.data.eq(rowdata), w.en.eq(valid)]

        # Running max|x| per element and bank: one comparator per element per beat, no tree.
        # |x|, "first of the sequence" and the per-bank enables are registered one cycle after
        # the input register, so the nets that reach all 4 * head_dim maxima start at
        # flip-flops (``pos == 0`` decoded in front of them was the critical path).
        self.lane_max = {}
        update = [Signal(name=f"bank{b}_max_update") for b in range(2)]
        first = Signal(name="max_first")
        m.d.sync += [first.eq(pos == 0)] + [update[b].eq(valid & (bank == b)) for b in range(2)]
        for name in ("q", "k"):
            regs = [[Signal(D, name=f"bank{b}_max_{name}{c}") for c in range(d)]
                    for b in range(2)]
            self.lane_max[name] = regs
            if not cfg.estimated:
                continue
            for c in range(d):
                a = Signal(D, name=f"load_abs_{name}{c}")
                m.d.sync += a.eq(_abs(getattr(beat, name)[c], D))
                for b in range(2):
                    with m.If(update[b]):
                        m.d.sync += regs[b][c].eq(Mux(first, a, maximum(regs[b][c], a)))
        # A bank is loaded once its last maxima are written (estimated masks), else at once.
        ending, ending_bank, flag = valid & end, bank, self.prepared
        if cfg.estimated:
            late = delay(m, Cat(ending, bank), 1, "load_end")
            ending, ending_bank = late[0], late[1]
            flag = self.loaded
        with m.If(ending):
            for b in range(2):
                with m.If(ending_bank == b):
                    m.d.sync += flag[b].eq(1)

    # --- prepare -----------------------------------------------------------------------------

    def _prepare(self):
        """Once per sequence: max|Q|, max|K|, both reciprocals, then q4 and k4 of every row.

        Taken in cycle c: the element maxima are registered in c, the max trees end
        ``prepare_max_latency - 1`` register stages later, where both dividers start; in the
        cycle their results are valid they are latched, and from the next cycle one row is
        issued per cycle (K row j, then Q row j) into the quantizer, whose last write is the
        prepare unit's last cycle (:func:`.cycle_model.prepare_cycles`).
        """
        cfg, m = self.cfg, self.m
        d, D, Lmax, R, lanes = cfg.head_dim, cfg.data_bits, cfg.max_len, cfg.rows, cfg.lanes
        S = cfg.recip_shift
        self.prep_busy = busy = Signal(name="prep_busy")
        pbank = Signal(name="prep_bank")                  # the bank prepared next
        length = Signal(self.pos, name="prep_len")

        # q4 in ``rows`` lanes like Q, k4 in ``lanes`` lanes (key j in lane j % lanes at
        # j // lanes), both two banks.
        q4_row = data.ArrayLayout(signed(cfg.est_bits), d)
        self.bbits = _bits(-(-Lmax // lanes))
        self.q4mem = [BlockMemory(q4_row, 2 << self.gbits) for _ in range(R)]
        self.k4mem = [BlockMemory(q4_row, 2 << self.bbits) for _ in range(lanes)]
        for n, mem in enumerate(self.q4mem):
            m.submodules[f"q4mem{n}"] = mem
        for n, mem in enumerate(self.k4mem):
            m.submodules[f"k4mem{n}"] = mem

        # Max trees over the element maxima of the bank, registered at the leaves. Each element
        # selects its bank with its own copy of ``pbank`` (toggled with it): one bank register
        # for all 2 * head_dim * data_bits leaf multiplexers was a critical path (9.6 ns of
        # routing).
        toggle = Signal(name="prep_toggle")
        bank_of = replicated_register(m, ~pbank, toggle, d, name="prep_bank_copy")
        maxabs, stages = {}, 0
        for name in ("q", "k"):
            leaves = []
            for c in range(d):
                leaf = Signal(D, name=f"prep_max_{name}{c}")
                m.d.sync += leaf.eq(Mux(bank_of[c], self.lane_max[name][1][c],
                                        self.lane_max[name][0][c]))
                leaves.append(leaf)
            maxabs[name], stages = pipelined_tree(m, leaves, maximum, name=f"maxabs_{name}")
        assert 1 + stages == cm.prepare_max_latency(cfg)

        divs = {}
        for name in ("q", "k"):
            divs[name] = div = SequentialDivider(cfg.recip_bits, D)
            m.submodules[f"recip_{name}"] = div
            m.d.comb += [div.request.payload.dividend.eq(cfg.q_max << S),
                         div.request.payload.divisor.eq(maxabs[name]), div.result.ready.eq(1)]
        assert divs["q"].latency == cm.recip_latency(cfg)
        # The reciprocals: latched when the dividers finish, then one copy per quantizer element
        # (each feeds one DSP), loaded the cycle after from registered load pulses, so neither
        # the divider's valid nor the state machine drives the copies' 2 * head_dim * recip_bits
        # enables. One load pulse register for all of them had 9 ns of routing (the example's
        # seed-2 critical path), so each element's pair of copies has its own. The copies are
        # valid from latch + 2, before the first row's r is taken in latch + 3.
        latch = Signal(name="prep_latch")
        latched = pulse_copies(m, latch, d, name="prep_latched")
        recip = {}
        for name in divs:
            value = Signal(cfg.recip_bits, name=f"recip_{name}")
            with m.If(latch):
                m.d.sync += value.eq(divs[name].result.payload.quotient)
            recip[name] = replicated_register(m, value, latched, d, name=f"recip_{name}_copy")

        # Row issue: K row j when ``phase`` is 0, Q row j when it is 1; j also counted as
        # (lane, group) of the Q lanes and (lane, block) of the k4 lanes.
        j = Signal(range(Lmax + 1), name="prep_j")
        phase = Signal(name="prep_phase")
        qlane, qgroup = Signal(_bits(R), name="prep_qlane"), Signal(self.gbits, name="prep_qgroup")
        klane, kblock = (Signal(_bits(lanes), name="prep_klane"),
                         Signal(self.bbits, name="prep_kblock"))
        # Rows are issued in every cycle of the QUANT state, from a register of its own: decoded
        # from the state, the issue signal that drives every row counter was a critical path.
        issue = Signal(name="prep_issue")
        final = Signal(name="prep_final")                 # the last row's Q is issued
        # j is the sequence's last row: a register updated with j, so that the row count's
        # comparator is not in series with the issue register on the way to the state machine
        # (9.75 ns with ``j == length - 1`` decoded there).
        last_row = Signal(name="prep_last_row")
        kread = self.kmem.read_port(BRAM_READ_REGISTERS, "prep_k")
        qreads = [mem.read_port(BRAM_READ_REGISTERS, f"prep_q{u}")
                  for u, mem in enumerate(self.qmem)]
        m.d.comb += [kread.addr.eq(Cat(j[:self.jbits], pbank)), kread.en.eq(issue & ~phase),
                     final.eq(issue & phase & last_row)]
        for rd in qreads:
            m.d.comb += [rd.addr.eq(Cat(qgroup, pbank)), rd.en.eq(issue & phase)]
        with m.If(issue):
            m.d.sync += phase.eq(~phase)
            with m.If(phase):
                m.d.sync += [j.eq(j + 1), last_row.eq(j + 2 == length),
                             qlane.eq(Mux(qlane == R - 1, 0, qlane + 1)),
                             qgroup.eq(Mux(qlane == R - 1, qgroup + 1, qgroup)),
                             klane.eq(Mux(klane == lanes - 1, 0, klane + 1)),
                             kblock.eq(Mux(klane == lanes - 1, kblock + 1, kblock))]
        # The row counters restart in the DIVIDE_START cycle from a register of their own, set
        # on the way into that state: decoded from the state, their reset ran across the chip to
        # the k4 block counter beside the quantizer (10.8 ns, 9.4 of them routing).
        restart = Signal(name="prep_restart")
        m.d.sync += restart.eq(0)
        with m.If(restart):
            m.d.sync += [j.eq(0), phase.eq(0), qlane.eq(0), qgroup.eq(0), klane.eq(0),
                         kblock.eq(0)]

        done = Signal(name="prep_done")
        with m.FSM(name="prepare"):
            with m.State("IDLE"):
                with m.If(self.loaded.bit_select(pbank, 1)):
                    m.d.sync += [busy.eq(1), length.eq(Mux(pbank, self.bank_len[1],
                                                           self.bank_len[0]))]
                    for b in range(2):
                        with m.If(pbank == b):
                            m.d.sync += self.loaded[b].eq(0)
                    m.d.sync += restart.eq(not stages)
                    m.next = "MAX" if stages else "DIVIDE_START"
            if stages:
                with m.State("MAX"):
                    count = Signal(_bits(stages), name="prep_max_count")
                    m.d.sync += count.eq(count + 1)
                    with m.If(count == stages - 1):
                        m.d.sync += [count.eq(0), restart.eq(1)]
                        m.next = "DIVIDE_START"
            with m.State("DIVIDE_START"):
                m.d.comb += [div.request.valid.eq(1) for div in divs.values()]
                m.d.sync += last_row.eq(length == 1)
                m.next = "DIVIDE"
            with m.State("DIVIDE"):
                with m.If(divs["q"].result.valid):
                    m.d.comb += latch.eq(1)
                    m.d.sync += issue.eq(1)
                    m.next = "QUANT"
            with m.State("QUANT"):
                with m.If(final):
                    m.d.sync += issue.eq(0)
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                with m.If(done):
                    m.d.comb += toggle.eq(1)
                    m.d.sync += [busy.eq(0), pbank.eq(~pbank)]
                    for b in range(2):
                        with m.If(pbank == b):
                            m.d.sync += self.prepared[b].eq(1)
                    m.next = "IDLE"

        # Quantizer: issued in t, read data registered in t + 3, the row and its r registered
        # in t + 4 (r per element, from that element's reciprocal copies), x * r in t + 7 (a
        # DSP piece and a 10-bit LUT piece, whose partial products take two stages, then
        # their sum), rounded in t + 8, clamped in t + 9 and written in t + 9 (rounding and
        # clamping in one cycle was a critical path).
        meta = data.StructLayout({"valid": 1, "q": 1, "final": 1, "qlane": _bits(R),
                                  "qgroup": self.gbits, "klane": _bits(lanes),
                                  "kblock": self.bbits})
        at_issue = Signal(meta, name="quant_meta")
        m.d.comb += [at_issue.valid.eq(issue), at_issue.q.eq(phase), at_issue.final.eq(final),
                     at_issue.qlane.eq(qlane), at_issue.qgroup.eq(qgroup),
                     at_issue.klane.eq(klane), at_issue.kblock.eq(kblock)]
        at_read = delay(m, at_issue, 1 + BRAM_READ_REGISTERS, "quant_meta")
        # Whether the row read is a Q row, once per element: phase as it was when the row was
        # issued, kept by a register per element that follows phase's own recurrence (restart
        # clears it, an issue flips it) from the delayed restart and issue. One register
        # selecting all elements' rows and reciprocals, 560 multiplexers beside 16 DSPs, had
        # 9.5 ns of routing (the rows-2 head's seed 1 at 9dc1e0d with the fixes after it).
        # Each copy reads itself, so Yosys does not merge them.
        restart_at_read = delay(m, restart, 1 + BRAM_READ_REGISTERS, "quant_restart")
        is_q = [Signal(name=f"quant_is_q{c}") for c in range(d)]
        for sel in is_q:
            m.d.sync += sel.eq(Mux(restart_at_read, 0, sel ^ at_read.valid))
        x = Signal(_row(cfg, D), name="quant_x")
        r = [Signal(cfg.recip_bits, name=f"quant_r{c}") for c in range(d)]
        qrow = qreads[0].data
        for u in range(1, R):
            qrow = Mux(at_read.qlane == u, qreads[u].data, qrow)
        qrow = data.View(_row(cfg, D), qrow)
        for c in range(d):
            m.d.sync += [x[c].eq(Mux(is_q[c], qrow[c], kread.data[c])),
                         r[c].eq(Mux(is_q[c], recip["q"][c], recip["k"][c]))]
        prod = [pipelined_product(m, x[c], r[c], name=f"quant{c}", stages=PRODUCT_STAGES + 1)
                for c in range(d)]
        out = Signal(q4_row, name="quant_out")
        for c in range(d):
            rounded = Signal(signed(len(prod[c]) - S + 1), name=f"quant_rounded{c}")
            m.d.sync += [rounded.eq((prod[c] + (1 << (S - 1))) >> S),
                         out[c].eq(Mux(rounded > cfg.q_max, cfg.q_max,
                                       Mux(rounded < -cfg.q_max, -cfg.q_max, rounded)))]
        at_write = delay(m, at_read, cm.QUANT_LATENCY - 1 - BRAM_READ_REGISTERS, "quant_wmeta")
        m.d.comb += done.eq(at_write.valid & at_write.final)
        for u, mem in enumerate(self.q4mem):
            w = mem.write_port()
            m.d.comb += [w.addr.eq(Cat(at_write.qgroup, pbank)), w.data.eq(out),
                         w.en.eq(at_write.valid & at_write.q & (at_write.qlane == u))]
        # The k4 write is registered at each lane's blocks, one register set per lane copy: the
        # quantizer's output register driving the blocks of every lane across the chip had
        # 13.7 ns of routing (the rows-3 head's seed 1 at 02c8939, 69.3 MHz). The word lands a
        # cycle later, which no read sees: a K row is written a cycle before its Q row, so the
        # last K row lands in the cycle of the final Q write, before the bank is prepared. The
        # q4 writes stay direct (the final one is read as soon as the next cycle).
        for n, mem in enumerate(self.k4mem):
            w = mem.write_port(registered=True)
            m.d.comb += [w.addr.eq(Cat(at_write.kblock, pbank)), w.data.eq(out),
                         w.en.eq(at_write.valid & ~at_write.q & (at_write.klane == n))]

    # --- row groups --------------------------------------------------------------------------

    def _group_source(self, stages):
        """Hands out the row groups of the prepared banks in order, and chains the stages."""
        cfg, m = self.cfg, self.m
        R = cfg.rows
        cbank = Signal(name="group_bank")
        base = Signal(range(cfg.max_len + cfg.rows), name="group_base")
        group = Signal(self.gbits, name="group_addr")
        length = Signal(self.pos, name="group_len")
        m.d.comb += length.eq(Mux(cbank, self.bank_len[1], self.bank_len[0]))
        offer = Signal(self.token_layout, name="group_offer")
        rest = Signal(self.pos, name="group_rest")
        # Whether the offered group is the bank's last: a register computed a cycle ahead, for
        # the group after a take (the next one of the bank, or the other bank's first) or the
        # same group, so the take's next-state logic does not wait for the bank length's
        # multiplexer and subtraction (9.4 ns, the example's seed-1 critical path). A bank's
        # length is visible a cycle before the bank can be prepared at the earliest, so a new
        # length reaches this register before any take on that bank.
        last = Signal(name="group_last")
        other = Signal(self.pos, name="group_other_len")
        m.d.comb += [rest.eq(length - base), other.eq(Mux(cbank, self.bank_len[0],
                                                          self.bank_len[1])),
                     offer.bank.eq(cbank), offer.base.eq(base), offer.group.eq(group),
                     offer.length.eq(length), offer.last.eq(last),
                     offer.active.eq(Mux(rest <= R, rest, R))]
        valid = self.prepared.bit_select(cbank, 1)

        first = stages[0]
        m.d.sync += last.eq(Mux(first.take, Mux(last, other <= R, rest <= 2 * R), rest <= R))
        with m.If(first.take):
            m.d.sync += [base.eq(base + R), group.eq(group + 1)]
            with m.If(offer.last):
                m.d.sync += [base.eq(0), group.eq(0), cbank.eq(~cbank)]
                for b in range(2):
                    with m.If(cbank == b):
                        m.d.sync += self.prepared[b].eq(0)

        # The take chain: a stage takes the previous stage's finished group if it is idle and
        # empty, or if its own finished group is taken in the same cycle by a next stage that is
        # itself idle and empty (``simple``, from registers only). So the chain is two stages
        # long, not one per stage: a stage whose next stage takes while handing its own group on
        # takes one cycle later. The emit stage takes only when idle, so out.ready reaches no
        # other stage.
        incoming = [(valid, offer)] + [(st.full, st.token) for st in stages[:-1]]
        simple = [has & ~st.busy & ~st.full for (has, _), st in zip(incoming, stages)]
        for n, st in enumerate(stages):
            has, token = incoming[n]
            if n + 1 < len(stages):
                m.d.comb += st.take.eq(has & ~st.busy & (~st.full | simple[n + 1]))
            else:
                m.d.comb += st.take.eq(has & ~st.busy)
            with m.If(st.take):
                m.d.sync += [st.busy.eq(1), st.token.eq(token)]
                if n > 0:
                    m.d.sync += stages[n - 1].full.eq(0)
            with m.If(st.done):
                m.d.sync += [st.busy.eq(0)]
                if n + 1 < len(stages):
                    m.d.sync += st.full.eq(1)
        self.offer = offer

    def _incoming(self, name):
        """The token a stage takes: the previous stage's (or the group source's)."""
        names = list(self.stages)
        n = names.index(name)
        return self.offer if n == 0 else self.stages[names[n - 1]].token

    def _estimate(self):
        """The estimate stage: ``lanes`` estimated scores per cycle per unit into each unit's
        top-k."""
        cfg, m = self.cfg, self.m
        d, R, lanes = cfg.head_dim, cfg.rows, cfg.lanes
        st = self.stages["estimate"]
        tok = st.token
        first = Signal(name="estimate_first")
        m.d.sync += first.eq(st.take)
        # Block issue: block b (keys b*lanes ...) in cycle take + 1 + b.
        issuing, pos, block = (Signal(name="estimate_issuing"),
                               Signal(range(cfg.max_len + lanes), name="estimate_pos"),
                               Signal(self.bbits, name="estimate_block"))
        with m.If(st.take):
            m.d.sync += [issuing.eq(1), pos.eq(0), block.eq(0)]
        rest = Signal(self.pos, name="estimate_rest")
        m.d.comb += rest.eq(tok.length - pos)
        # The issued block's beat, with the group's active units: it travels with the data, so
        # the stage can take its next group while the dot products drain.
        beat = Signal(data.StructLayout({"valid": 1, "count": range(lanes + 1), "last": 1,
                                         "active": range(R + 1)}), name="estimate_issue")
        m.d.comb += [beat.valid.eq(issuing), beat.last.eq(rest <= lanes),
                     beat.count.eq(Mux(rest <= lanes, rest, lanes)), beat.active.eq(tok.active)]
        with m.If(issuing):
            m.d.sync += [pos.eq(pos + lanes), block.eq(block + 1)]
            with m.If(beat.last):
                m.d.sync += issuing.eq(0)
        # The k4 rows are block RAM read a cycle ahead of the issue, through the block's output
        # register and one in the fabric near the estimate logic (data in t + 2 for the block
        # issued in t). Read every cycle: block 0 of the offered group's bank while not issuing
        # (so in the take's cycle), the next block while issuing. As LUT RAM, Yosys made the
        # read address a register whose net to every lane's memory had 7 ns of routing; from
        # the block's own register alone, the data had 6.7 ns of routing to the row units.
        # Each lane's read address is a register of its own, loaded with the next cycle's
        # address: one address computed from the block counter and routed to every lane's
        # blocks had 8.5 ns of routing (the rows-2 head's seed 2 at 3dd524f, 96.6 MHz). The
        # address after a take is block 1 of the taken group's bank, after an issue that is not
        # the last the block after next; after the last issue it is block 0 of the offered
        # bank, which only a take changes, so otherwise the address holds. Holding reads the
        # register itself, so Yosys does not merge the copies.
        incoming = self._incoming("estimate")
        k4 = [mem.read_port(2, f"estimate_k4_{n}") for n, mem in enumerate(self.k4mem)]
        for n, rd in enumerate(k4):
            addr = Signal.like(rd.addr, name=f"estimate_k4_addr{n}")
            with m.If(st.take):
                m.d.sync += addr.eq(Cat(Const(1, self.bbits), incoming.bank))
            with m.Elif(issuing & ~beat.last):
                m.d.sync += addr.eq(Cat((block + 2)[:self.bbits], tok.bank))
            with m.Elif(issuing):
                m.d.sync += addr.eq(Cat(Const(0, self.bbits), incoming.bank))
            m.d.comb += [rd.addr.eq(addr), rd.en.eq(1)]
        # Each unit's q4 row, read at the take (from the block's output register in take + 2),
        # into one register copy per lane (valid from take + 3): one register feeding all
        # ``lanes`` products of an element had 4 ns of routing to them (the example's critical
        # path at 103.5 MHz), and a block RAM without its output register feeding the copies
        # 9.7 ns. The block reads every cycle and only the copies load: the take as its read
        # enable had 4.8 ns of routing to the block (9.5 ns, the rows-2 head's seed 1). Each
        # copy loads from its own pulse register (a take is never followed by another in the
        # next cycle): one load register for all copies, 1024 enables at rows 2, had 10.9 ns
        # of routing (the rows-2 head's seed 1 at 9dc1e0d, 84.5 MHz).
        load_q4 = pulse_copies(m, first, R * lanes, name="estimate_q4_load")
        q4 = []
        for u, mem in enumerate(self.q4mem):
            rd = mem.read_port(1, f"estimate_q4_{u}")
            m.d.comb += [rd.addr.eq(Cat(incoming.group, incoming.bank)), rd.en.eq(1)]
            copies = replicated_register(m, rd.data, load_q4[u * lanes:(u + 1) * lanes], lanes,
                                         name=f"q4_{u}_lane")
            q4.append([data.View(rd.data.shape(), copy) for copy in copies])

        # The dot products of q4 and k4 rows in LUTs, bit plane by bit plane: the AND gates and
        # two adder levels registered in t + 3, then two levels per register; each dot
        # product's last register is the top-k input.
        latency = cm.estimate_latency(cfg)
        at_tree = delay(m, beat, latency, "estimate_beat")
        margin = cfg.margin if cfg.mask == "threshold" else None
        for u in range(R):
            extra = {"margin": margin} if margin is not None else {}
            topk = TopK(cfg.topk, signed(cfg.est_score_bits), lanes, cfg.max_len, **extra)
            m.submodules[f"topk{u}"] = topk
            self.units[u]["selected"] = topk.selected
            for ln in range(lanes):
                value, stages = pipelined_dot_product(
                    m, [q4[u][ln][c] for c in range(d)], [k4[ln].data[c] for c in range(d)],
                    name=f"est_u{u}_l{ln}")
                assert 2 + stages == latency
                m.d.comb += topk.items.payload.values[ln].eq(value)
            m.d.comb += [topk.items.valid.eq(at_tree.valid & (u < at_tree.active)),
                         topk.items.payload.count.eq(at_tree.count),
                         topk.items.payload.last.eq(at_tree.last)]
        # The stage ends with its last issue; the next group's first k4 and q4 reads come after
        # it, and the q4 copies load in its take + 2, after the last block's products took
        # them (in the last issue + 2). The top-k units never hold a beat back: a group enters
        # the estimate stage only when the queue stage takes the one before, so once the select
        # stage has taken the group two before, whose results are then complete; at most three
        # sets are in a unit (one streaming in, two in its ring, capture, pair or emitter
        # stages), and its ring stalls only with a fourth (:class:`hwgen.hdl.topk.TopK`).
        m.d.comb += st.done.eq(beat.valid & beat.last)

    def _queue(self):
        """The queue stage (estimated masks): holds a group whose estimates are issued until the
        select stage takes it, so that the estimate stage can issue the group after it
        meanwhile: with the select stage waiting for a set's results (the dot products, the top-k
        unit's pipeline and ``k`` results after its last block), the estimate stage would
        otherwise wait too, and 4 lanes would cost 20.5 cycles per group at L = 64 instead of
        the 17 of the exact stage. Done in the cycle after its take."""
        st = self.stages["queue"]
        self.m.d.comb += st.done.eq(st.busy)

    def _select(self):
        """The select stage (estimated masks): each unit's top-k results into its index buffer.

        The top-k units hand a set off and emit it on their own schedule
        (:class:`hwgen.hdl.topk.TopK`, ``selected.ready`` always high), so the capture runs
        always: result ``i`` of a set goes to entry ``i`` of the unit's next index-buffer bank, and
        the set's count is kept per bank. With :data:`INDEX_BANKS` (four) banks, a set is
        captured into the bank of the group four back, which the exact stage has finished
        reading: between them are at most the exact stage's group (three back), the select
        stage's and the queue stage's. (Three banks would do as well, only because the exact
        stage reads entry ``i`` in its take + 1 + ``i`` while the set of the group three after
        it writes entry ``i`` at least the estimate and top-k latencies later; four cost no more
        memory, as the depth is a power of two anyway, and make the bank counters wrap by
        themselves.) The stage itself finishes a group in the first cycle, from its take on, in
        which every active unit has a complete set: it claims the sets (bank and count) for the
        exact stage.
        """
        cfg, m = self.cfg, self.m
        st = self.stages["select"]
        incoming = self._incoming("select")
        sel_depth = max(cfg.max_selected, 2)
        sbits = _bits(sel_depth)
        ready = Const(1, 1)
        for u, unit in enumerate(self.units):
            sel = unit["selected"]
            m.d.comb += sel.ready.eq(1)
            ibuf = memory.Memory(shape=self.jbits, depth=INDEX_BANKS << sbits, init=[])
            m.submodules[f"indexbuf{u}"] = ibuf
            unit["ibuf"] = ibuf
            wbank, wcount = Signal(2, name=f"select{u}_wbank"), Signal(range(sel_depth + 1),
                                                                       name=f"select{u}_wcount")
            counts = [Signal(range(sel_depth + 1), name=f"select{u}_count{b}")
                      for b in range(INDEX_BANKS)]
            complete = Signal(range(INDEX_BANKS), name=f"select{u}_complete")
            w = ibuf.write_port()
            moved = sel.valid & sel.ready
            m.d.comb += [w.addr.eq(Cat(wcount[:sbits], wbank)), w.data.eq(sel.payload.index),
                         w.en.eq(moved)]
            ended = moved & sel.payload.last
            with m.If(moved):
                m.d.sync += wcount.eq(wcount + 1)
                with m.If(sel.payload.last):
                    m.d.sync += [wcount.eq(0), wbank.eq(wbank + 1)]
                    for b in range(INDEX_BANKS):
                        with m.If(wbank == b):
                            m.d.sync += counts[b].eq(wcount + 1)
            active = Signal(name=f"select{u}_active")
            with m.If(st.take):
                m.d.sync += active.eq(u < incoming.active)
            ready = ready & (~active | (complete != 0))
            unit["sel_active"], unit["sel_complete"], unit["sel_counts"] = active, complete, \
                counts
            unit["sel_ended"] = ended
        m.d.comb += st.done.eq(st.busy & ready)
        for u, unit in enumerate(self.units):
            claim = st.done & unit["sel_active"]
            complete = unit["sel_complete"]
            m.d.sync += complete.eq(complete + unit["sel_ended"] - claim)
            rbank = Signal(2, name=f"select{u}_rbank")
            bank, count = Signal(2, name=f"select{u}_bank"), Signal(range(sel_depth + 1),
                                                                    name=f"select{u}_n")
            with m.If(st.done):
                m.d.sync += [bank.eq(rbank), count.eq(0)]
                with m.If(claim):
                    m.d.sync += rbank.eq(rbank + 1)
                    for b in range(INDEX_BANKS):
                        with m.If(rbank == b):
                            m.d.sync += count.eq(unit["sel_counts"][b])
            unit["sel_bank"], unit["sel_n"] = bank, count

    def _window_keys(self):
        """``window`` / ``dense``: per unit, its key count and the key of each pass index.

        Query i selects the global keys ``[0, g)`` and then ``[lo, hi]`` with
        ``lo = max(g, i - window)`` and ``hi = min(L - 1, i + window)``; a global row (i < g)
        and every ``dense`` row select ``[0, L)`` (``lo = 0`` and no separate globals). The two
        ranges never overlap, so key ``t`` of the row is ``t`` for ``t < g`` and
        ``lo + t - g`` after. Returns ``(counts, key_of)``: per-unit count registers loaded at
        the exact stage's take and a function of the pass index giving the key (combinational).
        """
        cfg, m = self.cfg, self.m
        g, w = (cfg.global_tokens, cfg.window) if cfg.mask == "window" else (0, 0)
        st = self.stages["exact"]
        incoming = self._incoming("exact")
        length = incoming.length
        counts, key_of = [], []
        for u in range(cfg.rows):
            query = Signal(range(cfg.max_len + cfg.rows), name=f"window{u}_query")
            m.d.comb += query.eq(incoming.base + u)
            if cfg.mask == "dense":
                lo_next, hi_next, glob_next = 0, length - 1, 0
            else:
                everything = query < g
                lo_next = Mux(everything, 0, Mux(query < g + w, g, query - w))
                hi_next = Mux(everything | (query + w >= length - 1), length - 1, query + w)
                glob_next = Mux(everything, 0, g)
            # Computed from the group source's offer into registers every cycle, and loaded
            # from those at the take: the offer changes only at this stage's take (which keeps
            # the stage busy for at least its latency) or, for a bank being loaded, at least a
            # cycle before the bank is offered, so the registers hold the group's values at its
            # take. Computed at the take, the count was a critical path (9.5-10.1 ns).
            ahead = [Signal(self.jbits, name=f"window{u}_lo_next"),
                     Signal(range(max(g + 1, 2)), name=f"window{u}_globals_next"),
                     Signal(range(cfg.max_len + 1), name=f"window{u}_count_next")]
            m.d.sync += [ahead[0].eq(lo_next), ahead[1].eq(glob_next),
                         ahead[2].eq(Mux(u < incoming.active, glob_next + hi_next - lo_next + 1,
                                         0))]
            lo = Signal(self.jbits, name=f"window{u}_lo")
            glob = Signal(range(max(g + 1, 2)), name=f"window{u}_globals")
            count = Signal(range(cfg.max_len + 1), name=f"window{u}_count")
            with m.If(st.take):
                m.d.sync += [lo.eq(ahead[0]), glob.eq(ahead[1]), count.eq(ahead[2])]
            counts.append(count)
            key_of.append(lambda t, lo=lo, glob=glob: Mux(t < glob, t, lo + t - glob))
        return counts, key_of

    def _exact(self):
        """The exact stage: per unit, the exact scores of its selected keys into its row buffer,
        one key per cycle: the key in t + 1 (index buffer read port, or counter), K row and Q row
        registered in t + 3, products in t + 5, then the adder tree. The index buffer's read
        data only addresses the K memory, so it needs no register of its own."""
        cfg, m = self.cfg, self.m
        d = cfg.head_dim
        st = self.stages["exact"]
        tok = st.token
        sel_depth = max(cfg.max_selected, 2)
        self.sbits = _bits(sel_depth)

        # Row-buffer bank of the group: four banks, one per stage from exact to weighted sum.
        rb_next, rb = Signal(2, name="rowbuf_next"), Signal(2, name="exact_rb")
        with m.If(st.take):
            m.d.sync += [rb_next.eq(rb_next + 1), rb.eq(rb_next)]
        self.rb_of = {"exact": rb}
        if cfg.estimated:
            counts, banks = [], []
            for u, unit in enumerate(self.units):
                count, bank = Signal.like(unit["sel_n"]), Signal(2, name=f"exact{u}_ibank")
                with m.If(st.take):
                    m.d.sync += [count.eq(unit["sel_n"]), bank.eq(unit["sel_bank"])]
                counts.append(count)
                banks.append(bank)
        else:
            counts, key_of = self._window_keys()
        index, valid, ending = self._pass("exact", counts)
        latency = cm.exact_latency(cfg)
        m.d.comb += st.done.eq(delay(m, ending, latency, "exact_ending"))

        first = Signal(name="exact_first")
        m.d.sync += first.eq(st.take)
        for u, unit in enumerate(self.units):
            if cfg.estimated:
                rd = unit["ibuf"].read_port()                                  # t + 1
                m.d.comb += [rd.addr.eq(Cat(index[:self.sbits], banks[u])), rd.en.eq(1)]
                key = rd.data
            else:
                key = delay(m, key_of[u](index)[:self.jbits], 1, f"exact{u}_key")
            key_valid = delay(m, valid[u], 1, f"exact{u}_kvalid")
            # The K and Q rows go from the block's output register straight into the DSPs'
            # input registers (the products' first stage): a fabric register between them was
            # as far from the DSP column as the DSP's output from the adder tree.
            kread = self.kmem.read_port(BRAM_READ_REGISTERS - 1, f"exact{u}_k")  # t + 3
            m.d.comb += [kread.addr.eq(Cat(key, tok.bank)), kread.en.eq(key_valid)]
            qread = self.qmem[u].read_port(BRAM_READ_REGISTERS - 1, f"exact{u}_q")
            m.d.comb += [qread.addr.eq(Cat(tok.group, tok.bank)), qread.en.eq(first)]
            prods = [pipelined_product(m, kread.data[c], qread.data[c],          # t + 6
                                       name=f"exact{u}_p{c}", stages=PRODUCT_STAGES + 1)
                     for c in range(d)]
            score, stages = pipelined_tree(m, prods, name=f"exact{u}_tree")
            assert 2 + BRAM_READ_REGISTERS + PRODUCT_STAGES + stages == latency
            wvalid = delay(m, key_valid, latency - 1, f"exact{u}_valid")
            wkey = delay(m, key, latency - 1, f"exact{u}_wkey")

            # Row buffer: (key, score) written here, exp by the softmax stage.
            js = memory.Memory(shape=data.StructLayout({"j": self.jbits,
                                                        "s": signed(cfg.score_bits)}),
                               depth=4 << self.sbits, init=[])
            ex = memory.Memory(shape=unsigned(cfg.exp_value_bits), depth=4 << self.sbits,
                               init=[])
            m.submodules[f"rowbuf{u}"], m.submodules[f"rowexp{u}"] = js, ex
            unit["js"], unit["exp"] = js, ex
            row_max = Signal(signed(cfg.score_bits), name=f"exact{u}_max")
            windex = delay(m, index, latency, f"exact{u}_windex")
            w = js.write_port()
            m.d.comb += [w.addr.eq(Cat(windex[:self.sbits], rb)), w.data.j.eq(wkey),
                         w.data.s.eq(score), w.en.eq(wvalid)]
            # The row max a cycle behind the writes, from a copy of the score placed beside it
            # (from the tree's register, the comparator into the max register's enable was a
            # critical path: 11.1 ns, 8.9 of them routing). The group's first score starts it,
            # so the last is in it from done + 2; the softmax stage loads it a cycle after its
            # take, which comes after done, and the next group's first score comes long after.
            late = delay(m, Cat(score, wvalid, windex == 0), 1, f"exact{u}_late")
            late_score, late_valid, late_first = (late[:len(score)].as_signed(),
                                                  late[len(score)], late[len(score) + 1])
            with m.If(late_valid):
                m.d.sync += row_max.eq(Mux(late_first, late_score,
                                           maximum(row_max, late_score)))
            unit["count"], unit["row_max"] = counts[u], row_max

    def _pass(self, name, counts):
        """Issue of a stage that visits each unit's keys 0..n_u - 1 in step, from the cycle after
        the take: returns (index, per-unit valid, ending) where ``ending`` marks the last issue
        (of the largest count)."""
        m = self.m
        st = self.stages[name]
        issuing = Signal(name=f"{name}_issuing")
        index = Signal(range(max(self.cfg.max_selected, 2) + 1), name=f"{name}_index")
        with m.If(st.take):
            m.d.sync += [issuing.eq(1), index.eq(0)]
        valid = [issuing & (index < n) for n in counts]
        more = Const(0, 1)
        for n in counts:
            more = more | (index + 1 < n)
        ending = Signal(name=f"{name}_ending")
        m.d.comb += ending.eq(issuing & ~more)
        with m.If(issuing):
            m.d.sync += index.eq(index + 1)
            with m.If(ending):
                m.d.sync += issuing.eq(0)
        return index, valid, ending

    def _hand_over(self, src, dst, **values):
        """Registers of stage ``dst`` loaded at its take from stage ``src``'s per-unit values
        (``name=[value per unit]``), and the group's row-buffer bank: ``{name: [register per
        unit]}``."""
        m = self.m
        take = self.stages[dst].take
        regs = {}
        for field, per_unit in values.items():
            regs[field] = []
            for u, value in enumerate(per_unit):
                reg = Signal(value.shape(), name=f"{dst}{u}_{field}")
                with m.If(take):
                    m.d.sync += reg.eq(value)
                regs[field].append(reg)
        rb = Signal(2, name=f"{dst}_rb")
        with m.If(take):
            m.d.sync += rb.eq(self.rb_of[src])
        self.rb_of[dst] = rb
        return regs

    def _softmax(self):
        """The softmax stage: z, z * C_mult, the exp table and the shift, one key per cycle per
        unit.

        ``z`` goes into the product unsaturated: its top bits above a DSP's 17 are a LUT piece
        (:func:`hwgen.hdl.pipeline.pipelined_product`), and a large ``z`` gives an exponent past
        ``exp_bits``, whose exp the shift step makes 0, as the golden model's does."""
        cfg, m = self.cfg, self.m
        st = self.stages["softmax"]
        regs = self._hand_over("exact", "softmax", count=[u["count"] for u in self.units])
        counts = regs["count"]
        # The row maxes are complete a cycle after the exact stage's done (see _exact), so they
        # load a cycle after the take (from a register, not the take chain); z needs them from
        # take + 3.
        load_max = delay(m, st.take, 1, "softmax_max_load")
        maxes = []
        for u, unit in enumerate(self.units):
            reg = Signal.like(unit["row_max"], name=f"softmax{u}_row_max")
            with m.If(load_max):
                m.d.sync += reg.eq(unit["row_max"])
            maxes.append(reg)
        rb = self.rb_of["softmax"]
        index, valid, ending = self._pass("softmax", counts)
        latency = cm.SOFTMAX_LATENCY
        m.d.comb += st.done.eq(delay(m, ending, latency, "softmax_ending"))

        F, eb = cfg.exp_frac_bits, cfg.exp_bits
        for u, unit in enumerate(self.units):
            rd = _Read(m, unit["js"], f"softmax{u}_s")                   # t + 2
            m.d.comb += [rd.addr.eq(Cat(index[:self.sbits], rb)), rd.en.eq(1)]
            z = Signal(cfg.z_bits, name=f"softmax{u}_z")
            m.d.sync += z.eq(maxes[u] - rd.data.s)                       # t + 3
            e = pipelined_product(m, z, Const(cfg.exp_mult, 16),         # t + 5
                                  name=f"softmax{u}_e")
            expo = e >> cfg.exp_shift
            lut = memory.Memory(shape=unsigned(cfg.exp_value_bits), depth=cfg.lut_size,
                                init=[int(v) for v in cfg.exp_lut])
            m.submodules[f"exp_lut{u}"] = lut
            lrd = lut.read_port()
            m.d.comb += [lrd.addr.eq(expo[:F]), lrd.en.eq(1)]                 # data in t + 6
            ei = Signal(range(eb + 2), name=f"softmax{u}_ei")
            m.d.sync += ei.eq(Mux((expo >> F) > eb, eb + 1, expo >> F))      # t + 6
            exp = Signal(cfg.exp_value_bits, name=f"softmax{u}_exp")
            m.d.sync += exp.eq(Mux(ei > eb, 0, lrd.data >> ei))               # t + 7
            wvalid = delay(m, valid[u], latency, f"softmax{u}_valid")
            windex = delay(m, index, latency, f"softmax{u}_windex")
            w = unit["exp"].write_port()
            m.d.comb += [w.addr.eq(Cat(windex[:self.sbits], rb)), w.data.eq(exp),
                         w.en.eq(wvalid)]
            row_sum = Signal(cfg.sum_bits, name=f"softmax{u}_sum")
            with m.If(st.take):
                m.d.sync += row_sum.eq(0)
            with m.If(wvalid):
                m.d.sync += row_sum.eq(row_sum + exp)
            unit["sm_count"], unit["row_sum"] = counts[u], row_sum

    def _divide(self):
        """The divide stage: each unit's row reciprocal floor(2**RS / sum) on a sequential
        divider, two quotient bits per cycle (the stage would otherwise bound a group at about
        22 cycles).

        The quotient fits row_recip_bits (sum >= 2**exp_bits), so the divider takes 2**RS as
        high * 2**row_recip_bits + 0 with high = 2**(RS - row_recip_bits) < 2**exp_bits <= sum
        and needs row_recip_bits steps, not RS + 1.

        ``result.ready`` is held high: the result transfers in the cycle it is valid (the
        stage's done) and the divider holds the quotient until its next request, which comes
        only after the next take of this stage, so the weighted sum reads it at its own take.
        With ``ready = wsum take`` the take chain ran on through the divider's request
        acceptance into its busy flag, a critical path (10.0 ns) of the threshold mask.
        """
        cfg, m = self.cfg, self.m
        st = self.stages["divide"]
        regs = self._hand_over("softmax", "divide", count=[u["sm_count"] for u in self.units],
                               row_sum=[u["row_sum"] for u in self.units])
        counts, sums = regs["count"], regs["row_sum"]
        request = Signal(name="divide_request")
        m.d.sync += request.eq(st.take)
        rr_bits = cfg.row_recip_bits
        for u, unit in enumerate(self.units):
            div = SequentialDivider(rr_bits, cfg.sum_bits, wide=True, bits_per_step=2)
            m.submodules[f"row_div{u}"] = div
            assert div.latency + 1 == cm.divide_cycles(cfg)
            m.d.comb += [div.request.valid.eq(request),
                         div.request.payload.dividend.eq(0),
                         div.request.payload.high.eq(1 << (cfg.row_recip_shift - rr_bits)),
                         div.request.payload.divisor.eq(sums[u]),
                         div.result.ready.eq(1)]
            unit["div"], unit["dv_count"] = div, counts[u]
        m.d.comb += st.done.eq(st.busy & self.units[0]["div"].result.valid
                               & ~st.full)

    def _weighted_sum(self):
        """The weighted-sum stage: p = (exp * rr) >> (RS - prob_bits) and d multiply-accumulates
        per key."""
        cfg, m = self.cfg, self.m
        d = cfg.head_dim
        st = self.stages["wsum"]
        tok = st.token
        regs = self._hand_over("divide", "wsum", count=[u["dv_count"] for u in self.units],
                               recip=[u["div"].result.payload.quotient for u in self.units])
        counts, recips = regs["count"], regs["recip"]
        rb = self.rb_of["wsum"]
        index, valid, ending = self._pass("wsum", counts)
        latency = cm.WSUM_LATENCY
        m.d.comb += st.done.eq(delay(m, ending, latency, "wsum_ending"))
        with m.If(st.done & tok.last):
            m.d.comb += self.release.eq(Mux(tok.bank, 0b10, 0b01))
        sh = cfg.row_recip_shift - cfg.prob_bits
        for u, unit in enumerate(self.units):
            jr, er = _Read(m, unit["js"], f"wsum{u}_j"), _Read(m, unit["exp"], f"wsum{u}_e")
            m.d.comb += [jr.addr.eq(Cat(index[:self.sbits], rb)), jr.en.eq(1),   # t + 2
                         er.addr.eq(Cat(index[:self.sbits], rb)), er.en.eq(1)]
            # V from the block's output register and p from its product's register go straight
            # into the DSPs' input registers (the products' first stage), as in the exact stage.
            vread = self.vmem.read_port(BRAM_READ_REGISTERS - 1, f"wsum{u}_v")  # data in t + 4
            m.d.comb += [vread.addr.eq(Cat(jr.data.j, tok.bank)), vread.en.eq(1)]
            prob_full = pipelined_product(m, er.data, recips[u], name=f"wsum{u}_pr")  # t + 4
            prob = (prob_full >> sh)[:cfg.prob_value_bits]
            prods = [pipelined_product(m, prob, vread.data[c], name=f"wsum{u}_p{c}",  # t + 7
                                       stages=PRODUCT_STAGES + 1) for c in range(d)]
            acc_valid = delay(m, valid[u], latency - 1, f"wsum{u}_valid")     # t + 7
            acc = [Signal(signed(cfg.acc_bits), name=f"wsum{u}_acc{c}") for c in range(d)]
            # The sums clear one cycle after the take, from a register of this unit's own: the
            # take is decoded from the stage handshake, and fanned out to every accumulator bit
            # it was the critical path. The group's first product arrives seven cycles later.
            clear = Signal(name=f"wsum{u}_clear")
            m.d.sync += clear.eq(st.take)
            with m.If(clear):
                m.d.sync += [a.eq(0) for a in acc]
            with m.Elif(acc_valid):
                m.d.sync += [acc[c].eq(acc[c] + prods[c]) for c in range(d)]
            res = Signal(_row(cfg, cfg.out_bits), name=f"wsum{u}_res")
            m.d.sync += [res[c].eq(self._requantize(acc[c])) for c in range(d)]
            unit["res"] = res

    def _emit(self):
        """The emit stage: the group's results into the output registers, one row per beat."""
        cfg, m = self.cfg, self.m
        st = self.stages["emit"]
        tok = st.token
        R = cfg.rows
        rows = [Signal(_row(cfg, cfg.out_bits), name=f"out_row{u}") for u in range(R)]
        ptr = Signal(_bits(R), name="emit_ptr")
        with m.If(st.take):
            m.d.sync += [rows[u].eq(self.units[u]["res"]) for u in range(R)]
            m.d.sync += [ptr.eq(0), self.out.valid.eq(1)]
        payload = rows[0]
        for u in range(1, R):
            payload = Mux(ptr == u, rows[u], payload)
        final = ptr == tok.active - 1
        m.d.comb += [self.out.payload.o.eq(payload), self.out.payload.last.eq(tok.last & final)]
        moved = self.out.valid & self.out.ready
        with m.If(moved):
            m.d.sync += ptr.eq(ptr + 1)
            with m.If(final):
                m.d.sync += self.out.valid.eq(0)
        m.d.comb += st.done.eq(moved & final)

    def _requantize(self, acc):
        cfg = self.cfg
        if cfg.rounding == "half_up":
            acc = acc + (1 << (cfg.prob_bits - 1))
        return overflow(acc >> cfg.prob_bits, cfg.out_bits, cfg.out_overflow)
