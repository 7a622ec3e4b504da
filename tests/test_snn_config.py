"""SnnConfig validation (exact one-line messages) and the derived widths.

The snn engine is not in the registry yet, so configs are built through the dataclass; a file
loaded through ``load_config`` gives the same message prefixed by the file name.
"""

from __future__ import annotations

import math
import tomllib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.config import ConfigError
from hwgen.engines.snn import golden
from hwgen.engines.snn.config import PRESETS, SnnConfig

NAME_RULE = "an identifier matching [A-Za-z_][A-Za-z0-9_]* of at most 64 characters"
# Defaults: K = 128, 8-bit weights -> 15-bit O, membrane 15 + ceil(log2(4 + 1)) + 1 = 19 bits.
THETA_MAX = (1 << 18) - 1

FIELD_CASES = [
    ("name", '"module"', 'name = "module": expected a name that is not a Verilog keyword'),
    ("name", '"1snn"', f'name = "1snn": expected {NAME_RULE}'),
    ("name", "3", f"name = 3: expected {NAME_RULE}"),
    ("timesteps", "0", "timesteps = 0: expected an integer from 1 to 16"),
    ("timesteps", "17", "timesteps = 17: expected an integer from 1 to 16"),
    ("timesteps", "true", "timesteps = true: expected an integer from 1 to 16"),
    ("timesteps", '"4"', 'timesteps = "4": expected an integer from 1 to 16'),
    ("in_neurons", "0", "in_neurons = 0: expected an integer from 1 to 4096"),
    ("in_neurons", "4097", "in_neurons = 4097: expected an integer from 1 to 4096"),
    ("in_neurons", "128.0", "in_neurons = 128.0: expected an integer from 1 to 4096"),
    ("out_neurons", "0", "out_neurons = 0: expected an integer from 1 to 1024"),
    ("out_neurons", "1025", "out_neurons = 1025: expected an integer from 1 to 1024"),
    ("chunk", "0", "chunk = 0: expected an integer from 4 to 256"),
    ("chunk", "260", "chunk = 260: expected an integer from 4 to 256"),
    ("chunk", "6", "chunk = 6: expected a multiple of 4 from 4 to 256"),
    ("chunk", '"128"', 'chunk = "128": expected an integer from 4 to 256'),
    ("min_spikes", "0", "min_spikes = 0: expected an integer from 1 to 4"),
    ("min_spikes", "5", "min_spikes = 5: expected an integer from 1 to 4"),
    ("pes", "0", "pes = 0: expected an integer from 1 to 64"),
    ("pes", "65", "pes = 65: expected an integer from 1 to 64"),
    ("lif_lanes", "0", "lif_lanes = 0: expected a power of two dividing min(pes, out_neurons) = 4 and chunk = 128 (1 to 4)"),
    ("lif_lanes", "3", "lif_lanes = 3: expected a power of two dividing min(pes, out_neurons) = 4 and chunk = 128 (1 to 4)"),
    ("lif_lanes", "8", "lif_lanes = 8: expected a power of two dividing min(pes, out_neurons) = 4 and chunk = 128 (1 to 4)"),
    ("lif_lanes", "true", "lif_lanes = true: expected a power of two dividing min(pes, out_neurons) = 4 and chunk = 128 (1 to 4)"),
    ("weight_bits", "1", "weight_bits = 1: expected an integer from 2 to 16"),
    ("weight_bits", "17", "weight_bits = 17: expected an integer from 2 to 16"),
    ("join", '"slow"', 'join = "slow": expected one of "fast", "laggy"'),
    ("join", "1", 'join = 1: expected one of "fast", "laggy"'),
    ("laggy_adders", "0", "laggy_adders = 0: expected a power of two from 1 to 64"),
    ("laggy_adders", "128", "laggy_adders = 128: expected a power of two from 1 to 64"),
    ("laggy_adders", "3", "laggy_adders = 3: expected a power of two from 1 to 64"),
    ("laggy_adders", "true", "laggy_adders = true: expected a power of two from 1 to 64"),
    ("dataflow", '"tp"', 'dataflow = "tp": expected one of "ftp", "sequential"'),
    ("in_format", '"csr"', 'in_format = "csr": expected one of "dense", "fiber"'),
    ("out_format", "1", 'out_format = 1: expected one of "dense", "fiber"'),
    ("threshold", "0", f"threshold = 0: expected an integer from 1 to {THETA_MAX}"),
    ("threshold", str(THETA_MAX + 1),
     f"threshold = {THETA_MAX + 1}: expected an integer from 1 to {THETA_MAX}"),
    ("threshold", "64.5", f"threshold = 64.5: expected an integer from 1 to {THETA_MAX}"),
    ("fire", '"eq"', 'fire = "eq": expected one of "ge", "gt"'),
    ("reset", '"hard"', 'reset = "hard": expected one of "zero", "subtract"'),
    ("leak", '"exp"', 'leak = "exp": expected one of "subtract_shift", "shift", "none"'),
    ("leak_shift", "-1", "leak_shift = -1: expected an integer from 0 to 15"),
    ("leak_shift", "16", "leak_shift = 16: expected an integer from 0 to 15"),
    ("rounding", '"even"', 'rounding = "even": expected one of "floor", "half_up"'),
    ("membrane_bits", "2", "membrane_bits = 2: expected an integer from 3 to 48"),
    ("membrane_bits", "49", "membrane_bits = 49: expected an integer from 3 to 48"),
    ("membrane_bits", "true", "membrane_bits = true: expected an integer from 3 to 48"),
    ("membrane_overflow", '"clamp"',
     'membrane_overflow = "clamp": expected one of "wrap", "saturate"'),
    ("pseudo_bits", "7", "pseudo_bits = 7: expected an integer from 8 to 40"),
    ("pseudo_bits", "41", "pseudo_bits = 41: expected an integer from 8 to 40"),
    ("pseudo_bits", "true", "pseudo_bits = true: expected an integer from 8 to 40"),
    ("pseudo_bits", '"12"', 'pseudo_bits = "12": expected an integer from 8 to 40'),
    ("corr_bits", "7", "corr_bits = 7: expected an integer from 8 to 40"),
    ("corr_bits", "41", "corr_bits = 41: expected an integer from 8 to 40"),
    ("corr_bits", "10.0", "corr_bits = 10.0: expected an integer from 8 to 40"),
    ("acc_overflow", '"clamp"', 'acc_overflow = "clamp": expected one of "wrap", "saturate"'),
    ("preset", '"loas"', 'preset = "loas": expected one of "paper"'),
    ("preset", "1", 'preset = 1: expected one of "paper"'),
]


@pytest.mark.parametrize("field, toml_value, expected", FIELD_CASES,
                         ids=[f"{f}={v}" for f, v, _ in FIELD_CASES])
def test_bad_field(field, toml_value, expected):
    value = tomllib.loads(f"v = {toml_value}")["v"]
    with pytest.raises(ConfigError) as info:
        SnnConfig(**{field: value})
    assert str(info.value) == expected
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs, expected", [
    # Bounds that follow other fields.
    (dict(timesteps=2, min_spikes=3), "min_spikes = 3: expected an integer from 1 to 2"),
    (dict(weight_bits=12, pseudo_bits=11), "pseudo_bits = 11: expected an integer from 12 to 40"),
    (dict(weight_bits=12, corr_bits=11), "corr_bits = 11: expected an integer from 12 to 40"),
    (dict(membrane_bits=8, threshold=128), "threshold = 128: expected an integer from 1 to 127"),
    # The threshold bound follows the derived membrane width (12 + 3 + 1 bits with the preset).
    (dict(preset="paper", threshold=1 << 15),
     "threshold = 32768: expected an integer from 1 to 32767"),
    # LIF lanes follow the TPPEs, the neurons and the chunk.
    (dict(pes=6, chunk=12, lif_lanes=4), "lif_lanes = 4: expected a power of two dividing "
     "min(pes, out_neurons) = 6 and chunk = 12 (1 to 2)"),
    (dict(pes=8, out_neurons=3, lif_lanes=2), "lif_lanes = 2: expected a power of two dividing "
     "min(pes, out_neurons) = 3 and chunk = 128 (1 to 1)"),
    # The first bad field in declaration order wins.
    (dict(timesteps=0, chunk=3), "timesteps = 0: expected an integer from 1 to 16"),
])
def test_dependent_bounds(kwargs, expected):
    with pytest.raises(ConfigError) as info:
        SnnConfig(**kwargs)
    assert str(info.value) == expected


@pytest.mark.parametrize("field, value, expected", [
    ("pseudo_bits", 0, "pseudo_bits = 0: expected an integer from 8 to 40"),
    ("pseudo_bits", False, "pseudo_bits = false: expected an integer from 8 to 40"),
    ("corr_bits", 0, "corr_bits = 0: expected an integer from 8 to 40"),
])
def test_zero_width_is_rejected(field, value, expected):
    with pytest.raises(ConfigError) as info:
        SnnConfig(**{field: value})
    assert str(info.value) == expected


# --- derived widths ------------------------------------------------------------------------

def test_default_widths_are_worst_case():
    cfg = SnnConfig()
    assert (cfg.worst_case_bits, cfg.acc_bits, cfg.correction_bits, cfg.u_bits, cfg.chunks) == \
        (15, 15, 15, 19, 1)


@pytest.mark.parametrize("kwargs, worst, u_bits, chunks", [
    (dict(in_neurons=1), 8, 8 + 3 + 1, 1),
    (dict(in_neurons=2), 9, 9 + 3 + 1, 1),
    (dict(in_neurons=129, chunk=16), 16, 16 + 3 + 1, 9),
    (dict(in_neurons=4096, weight_bits=16, timesteps=16, chunk=256), 28, 28 + 5 + 1, 16),
    (dict(in_neurons=200, timesteps=1, chunk=128), 16, 16 + 1 + 1, 2),
    (dict(in_neurons=37, timesteps=7, weight_bits=5, chunk=8, laggy_adders=8), 11, 11 + 3 + 1,
     5),
])
def test_worst_case_widths(kwargs, worst, u_bits, chunks):
    cfg = SnnConfig(**kwargs)
    assert (cfg.worst_case_bits, cfg.acc_bits, cfg.correction_bits) == (worst, worst, worst)
    assert (cfg.u_bits, cfg.chunks) == (u_bits, chunks)


def test_paper_preset_widths():
    assert PRESETS["paper"] == {"pseudo_bits": 12, "corr_bits": 10}
    cfg = SnnConfig(preset="paper")
    assert (cfg.acc_bits, cfg.correction_bits, cfg.u_bits, cfg.acc_overflow) == \
        (12, 10, 12 + 3 + 1, "wrap")
    # The fields themselves stay absent: the preset fills them in only through the properties.
    assert (cfg.pseudo_bits, cfg.corr_bits) == (None, None)


@pytest.mark.parametrize("kwargs, acc, corr", [
    (dict(preset="paper", pseudo_bits=14), 14, 10),
    (dict(preset="paper", corr_bits=11), 12, 11),
    (dict(preset="paper", pseudo_bits=20, corr_bits=9), 20, 9),
    (dict(pseudo_bits=9), 9, 15),
    (dict(corr_bits=9), 15, 9),
])
def test_explicit_width_wins_over_preset(kwargs, acc, corr):
    cfg = SnnConfig(**kwargs)
    assert (cfg.acc_bits, cfg.correction_bits) == (acc, corr)
    assert cfg.u_bits == acc + 3 + 1


def test_explicit_membrane_width_wins():
    assert SnnConfig(membrane_bits=10).u_bits == 10
    assert SnnConfig(preset="paper", membrane_bits=40).u_bits == 40


@settings(max_examples=80, deadline=None, derandomize=True)
@given(st.integers(1, 4096), st.integers(2, 16), st.integers(1, 16))
def test_worst_case_widths_hold_the_extreme_sums(k, weight_bits, timesteps):
    """K weights of either extreme fit acc_bits; T such sums (no leak, never firing) fit u_bits."""
    cfg = SnnConfig(in_neurons=k, weight_bits=weight_bits, timesteps=timesteps,
                    chunk=256, threshold=1)
    lo, hi = -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1
    acc_lo, acc_hi = -(1 << (cfg.acc_bits - 1)), (1 << (cfg.acc_bits - 1)) - 1
    assert acc_lo <= k * lo and k * hi <= acc_hi
    assert cfg.acc_bits == weight_bits + math.ceil(math.log2(k))     # and not a bit more
    u_lo = -(1 << (cfg.u_bits - 1))
    assert u_lo <= timesteps * acc_lo


def test_membrane_never_saturates_with_worst_case_widths():
    """The most negative O at every step, no leak: X ends at exactly T * O_min."""
    cfg = SnnConfig(in_neurons=4096, weight_bits=16, timesteps=16, chunk=256, leak="none")
    o_min = -(1 << (cfg.acc_bits - 1))
    trace = golden.lif(np.full(16, o_min), cfg)
    assert trace.x.tolist() == [o_min * (t + 1) for t in range(16)]
    assert trace.spikes.sum() == 0


def test_preset_too_narrow_for_the_weights_names_the_preset():
    with pytest.raises(ConfigError) as info:
        SnnConfig(preset="paper", weight_bits=11)
    assert str(info.value) == ('preset = "paper": expected a preset whose corr_bits (10) holds '
                               'weight_bits = 11; set corr_bits explicitly')


@pytest.mark.parametrize("kwargs, lanes", [
    (dict(), 1),                                          # dense out: one word per cycle
    (dict(out_format="fiber"), 4),                        # the most: P = 4
    (dict(out_format="fiber", pes=16, out_neurons=64), 16),
    (dict(out_format="fiber", pes=6, chunk=12), 2),       # a power of two dividing 6 and 12
    (dict(out_format="fiber", pes=8, out_neurons=3), 1),  # P = min(pes, N) = 3
    (dict(lif_lanes=2), 2),                               # explicit wins, dense too
])
def test_lif_lanes(kwargs, lanes):
    assert SnnConfig(**kwargs).lanes == lanes


def test_laggy_adders_default_fits_small_chunks():
    assert SnnConfig(chunk=8).adders == 8
    assert SnnConfig(chunk=12).adders == 16
    assert SnnConfig(chunk=128).adders == 16
    assert SnnConfig(chunk=128, laggy_adders=4).adders == 4
    assert SnnConfig(chunk=8, laggy_adders=64).adders == 8
