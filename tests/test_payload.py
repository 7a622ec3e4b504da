"""``hwgen.hdl.payload``: the testbenches' packing equals Amaranth's own layout constants, and it
refuses what Amaranth would silently accept.

``pack`` stays hand-written rather than calling ``layout.const(value).as_bits()``: Amaranth's
constant truncates an out-of-range element and zero-fills a missing field without a word (shown
below), which would hide a golden-model value that does not fit its port; and it is about 4x
slower per beat, which the long testbench runs would pay. This file holds the two equal on every
engine's stream layouts, so the hand-written one cannot drift.
"""

from __future__ import annotations

import random

import pytest
from amaranth import signed
from amaranth.hdl import Shape
from amaranth.lib import data

from hwgen.engines.mac_array import MacArrayConfig
from hwgen.engines.mac_array.rtl import act_layout, result_layout, weight_layout
from hwgen.engines.snn import SnnConfig
from hwgen.engines.snn.rtl import out_layout as snn_out_layout
from hwgen.engines.snn.rtl import weights_layout as snn_weights_layout
from hwgen.engines.sparse_attention import SparseAttentionConfig
from hwgen.engines.sparse_attention.rtl import out_layout, token_layout
from hwgen.hdl.payload import pack, unpack

SEED = 20261130

LAYOUTS = {
    "mac weights": weight_layout(MacArrayConfig(sparsity="2:4")),
    "mac codes": weight_layout(MacArrayConfig(weight_set="pow2")),
    "mac acts": act_layout(MacArrayConfig(act_signed=False)),
    "mac results": result_layout(MacArrayConfig()),
    "snn weights": snn_weights_layout(SnnConfig()),
    "snn words": snn_out_layout(SnnConfig()),
    "snn fibers": snn_out_layout(SnnConfig(out_format="fiber")),
    "attention tokens": token_layout(SparseAttentionConfig()),
    "attention out": out_layout(SparseAttentionConfig()),
}


def random_value(layout, rng: random.Random):
    """A random in-range value of ``layout``, extremes over-represented."""
    if isinstance(layout, data.ArrayLayout):
        return [random_value(layout.elem_shape, rng) for _ in range(layout.length)]
    if isinstance(layout, data.StructLayout):
        return {name: random_value(f.shape, rng) for name, f in layout}
    shape = Shape.cast(layout)
    lo = -(1 << (shape.width - 1)) if shape.signed else 0
    hi = lo + (1 << shape.width) - 1
    return rng.choice([lo, hi, 0 if lo <= 0 <= hi else lo, rng.randint(lo, hi)])


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_pack_equals_amaranth_layout_constants(name):
    layout, rng = LAYOUTS[name], random.Random(SEED)
    for _ in range(25):
        value = random_value(layout, rng)
        bits = pack(layout, value)
        assert bits == layout.const(value).as_bits()
        assert unpack(layout, bits) == value


def test_pack_refuses_what_a_layout_constant_accepts():
    layout = data.StructLayout({"a": data.ArrayLayout(signed(4), 3), "last": 1})
    too_big = {"a": [-9, 2, 3], "last": 1}
    missing = {"a": [1, 2], "last": 1}
    layout.const(too_big)              # Amaranth truncates -9 to 7 without a word ...
    layout.const(missing)              # ... and fills the missing element with 0
    with pytest.raises(ValueError, match="-9 does not fit"):
        pack(layout, too_big)
    with pytest.raises(ValueError, match="expected 3 elements, got 2"):
        pack(layout, missing)
