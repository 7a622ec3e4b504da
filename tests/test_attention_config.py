"""SparseAttentionConfig validation (exact one-line messages) and the derived widths/constants.

The sparse_attention engine is not in the registry yet, so configs are built through the
dataclass. Expected widths are derived by hand in the comments or recomputed from the worst-case
values with plain Python integers.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.config import ConfigError, example_toml
from hwgen.engines.sparse_attention import SparseAttentionConfig
from hwgen.engines.sparse_attention.config import signed_bits

NAME_RULE = "an identifier matching [A-Za-z_][A-Za-z0-9_]* of at most 64 characters"
SETTINGS = settings(max_examples=80, deadline=None, derandomize=True)
INT64_MAX = (1 << 63) - 1


def error(**kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        SparseAttentionConfig(**kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- one case per field and kind of bad value: (field, TOML value, expected message) ---------

FIELD_CASES = [
    ("name", '"module"', 'name = "module": expected a name that is not a Verilog keyword'),
    ("name", '"2attn"', f'name = "2attn": expected {NAME_RULE}'),
    ("name", "7", f"name = 7: expected {NAME_RULE}"),
    ("max_len", "0", "max_len = 0: expected an integer from 1 to 1024"),
    ("max_len", "1025", "max_len = 1025: expected an integer from 1 to 1024"),
    ("max_len", "64.0", "max_len = 64.0: expected an integer from 1 to 1024"),
    ("max_len", "true", "max_len = true: expected an integer from 1 to 1024"),
    ("head_dim", "0", "head_dim = 0: expected an integer from 1 to 256"),
    ("head_dim", "257", "head_dim = 257: expected an integer from 1 to 256"),
    ("head_dim", '"16"', 'head_dim = "16": expected an integer from 1 to 256'),
    # topk, window and global_tokens are bounded by max_len (64 by default).
    ("topk", "0", "topk = 0: expected an integer from 1 to 64"),
    ("topk", "65", "topk = 65: expected an integer from 1 to 64"),
    ("topk", "false", "topk = false: expected an integer from 1 to 64"),
    ("lanes", "0", "lanes = 0: expected an integer from 1 to 64"),
    ("lanes", "65", "lanes = 65: expected an integer from 1 to 64"),
    ("rows", "0", "rows = 0: expected an integer from 1 to 32"),
    ("rows", "33", "rows = 33: expected an integer from 1 to 32"),
    ("mask", '"sparse"',
     'mask = "sparse": expected one of "topk", "threshold", "window", "dense"'),
    ("mask", "1", 'mask = 1: expected one of "topk", "threshold", "window", "dense"'),
    ("window", "-1", "window = -1: expected an integer from 0 to 64"),
    ("window", "65", "window = 65: expected an integer from 0 to 64"),
    ("global_tokens", "-1", "global_tokens = -1: expected an integer from 0 to 64"),
    ("global_tokens", "65", "global_tokens = 65: expected an integer from 0 to 64"),
    ("data_bits", "1", "data_bits = 1: expected an integer from 2 to 16"),
    ("data_bits", "17", "data_bits = 17: expected an integer from 2 to 16"),
    ("est_bits", "1", "est_bits = 1: expected an integer from 2 to 8"),
    ("est_bits", "9", "est_bits = 9: expected an integer from 2 to 8"),
    ("margin", "-1", "margin = -1: expected an integer from 0 to 16777216"),
    ("margin", "16777217", "margin = 16777217: expected an integer from 0 to 16777216"),
    ("out_bits", "1", "out_bits = 1: expected an integer from 2 to 24"),
    ("out_bits", "25", "out_bits = 25: expected an integer from 2 to 24"),
    ("exp_frac_bits", "0", "exp_frac_bits = 0: expected an integer from 1 to 10"),
    ("exp_frac_bits", "11", "exp_frac_bits = 11: expected an integer from 1 to 10"),
    ("exp_bits", "3", "exp_bits = 3: expected an integer from 4 to 24"),
    ("exp_bits", "25", "exp_bits = 25: expected an integer from 4 to 24"),
    ("prob_bits", "3", "prob_bits = 3: expected an integer from 4 to 24"),
    ("prob_bits", "25", "prob_bits = 25: expected an integer from 4 to 24"),
    # in_frac_bits is bounded by data_bits - 1 (7 by default).
    ("in_frac_bits", "-1", "in_frac_bits = -1: expected an integer from 0 to 7"),
    ("in_frac_bits", "8", "in_frac_bits = 8: expected an integer from 0 to 7"),
    ("rounding", '"even"', 'rounding = "even": expected one of "floor", "half_up"'),
    ("out_overflow", '"clamp"', 'out_overflow = "clamp": expected one of "wrap", "saturate"'),
]


@pytest.mark.parametrize("field, toml_value, expected", FIELD_CASES,
                         ids=[f"{f}={v}" for f, v, _ in FIELD_CASES])
def test_bad_field(field, toml_value, expected):
    value = tomllib.loads(f"v = {toml_value}")["v"]
    assert error(**{field: value}) == expected


def test_every_field_has_a_bad_value_case():
    covered = {f for f, _, _ in FIELD_CASES}
    assert covered == {f.name for f in dataclasses.fields(SparseAttentionConfig)}


@pytest.mark.parametrize("kwargs, expected", [
    ({"max_len": 8, "topk": 9}, "topk = 9: expected an integer from 1 to 8"),
    ({"max_len": 8, "topk": 8, "window": 9}, "window = 9: expected an integer from 0 to 8"),
    ({"max_len": 8, "topk": 8, "global_tokens": 9},
     "global_tokens = 9: expected an integer from 0 to 8"),
    ({"max_len": 4, "topk": 4, "rows": 5}, "rows = 5: expected an integer from 1 to 4"),
    ({"data_bits": 4, "in_frac_bits": 4}, "in_frac_bits = 4: expected an integer from 0 to 3"),
    ({"data_bits": 2, "in_frac_bits": 1}, None),
    # The first bad field in declaration order wins (max_len before topk, head_dim).
    ({"max_len": 0, "head_dim": 0, "topk": 0}, "max_len = 0: expected an integer from 1 to 1024"),
    ({"head_dim": 0, "est_bits": 0}, "head_dim = 0: expected an integer from 1 to 256"),
])
def test_dependent_bounds(kwargs, expected):
    if expected is None:
        SparseAttentionConfig(**kwargs)
    else:
        assert error(**kwargs) == expected


def test_defaults_and_frozen():
    cfg = SparseAttentionConfig()
    assert cfg.kind == "sparse_attention"
    assert (cfg.name, cfg.max_len, cfg.head_dim, cfg.topk, cfg.lanes, cfg.mask, cfg.window,
            cfg.global_tokens, cfg.data_bits, cfg.est_bits, cfg.out_bits, cfg.exp_frac_bits,
            cfg.exp_bits, cfg.prob_bits, cfg.in_frac_bits, cfg.rounding, cfg.out_overflow) == \
        ("attn", 64, 16, 8, 4, "topk", 4, 0, 8, 4, 8, 5, 15, 15, 4, "half_up", "saturate")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.topk = 4


def test_example_toml_round_trip():
    """Every field has a doc; the generated TOML gives the default config back."""
    data = tomllib.loads(example_toml(SparseAttentionConfig))
    assert data.pop("engine") == "sparse_attention"
    assert SparseAttentionConfig(**data) == SparseAttentionConfig()


# --- derived widths and constants ----------------------------------------------------------

@pytest.mark.parametrize("lo, hi, bits", [
    (0, 0, 1), (-1, 0, 1), (0, 1, 2), (-128, 127, 8), (-129, 0, 9), (0, 128, 9), (-2, 1, 2),
    (-260096, 262144, 20),
])
def test_signed_bits(lo, hi, bits):
    assert signed_bits(lo, hi) == bits


def test_default_derived_values():
    cfg = SparseAttentionConfig()
    assert cfg.q_max == 7
    assert cfg.data_range == (-128, 127)
    assert cfg.recip_shift == 24                       # 16 + data_bits
    assert cfg.recip_bits == 27                        # 7 << 24 < 2**27
    assert cfg.est_score_bits == 11                    # 16 * 49 = 784 < 2**10
    assert cfg.score_range == (16 * -128 * 127, 16 * 128 * 128)
    assert cfg.score_bits == 20                        # 2**18 needs 19 bits plus a sign
    assert cfg.z_bits == 19                            # 522240 < 2**19
    assert (cfg.max_selected, cfg.sel_bits) == (8, 3)
    assert cfg.logit_scale == 2.0 ** -10               # 2**-8 / sqrt(16)
    assert cfg.exp_value_bits == 16
    assert cfg.sum_bits == 19                          # 8 * 2**15 = 2**18
    assert cfg.row_recip_shift == 15 + 15 + 3 + 1
    assert cfg.row_recip_bits == 20                    # rr <= 2**19
    assert cfg.prob_value_bits == 16
    assert cfg.acc_bits == 23                          # |acc| <= 2**15 * 2**7
    assert cfg.out_range == (-128, 127)
    assert cfg.lut_size == 32
    # X = 2**(5 - 8) / (ln 2 * 4) = 0.0450842...; 2**15 <= X * 2**20 < 2**16.
    assert cfg.exp_shift == 20
    x = 2.0 ** -3 / (math.log(2) * 4)
    assert cfg.exp_mult == math.floor(x * 2 ** 20 + 0.5)
    assert cfg.logit_scale_log2e == pytest.approx(x, rel=1e-15)
    # The largest z times C_mult, shifted: 522240 * 47274 >> 20 = 23545.
    assert cfg.exponent_bits == ((522240 * cfg.exp_mult) >> 20).bit_length()


@pytest.mark.parametrize("kwargs, selected", [
    ({"mask": "topk", "topk": 5}, 5),
    ({"mask": "dense"}, 64),
    ({"mask": "window", "window": 4}, 9),
    ({"mask": "window", "window": 0}, 1),
    ({"mask": "window", "window": 40}, 64),
    ({"mask": "window", "window": 31}, 63),
    ({"mask": "window", "window": 32}, 64),
    ({"mask": "window", "window": 1, "global_tokens": 1}, 64),
    ({"mask": "window", "max_len": 1, "topk": 1, "window": 1}, 1),
])
def test_max_selected(kwargs, selected):
    cfg = SparseAttentionConfig(**kwargs)
    assert cfg.max_selected == selected
    assert cfg.sel_bits == math.ceil(math.log2(selected))
    assert cfg.row_recip_shift == cfg.prob_bits + cfg.exp_bits + cfg.sel_bits + 1


CONFIGS = st.builds(
    SparseAttentionConfig,
    max_len=st.sampled_from([1, 2, 7, 64, 1000, 1024]),
    head_dim=st.integers(1, 256),
    topk=st.just(1),
    mask=st.sampled_from(["topk", "threshold", "window", "dense"]),
    window=st.integers(0, 1),
    data_bits=st.integers(2, 16),
    est_bits=st.integers(2, 8),
    out_bits=st.integers(2, 24),
    exp_frac_bits=st.integers(1, 10),
    exp_bits=st.integers(4, 24),
    prob_bits=st.integers(4, 24),
    in_frac_bits=st.just(0),
)


@SETTINGS
@given(CONFIGS)
def test_worst_case_widths_hold_the_extremes_and_are_minimal(cfg):
    lo, hi = cfg.data_range
    d = cfg.head_dim

    def fits(value, bits):
        return -(1 << (bits - 1)) <= value <= (1 << (bits - 1)) - 1

    # Exact scores: the extremes are d * lo * lo and d * lo * hi.
    extremes = [d * a * b for a in (lo, hi) for b in (lo, hi)]
    assert all(fits(s, cfg.score_bits) for s in extremes)
    assert not all(fits(s, cfg.score_bits - 1) for s in extremes)
    assert cfg.score_range == (min(extremes), max(extremes))
    assert (max(extremes) - min(extremes)).bit_length() == cfg.z_bits
    # Estimated scores: +-d * q_max**2.
    q = cfg.q_max
    assert q == 2 ** (cfg.est_bits - 1) - 1
    assert fits(d * q * q, cfg.est_score_bits) and fits(-d * q * q, cfg.est_score_bits)
    assert not fits(d * q * q, cfg.est_score_bits - 1)
    # Quantization reciprocal: r of maxabs = 1 is the largest.
    assert (q << cfg.recip_shift) < 1 << cfg.recip_bits
    assert (q << cfg.recip_shift) >= 1 << (cfg.recip_bits - 1)
    # Output accumulator: probabilities sum to at most 2**prob_bits.
    pb = cfg.prob_bits
    assert fits(lo << pb, cfg.acc_bits) and fits(hi << pb, cfg.acc_bits)
    assert not fits(lo << pb, cfg.acc_bits - 1)
    # Row reciprocal: largest when the row sum is 2**exp_bits.
    rr_max = (1 << cfg.row_recip_shift) >> cfg.exp_bits
    assert rr_max.bit_length() == cfg.row_recip_bits
    assert (cfg.max_selected << cfg.exp_bits).bit_length() == cfg.sum_bits


@SETTINGS
@given(st.integers(1, 256), st.integers(2, 16), st.integers(1, 10), st.integers(4, 24),
       st.integers(4, 24), st.integers(1, 1024), st.integers(2, 8), st.data())
def test_every_intermediate_fits_int64(d, data_bits, efb, eb, pb, max_len, est_bits, data):
    """Worst-case products of every stage stay below 2**63 (the golden model is int64)."""
    ifb = data.draw(st.integers(0, data_bits - 1))
    cfg = SparseAttentionConfig(head_dim=d, data_bits=data_bits, exp_frac_bits=efb, exp_bits=eb,
                                prob_bits=pb, max_len=max_len, topk=max_len, est_bits=est_bits,
                                in_frac_bits=ifb, window=0)
    lo = cfg.data_range[0]
    z_max = cfg.score_range[1] - cfg.score_range[0]
    rr_max = (1 << cfg.row_recip_shift) >> cfg.exp_bits
    for value in (abs(lo) * (cfg.q_max << cfg.recip_shift) + (1 << cfg.recip_shift),
                  z_max * cfg.exp_mult,
                  (1 << cfg.exp_bits) * rr_max,
                  1 << cfg.row_recip_shift,
                  abs(lo) << pb + 1):
        assert value <= INT64_MAX
    assert cfg.exp_shift >= 5
    assert 1 << 15 <= cfg.exp_mult < 1 << 16
