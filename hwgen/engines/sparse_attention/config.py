"""Configuration of the sparse attention engine (docs/architecture.md §4.3, after Peng et al., DAC
2022).

One attention head over a sequence of runtime length ``L <= max_len``: Q, K, V are ``(L, d)``
signed ``data_bits`` integers. Q and K are quantized to ``est_bits`` to estimate every score
cheaply; per query row a mask (``"topk"`` or the adaptive ``"threshold"`` over the estimates, or
the static ``"window"`` / ``"dense"`` baselines) selects the keys whose exact scores go through an integer softmax; the
output is ``sum_j p_j * V[j]`` requantized to ``out_bits``. The numerics are specified in
:mod:`hwgen.engines.sparse_attention.golden` and :mod:`hwgen.engines.sparse_attention.softmax`.

Every width the RTL, the golden model and the testbench share is a derived property below; each is
the worst case of valid inputs, so no intermediate overflows (only the final ``out_bits``
requantization applies ``out_overflow``). All intermediates fit int64 for every valid config.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hwgen.config import NAME_DOC, EngineConfig, check_choice, check_int, check_name

from . import softmax

__all__ = ["SparseAttentionConfig", "signed_bits"]


def signed_bits(lo: int, hi: int) -> int:
    """Fewest two's-complement bits holding every integer of ``lo..hi`` (at least 1)."""
    neg = (-lo - 1).bit_length() + 1 if lo < 0 else 1
    pos = hi.bit_length() + 1 if hi > 0 else 1
    return max(neg, pos)


@dataclass(frozen=True)
class SparseAttentionConfig(EngineConfig):
    """One attention head with length-adaptive top-k sparse attention (after Peng et al.)."""

    kind = "sparse_attention"

    name: str = field(default="attn", metadata={"doc": NAME_DOC})
    max_len: int = field(default=64, metadata={
        "doc": "Longest sequence (1..1024); each sequence has its own runtime length L <= max_len "
               "(no zero padding)."})
    head_dim: int = field(default=16, metadata={
        "doc": "d, elements per Q, K and V row (1..256)."})
    topk: int = field(default=8, metadata={
        "doc": "k, keys kept per query row by the \"topk\" mask and the most the \"threshold\" "
               "mask keeps (1..max_len); a sequence shorter than k keeps all L keys."})
    lanes: int = field(default=4, metadata={
        "doc": "Keys whose estimated scores each row unit computes per cycle (1..64); changes "
               "timing only, never the numbers."})
    rows: int = field(default=1, metadata={
        "doc": "Query rows computed concurrently (1..32, at most max_len): each K row read for "
               "the estimates is broadcast to all row units; changes timing only, never the "
               "numbers."})
    mask: str = field(default="topk", metadata={
        "doc": "Keys attended per query row: \"topk\" (the topk largest estimated scores, ties to "
               "the lower key index), \"threshold\" (of those, the ones whose estimate is at "
               "least the row's largest estimate minus margin), \"window\" (|i - j| <= window "
               "plus global tokens) or \"dense\" (every key); window and dense are the "
               "baselines."})
    window: int = field(default=4, metadata={
        "doc": "Half-width of the \"window\" mask (0..max_len): row i attends keys j with "
               "|i - j| <= window."})
    global_tokens: int = field(default=0, metadata={
        "doc": "\"window\" mask only: the first global_tokens positions (0..max_len) attend every "
               "key and are attended by every row."})
    data_bits: int = field(default=8, metadata={
        "doc": "Width of the signed Q, K and V integers (2..16), two's complement."})
    est_bits: int = field(default=4, metadata={
        "doc": "Signed width of the quantized Q and K used to estimate scores (2..8); values lie "
               "in -q_max..q_max with q_max = 2**(est_bits-1) - 1."})
    margin: int = field(default=64, metadata={
        "doc": "\"threshold\" mask only: row i keeps key j (among its topk best) only if "
               "est[i, j] >= max_j est[i, j] - margin, in estimate units (products of est_bits "
               "integers), 0..2**24; from 2 * head_dim * q_max**2 on, it keeps what \"topk\" "
               "keeps."})
    out_bits: int = field(default=8, metadata={
        "doc": "Width of the signed outputs (2..24)."})
    exp_frac_bits: int = field(default=5, metadata={
        "doc": "Fraction bits of the base-2 softmax exponent (1..10); the exp lookup table has "
               "2**exp_frac_bits entries."})
    exp_bits: int = field(default=15, metadata={
        "doc": "Precision of the exp lookup table (4..24): entry f is 2**exp_bits * "
               "2**(-f / 2**exp_frac_bits), rounded half up."})
    prob_bits: int = field(default=15, metadata={
        "doc": "Fraction bits of the unsigned softmax probabilities (4..24): 1.0 is "
               "2**prob_bits."})
    in_frac_bits: int = field(default=4, metadata={
        "doc": "Fixed-point fraction bits of the Q and K integers (0..data_bits-1); sets only the "
               "logit scale 2**(-2*in_frac_bits) / sqrt(head_dim)."})
    rounding: str = field(default="half_up", metadata={
        "doc": "Rounding of the output requantization: \"floor\" (arithmetic shift) or "
               "\"half_up\" (add half, then floor)."})
    out_overflow: str = field(default="saturate", metadata={
        "doc": "Output overflow rule: \"wrap\" or \"saturate\" to out_bits."})

    def validate(self) -> None:
        check_name("name", self.name)
        check_int("max_len", self.max_len, 1, 1024)
        check_int("head_dim", self.head_dim, 1, 256)
        check_int("topk", self.topk, 1, self.max_len)
        check_int("lanes", self.lanes, 1, 64)
        check_int("rows", self.rows, 1, min(32, self.max_len))
        check_choice("mask", self.mask, ("topk", "threshold", "window", "dense"))
        check_int("window", self.window, 0, self.max_len)
        check_int("global_tokens", self.global_tokens, 0, self.max_len)
        check_int("data_bits", self.data_bits, 2, 16)
        check_int("est_bits", self.est_bits, 2, 8)
        check_int("margin", self.margin, 0, 1 << 24)
        check_int("out_bits", self.out_bits, 2, 24)
        check_int("exp_frac_bits", self.exp_frac_bits, 1, 10)
        check_int("exp_bits", self.exp_bits, 4, 24)
        check_int("prob_bits", self.prob_bits, 4, 24)
        check_int("in_frac_bits", self.in_frac_bits, 0, self.data_bits - 1)
        check_choice("rounding", self.rounding, ("floor", "half_up"))
        check_choice("out_overflow", self.out_overflow, ("wrap", "saturate"))

    # --- inputs and quantization (stages 1-2) ----------------------------------------------

    @property
    def data_range(self) -> tuple[int, int]:
        """(min, max) of a Q, K or V element."""
        return -(1 << (self.data_bits - 1)), (1 << (self.data_bits - 1)) - 1

    @property
    def maxabs_bits(self) -> int:
        """Unsigned width of max|x| of a tensor; up to 2**(data_bits-1) (the minimum value)."""
        return self.data_bits

    @property
    def q_max(self) -> int:
        """Largest quantized magnitude: 2**(est_bits-1) - 1 (7 for 4 bits)."""
        return (1 << (self.est_bits - 1)) - 1

    @property
    def recip_shift(self) -> int:
        """S = 16 + data_bits: fraction bits of the quantization reciprocal
        ``r = floor((q_max << S) / maxabs)``; its error moves ``x * r / 2**S`` by less than
        ``2**(data_bits-1) / 2**S = 2**-17``."""
        return 16 + self.data_bits

    @property
    def recip_bits(self) -> int:
        """Unsigned width of r: at most ``q_max << S`` (maxabs = 1), below 2**(est_bits-1+S)."""
        return (self.q_max << self.recip_shift).bit_length()

    # --- scores (stages 3 and 5) -----------------------------------------------------------

    @property
    def est_score_bits(self) -> int:
        """Signed width of an estimated score: ``|est| <= d * q_max**2``."""
        bound = self.head_dim * self.q_max ** 2
        return signed_bits(-bound, bound)

    @property
    def score_range(self) -> tuple[int, int]:
        """(min, max) of an exact score over valid inputs: max is ``d * min**2``, min is
        ``d * min * max``."""
        lo, hi = self.data_range
        return self.head_dim * lo * hi, self.head_dim * lo * lo

    @property
    def score_bits(self) -> int:
        """Signed width of an exact score."""
        return signed_bits(*self.score_range)

    @property
    def z_bits(self) -> int:
        """Unsigned width of ``z = row max - score``, at most ``max score - min score``."""
        lo, hi = self.score_range
        return (hi - lo).bit_length()

    # --- selection (stage 4) ---------------------------------------------------------------

    @property
    def estimated(self) -> bool:
        """The mask reads the estimated scores ("topk", "threshold"): the hardware quantizes Q and
        K and computes estimates only then."""
        return self.mask in ("topk", "threshold")

    @property
    def max_selected(self) -> int:
        """Most keys one row selects: topk and threshold -> k; dense -> max_len; window -> max_len
        when there are global tokens (a global row attends every key), else min(2*window+1, max_len)."""
        if self.mask in ("topk", "threshold"):
            return self.topk
        if self.mask == "window" and self.global_tokens == 0:
            return min(2 * self.window + 1, self.max_len)
        return self.max_len

    @property
    def sel_bits(self) -> int:
        """ceil(log2(max_selected)); 0 when at most one key is selected."""
        return (self.max_selected - 1).bit_length()

    # --- softmax (stage 6) -----------------------------------------------------------------

    @property
    def logit_scale(self) -> float:
        """Real value of one score unit: 2**(-2*in_frac_bits) / sqrt(head_dim)."""
        return softmax.logit_scale(self.head_dim, self.in_frac_bits)

    @property
    def exp_mult(self) -> int:
        """C_mult: ``softmax.EXP_MULT_BITS`` (16) significant bits, see
        :func:`softmax.exp_multiplier`."""
        return softmax.exp_multiplier(self.head_dim, self.in_frac_bits, self.exp_frac_bits)[0]

    @property
    def exp_shift(self) -> int:
        """C_shift: ``e = (z * C_mult) >> C_shift`` is the exponent with exp_frac_bits fraction
        bits."""
        return softmax.exp_multiplier(self.head_dim, self.in_frac_bits, self.exp_frac_bits)[1]

    @property
    def exponent_bits(self) -> int:
        """Unsigned width of e for the largest z (the RTL may saturate the integer part at
        exp_bits + 1, which gives the same exp value)."""
        lo, hi = self.score_range
        return (((hi - lo) * self.exp_mult) >> self.exp_shift).bit_length()

    @property
    def exp_value_bits(self) -> int:
        """Unsigned width of an exp value and of a table entry: at most 2**exp_bits."""
        return self.exp_bits + 1

    @property
    def sum_bits(self) -> int:
        """Unsigned width of a row sum: at most ``max_selected * 2**exp_bits``."""
        return (self.max_selected << self.exp_bits).bit_length()

    @property
    def row_recip_shift(self) -> int:
        """RS = prob_bits + exp_bits + sel_bits + 1: ``rr = floor(2**RS / sum)``,
        ``p = (exp * rr) >> (RS - prob_bits)``. The guard bit makes the reciprocal's truncation
        cost less than half a probability LSB summed over a whole row."""
        return self.prob_bits + self.exp_bits + self.sel_bits + 1

    @property
    def row_recip_bits(self) -> int:
        """Unsigned width of rr: at most ``2**(RS - exp_bits)`` (sum = 2**exp_bits)."""
        return self.row_recip_shift - self.exp_bits + 1

    @property
    def prob_value_bits(self) -> int:
        """Unsigned width of a probability: at most 2**prob_bits (a row with one key)."""
        return self.prob_bits + 1

    # --- output (stage 7) ------------------------------------------------------------------

    @property
    def acc_bits(self) -> int:
        """Signed width of ``sum_j p_j * V[j, c]``: the probabilities of a row sum to at most
        2**prob_bits, so ``|acc| <= 2**(prob_bits + data_bits - 1)``."""
        lo, hi = self.data_range
        return signed_bits(lo << self.prob_bits, hi << self.prob_bits)

    @property
    def out_range(self) -> tuple[int, int]:
        """(min, max) of an output element."""
        return -(1 << (self.out_bits - 1)), (1 << (self.out_bits - 1)) - 1

    @property
    def lut_size(self) -> int:
        """Entries of the exp lookup table: 2**exp_frac_bits."""
        return 1 << self.exp_frac_bits

    @property
    def exp_lut(self):
        """The exp lookup table (read-only int64 numpy array, one object per (exp_frac_bits,
        exp_bits)); see :func:`softmax.exp_lut`."""
        return softmax.exp_lut(self.exp_frac_bits, self.exp_bits)

    @property
    def logit_scale_log2e(self) -> float:
        """The real factor C_mult / 2**C_shift approximates: log2(e) * logit_scale *
        2**exp_frac_bits."""
        return self.logit_scale * 2 ** self.exp_frac_bits / math.log(2)
