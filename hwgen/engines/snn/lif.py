"""The P-LIF neuron, unrolled over T timesteps (docs/architecture.md §4.2, snn spec rule 4).

One input beat is one (sample, output neuron) pair's ``O[0..T-1]``; one output beat is its T
output spikes, bit t = S[t]. The membrane U starts at 0 for every beat, so beats are independent
and the neuron needs no state between them.

Microarchitecture
-----------------
The T steps are a combinational chain, step t taking U from step t-1 (U = 0 for t = 0)::

    X    = ovf(U + O[t], u_bits, membrane_overflow)          exact sum, then the overflow rule
    C[t] = X >= theta  ("ge")  |  X > theta  ("gt")
    U'   = C[t] ? 0 : X                                       reset "zero"
         = C[t] ? ovf(X - theta, u_bits, membrane_overflow) : X      reset "subtract"
    U    = U' - shr(U', s)  |  shr(U', s)  |  U'             leak subtract_shift | shift | none
    shr(x, s) = x >> s (floor)  |  (x + (1 << (s-1))) >> s (half_up, s >= 1)  |  x (s = 0)

Every intermediate is computed at its exact width before the overflow rule narrows it to
``u_bits``. The rule on ``X - theta`` is kept as the spec writes it, though it never acts (a
spike means ``theta <= X <= max``, so ``0 <= X - theta < max``). The leak needs no rule: ``shr``
moves a value towards zero (or keeps it), so ``U' - shr(U', s)`` lies between 0 and U' and
``shr(U', s)`` fits in ``u_bits`` for s >= 1.

The chain is cut into ``stages = ceil(T / steps_per_stage)`` pipeline stages, each followed by a
register stage holding the spikes so far, a valid bit and, before the last stage, U after its
last step and the O[t] still to be consumed. The input is not registered: ``sums.payload``
feeds the first stage's logic directly. The default ``steps_per_stage = T`` gives one stage: all
T steps in one cycle, registered at the output. A smaller value shortens the critical path
(about ``steps_per_stage`` x (adder, saturation compare/mux, threshold comparator, reset mux,
leak adder and subtractor)) for Fmax, at the price of U and the remaining O[t] in flip-flops.

Timing: one beat per cycle in steady state; a beat transferred on ``sums`` at the edge ending
cycle c is valid on ``spikes`` from cycle c + ``latency`` (``latency = stages``). The pipeline
has a single advance enable ``en = ~spikes.valid | spikes.ready`` (a global stall when the
output holds a beat nobody takes): ``sums.ready = en``, so ``sums.ready`` depends on
``spikes.ready`` but ``spikes.valid`` is a register that never does, and the output registers
(the payload) hold still while ``valid & ~ready``.

An optional ``tag`` field (``tag_bits`` wide) rides through the pipeline beside the data, for
a caller that needs to know which pair a beat belongs to (e.g. ``last`` of a sample).
"""

from __future__ import annotations

import math

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.hdl.arith import overflow

from .config import SnnConfig

__all__ = ["sums_layout", "spikes_layout", "UnrolledLif", "lif_sum", "lif_fire", "lif_leak"]


def sums_layout(cfg: SnnConfig, tag_bits: int = 0) -> data.StructLayout:
    """One input beat: ``o[t]`` = O[t] of one (m, n) pair, signed ``cfg.acc_bits``."""
    fields = {"o": data.ArrayLayout(signed(cfg.acc_bits), cfg.timesteps)}
    if tag_bits:
        fields["tag"] = tag_bits
    return data.StructLayout(fields)


def spikes_layout(cfg: SnnConfig, tag_bits: int = 0) -> data.StructLayout:
    """One output beat: ``spikes`` (T bits, bit t = S[t]) and the input beat's ``tag``."""
    fields = {"spikes": cfg.timesteps}
    if tag_bits:
        fields["tag"] = tag_bits
    return data.StructLayout(fields)


def _shr(x, s: int, rounding: str):
    """Spec rule 4's ``shr`` at the exact width (``x + half`` widens by one bit, so no wrap)."""
    if s == 0:
        return x
    if rounding == "floor":
        return x >> s
    if rounding == "half_up":
        return (x + (1 << (s - 1))) >> s
    raise ValueError(f"rounding {rounding!r} is not 'floor' or 'half_up'")


def lif_sum(m: Module, cfg: SnnConfig, u, o_t, name: str):
    """A step's first piece: ``X = ovf(U + O[t])`` (``u`` signed ``u_bits`` or a constant 0)."""
    x = Signal(signed(cfg.u_bits), name=f"{name}_x")
    m.d.comb += x.eq(overflow(u + o_t, cfg.u_bits, cfg.membrane_overflow))
    return x


def lif_fire(m: Module, cfg: SnnConfig, x, name: str):
    """A step's second piece: the spike ``C[t]`` and U after the reset."""
    U, theta = cfg.u_bits, Const(cfg.threshold)
    fire = Signal(name=f"{name}_fire")
    m.d.comb += fire.eq(x >= theta if cfg.fire == "ge" else x > theta)
    after = Signal(signed(U), name=f"{name}_reset")
    if cfg.reset == "zero":
        m.d.comb += after.eq(Mux(fire, 0, x))
    else:
        m.d.comb += after.eq(Mux(fire, overflow(x - theta, U, cfg.membrane_overflow), x))
    return fire, after


def lif_leak(m: Module, cfg: SnnConfig, after, name: str):
    """A step's third piece: U after the leak, carried into the next step."""
    U, s = cfg.u_bits, cfg.leak_shift
    u_next = Signal(signed(U), name=f"{name}_u")
    if cfg.leak == "subtract_shift":
        leaked = after - _shr(after, s, cfg.rounding)
    elif cfg.leak == "shift":
        leaked = _shr(after, s, cfg.rounding)
    else:
        leaked = after
    # In range by construction (module docstring), so taking the low u_bits loses nothing.
    m.d.comb += u_next.eq(leaked[:U].as_signed())
    return u_next


class UnrolledLif(wiring.Component):
    """LIF over all T timesteps of one (m, n) pair per beat, for ``cfg``.

    Parameters
    ----------
    cfg : SnnConfig
    steps_per_stage : int, optional
        LIF steps per pipeline stage, 1..T (default T: one stage, latency 1).
    step_stages : int, optional
        Pipeline stages per step, 1..3 (default 1); more than 1 needs ``steps_per_stage = 1``.
        2 registers X after the sum; 3 also registers the spike and U after the reset, so a
        stage holds one carry chain (the sum and its saturation, the threshold comparison, or
        the leak).
    tag_bits : int
        Width of an optional ``tag`` passed through unchanged (0: no tag field).

    Attributes
    ----------
    sums : stream, in
        :func:`sums_layout`: ``o`` = O[0..T-1] of one pair.
    spikes : stream, out
        :func:`spikes_layout`: ``spikes`` = S[0..T-1], one beat per input beat, in order.
    busy : out
        A beat is in the pipeline.
    latency : int
        Cycles from an input transfer to its output beat being valid (without stalls).
    """

    def __init__(self, cfg: SnnConfig, *, steps_per_stage: int | None = None,
                 step_stages: int = 1, tag_bits: int = 0):
        T = cfg.timesteps
        k = T if steps_per_stage is None else steps_per_stage
        if not 1 <= k <= T:
            raise ValueError(f"steps_per_stage must be 1..{T}, not {steps_per_stage}")
        if step_stages not in (1, 2, 3) or (step_stages > 1 and k != 1):
            raise ValueError(f"step_stages must be 1, or 2 or 3 with steps_per_stage = 1, not "
                             f"{step_stages}")
        if tag_bits < 0:
            raise ValueError(f"tag_bits must be >= 0, not {tag_bits}")
        self.cfg = cfg
        self.steps_per_stage, self.step_stages = k, step_stages
        self.stages = math.ceil(T / k) * step_stages
        self.tag_bits = tag_bits
        super().__init__({
            "sums": In(stream.Signature(sums_layout(cfg, tag_bits))),
            "spikes": Out(stream.Signature(spikes_layout(cfg, tag_bits))),
            "busy": Out(1),
        })

    @property
    def latency(self) -> int:
        return self.stages

    def elaborate(self, platform):
        cfg = self.cfg
        T, U, k, split = cfg.timesteps, cfg.u_bits, self.steps_per_stage, self.step_stages
        m = Module()

        en = Signal()
        # valid[s] = stage s's output register holds a beat; valid[-1] drives spikes.valid.
        valid = Signal(self.stages, name="valid")
        m.d.comb += [en.eq(~valid[-1] | self.spikes.ready), self.sums.ready.eq(en)]
        with m.If(en):
            m.d.sync += valid.eq(Cat(self.sums.valid, valid[:-1]))   # shift in at stage 0

        # The steps as a chain of pieces (sum, fire, leak per step) over a state: the value
        # between pieces (U, X or U after the reset), the spikes so far, the O[t] still ahead
        # and the tag. A stage register follows the pieces where the pipeline is cut. Datapath
        # registers are reset_less: they only matter under a set valid bit.
        value = Const(0, signed(U))
        o = list(self.sums.payload.o)
        spikes = []
        tag = self.sums.payload.tag if self.tag_bits else None
        stage = 0

        def cut(keep_value: bool):
            nonlocal value, o, spikes, tag, stage
            p = f"s{stage}"
            o_regs = [Signal(signed(cfg.acc_bits), name=f"{p}_o{T - len(o) + i}",
                             reset_less=True) for i in range(len(o))]
            with m.If(en):
                m.d.sync += [r.eq(v) for r, v in zip(o_regs, o)]
            if spikes:                  # none yet before the first step's spike
                spk_reg = Signal(len(spikes), name=f"{p}_spikes", reset_less=True)
                with m.If(en):
                    m.d.sync += spk_reg.eq(Cat(*spikes))
                spikes = [spk_reg[i] for i in range(len(spikes))]
            if keep_value:
                v_reg = Signal(signed(U), name=f"{p}_v", reset_less=True)
                with m.If(en):
                    m.d.sync += v_reg.eq(value)
                value = v_reg
            if tag is not None:
                tag_reg = Signal(self.tag_bits, name=f"{p}_tag", reset_less=True)
                with m.If(en):
                    m.d.sync += tag_reg.eq(tag)
                tag = tag_reg
            o = o_regs
            stage += 1

        for t in range(T):
            value = lif_sum(m, cfg, value, o[0], f"t{t}")
            o = o[1:]
            if split >= 2:
                cut(True)
            fire, value = lif_fire(m, cfg, value, f"t{t}")
            spikes.append(fire)
            if split == 3:
                cut(True)
            value = lif_leak(m, cfg, value, f"t{t}")
            if (t + 1) % k == 0 or t == T - 1:
                cut(t < T - 1)          # U is not needed after the last step
        assert stage == self.stages

        m.d.comb += [self.spikes.valid.eq(valid[-1]), self.spikes.payload.spikes.eq(Cat(*spikes)),
                     self.busy.eq(valid.any())]
        if tag is not None:
            m.d.comb += self.spikes.payload.tag.eq(tag)
        return m
