"""Config validation: every field's checks, file-level errors and TOML <-> dataclass equivalence.

Every error is asserted in full: a user sees exactly this one line (prefixed by ``hwgen: error:``).
"""

import dataclasses
import json
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.config import (
    ConfigError,
    EngineConfig,
    config_hash,
    config_to_dict,
    config_toml,
    example_toml,
)
from hwgen.engines.mac_array import MacArrayConfig
from hwgen.engines.registry import config_from_dict, load_config
from hwgen.engines.snn import SnnConfig
from hwgen.engines.snn_network import SnnNetworkConfig
from hwgen.engines.sparse_attention import SparseAttentionConfig

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FIELDS = ("name, rows, cols, act_bits, act_signed, weight_bits, acc_bits, overflow, sparsity, "
          "weight_set, pe, msb_bits")
NAME_RULE = "an identifier matching [A-Za-z_][A-Za-z0-9_]* of at most 64 characters"
NAME_KEYWORD = "a name that is not a Verilog keyword"
WEIGHT_SET_RULE = ('expected "all", "pow2", "low_hamming_<k>" (1 <= k < weight_bits) or a list of '
                   'distinct integers in the weight range that contains 0 and one other value')
SPARSITY_RULE = "expected \"N:M\" with 1 <= N < M <= 16 (omit the field for a dense array)"


def write(tmp_path: Path, text: str, filename: str = "mac.toml") -> Path:
    path = tmp_path / filename
    path.write_text(text)
    return path


def load_error(tmp_path: Path, text: str, filename: str = "mac.toml") -> str:
    """The message load_config raises for a file holding ``text``; it must be one line."""
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text, filename))
    message = str(info.value)
    assert "\n" not in message
    return message


# --- one case per field and kind of bad value: (field, TOML value, expected message) ---------

FIELD_CASES = [
    ("rows", '"4"', 'rows = "4": expected an integer from 1 to 64'),
    ("rows", "true", "rows = true: expected an integer from 1 to 64"),
    ("rows", "4.0", "rows = 4.0: expected an integer from 1 to 64"),
    ("rows", "0", "rows = 0: expected an integer from 1 to 64"),
    ("rows", "65", "rows = 65: expected an integer from 1 to 64"),
    ("cols", "-1", "cols = -1: expected an integer from 1 to 64"),
    ("cols", "false", "cols = false: expected an integer from 1 to 64"),
    ("cols", "65", "cols = 65: expected an integer from 1 to 64"),
    ("act_bits", "1", "act_bits = 1: expected an integer from 2 to 16"),
    ("act_bits", "17", "act_bits = 17: expected an integer from 2 to 16"),
    ("act_bits", "true", "act_bits = true: expected an integer from 2 to 16"),
    ("weight_bits", "1", "weight_bits = 1: expected an integer from 2 to 16"),
    ("weight_bits", '"8"', 'weight_bits = "8": expected an integer from 2 to 16'),
    ("act_signed", "1", "act_signed = 1: expected true or false"),
    ("act_signed", '"true"', 'act_signed = "true": expected true or false'),
    # The lower bound of acc_bits is weight_bits + act_bits: one full product must fit.
    ("acc_bits", "15", "acc_bits = 15: expected an integer from 16 to 48"),
    ("acc_bits", "49", "acc_bits = 49: expected an integer from 16 to 48"),
    ("acc_bits", "true", "acc_bits = true: expected an integer from 16 to 48"),
    ("overflow", '"clamp"', 'overflow = "clamp": expected one of "wrap", "saturate"'),
    ("overflow", "1", 'overflow = 1: expected one of "wrap", "saturate"'),
    ("sparsity", '"2:2"', f'sparsity = "2:2": {SPARSITY_RULE}'),
    ("sparsity", '"0:4"', f'sparsity = "0:4": {SPARSITY_RULE}'),
    ("sparsity", '"4:2"', f'sparsity = "4:2": {SPARSITY_RULE}'),
    ("sparsity", '"1:17"', f'sparsity = "1:17": {SPARSITY_RULE}'),
    ("sparsity", '"x"', f'sparsity = "x": {SPARSITY_RULE}'),
    ("sparsity", '" 2:4"', f'sparsity = " 2:4": {SPARSITY_RULE}'),
    ("sparsity", "24", f"sparsity = 24: {SPARSITY_RULE}"),
    ("weight_set", '"pow3"', f'weight_set = "pow3": {WEIGHT_SET_RULE}'),
    ("weight_set", "4", f"weight_set = 4: {WEIGHT_SET_RULE}"),
    ("weight_set", "[0, 1.5]", f"weight_set = [0, 1.5]: {WEIGHT_SET_RULE}"),
    ("weight_set", "[0, true]", f"weight_set = [0, true]: {WEIGHT_SET_RULE}"),
    ("weight_set", '"low_hamming_0"',
     'weight_set = "low_hamming_0": expected low_hamming_<k> with 1 <= k < weight_bits = 8'),
    ("weight_set", '"low_hamming_8"',
     'weight_set = "low_hamming_8": expected low_hamming_<k> with 1 <= k < weight_bits = 8'),
    ("weight_set", "[1, 2]",
     "weight_set = [1, 2]: expected a set containing 0 (pruned weights and N:M padding are 0)"),
    ("weight_set", "[0]", "weight_set = [0]: expected at least 2 values (0 and one other)"),
    ("weight_set", "[0, 1, 0]",
     "weight_set = [0, 1, 0]: expected distinct values (0 is listed twice)"),
    ("weight_set", "[0, -129]",
     "weight_set = [0, -129]: expected values in the 8-bit weight range -128..127 (-129 is not)"),
    ("msb_bits", "0", "msb_bits = 0: expected an integer from 1 to 21"),
    ("msb_bits", "22", "msb_bits = 22: expected an integer from 1 to 21"),
    ("name", '"module"', f'name = "module": expected {NAME_KEYWORD}'),
    ("name", '"wire"', f'name = "wire": expected {NAME_KEYWORD}'),
    ("name", '"logic"', f'name = "logic": expected {NAME_KEYWORD}'),
    ("name", '"1abc"', f'name = "1abc": expected {NAME_RULE}'),
    ("name", '"a-b"', f'name = "a-b": expected {NAME_RULE}'),
    ("name", '"../x"', f'name = "../x": expected {NAME_RULE}'),
    ("name", '"a/b"', f'name = "a/b": expected {NAME_RULE}'),
    ("name", '""', f'name = "": expected {NAME_RULE}'),
    ("name", '"' + "a" * 65 + '"', f'name = "{"a" * 65}": expected {NAME_RULE}'),
    ("name", "7", f"name = 7: expected {NAME_RULE}"),
    # What the name becomes besides a Verilog module: hwgen/names.py, tests/test_hostile_config.py.
    ("name", '"until"', f'name = "until": expected {NAME_KEYWORD}'),
    ("name", '"clk"', 'name = "clk": expected a name that is not a port or wire of the core or its '
                      "AXI4-Stream wrapper (clk, rst, aclk, aresetn, core, core_rst, unused_inputs, "
                      "s_axis_*_t*, m_axis_*_t*, core_*_payload/valid/ready)"),
    ("name", '"a__b"', 'name = "a__b": expected a name that neither starts with _ nor contains __ '
                       "(C and C++ reserve them)"),
    ("name", '"printf"', 'name = "printf": expected a name that is not a C or C++ library name the '
                         "generated C++ sees (such as NULL, EOF, errno, stdout, printf, exit, main, "
                         "size_t, uint32_t, INT32_MAX)"),
    ("name", "[1]", f"name = [1]: expected {NAME_RULE}"),
    ("rows", "{a = 1}", "rows = {a = 1}: expected an integer from 1 to 64"),
    ("rows", "nan", "rows = nan: expected an integer from 1 to 64"),
    ("rows", "9" * 40, "rows = <integer of 133 bits>: expected an integer from 1 to 64"),
    ("overflow", '["wrap"]', 'overflow = ["wrap"]: expected one of "wrap", "saturate"'),
    ("sparsity", '"' + "2" * 5000 + ':4"', 'sparsity = "' + "2" * 40 + f'..." (5002 characters): '
                                           f"{SPARSITY_RULE}"),
]


@pytest.mark.parametrize("field, toml_value, expected", FIELD_CASES,
                         ids=[f"{f}={v}" for f, v, _ in FIELD_CASES])
def test_bad_field_in_file(tmp_path, field, toml_value, expected):
    message = load_error(tmp_path, f'engine = "mac_array"\n{field} = {toml_value}\n')
    assert message == f"mac.toml: {expected}"


@pytest.mark.parametrize("field, toml_value, expected", FIELD_CASES,
                         ids=[f"{f}={v}" for f, v, _ in FIELD_CASES])
def test_bad_field_in_python(field, toml_value, expected):
    """The dataclass gives the same message without a file name."""
    value = tomllib.loads(f"v = {toml_value}")["v"]
    with pytest.raises(ConfigError) as info:
        MacArrayConfig(**{field: value})
    assert str(info.value) == expected


def test_acc_bits_lower_bound_follows_operand_widths():
    assert MacArrayConfig(act_bits=16, weight_bits=16, acc_bits=32).acc_bits == 32
    with pytest.raises(ConfigError, match=r"^acc_bits = 22: expected an integer from 32 to 48$"):
        MacArrayConfig(act_bits=16, weight_bits=16)


def test_too_many_multipliers():
    assert MacArrayConfig(rows=64, cols=64).multipliers == 4096
    with pytest.raises(ConfigError) as info:
        MacArrayConfig(rows=64, cols=64, sparsity="2:4")
    assert str(info.value) == "rows * cols * n = 8192: expected at most 4096 multipliers"


@pytest.mark.parametrize("sparsity, n, m, idx_bits", [
    ("1:2", 1, 2, 1), ("2:4", 2, 4, 2), ("3:8", 3, 8, 3), ("15:16", 15, 16, 4), ("1:3", 1, 3, 2)])
def test_valid_sparsity(sparsity, n, m, idx_bits):
    cfg = MacArrayConfig(rows=2, sparsity=sparsity)
    assert (cfg.n, cfg.m, cfg.idx_bits, cfg.k) == (n, m, idx_bits, 2 * m)


def test_dense_derived_quantities():
    cfg = MacArrayConfig(rows=3, cols=5)
    assert (cfg.n, cfg.m, cfg.idx_bits, cfg.k, cfg.multipliers, cfg.latency) == (1, 1, 0, 3, 15, 9)


# --- file-level errors ------------------------------------------------------------------------

def test_unknown_field_suggests_close_match(tmp_path):
    message = load_error(tmp_path, 'engine = "mac_array"\nrowz = 4\n')
    assert message == (f"mac.toml: unknown field 'rowz' for engine 'mac_array'; did you mean "
                       f"'rows'? (allowed: {FIELDS})")


def test_unknown_field_without_close_match(tmp_path):
    message = load_error(tmp_path, 'engine = "mac_array"\nfrequency = 100\n')
    assert message == (f"mac.toml: unknown field 'frequency' for engine 'mac_array' "
                       f"(allowed: {FIELDS})")


def test_engine_missing(tmp_path):
    assert load_error(tmp_path, "rows = 4\n") == \
        'mac.toml: engine is missing: expected one of "mac_array", "snn", "snn_network", "sparse_attention"'


def test_engine_unknown(tmp_path):
    assert load_error(tmp_path, 'engine = "mac_arry"\n') == \
        'mac.toml: engine = "mac_arry": expected one of "mac_array", "snn", "snn_network", "sparse_attention"'


def test_bad_toml_syntax(tmp_path):
    message = load_error(tmp_path, 'engine = "mac_array"\nrows 4\n')
    assert message.startswith("mac.toml: not valid TOML: ")
    assert "line 2" in message


def test_bad_json_syntax(tmp_path):
    message = load_error(tmp_path, '{"engine": "mac_array",}', "mac.json")
    assert message.startswith("mac.json: not valid JSON: ")
    assert "line 1" in message


def test_json_config(tmp_path):
    path = write(tmp_path, json.dumps({"engine": "mac_array", "rows": 2}), "mac.json")
    assert load_config(path) == MacArrayConfig(rows=2)


def test_top_level_not_a_table(tmp_path):
    assert load_error(tmp_path, "[1, 2]", "mac.json") == \
        "mac.json: expected a table of fields, got list"


def test_unsupported_file_type(tmp_path):
    assert load_error(tmp_path, "engine: mac_array\n", "mac.yaml") == \
        "mac.yaml: file type '.yaml' is not supported: expected a .toml or .json file"


def test_missing_file(tmp_path):
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: config file not found"


def test_directory_is_not_a_config(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path)


def test_first_bad_field_wins_and_names_the_file(tmp_path):
    message = load_error(tmp_path, 'engine = "mac_array"\nrows = 0\ncols = 0\n', "deep.toml")
    assert message == "deep.toml: rows = 0: expected an integer from 1 to 64"


# --- TOML and the dataclass describe the same thing -------------------------------------------

def test_toml_equals_dataclass(tmp_path):
    path = write(tmp_path, 'engine = "mac_array"\nname = "m8"\nrows = 8\ncols = 2\n'
                           'act_signed = false\nacc_bits = 30\noverflow = "saturate"\n'
                           'sparsity = "2:4"\n')
    expected = MacArrayConfig(name="m8", rows=8, cols=2, act_signed=False, acc_bits=30,
                              overflow="saturate", sparsity="2:4")
    cfg = load_config(path)
    assert cfg == expected
    assert config_hash(cfg) == config_hash(expected)


def test_absent_fields_take_dataclass_defaults(tmp_path):
    cfg = load_config(write(tmp_path, 'engine = "mac_array"\n'))
    assert cfg == MacArrayConfig()
    assert cfg.sparsity is None


def test_config_to_dict_omits_absent_sparsity():
    assert config_to_dict(MacArrayConfig()) == {
        "engine": "mac_array", "name": "mac_array", "rows": 4, "cols": 4, "act_bits": 8,
        "act_signed": True, "weight_bits": 8, "acc_bits": 22, "overflow": "wrap",
        "weight_set": "all"}


def test_config_hash_depends_on_every_field():
    base = config_hash(MacArrayConfig())
    changed = [MacArrayConfig(name="other"), MacArrayConfig(rows=5), MacArrayConfig(cols=5),
               MacArrayConfig(act_bits=7), MacArrayConfig(act_signed=False),
               MacArrayConfig(weight_bits=7), MacArrayConfig(acc_bits=23),
               MacArrayConfig(overflow="saturate"), MacArrayConfig(sparsity="2:4"),
               MacArrayConfig(weight_set="pow2"), MacArrayConfig(msb_bits=3)]
    hashes = {config_hash(cfg) for cfg in changed}
    assert len(hashes) == len(changed) and base not in hashes


@st.composite
def mac_configs(draw):
    act_bits = draw(st.integers(2, 16))
    weight_bits = draw(st.integers(2, 16))
    m = draw(st.integers(2, 16))
    sparsity = draw(st.none() | st.just(f"{draw(st.integers(1, m - 1))}:{m}"))
    lo, hi = -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1
    listed = draw(st.lists(st.integers(lo, hi).filter(bool), min_size=1, max_size=6, unique=True))
    weight_set = draw(st.sampled_from(["all", "pow2", tuple([0, *listed])]))
    return MacArrayConfig(
        # The "cfg" prefix and single underscores keep clear of every reserved name.
        name=draw(st.from_regex(r"cfg(_[A-Za-z0-9]{1,5}){0,4}", fullmatch=True)),
        rows=draw(st.integers(1, 8)), cols=draw(st.integers(1, 8)), act_bits=act_bits,
        act_signed=draw(st.booleans()), weight_bits=weight_bits,
        acc_bits=draw(st.integers(act_bits + weight_bits, 48)),
        overflow=draw(st.sampled_from(["wrap", "saturate"])), sparsity=sparsity,
        weight_set=weight_set)


@settings(max_examples=60, deadline=None)
@given(mac_configs())
def test_dict_round_trip(cfg):
    data = config_to_dict(cfg)
    assert config_from_dict(data) == cfg
    assert config_from_dict(json.loads(json.dumps(data))) == cfg
    assert config_from_dict(tomllib.loads(config_toml(cfg))) == cfg


# --- the commented example TOML (`hwgen new`) ----------------------------------------------

def test_example_toml_loads_as_defaults(tmp_path):
    text = example_toml(MacArrayConfig)
    assert load_config(write(tmp_path, text)) == MacArrayConfig()


def test_example_toml_documents_every_field():
    lines = example_toml(MacArrayConfig).splitlines()
    for f in dataclasses.fields(MacArrayConfig):
        value_line = next(i for i, ln in enumerate(lines)
                          if ln.startswith((f"{f.name} = ", f"# {f.name} = ")))
        # The doc comment sits directly above the value, possibly wrapped over several lines.
        comment = []
        for line in reversed(lines[:value_line]):
            if not line.startswith("# "):
                break
            comment.insert(0, line[2:])
        assert " ".join(comment) == f.metadata["doc"]
        if f.default is None:
            assert lines[value_line].startswith(f"# {f.name} = ")
        else:
            assert tomllib.loads(lines[value_line])[f.name] == f.default


@dataclasses.dataclass(frozen=True)
class _ToyConfig(EngineConfig):
    """A toy engine to exercise example_toml's value rendering."""

    kind = "toy"

    label: str = dataclasses.field(default='say "hi"', metadata={"doc": "A string with quotes."})
    gain: float = dataclasses.field(default=0.5, metadata={"doc": "A float."})
    enabled: bool = dataclasses.field(default=False, metadata={"doc": "A bool."})
    mode: str | None = dataclasses.field(default=None, metadata={
        "doc": "Absent unless set.", "example": "fast"})

    def validate(self):
        pass


def test_example_toml_values_and_absent_example():
    text = example_toml(_ToyConfig)
    data = tomllib.loads(text)
    assert data == {"engine": "toy", "label": 'say "hi"', "gain": 0.5, "enabled": False}
    # Uncommenting the absent field's line gives its example value.
    uncommented = text.replace("# mode = ", "mode = ")
    assert tomllib.loads(uncommented)["mode"] == "fast"
    assert text.startswith("# hwgen toy config.\n# A toy engine to exercise example_toml's value "
                           "rendering.\n")


# --- the shipped examples ---------------------------------------------------------------------

def test_examples_load():
    loaded = {p.name: load_config(p) for p in sorted(EXAMPLES.glob("*.toml"))}
    assert loaded == {
        "attention_threshold.toml": SparseAttentionConfig(
            name="attention_threshold", max_len=64, head_dim=16, mask="threshold", topk=16,
            margin=24, lanes=8, rows=2),
        "attention_topk.toml": SparseAttentionConfig(name="attention_topk", max_len=64,
                                                     head_dim=16, topk=8, lanes=4),
        "attention_window.toml": SparseAttentionConfig(name="attention_window", max_len=64,
                                                       head_dim=16, mask="window", window=4,
                                                       global_tokens=2),
        "mac_array_2x2.toml": MacArrayConfig(name="mac_array_2x2", rows=2, cols=2),
        "mac_array_4x4.toml": MacArrayConfig(name="mac_array_4x4"),
        "mac_array_8x8_2of4.toml": MacArrayConfig(name="mac_array_8x8_2of4", rows=8, cols=8,
                                                  sparsity="2:4"),
        "mac_array_8x8_2of4_pow2.toml": MacArrayConfig(name="mac_array_8x8_2of4_pow2", rows=8,
                                                       cols=8, sparsity="2:4", weight_set="pow2"),
        "mac_array_unsigned_sat.toml": MacArrayConfig(name="mac_array_unsigned_sat",
                                                      act_signed=False, acc_bits=16,
                                                      overflow="saturate"),
        "snn_paper.toml": SnnConfig(name="snn_paper", in_neurons=512, out_neurons=64, pes=16,
                                    join="laggy", laggy_adders=16, preset="paper"),
        "snn_small.toml": SnnConfig(name="snn_small", in_neurons=64, out_neurons=16, chunk=32),
        "snn_tiny.toml": SnnConfig(name="snn_tiny", in_neurons=16, out_neurons=4, chunk=16,
                                   pes=2, threshold=16),
        "snn_network.toml": SnnNetworkConfig(
            name="snn_network", timesteps=4, in_neurons=64, chunk=32, in_format="fiber",
            out_format="dense",
            layers=[{"out_neurons": 32, "pes": 4, "threshold": 64},
                    {"out_neurons": 16, "pes": 4, "threshold": 48, "join": "laggy",
                     "laggy_adders": 8},
                    {"out_neurons": 10, "pes": 2, "threshold": 32, "weight_bits": 6,
                     "leak": "shift", "leak_shift": 1}]),
    }
    assert loaded["snn_paper.toml"].acc_bits == 12
    assert loaded["snn_paper.toml"].correction_bits == 10
