"""Power-aware weight-set selection (hwgen/power/select.py), against brute force.

Every random case draws from ``numpy.random.default_rng(seed)`` with the seed in the test. The
multiplier cost tables come from the shared calibration cache (the first use of a shape runs
Yosys once, about a second).
"""

import io
import math
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from hwgen.cli import main
from hwgen.config import ConfigError
from hwgen.emit.folders import FolderError, check_output_folder
from hwgen.engines.mac_array import MacArrayConfig
from hwgen.engines.mac_array.weight_set import project
from hwgen.power import report, select
from hwgen.power.calibration import multiplier_cost
from hwgen.power.select import (
    Layer,
    SelectionError,
    check_layer,
    layer_config,
    select_weight_sets,
    value_costs,
)

CFG = MacArrayConfig()                                      # 8-bit signed weights and acts
SMALL = MacArrayConfig(weight_bits=4, act_bits=4)           # 4-bit signed weights and acts


@pytest.fixture(scope="module")
def cost8():
    return multiplier_cost(8, 8, True)


def popcount(x: int) -> int:
    return (x).bit_count()


def brute_costs(cfg, acts, cost):
    """F[k, v - w_min] from the module doc, one Python integer at a time."""
    act_mask, prod_mask = (1 << cfg.act_bits) - 1, (1 << cfg.prod_bits) - 1
    w_min = -(1 << (cfg.weight_bits - 1))
    b, k = acts.shape
    out = np.zeros((k, 1 << cfg.weight_bits))
    for kk in range(k):
        for j in range(1 << cfg.weight_bits):
            v = w_min + j
            total = 0.0
            for bb in range(b - 1):
                a0, a1 = int(acts[bb, kk]), int(acts[bb + 1, kk])
                total += float(cost.of(np.array([v]))[0]) * popcount((a0 ^ a1) & act_mask)
                total += popcount(((v * a0) ^ (v * a1)) & prod_mask)
            out[kk, j] = total
    return out


def rel_error(weights, projected, acts):
    """||A (Wp - W)|| / ||A W|| in exact integers, then one float division."""
    a = acts.astype(object)
    num = sum(int(x) ** 2 for x in (a @ (projected - weights).astype(object)).ravel())
    den = sum(int(x) ** 2 for x in (a @ weights.astype(object)).ravel())
    return math.sqrt(num) / math.sqrt(den) if den else 0.0


def surrogate(table, cfg, weights):
    w_min = -(1 << (cfg.weight_bits - 1))
    return float(table[np.arange(weights.shape[0])[:, None], weights - w_min].sum())


def random_layer(seed, name="fc", k=6, c=5, b=12, spread=12, act_lo=-128, act_hi=127):
    rng = np.random.default_rng(seed)
    return Layer(name, rng.integers(-spread, spread + 1, (k, c)),
                 rng.integers(act_lo, act_hi + 1, (b, k)))


# --- the surrogate -----------------------------------------------------------------------------

@pytest.mark.parametrize("act_signed", [True, False])
def test_value_costs_match_brute_force(act_signed):
    cfg = MacArrayConfig(weight_bits=4, act_bits=4, act_signed=act_signed)
    cost = multiplier_cost(4, 4, act_signed)
    rng = np.random.default_rng(11)                       # seed 11: K = 3, B = 5
    lo, hi = (-8, 7) if act_signed else (0, 15)
    acts = rng.integers(lo, hi + 1, (5, 3))
    got = value_costs(cfg, acts, cost)
    assert got.shape == (3, 16) and got.dtype == np.float64
    np.testing.assert_allclose(got, brute_costs(cfg, acts, cost), rtol=1e-12)


def test_value_costs_chunks_agree(monkeypatch, cost8):
    """Blocks of rows overlap by one row: chunking does not change the table."""
    from hwgen.power import select

    acts = np.random.default_rng(12).integers(-128, 128, (50, 7))
    whole = value_costs(CFG, acts, cost8)
    monkeypatch.setattr(select, "_CHUNK_ELEMENTS", 7 * 3)   # three rows per block
    np.testing.assert_array_equal(value_costs(CFG, acts, cost8), whole)


def test_value_costs_rejects_bad_acts(cost8):
    with pytest.raises(ValueError, match=r"acts: shape \(1, 3\): expected \(B, K\) with B >= 2"):
        value_costs(CFG, np.zeros((1, 3), dtype=np.int64), cost8)
    with pytest.raises(ValueError, match="activation 128 at"):
        value_costs(CFG, np.full((2, 3), 128), cost8)


# --- the greedy path, checked step by step -----------------------------------------------------

def candidate_scores(cfg, layers, sets, table):
    """Every candidate (key, layer index, value, new global error) by brute force."""
    errors = [rel_error(layer.weights, project(layer.weights, s), layer.acts)
              for layer, s in zip(layers, sets)]
    out = []
    for n, (layer, s) in enumerate(zip(layers, sets)):
        if len(s) <= 2:
            continue
        now = project(layer.weights, s)
        for v in s:
            if v == 0:
                continue
            after = project(layer.weights, [x for x in s if x != v])
            saving = surrogate(table[n], cfg, now) - surrogate(table[n], cfg, after)
            new_error = rel_error(layer.weights, after, layer.acts)
            d_error = new_error - errors[n]
            ratio = math.inf if d_error <= 1e-15 else saving / d_error
            out.append(((-ratio, -saving, abs(v), v, n), n, v,
                        sum(errors) - errors[n] + new_error))
    return out


def replay(layers, selection):
    """The sets after every path point, from the starting sets and the removed values."""
    sets = [sorted(set(np.unique(layer.weights).tolist()) | {0}) for layer in layers]
    names = [layer.name for layer in layers]
    states = [[list(s) for s in sets]]
    for point in selection.path:
        n = names.index(point.layer)
        sets[n] = [v for v in sets[n] if v != point.removed]
        states.append([list(s) for s in sets])
    return states


def test_greedy_path_matches_brute_force(cost8):
    layers = [random_layer(21, "a"), random_layer(22, "b", k=4, c=3, b=20, spread=6)]
    table = [value_costs(CFG, layer.acts, cost8) for layer in layers]
    sel = select_weight_sets(CFG, layers, max_error=None, max_values=2, cost=cost8)
    states = replay(layers, sel)
    assert len(sel.path) == sum(len(s) - 2 for s in states[0])
    for step, point in enumerate(sel.path):
        scores = candidate_scores(CFG, layers, states[step], table)
        best = min(scores)
        assert (point.layer, point.removed) == (layers[best[1]].name, best[2]), step
        assert point.removed != 0
        # Sizes drop by one in the named layer only.
        for layer, before, after in zip(layers, states[step], states[step + 1]):
            expected = len(before) - (layer.name == point.layer)
            assert point.sizes[layer.name] == expected == len(after)
        # The path's error and surrogate equal an independent recomputation.
        errors = [rel_error(layer.weights, project(layer.weights, s), layer.acts)
                  for layer, s in zip(layers, states[step + 1])]
        assert point.error == pytest.approx(sum(errors), rel=1e-9, abs=1e-12)
        for n, (layer, s) in enumerate(zip(layers, states[step + 1])):
            assert point.surrogate[layer.name] == pytest.approx(
                surrogate(table[n], CFG, project(layer.weights, s)), rel=1e-12)
    for layer, chosen, final in zip(layers, sel.layers, states[-1]):
        assert chosen.values == tuple(final) and 0 in chosen.values and len(final) == 2
        np.testing.assert_array_equal(chosen.projected, project(layer.weights, final))
        assert chosen.surrogate_before == pytest.approx(surrogate(
            table[layers.index(layer)], CFG, layer.weights), rel=1e-12)


def test_zero_is_never_removed_even_when_unused(cost8):
    layer = Layer("fc", np.array([[5, -7], [9, 3]]), np.random.default_rng(31).integers(
        -128, 128, (10, 2)))
    sel = select_weight_sets(CFG, [layer], max_error=None, max_values=2, cost=cost8)
    assert all(point.removed != 0 for point in sel.path)
    assert 0 in sel.layers[0].values and len(sel.layers[0].values) == 2
    assert [point.sizes["fc"] for point in sel.path] == [4, 3, 2]


def test_removal_without_output_change_goes_first(cost8):
    """Values used only where the activation is always 0 cost no error: removed first, even
    with a zero budget, and the error stays 0."""
    rng = np.random.default_rng(41)
    weights = rng.integers(-10, 11, (4, 5))
    weights[3] = [50, 60, 70, 50, 60]                  # values only in row 3
    acts = rng.integers(-128, 128, (16, 4))
    acts[:, 3] = 0                                      # row 3 never sees an activation
    layer = Layer("fc", weights, acts)
    sel = select_weight_sets(CFG, [layer], max_error=0.0, cost=cost8)
    assert {p.removed for p in sel.path[:3]} == {50, 60, 70}
    assert all(p.error == 0.0 for p in sel.path)
    assert sel.error == 0.0
    assert not {50, 60, 70} & set(sel.layers[0].values)
    # With a zero budget nothing that changes the output goes.
    np.testing.assert_array_equal(acts @ sel.layers[0].projected, acts @ weights)


def test_budget_respected_and_stop_is_final(cost8):
    layers = [random_layer(51, "a", k=6, c=6, b=16), random_layer(52, "b", k=5, c=4, b=24)]
    table = [value_costs(CFG, layer.acts, cost8) for layer in layers]
    for budget in (0.02, 0.1, 0.3):
        sel = select_weight_sets(CFG, layers, max_error=budget, cost=cost8)
        assert sel.error <= budget
        assert sel.error == pytest.approx(sum(
            rel_error(layer.weights, chosen.projected, layer.acts)
            for layer, chosen in zip(layers, sel.layers)), rel=1e-9, abs=1e-12)
        assert all(p.error <= budget for p in sel.path)
        # Stop rule: every remaining removal would exceed the budget (or sets are minimal).
        sets = [list(chosen.values) for chosen in sel.layers]
        for _, _, _, new_global in candidate_scores(CFG, layers, sets, table):
            assert new_global > budget


def test_projection_is_nearest_member(cost8):
    layer = random_layer(61, k=8, c=7, b=10, spread=40)
    sel = select_weight_sets(CFG, [layer], max_error=0.2, cost=cost8)
    chosen = sel.layers[0]
    s = np.array(chosen.values)
    assert np.isin(chosen.projected, s).all()
    distance = np.abs(layer.weights[..., None] - s).min(axis=-1)
    np.testing.assert_array_equal(np.abs(chosen.projected - layer.weights), distance)
    assert chosen.projected.dtype == np.int64 and chosen.projected.shape == layer.weights.shape
    assert chosen.error == pytest.approx(rel_error(layer.weights, chosen.projected, layer.acts),
                                         rel=1e-9)


def test_max_values_forces_sets_then_budget_continues(cost8):
    layers = [random_layer(71, "a"), random_layer(72, "b")]
    forced = select_weight_sets(CFG, layers, max_error=None, max_values=5, cost=cost8)
    assert [len(ls.values) for ls in forced.layers] == [5, 5]
    # With a generous budget as well, the path goes on below 5 values where the error allows.
    both = select_weight_sets(CFG, layers, max_error=10.0, max_values=5, cost=cost8)
    assert all(len(ls.values) <= 5 for ls in both.layers)
    assert [len(ls.values) for ls in both.layers] == [2, 2]
    assert both.path[:len(forced.path)] == forced.path


def test_max_values_above_the_sizes_changes_nothing(cost8):
    layer = random_layer(73)
    sel = select_weight_sets(CFG, [layer], max_error=None, max_values=255, cost=cost8)
    assert sel.path == () and sel.error == 0.0
    np.testing.assert_array_equal(sel.layers[0].projected, layer.weights)
    assert sel.layers[0].surrogate_after == sel.layers[0].surrogate_before


def test_infeasible_max_values_raises_exact_message(cost8):
    layers = [random_layer(81, "a"), random_layer(82, "b")]
    needed = select_weight_sets(CFG, layers, max_error=None, max_values=3, cost=cost8).error
    budget = float(f"{needed / 2:.2g}")
    assert f"{needed:.3g}" != f"{budget:.3g}"
    with pytest.raises(SelectionError) as info:
        select_weight_sets(CFG, layers, max_error=budget, max_values=3, cost=cost8)
    assert str(info.value) == (f"max_values = 3 needs output error {needed:.3g} > max_error "
                               f"{budget:.3g}")
    assert isinstance(info.value, ValueError)


def test_higher_energy_layer_gets_the_smaller_set(cost8):
    """Two layers with the same weights; one streams its activation rows four times (4x the
    switching, the same relative error for the same set). Under one budget the greedy removes
    more from it."""
    rng = np.random.default_rng(91)
    weights = rng.integers(-20, 21, (6, 6))
    acts = rng.integers(-128, 128, (12, 6))
    layers = [Layer("low", weights, acts), Layer("high", weights, np.tile(acts, (4, 1)))]
    sel = select_weight_sets(CFG, layers, max_error=0.15, cost=cost8)
    low, high = sel.layers
    assert high.surrogate_before > 3.9 * low.surrogate_before
    assert len(high.values) < len(low.values)
    assert high.error > low.error
    assert sel.error <= 0.15


def test_same_inputs_same_path(cost8):
    layers = [random_layer(95, "a"), random_layer(96, "b")]
    one = select_weight_sets(CFG, layers, max_error=0.1, cost=cost8)
    two = select_weight_sets(CFG, layers, max_error=0.1, cost=cost8)
    assert one.path == two.path
    assert [ls.values for ls in one.layers] == [ls.values for ls in two.layers]


def test_zero_output_layer_has_zero_error(cost8):
    weights = np.array([[3, -4, 7], [1, 2, -6]])
    acts = np.zeros((5, 2), dtype=np.int64)
    sel = select_weight_sets(CFG, [Layer("z", weights, acts)], max_error=0.0, cost=cost8)
    assert sel.error == 0.0 and len(sel.layers[0].values) == 2


def test_default_cost_and_small_widths():
    layer = random_layer(97, spread=7, act_lo=-8, act_hi=7)
    sel = select_weight_sets(SMALL, [layer], max_error=0.1)
    assert sel.error <= 0.1
    assert set(sel.layers[0].values) <= set(range(-8, 8))


# --- layer_config ------------------------------------------------------------------------------

def test_layer_config(cost8):
    layer = random_layer(99, "fc1")
    sel = select_weight_sets(CFG, [layer], max_error=0.1, cost=cost8)
    cfg = layer_config(MacArrayConfig(name="net", rows=2, cols=3), sel.layers[0])
    assert cfg.name == "net_fc1" and cfg.rows == 2 and cfg.cols == 3
    assert cfg.weight_set == sel.layers[0].values and cfg.codebook == sel.layers[0].values
    with pytest.raises(ValueError, match="its config name is not allowed"):
        layer_config(MacArrayConfig(name="n" * 61), sel.layers[0])


# --- validation --------------------------------------------------------------------------------

LAYER = Layer("fc", np.array([[1, 2], [3, 0]]), np.array([[1, 2], [3, 4]]))


@pytest.mark.parametrize("kwargs, message", [
    ({"max_error": -0.1}, "max_error = -0.1: expected a finite number >= 0"),
    ({"max_error": math.nan}, "max_error = nan: expected a finite number >= 0"),
    ({"max_error": math.inf}, "max_error = inf: expected a finite number >= 0"),
    ({"max_error": "0.1"}, "max_error = '0.1': expected a finite number >= 0"),
    ({"max_error": 0.1, "max_values": 1},
     "max_values = 1: expected an integer >= 2 (0 and one other value)"),
    ({"max_error": 0.1, "max_values": 2.5},
     "max_values = 2.5: expected an integer >= 2 (0 and one other value)"),
    ({"max_error": None}, ("max_error = None: expected a number >= 0, or max_values to give a "
                          "set size instead")),
])
def test_bad_budget(kwargs, message):
    with pytest.raises(ValueError) as info:
        select_weight_sets(CFG, [LAYER], **kwargs)
    assert str(info.value) == message


def bad_layers():
    ok_w, ok_a = LAYER.weights, LAYER.acts
    return [
        ([], "layers: expected at least one layer"),
        ([LAYER, LAYER], "layer name 'fc' is used twice: expected distinct names"),
        ([Layer("1fc", ok_w, ok_a)],
         "layer name '1fc': expected an identifier matching [A-Za-z_][A-Za-z0-9_]*"),
        ([Layer("x" * 60, ok_w, ok_a)],
         (f"layer '{'x' * 60}': its config name mac_array_{'x' * 60} is not allowed (name = "
         f"\"mac_array_{'x' * 60}\": expected an identifier matching [A-Za-z_][A-Za-z0-9_]* of "
         f"at most 64 characters)")),
        ([Layer("fc", ok_w.astype(float), ok_a)],
         ("layer 'fc' weights: dtype float64: expected integer weights; quantize to 8-bit signed "
         "integers (-128..127) first")),
        ([Layer("fc", np.array([[1, 200], [3, 0]]), ok_a)],
         "layer 'fc' weights: weight 200 at (0, 1) is outside the 8-bit signed range -128..127"),
        ([Layer("fc", np.array([1, 2]), ok_a)],
         "layer 'fc' weights: shape (2,): expected a non-empty 2-D array"),
        ([Layer("fc", ok_w, np.array([[1, 2, 3], [4, 5, 6]]))],
         ("layer 'fc' acts: shape (2, 3): expected (B, 2) with B >= 2 rows (the weights have "
         "shape (2, 2), K = 2)")),
        ([Layer("fc", ok_w, np.array([[1, 2]]))],
         ("layer 'fc' acts: shape (1, 2): expected (B, 2) with B >= 2 rows (the weights have "
         "shape (2, 2), K = 2)")),
        ([Layer("fc", ok_w, np.array([[1, 2], [3, -129]]))],
         ("layer 'fc' acts: activation -129 at (1, 1) is outside the 8-bit signed range "
         "-128..127")),
        ([Layer("fc", ok_w, np.array([[True, False], [False, True]]))],
         ("layer 'fc' acts: dtype bool: expected integer activations; quantize to 8-bit signed "
         "integers (-128..127) first")),
        ([Layer("fc", np.zeros((2, 2), dtype=np.int64), ok_a)],
         ("layer 'fc' weights: every weight is 0: nothing to select (a weight set needs 0 and "
         "one other value)")),
        ([(ok_w, ok_a)], "layers: expected Layer objects, got tuple"),
    ]


@pytest.mark.parametrize("layers, message", bad_layers())
def test_bad_layers(layers, message):
    with pytest.raises(ValueError) as info:
        select_weight_sets(CFG, layers, max_error=0.1)
    assert str(info.value) == message


def test_bad_config_and_cost(cost8):
    with pytest.raises(ValueError) as info:
        select_weight_sets(MacArrayConfig(weight_set="pow2"), [LAYER], max_error=0.1)
    assert str(info.value) == ('weight_set = "pow2": expected "all" (the selection chooses the '
                               'set; the weights must be plain 8-bit values)')
    with pytest.raises(ValueError, match=r"cost table is for weight_bits, act_bits, act_signed "
                                         r"= \(8, 8, True\); the config has \(4, 4, True\)"):
        select_weight_sets(SMALL, [LAYER], max_error=0.1, cost=cost8)


def test_unsigned_acts_range_and_nm_pattern(cost8):
    unsigned = MacArrayConfig(act_signed=False)
    with pytest.raises(ValueError, match=r"activation -1 at \(0, 0\) is outside the 8-bit "
                                         r"unsigned range 0\.\.255"):
        check_layer(unsigned, Layer("fc", LAYER.weights, np.array([[-1, 0], [0, 0]])))
    sparse = MacArrayConfig(sparsity="1:2")
    weights = np.array([[1, 0], [2, 3], [0, 0]])         # column 0 has 2 nonzeros in rows 0..1
    with pytest.raises(ValueError, match=r"layer 'fc' weights: weight matrix breaks the 1:2 "
                                         r"pattern: column 0, rows 0\.\.1"):
        check_layer(sparse, Layer("fc", weights, np.ones((2, 3), dtype=np.int64)))
    # A pattern-respecting layer keeps its pattern: projection never turns 0 into non-0.
    weights = np.array([[5, 0], [0, -7], [9, 0]])
    acts = np.random.default_rng(7).integers(-128, 128, (10, 3))
    sel = select_weight_sets(sparse, [Layer("fc", weights, acts)], max_error=None, max_values=2,
                             cost=cost8)
    assert ((sel.layers[0].projected != 0) <= (weights != 0)).all()


def test_check_layer_labels():
    with pytest.raises(ValueError) as info:
        check_layer(CFG, Layer("fc", LAYER.weights.astype(np.float32), LAYER.acts),
                    "W.npy", "A.npy")
    assert str(info.value).startswith("W.npy: dtype float32: expected integer weights")
    assert isinstance(ConfigError("x"), ValueError)      # the CLI treats both alike


# --- hwgen select on hostile inputs: one error line, exit 2, nothing computed or written ---------

HUGE = (1 << 40, 1024)       # int64: 8 PiB


def _huge_npy() -> bytes:
    """A .npy header claiming ``HUGE`` followed by 64 bytes of data."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "<i8", "fortran_order": False, "shape": HUGE})
    return buffer.getvalue() + bytes(64)


def _huge_npz(path: str, method: int) -> None:
    with zipfile.ZipFile(path, "w", compression=method) as archive:
        archive.writestr("fc1.npy", _huge_npy())


@pytest.fixture
def select_folder(tmp_path, monkeypatch):
    """The working folder, with valid W.npy, A.npy, W.npz, A.npz; running the selection or the
    energy proxy fails the test (a bad input must be reported before any computation)."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(31)
    weights, acts = rng.integers(-20, 21, (8, 6)), rng.integers(-128, 128, (24, 8))
    np.save("W.npy", weights)
    np.save("A.npy", acts)
    np.savez("W.npz", fc1=weights)
    np.savez("A.npz", fc1=acts)

    def computed(*args, **kwargs):
        raise AssertionError("hwgen select computed before it rejected its input")

    monkeypatch.setattr(select, "select_weight_sets", computed)
    monkeypatch.setattr(select, "multiplier_cost", computed)
    monkeypatch.setattr(report, "layer_energy", computed)
    return tmp_path


def _fails_with(folder, capsys, args: list[str]) -> str:
    """Run ``hwgen select`` and return its one error line; check nothing was written."""
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    code = main(["select", *args])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before
    return err.rstrip("\n")


def _write_object_array() -> None:
    np.save("Wobj.npy", np.array([[1, "two"]], dtype=object), allow_pickle=True)


def _write_nan_acts() -> None:
    acts = np.zeros((24, 8))
    acts[3, 1] = np.nan
    np.save("Anan.npy", acts)


def _write_inf_npz() -> None:
    acts = np.zeros((24, 8))
    acts[0, 7] = -np.inf
    np.savez("Ainf.npz", fc1=acts)


def _write_sparse_gigabyte_npy() -> None:
    # A true header and (as far as the file system says) the data: 1 GiB + 16 MiB of int8 in a
    # sparse file that takes no disk space. The default limit refuses it from the header.
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|i1", "fortran_order": False, "shape": ((1 << 30) + (1 << 24),)})
    with open("Wgig.npy", "wb") as handle:
        handle.write(header.getvalue())
        handle.truncate(len(header.getvalue()) + (1 << 30) + (1 << 24))


HOSTILE = [
    (lambda: Path("Whuge.npy").write_bytes(_huge_npy()), "Whuge.npy", "A.npy",
     f"Whuge.npy: header claims shape {HUGE} of int64 (8 PiB) but only 64 bytes of data follow "
     f"it: expected a complete .npy array"),
    (lambda: _huge_npz("Whuge.npz", zipfile.ZIP_STORED), "Whuge.npz", "A.npz",
     f"Whuge.npz: fc1: header claims shape {HUGE} of int64 (8 PiB) but only 64 bytes of data "
     f"follow it: expected a complete .npy array"),
    (lambda: _huge_npz("Ahuge.npz", zipfile.ZIP_DEFLATED), "W.npz", "Ahuge.npz",
     f"Ahuge.npz: fc1: header claims shape {HUGE} of int64 (8 PiB) but only 64 bytes of data "
     f"follow it: expected a complete .npy array"),
    (_write_sparse_gigabyte_npy, "Wgig.npy", "A.npy",
     "Wgig.npy: header claims shape (1090519040,) of int8 (1.02 GiB): expected at most 1 GiB of "
     "data in one file"),
    (lambda: Path("Wbroken.npz").write_bytes(b"not a zip"), "Wbroken.npz", "A.npy",
     "A.npy: expected a .npz file like the weights Wbroken.npz (.npz: one array per layer, the "
     "same keys in both)"),
    (_write_object_array, "Wobj.npy", "A.npy",
     "Wobj.npy: dtype object holds pickled Python objects, which are never loaded: expected "
     "booleans, integers or floating-point numbers"),
    (_write_nan_acts, "W.npy", "Anan.npy",
     "Anan.npy: value nan at index (3, 1): expected finite numbers"),
    (_write_inf_npz, "W.npz", "Ainf.npz",
     "Ainf.npz: fc1: value -inf at index (0, 7): expected finite numbers"),
]


@pytest.mark.parametrize("make, weights, acts, message", HOSTILE, ids=[
    "huge-npy", "huge-npz", "huge-deflated-npz", "over-the-limit", "kinds-differ-before-reading",
    "pickle", "nan", "inf-npz"])
def test_select_refuses_hostile_arrays(select_folder, capsys, make, weights, acts, message):
    make()
    line = _fails_with(select_folder, capsys, ["--weights", weights, "--acts", acts,
                                               "--max-error", "0.1"])
    assert line == f"hwgen: error: {message}"


def _folder_error(option: str) -> str:
    """The one line the shared output-folder check gives for ``-o option``."""
    with pytest.raises(FolderError) as info:
        check_output_folder(Path(option), Path(option))
    return f"hwgen: error: {info.value}"


def test_select_refuses_a_foreign_output_folder_before_computing(select_folder, capsys):
    (select_folder / "mine").mkdir()
    (select_folder / "mine" / "notes.txt").write_text("my notes\n")
    line = _fails_with(select_folder, capsys, ["--weights", "W.npy", "--acts", "A.npy",
                                               "--max-error", "0.1", "-o", "mine"])
    assert line.startswith("hwgen: error: -o mine: ") and line == _folder_error("mine")


def test_select_refuses_an_output_folder_under_a_file_before_computing(select_folder, capsys):
    (select_folder / "notes.txt").write_text("my notes\n")
    line = _fails_with(select_folder, capsys, ["--weights", "W.npy", "--acts", "A.npy",
                                               "--max-error", "0.1", "-o", "notes.txt/run/out"])
    assert line.startswith("hwgen: error: -o notes.txt/run/out: notes.txt ")
    assert line == _folder_error("notes.txt/run/out")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in any folder")
def test_select_refuses_an_unwritable_output_parent_before_computing(select_folder, capsys):
    locked = select_folder / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        line = _fails_with(select_folder, capsys, ["--weights", "W.npy", "--acts", "A.npy",
                                                   "--max-error", "0.1", "-o", "locked/out"])
        assert line.startswith("hwgen: error: -o locked/out: ")
        assert line == _folder_error("locked/out")
    finally:
        locked.chmod(0o755)
