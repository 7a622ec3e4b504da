"""Configuration of the dual-sparse SNN layer engine (docs/architecture.md §4.2, after LoAS, MICRO
2024).

A layer maps input spikes ``A[m, k, t]`` (M samples, K input neurons, T timesteps) and sparse
weights ``B[k, n]`` to output spikes ``S[m, n, t]`` through ``O[m, n, t] = sum_k A[m, k, t] *
B[k, n]`` and an unrolled leaky integrate-and-fire (LIF) neuron per (m, n).

Widths left at ``None`` default to the worst case, so nothing overflows unless a narrower width is
chosen on purpose (as the ``paper`` preset does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hwgen.config import NAME_DOC, EngineConfig, check_choice, check_int, check_name, invalid
from hwgen.hdl.walker import walker_slices

__all__ = ["SnnConfig", "PRESETS"]

#: Named presets: widths used when ``preset`` is set and the field itself is left absent.
PRESETS = {
    # LoAS's hardware: a 12-bit pseudo-accumulator and 10-bit correction accumulators that wrap.
    "paper": {"pseudo_bits": 12, "corr_bits": 10},
}


@dataclass(frozen=True)
class SnnConfig(EngineConfig):
    """One SNN layer: spike compressor, P temporal-parallel PEs (TPPEs), unrolled LIF."""

    kind = "snn"

    name: str = field(default="snn", metadata={"doc": NAME_DOC})
    timesteps: int = field(default=4, metadata={
        "doc": "T, timesteps per spike word (1..16); bit t of a packed word = spike at step t."})
    in_neurons: int = field(default=128, metadata={
        "doc": "K, input neurons per sample (1..4096)."})
    out_neurons: int = field(default=8, metadata={
        "doc": "N, output neurons (1..1024); processed P at a time."})
    chunk: int = field(default=128, metadata={
        "doc": "Neurons per compressed chunk (4..256, a multiple of 4): one bitmask word plus the "
               "packed words of the kept neurons."})
    min_spikes: int = field(default=1, metadata={
        "doc": "A neuron with fewer spikes than this over T steps is dropped by the compressor "
               "(1..timesteps; 1 drops only silent neurons)."})
    in_format: str = field(default="dense", metadata={
        "doc": "Spikes on the ``spikes`` port: \"dense\" (K packed words per sample) or \"fiber\" "
               "(per chunk its bitmask beat, then the packed words of the kept neurons: a layer's "
               "fiber output feeds the next layer directly)."})
    out_format: str = field(default="dense", metadata={
        "doc": "Spikes on the ``out`` port: \"dense\" (N packed words per sample, a word with "
               "fewer than min_spikes spikes as 0) or \"fiber\" (the compressed format of "
               "in_format = \"fiber\")."})
    pes: int = field(default=4, metadata={
        "doc": "P, temporal-parallel PEs; each owns one output neuron at a time (1..64)."})
    lif_lanes: int | None = field(default=None, metadata={
        "doc": "Output neurons the collector, the LIF and the output stage take per cycle (one "
               "LIF pipeline each): a power of two dividing min(pes, out_neurons) and chunk "
               "(absent: the largest such with out_format = \"fiber\"; 1 with \"dense\", whose "
               "port takes one word per cycle anyway).", "example": 4})
    weight_bits: int = field(default=8, metadata={
        "doc": "Weight width in bits (2..16), two's complement."})
    join: str = field(default="fast", metadata={
        "doc": "Inner join: \"fast\" (fast prefix sums on both masks, one matched pair per cycle) "
               "or \"laggy\" (LoAS: slow prefix sum on the spike mask, pseudo-accumulator plus "
               "per-timestep correction accumulators)."})
    laggy_adders: int | None = field(default=None, metadata={
        "doc": "Width of the groups of a chunk's positions that a TPPE's join walks (LoAS's "
               "laggy prefix-sum groups): it visits only the groups that hold a matched "
               "position, one match per cycle, in either join; a power of two from 1 to 64 "
               "(absent = 16; a group is never wider than the chunk needs).", "example": 16})
    dataflow: str = field(default="ftp", metadata={
        "doc": "\"ftp\": all T timesteps of a neuron in one step (fully temporal-parallel); "
               "\"sequential\": one timestep after another with per-timestep spike masks, on the "
               "same PEs (the baseline)."})
    threshold: int = field(default=64, metadata={
        "doc": "Firing threshold theta (1 .. 2**(membrane_bits-1) - 1)."})
    fire: str = field(default="ge", metadata={
        "doc": "Fire when the membrane X = U + O[t] is \"ge\" (>=) or \"gt\" (>) theta."})
    reset: str = field(default="zero", metadata={
        "doc": "After a spike: \"zero\" (hard reset, U = 0, LoAS) or \"subtract\" (U = X - theta)."})
    leak: str = field(default="subtract_shift", metadata={
        "doc": "Leak applied after reset every step: \"subtract_shift\" U = U - (U >> leak_shift),"
               " \"shift\" U = U >> leak_shift, or \"none\"."})
    leak_shift: int = field(default=4, metadata={
        "doc": "Shift s of the leak (0..15)."})
    rounding: str = field(default="floor", metadata={
        "doc": "Rounding of the leak shift: \"floor\" (arithmetic shift) or \"half_up\" (add half, "
               "then floor)."})
    membrane_bits: int | None = field(default=None, metadata={
        "doc": "Membrane width in bits (absent = worst case for K, T and weight_bits).",
        "example": 16})
    membrane_overflow: str = field(default="saturate", metadata={
        "doc": "Membrane overflow rule: \"wrap\" or \"saturate\"."})
    pseudo_bits: int | None = field(default=None, metadata={
        "doc": "Width of the join's pseudo-accumulator and of O[t] (absent = worst case).",
        "example": 12})
    corr_bits: int | None = field(default=None, metadata={
        "doc": "Width of each laggy correction accumulator (absent = worst case).",
        "example": 10})
    acc_overflow: str = field(default="wrap", metadata={
        "doc": "Overflow rule of the join accumulators: \"wrap\" or \"saturate\"."})
    preset: str | None = field(default=None, metadata={
        "doc": "\"paper\": LoAS widths (12-bit pseudo, 10-bit correction accumulators; with the "
               "default acc_overflow they wrap); explicit pseudo_bits/corr_bits win.",
        "example": "paper"})

    def validate(self) -> None:
        check_name("name", self.name)
        check_int("timesteps", self.timesteps, 1, 16)
        check_int("in_neurons", self.in_neurons, 1, 4096)
        check_int("out_neurons", self.out_neurons, 1, 1024)
        check_int("chunk", self.chunk, 4, 256)
        if self.chunk % 4:
            raise invalid("chunk", self.chunk, "a multiple of 4 from 4 to 256")
        check_int("min_spikes", self.min_spikes, 1, self.timesteps)
        check_choice("in_format", self.in_format, ("dense", "fiber"))
        check_choice("out_format", self.out_format, ("dense", "fiber"))
        check_int("pes", self.pes, 1, 64)
        if self.lif_lanes is not None:
            v, most = self.lif_lanes, self._most_lanes
            if isinstance(v, bool) or not isinstance(v, int) or v < 1 or most % v or v & (v - 1):
                raise invalid("lif_lanes", v, f"a power of two dividing min(pes, out_neurons) = "
                              f"{min(self.pes, self.out_neurons)} and chunk = {self.chunk} "
                              f"(1 to {most})")
        check_int("weight_bits", self.weight_bits, 2, 16)
        check_choice("join", self.join, ("fast", "laggy"))
        if self.laggy_adders is not None:
            v = self.laggy_adders
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 64 or v & (v - 1):
                raise invalid("laggy_adders", v, "a power of two from 1 to 64")
        check_choice("dataflow", self.dataflow, ("ftp", "sequential"))
        check_choice("fire", self.fire, ("ge", "gt"))
        check_choice("reset", self.reset, ("zero", "subtract"))
        check_choice("leak", self.leak, ("subtract_shift", "shift", "none"))
        check_int("leak_shift", self.leak_shift, 0, 15)
        check_choice("rounding", self.rounding, ("floor", "half_up"))
        check_choice("membrane_overflow", self.membrane_overflow, ("wrap", "saturate"))
        check_choice("acc_overflow", self.acc_overflow, ("wrap", "saturate"))
        if self.preset is not None:
            check_choice("preset", self.preset, tuple(PRESETS))
        for field_name in ("pseudo_bits", "corr_bits"):
            value = getattr(self, field_name)
            if value is not None:
                check_int(field_name, value, self.weight_bits, 40)
            elif self.preset is not None and PRESETS[self.preset][field_name] < self.weight_bits:
                raise invalid("preset", self.preset, f"a preset whose {field_name} "
                              f"({PRESETS[self.preset][field_name]}) holds weight_bits = "
                              f"{self.weight_bits}; set {field_name} explicitly")
        if self.membrane_bits is not None:
            check_int("membrane_bits", self.membrane_bits, 3, 48)
        check_int("threshold", self.threshold, 1, (1 << (self.u_bits - 1)) - 1)

    # Derived widths: every width the RTL, golden model and testbench share.

    @property
    def worst_case_bits(self) -> int:
        """Bits of an exact sum of K weights: weight_bits + ceil(log2(K))."""
        return self.weight_bits + math.ceil(math.log2(self.in_neurons)) if self.in_neurons > 1 \
            else self.weight_bits

    @property
    def adders(self) -> int:
        """Width of the join's groups: ``laggy_adders`` (default 16), at most the smallest power
        of two that holds a chunk."""
        return walker_slices(self.chunk, 16 if self.laggy_adders is None else self.laggy_adders)[0]

    def _width(self, field_name: str) -> int:
        """An accumulator width: the field, else the preset's, else the worst case."""
        value = getattr(self, field_name)
        if value is None and self.preset is not None:
            value = PRESETS[self.preset][field_name]
        return self.worst_case_bits if value is None else value

    @property
    def acc_bits(self) -> int:
        """Width of the pseudo-accumulator and of O[t]."""
        return self._width("pseudo_bits")

    @property
    def correction_bits(self) -> int:
        """Width of each laggy correction accumulator."""
        return self._width("corr_bits")

    @property
    def u_bits(self) -> int:
        """Membrane width: worst case is T sums of K weights plus a sign of headroom."""
        if self.membrane_bits is not None:
            return self.membrane_bits
        return self.acc_bits + math.ceil(math.log2(self.timesteps + 1)) + 1

    @property
    def _most_lanes(self) -> int:
        """The largest power of two dividing both min(pes, out_neurons) and chunk."""
        g = math.gcd(min(self.pes, self.out_neurons), self.chunk)
        return g & -g

    @property
    def lanes(self) -> int:
        """L, output neurons per cycle through the collector, LIF and output (``lif_lanes``)."""
        if self.lif_lanes is not None:
            return self.lif_lanes
        return self._most_lanes if self.out_format == "fiber" else 1

    @property
    def chunks(self) -> int:
        """Chunks per sample: ceil(K / chunk); the last one may be partly empty."""
        return -(-self.in_neurons // self.chunk)

