"""Configuration of the weight-stationary MAC array (docs/architecture.md §4.1)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from hwgen.config import (
    NAME_DOC,
    ConfigError,
    EngineConfig,
    check_bool,
    check_choice,
    check_int,
    check_name,
    invalid,
)
from hwgen.hdl.shift import code_layout

from . import weight_set as ws

__all__ = ["MacArrayConfig", "MAX_MULTIPLIERS"]

#: Upper bound on rows * cols * n, to keep elaboration, simulation and synthesis tractable.
MAX_MULTIPLIERS = 4096

# N and M are at most 16: two digits each (a longer number is refused before int() sees it).
_SPARSITY_RE = re.compile(r"(\d{1,2}):(\d{1,2})\Z")


@dataclass(frozen=True)
class MacArrayConfig(EngineConfig):
    """A rows x cols weight-stationary systolic array computing ``Y = A @ W`` one row per cycle."""

    kind = "mac_array"

    name: str = field(default="mac_array", metadata={"doc": NAME_DOC})
    rows: int = field(default=4, metadata={
        "doc": "PE rows R (1..64). Each row reduces one activation (dense) or one group of M "
               "activations (N:M)."})
    cols: int = field(default=4, metadata={
        "doc": "PE columns C (1..64): outputs per result beat."})
    act_bits: int = field(default=8, metadata={"doc": "Activation width in bits (2..16)."})
    act_signed: bool = field(default=True, metadata={
        "doc": "true: activations are two's complement; false: unsigned."})
    weight_bits: int = field(default=8, metadata={
        "doc": "Weight width in bits (2..16); weights are always two's complement."})
    acc_bits: int = field(default=22, metadata={
        "doc": "Partial-sum width in bits (weight_bits + act_bits .. 48); default 22 = 16 + "
               "log2(64) as in the seed paper."})
    overflow: str = field(default="wrap", metadata={
        "doc": "What a PE does when psum_in + products leaves acc_bits: \"wrap\" (two's "
               "complement) or \"saturate\" (clamp)."})
    sparsity: str | None = field(default=None, metadata={
        "doc": "Absent = dense; \"N:M\" (1 <= N < M <= 16) = N nonzero weights per group of M "
               "inputs, e.g. \"2:4\".", "example": "2:4"})
    weight_set: str | tuple[int, ...] = field(default="all", metadata={
        "doc": "Allowed weight values: \"all\", \"pow2\" (0 and signed powers of two), "
               "\"low_hamming_<k>\" (0 and values whose magnitude has at most k one bits) or "
               "a list of integers containing 0, e.g. [-4, -1, 0, 1, 4]. Other than \"all\", "
               "weights travel as ceil(log2 |S|)-bit codebook indices, decoded as they load."})
    pe: str | None = field(default=None, metadata={
        "doc": "PE product: \"multiply\" (a multiplier, a DSP block where the FPGA has one) "
               "or \"shift\" (weight_set = \"pow2\" only: each weight held as a sign and a "
               "shift amount, no multiplier and no DSP). Absent = \"shift\" with "
               "weight_set = \"pow2\", else \"multiply\".", "example": "multiply"})
    msb_bits: int | None = field(default=None, metadata={
        "doc": "Energy model only: width of the partial-sum MSB group whose toggles are counted "
               "apart from the LSB part (1 .. acc_bits - 1). Absent = the accumulator's guard "
               "bits, acc_bits - weight_bits - act_bits (at least 1).", "example": 6})

    def validate(self) -> None:
        check_name("name", self.name)
        check_int("rows", self.rows, 1, 64)
        check_int("cols", self.cols, 1, 64)
        check_int("act_bits", self.act_bits, 2, 16)
        check_bool("act_signed", self.act_signed)
        check_int("weight_bits", self.weight_bits, 2, 16)
        check_int("acc_bits", self.acc_bits, self.weight_bits + self.act_bits, 48)
        check_choice("overflow", self.overflow, ("wrap", "saturate"))
        if self.sparsity is not None:
            match = _SPARSITY_RE.match(self.sparsity) if isinstance(self.sparsity, str) else None
            if not match or not 1 <= int(match[1]) < int(match[2]) <= 16:
                raise invalid("sparsity", self.sparsity, "\"N:M\" with 1 <= N < M <= 16 (omit the "
                              "field for a dense array)")
        if isinstance(self.weight_set, list):
            # TOML and JSON give a list; a tuple keeps the frozen config hashable.
            object.__setattr__(self, "weight_set", tuple(self.weight_set))
        ws.codebook(self.weight_set, self.weight_bits)
        if self.pe is not None:
            check_choice("pe", self.pe, ("multiply", "shift"))
            if self.pe == "shift" and self.weight_set != "pow2":
                raise invalid("pe", self.pe, f"\"multiply\" (a shift PE needs weight_set = "
                                             f"\"pow2\", not {ws.describe(self.weight_set)})")
        if self.msb_bits is not None:
            check_int("msb_bits", self.msb_bits, 1, self.acc_bits - 1)
        if self.multipliers > MAX_MULTIPLIERS:
            raise ConfigError(f"rows * cols * n = {self.multipliers}: expected at most "
                              f"{MAX_MULTIPLIERS} multipliers")

    # Derived quantities: every width and count the RTL, golden model and testbench share.

    @property
    def n(self) -> int:
        """Nonzero weights per group (1 for dense)."""
        return 1 if self.sparsity is None else int(self.sparsity.split(":")[0])

    @property
    def m(self) -> int:
        """Group size: reduction inputs covered by one PE row (1 for dense)."""
        return 1 if self.sparsity is None else int(self.sparsity.split(":")[1])

    @property
    def k(self) -> int:
        """Reduction length per pass: activations per activation beat (R * M)."""
        return self.rows * self.m

    @property
    def idx_bits(self) -> int:
        """Width of one N:M position index (0 for dense: there is nothing to select)."""
        return math.ceil(math.log2(self.m)) if self.m > 1 else 0

    @property
    def codebook(self) -> tuple[int, ...] | None:
        """The allowed weight values, ascending (None for \"all\"): the one decode table the
        RTL, the golden model and the energy model share."""
        return ws.codebook(self.weight_set, self.weight_bits)

    @property
    def code_bits(self) -> int:
        """Width of a weight as it travels: a codebook index, or the weight itself."""
        book = self.codebook
        return self.weight_bits if book is None else ws.code_bits(book)

    @property
    def shift_pe(self) -> bool:
        """Every PE product is a shift (:class:`hwgen.hdl.shift.ShiftProduct`), not a multiply:
        ``pe = "shift"``, or ``pe`` absent with ``weight_set = "pow2"``."""
        return self.pe == "shift" or (self.pe is None and self.weight_set == "pow2")

    @property
    def weight_reg_bits(self) -> int:
        """Width of a PE's weight registers: the weight, or with shift PEs its shift code
        (shift amount, sign, nonzero flag; :func:`hwgen.hdl.shift.code_layout`)."""
        return code_layout(self.weight_bits).size if self.shift_pe else self.weight_bits

    @property
    def prod_bits(self) -> int:
        """Width of one exact product, signed: ``weight_bits + act_bits`` bits hold every
        product of a signed weight and a signed or unsigned activation (the product register's
        width, Amaranth's width of ``w * a``)."""
        return self.weight_bits + self.act_bits

    @property
    def psum_msb_bits(self) -> int:
        """Bits in the partial-sum MSB group of the energy model (see ``msb_bits``)."""
        if self.msb_bits is not None:
            return self.msb_bits
        return max(1, self.acc_bits - self.weight_bits - self.act_bits)

    @property
    def multipliers(self) -> int:
        return self.rows * self.cols * self.n

    @property
    def prod_sum_bits(self) -> int:
        """Width of the sum of a PE's N products, signed and exact (the register that holds it
        when N > 1)."""
        return self.prod_bits + (self.n - 1).bit_length()

    @property
    def sums_products(self) -> bool:
        """Whether each PE's N products have a register of their sum (``prod_sum``) between the
        products and the accumulate: with N > 1, adding N DSP outputs and the psum from above in
        one cycle, behind the routing out of the DSP columns, was the 8x8 2:4 array's critical
        path on ecp5-85k (~100 MHz, 6.6 ns of routing into the carry chains)."""
        return self.n > 1

    @property
    def pe_stages(self) -> int:
        """Registers inside a PE between its activation input and its partial sum: the DSP
        product's input register (the operand, N:M: the activation the index selects) and its
        output register (the product), a shift PE has the same two; a third holds the
        products' sum where there is one (:attr:`sums_products`)."""
        return 3 if self.sums_products else 2

    @property
    def hide_rows(self) -> int:
        """The fewest rows of a tile that hide the next tile's weight load: tile i + 1's beat r
        waits until tile i's first row has switched PE (r, C-1) to tile i's weights, R + C + 1
        cycles after tile i's first row for the last beat (``golden.cycle_model``)."""
        return self.rows + self.cols + 1

    @property
    def latency(self) -> int:
        """Pipeline steps from the input register to the result register: R + C - 2 hops of the
        skewed activation/partial-sum wavefront plus the PE's own stages and its psum register."""
        return self.rows + self.cols - 1 + self.pe_stages
