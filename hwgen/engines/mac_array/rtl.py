"""Weight-stationary systolic MAC array (docs/architecture.md §4.1) in Amaranth.

Microarchitecture
-----------------
The whole datapath is one pipeline with a single advance enable ``en``: every register moves
one step in a cycle with ``en``, with or without new input (an empty step carries zero
activations and a cleared valid bit), and freezes in a cycle without (a global stall). ``en`` is
a register, ``~stall`` of the cycle before: a result offered and not taken (``stall``) goes into
a skid register at the output while the pipeline takes that one more step, and the pipeline
stays frozen while the skid register holds it (the output offers the skid register's beat
first). So a stalled cycle t freezes the pipeline in cycle t + 1, and no combinational path runs
from ``results.ready`` into the datapath's clock enables. With ready held high the array accepts
one activation row per cycle, so steady state is R * C * N multiply-accumulates per cycle.

For input row b entering the input register at step t, with P = ``cfg.pe_stages`` (2, or 3
with N > 1 products per PE)::

    input register      row b at t                      (K = R*M activations, valid, last)
    skew, row r         r registers                     row r's M activations at t + r
    PE (r, c)  a_left   (input from the left)           row b at T = t + r + c
               sel      a_left[idx[j]], per j           row b at T + 1
                        (dense: a_left[0])
               prod     w[j] * sel[j], per j            row b at T + 2
               prod_sum sum_j prod[j]   (N > 1 only)    row b at T + 3
               psum     psum_above + sum_j prod[j]      row b at T + P + 1
                        (N > 1: psum_above + prod_sum)
               a        a_left, passed right (c < C-1)  row b at T + 1
    deskew, column c    C-1-c registers                 all columns at t + R + C - 1 + P
    result register     = deskew output                 valid at t + cfg.latency

Every PE adds the same P stages, so the partial sum from above (which left PE (r-1, c) at
T - 1 + P + 1) meets this PE's products in the same step, as in the unpipelined array. The
operand and product registers put the multiplier between two registers of its own, and keep
the N:M activation mux and the accumulate carry chain in other cycles::

    sel[j]  <= a_left[idx[j]]           (dense: a_left[0])      the DSP's A input register
    w[j]    <= next_w[j] at a tile's first row (see below)      the DSP's B input register
    prod[j] <= w[j] * sel[j]                                    the DSP's output register
    psum    <= overflow(psum_above + prod[0], acc_bits)         (N = 1)

    prod_sum <= sum_j prod[j]                                   (N > 1: a fabric register)
    psum     <= overflow(psum_above + prod_sum, acc_bits)
    a       <= a_left

Product j of PE (r, c) is a :class:`hwgen.hdl.dsp.RegisteredProduct` with input registers,
``pe_r{r}_c{c}_mul{j}``: ``sel[j]``, ``w[j]`` and ``prod[j]`` are its ``a_reg``, ``b_reg`` and
``p``. Its ``en`` is the pipeline's advance enable, its ``b_en`` the weight copy. Elaborated for
ECP5 it is a ``MULT18X18D`` with all three registers on (``CE0`` = ``en``, ``CE1`` = the copy),
so no part of a PE's product is in the fabric: the routing into the DSP column and out of it
each get a whole cycle, and the active weights cost no fabric flip-flops. Every operand fits the
DSP's inputs (18 bits signed or 17 unsigned; weights and activations have at most 16 bits), so
no configuration falls back to a fabric product. Elaborated generically (simulation, lint,
iCE40, other vendors' tools) it is ``a * b`` between Amaranth registers, with the same values
in the same cycles.

With shift PEs (``cfg.shift_pe``: ``weight_set = "pow2"``) product j is a
:class:`hwgen.hdl.shift.ShiftProduct` instead, with the same three registers, names, clock
enables and cycles: ``w[j]`` and ``next_w[j]`` hold the weight's shift code (shift amount, sign,
nonzero flag), which the weight port's decode table gives instead of the value, and the product
is ``±(sel[j] << shift)`` or 0, in fabric on every target, so the array uses no DSP block.

A valid/last shift register runs beside the datapath so ``results.valid`` marks real rows.

Double-buffered weights
-----------------------
Every PE holds two weight sets: the *active* ``w[j]`` (and ``idx[j]``) its multipliers and select
muxes read, and the *next* ``next_w[j]`` (``next_idx[j]``) that weight beat r writes for PE row r
while the current tile streams. A ``first`` chain runs beside the valid bit: ``first[p]`` is set
while a tile's first activation row is p steps past the input register. As that row moves into a
stage that reads weights, the PE copies its next set into the active one in the same step::

    idx[j] <= next_idx[j]   as the first row enters a_left            (leaves step r + c - 1)
    w[j]   <= next_w[j]     as it enters sel, the multiplier's other
                            input register                            (leaves step r + c)

(step -1 is the row's transfer), so the old tile's last row, one step ahead, still meets the old
weights and the new tile's first row the new ones, in every PE, whatever the gaps and stalls: the
copy waits for ``en`` like the row. The multipliers read a register, never a bank-select mux.

Control: ``load_at`` (one-hot) is the next weight beat's PE row; after beat R - 1 the next set holds a whole tile
(``loaded``). An activation row is accepted while a tile is streaming, or, as a tile's first row,
once ``loaded``; that launch clears ``loaded``. Weight beat r of the tile after that waits
(``weights.ready`` low) while ``loaded`` or while a ``first`` bit is still at or before step
r + C - 1, which triggers the last copy of next-set row r (PE (r, C-1)'s weights): writing it
earlier would change the weights of a PE that has not copied them yet. With every input valid and
the output ready, beat r of tile i + 1 transfers C + 1 + r cycles after tile i's first row, so a
tile of at least R + C + 1 rows (``cfg.hide_rows``) hides the next tile's load completely and
tiles stream back to back (``golden.cycle_model``).
"""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.hdl.arith import overflow
from hwgen.hdl.dsp import registered_product
from hwgen.hdl.perf import PerfCounters, PerfSignature
from hwgen.hdl.pipeline import register_copies
from hwgen.hdl.shift import code_layout, shift_product
from hwgen.hdl.shift import encode as encode_shift

from .config import MacArrayConfig

__all__ = ["MacArray", "weight_layout", "act_layout", "result_layout"]


def weight_layout(cfg: MacArrayConfig) -> data.StructLayout:
    """One weight beat: PE row r's weights, element ``c * N + j`` for column c, nonzero j.

    With a weight set (``cfg.codebook``) the field is ``code``, the ``cfg.code_bits``-bit index
    of each weight in the codebook; otherwise ``w``, the weight itself.
    """
    if cfg.codebook is None:
        fields = {"w": data.ArrayLayout(signed(cfg.weight_bits), cfg.cols * cfg.n)}
    else:
        fields = {"code": data.ArrayLayout(unsigned(cfg.code_bits), cfg.cols * cfg.n)}
    if cfg.idx_bits:
        fields["idx"] = data.ArrayLayout(unsigned(cfg.idx_bits), cfg.cols * cfg.n)
    return data.StructLayout(fields)


def act_shape(cfg: MacArrayConfig):
    return signed(cfg.act_bits) if cfg.act_signed else unsigned(cfg.act_bits)


def act_layout(cfg: MacArrayConfig) -> data.StructLayout:
    """One activation beat: a full row of K = R * M activations, ``last`` on a tile's final row."""
    return data.StructLayout({"a": data.ArrayLayout(act_shape(cfg), cfg.k), "last": 1})


def result_layout(cfg: MacArrayConfig) -> data.StructLayout:
    """One result beat: Y[b, 0..C-1], ``last`` copied from the activation row."""
    return data.StructLayout({"y": data.ArrayLayout(signed(cfg.acc_bits), cfg.cols), "last": 1})


class MacArray(wiring.Component):
    """The MAC array described by ``cfg``.

    Attributes
    ----------
    weights : stream, in
        R beats per tile, see :func:`weight_layout`; the next tile's load while a tile streams.
    acts : stream, in
        Activation rows, see :func:`act_layout`.
    results : stream, out
        One beat per activation row, in order, see :func:`result_layout`.
    perf : :data:`hwgen.hdl.perf.PerfSignature`, out
        ``busy`` counts cycles with a row in flight or a beat accepted; ``stall`` counts cycles in
        which a result waited for ``results.ready``.
    """

    def __init__(self, cfg: MacArrayConfig):
        self.cfg = cfg
        super().__init__({
            "weights": In(stream.Signature(weight_layout(cfg))),
            "acts": In(stream.Signature(act_layout(cfg))),
            "results": Out(stream.Signature(result_layout(cfg))),
            "perf": Out(PerfSignature),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        R, C, N, M = cfg.rows, cfg.cols, cfg.n, cfg.m
        m = Module()

        # --- pipeline control -------------------------------------------------------------
        depth = cfg.latency                       # valid[0] = input register, valid[depth] = out
        valid = Signal(depth + 1)
        last = Signal(depth + 1)
        # The advance enable is a register: a result offered and not taken (``stall``) moves
        # into the output's skid register while the pipeline still advances in that cycle, and
        # the pipeline freezes in the next cycle, for as long as the skid register holds it.
        # As ``~valid[depth] | results.ready`` the enable ran from the consumer's ready through
        # ``acts.ready`` and the input register's zeroing into thousands of clock enables (8x8
        # on ecp5-85k: up to 10.6 ns, a critical path). It leaves from a copy per PE row, one
        # for the input side and one for the deskew (``register_copies``: each copy placed near
        # its registers). With the output always ready nothing is ever held, so no cycle moves.
        stall = Signal()
        skid_valid = Signal()
        m.d.sync += skid_valid.eq(stall)
        *row_en, en, out_en = register_copies(m, ~stall, R + 2, name="advance", init=1)

        # Only control state (valid/last/first chains, sequencer, counters) is reset. Datapath
        # registers are reset_less: their contents only matter under a set valid bit, and leaving
        # them out of the synchronous reset spares a LUT input and a reset route per flip-flop.
        def data_reg(shape, name):
            return Signal(shape, name=name, reset_less=True)

        # --- weights: the next set, loaded beat by beat --------------------------------------
        # With a weight set, weights travel as codebook indices and are decoded once, as they
        # are loaded: one constant table per beat lane, shared by the PE rows it loads. (Decoding
        # next to each multiplier instead stores fewer bits per PE but costs a table per PE and
        # puts it in front of every multiplier; on ECP5 8x8 2:4 pow2 that measured +1000 LUTs and
        # -16 MHz for 512 fewer flip-flops.)
        # With shift PEs the table gives each weight's shift code (shift amount, sign, nonzero
        # flag), which is what the PE's weight registers hold, instead of its value.
        book = cfg.codebook
        w_shape = code_layout(cfg.weight_bits) if cfg.shift_pe else signed(cfg.weight_bits)
        if book is None:
            lanes = [self.weights.payload.w[e] for e in range(C * N)]
        else:
            # Codes past |S| never travel (the golden model encodes only set members); they
            # decode to 0 (as a shift code too: the all-zero code is the weight 0) so the table
            # is a full power of two.
            entries = book + (0,) * ((1 << cfg.code_bits) - len(book))
            if cfg.shift_pe:
                entries = tuple(int(v) for v in encode_shift(entries, cfg.weight_bits))
            table = Array(Const(v, unsigned(cfg.weight_reg_bits) if cfg.shift_pe
                                else signed(cfg.weight_bits)) for v in entries)
            lanes = [Signal(w_shape, name=f"load_w{e}") for e in range(C * N)]
            m.d.comb += [lane.eq(table[self.weights.payload.code[e]])
                         for e, lane in enumerate(lanes)]

        def pe_regs(label, shape):
            return [[[data_reg(shape, f"pe_r{r}_c{c}_{label}{j}") for j in range(N)]
                     for c in range(C)] for r in range(R)]

        # The active weights are the B input registers of the PE's DSP products (see the PE
        # grid); the next tile's, written by the beats, and the N:M indices are fabric registers.
        next_w = pe_regs("next_w", w_shape)
        idx = pe_regs("idx", unsigned(cfg.idx_bits)) if cfg.idx_bits else None
        next_idx = pe_regs("next_idx", unsigned(cfg.idx_bits)) if cfg.idx_bits else None
        load_at = Signal(R, name="load_at", init=1)       # one-hot: the next beat's PE row
        loaded = Signal()       # the next set holds a whole tile whose first row is not taken yet
        streaming = Signal()    # a tile's first row was taken, its last row not yet

        # first[p]: the row p steps past the input register is a tile's first row. PE (r, c)
        # copies idx as that row enters its a_left (it leaves step r + c - 1) and w as it enters
        # the stage that multiplies (it leaves step r + c); the last copy, of PE (R-1, C-1), is
        # triggered from step R + C - 2, so the chain ends there.
        first = [Signal(name=f"first{p}") for p in range(R + C - 1)]
        take = Signal()
        launch = Signal()       # this transfer is a tile's first row
        m.d.comb += [take.eq(self.acts.valid & self.acts.ready), launch.eq(take & ~streaming)]

        def moves(p, advance):
            """The first row leaves step p in this cycle (p = -1: it transfers), ``advance``
            being the copy of the advance enable of the registers that act on it."""
            return launch if p < 0 else advance & first[p]

        with m.If(en):
            m.d.sync += [f.eq(prev) for f, prev in zip(first, [launch, *first[:-1]])]
        streaming_next = Mux(take, ~self.acts.payload.last, streaming)
        m.d.sync += streaming.eq(streaming_next)

        if idx:
            for r in range(R):
                for c in range(C):
                    with m.If(moves(r + c - 1, row_en[r])):
                        m.d.sync += [idx[r][c][j].eq(next_idx[r][c][j]) for j in range(N)]

        # Next-set row r may be overwritten once the next set is not a whole tile waiting
        # (``loaded``) and no first row is at or before step r + C - 1, whose move triggers
        # PE (r, C-1)'s w copy (a row stalled there has not moved yet). ``free[r]`` is a
        # register written with that test on the next state, so a row's write enable is one LUT
        # after registers: its own bit of the one-hot ``load_at``, ``free`` and the beat's
        # valid. (A row counter's decoder and a row multiplexer, then the OR over the chain,
        # in front of the enables were critical paths of the 8x8 array: 7.3 and 7.8 ns on
        # ecp5-85k.) In the next state the chain has shifted if ``en``, taking ``launch`` in:
        # its prefix up to step q is ``launch`` or today's prefix up to q - 1, else today's up
        # to q.
        beat = Signal()
        loaded_next = Signal()
        m.d.comb += [beat.eq(self.weights.valid & self.weights.ready),
                     loaded_next.eq((beat & load_at[R - 1]) | (loaded & ~launch))]
        m.d.sync += loaded.eq(loaded_next)
        # ``acts.ready`` = en & (streaming | loaded), a register written from that test on the
        # next state (the advance enable's next state is ~stall), with a copy for each PE row's
        # group of the input register, which zeroes its activations unless a row is taken. As
        # a LUT of registers feeding the take of all K activations it was a critical path of
        # the 8x8 2:4 array (ecp5-85k: 9.3 ns, 7.7 of them routing to the far input registers).
        ready, *group_ready = register_copies(
            m, ~stall & (streaming_next | loaded_next), R + 1, name="acts_ready")
        m.d.comb += self.acts.ready.eq(ready)
        prefix = [Const(0, 1)]                    # prefix[q]: a first bit at a step below q
        for f in first:
            prefix.append(prefix[-1] | f)
        free = [Signal(name=f"free{r}", init=1) for r in range(R)]
        for r, reg in enumerate(free):
            q = r + C - 1
            moved = Mux(en, launch | prefix[q], prefix[q + 1])
            m.d.sync += reg.eq(~(loaded_next | moved))
        m.d.comb += self.weights.ready.eq(Cat(load_at[r] & free[r] for r in range(R)).any())
        for r in range(R):
            with m.If(self.weights.valid & load_at[r] & free[r]):
                for c in range(C):
                    for j in range(N):
                        e = c * N + j
                        m.d.sync += next_w[r][c][j].eq(lanes[e])
                        if idx:
                            m.d.sync += next_idx[r][c][j].eq(self.weights.payload.idx[e])
        with m.If(beat):
            m.d.sync += load_at.eq(load_at.rotate_left(1))

        # --- input register: an empty step loads zeros so bubbles add nothing to psums -----
        a_in = [data_reg(act_shape(cfg), f"in_a{k}") for k in range(cfg.k)]
        with m.If(en):
            m.d.sync += [valid[0].eq(take), last[0].eq(take & self.acts.payload.last)]
            m.d.sync += [valid[1:].eq(valid[:-1]), last[1:].eq(last[:-1])]
            for k in range(cfg.k):
                taken = self.acts.valid & group_ready[k // M]       # = take
                m.d.sync += a_in[k].eq(Mux(taken, self.acts.payload.a[k], 0))

        # --- skew: PE row r sees its activation group r steps late --------------------------
        skewed = []
        for r in range(R):
            group = a_in[r * M:(r + 1) * M]
            for s in range(r):
                delayed = [data_reg(act_shape(cfg), f"skew_r{r}_s{s}_a{i}") for i in range(M)]
                with m.If(row_en[r]):
                    m.d.sync += [d.eq(g) for d, g in zip(delayed, group)]
                group = delayed
            skewed.append(group)

        # --- PE grid -------------------------------------------------------------------------
        # psum_above + the products' sum, exact before the overflow rule is applied.
        sum_shape = signed(max(cfg.acc_bits, cfg.prod_sum_bits) + 1)
        psum = [[data_reg(signed(cfg.acc_bits), f"pe_r{r}_c{c}_psum") for c in range(C)]
                for r in range(R)]
        for r in range(R):
            a_left = skewed[r]
            for c in range(C):
                name = f"pe_r{r}_c{c}"
                prods = []
                for j in range(N):
                    # Operand j (N:M: the activation idx[j] selects) and the next weight go to
                    # the input registers of a DSP product. The A register takes the operand at
                    # every step; the B register, the active weight, takes the next weight only
                    # as a tile's first row enters A (it leaves step r + c).
                    # A shift PE's product has the same registers and clock enables.
                    operand = Array(a_left)[idx[r][c][j]] if idx else a_left[0]
                    if cfg.shift_pe:
                        prods.append(shift_product(
                            m, operand, next_w[r][c][j], f"{name}_mul{j}",
                            weight_bits=cfg.weight_bits, en=row_en[r],
                            b_en=first[r + c]))
                    else:
                        prods.append(registered_product(
                            m, operand, next_w[r][c][j], f"{name}_mul{j}", input_registers=True,
                            en=row_en[r], b_en=first[r + c]))
                products = prods[0]
                if cfg.sums_products:     # their sum gets a register (see the property)
                    products = data_reg(signed(cfg.prod_sum_bits), f"{name}_prod_sum")
                    with m.If(row_en[r]):
                        m.d.sync += products.eq(sum(prods))
                above = psum[r - 1][c] if r else Const(0, signed(cfg.acc_bits))
                exact = Signal(sum_shape, name=f"{name}_sum")
                m.d.comb += exact.eq(above + products)
                with m.If(row_en[r]):
                    m.d.sync += psum[r][c].eq(overflow(exact, cfg.acc_bits, cfg.overflow))
                if c < C - 1:
                    # The activations move right; the last column has no PE to feed.
                    a_reg = [data_reg(act_shape(cfg), f"{name}_a{i}") for i in range(M)]
                    with m.If(row_en[r]):
                        m.d.sync += [reg.eq(a) for reg, a in zip(a_reg, a_left)]
                    a_left = a_reg

        # --- deskew: column c waits C-1-c more steps so a row leaves in one beat -------------
        out = Signal(result_layout(cfg))
        for c in range(C):
            col = psum[R - 1][c]
            for s in range(C - 1 - c):
                delayed = data_reg(signed(cfg.acc_bits), f"deskew_c{c}_s{s}")
                with m.If(out_en):
                    m.d.sync += delayed.eq(col)
                col = delayed
            m.d.comb += out.y[c].eq(col)
        m.d.comb += out.last.eq(last[depth])

        # --- output: the pipeline's result, or the one the skid register holds ---------------
        # The skid register loads the pipeline's result in every cycle the pipeline advances;
        # it counts (``skid_valid``) only when that result was not taken.
        skid = data_reg(result_layout(cfg), "skid")
        with m.If(out_en):
            m.d.sync += skid.eq(out)
        m.d.comb += [self.results.valid.eq(skid_valid | valid[depth]),
                     self.results.payload.eq(Mux(skid_valid, skid, out)),
                     stall.eq(self.results.valid & ~self.results.ready)]

        # --- performance counters ------------------------------------------------------------
        m.submodules.perf = perf = PerfCounters()
        wiring.connect(m, wiring.flipped(self.perf), perf.perf)
        # "A row is in flight" is a register written from the next state of the valid chain:
        # the OR over the chain in front of the busy counter's enable was a critical path of
        # the 8x8 array (7.2 ns on ecp5-85k).
        in_flight = Signal()
        m.d.sync += in_flight.eq(Mux(en, take | valid[:depth].any(), valid.any()))
        m.d.comb += [
            perf.busy.eq(in_flight | skid_valid | take | beat),
            perf.stall.eq(stall),
        ]
        return m

