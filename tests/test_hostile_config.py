"""Hostile inputs: every wrong config value, file, name or environment gives one error line.

Through the Python API that is one :class:`ConfigError` line naming the field, the value (shortened
when it is huge) and what is allowed; through the command line it is exit code 2 and exactly one
``hwgen: error:`` line, no traceback, nothing written. Names are held to everything they become:
the identifiers of the rendered HLS C++, and the macros and global types the system C++ library
gives those files, must all be refused (hwgen/names.py); a few unusual names that are allowed
compile and pass the C simulation.
"""

import dataclasses
import itertools
import json
import math
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.cli import main
from hwgen.config import (
    MAX_CONFIG_CHARS,
    ConfigError,
    check_choice,
    check_float,
    check_int,
    check_name,
    check_probability,
    format_value,
)
from hwgen.emit.hls import csim, render_files, render_hls
from hwgen.engines.mac_array import MacArrayConfig
from hwgen.engines.registry import config_from_dict, load_config
from hwgen.engines.snn import SnnConfig
from hwgen.engines.snn.stimulus import edge_layers
from hwgen.engines.sparse_attention import SparseAttentionConfig
from hwgen.flows.cache import cache_root

CONFIG_CLASSES = (MacArrayConfig, SnnConfig, SparseAttentionConfig)
HUGE = 10 ** 5000           # more digits than Python prints
NEEDS_GXX = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")


def one_line_error(call) -> str:
    with pytest.raises(ConfigError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and len(message) < 600, message
    return message


# --- every field of every engine, every kind of wrong value -----------------------------------

HOSTILE_VALUES = {
    "list": [1, 2], "table": {"a": 1}, "huge": HUGE, "negative_huge": -HUGE, "nan": math.nan,
    "inf": math.inf, "string": "x", "bool": True, "none": None, "nested": [[[[[[1]]]]]],
    "long_string": "y" * 100_000, "long_list": list(range(100_000)), "float": 4.0,
}


@pytest.mark.parametrize("cls, field", [(cls, f.name) for cls in CONFIG_CLASSES
                                        for f in dataclasses.fields(cls)])
@pytest.mark.parametrize("label", HOSTILE_VALUES)
def test_every_field_refuses_wrong_values_in_one_line(cls, field, label):
    value = HOSTILE_VALUES[label]
    try:
        config_from_dict({"engine": cls.kind, field: value})
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith(f"<config>: {field} = "), message
        assert "\n" not in message and len(message) < 600, message
    else:
        # The few values that are right for the field (a bool for act_signed, None for a field
        # that may be absent) must give the field that value.
        assert (label, field) in {("bool", "act_signed"), ("none", "sparsity"),
                                  ("none", "msb_bits"), ("none", "laggy_adders"),
                                  ("none", "lif_lanes"), ("none", "membrane_bits"),
                                  ("none", "pseudo_bits"), ("none", "corr_bits"),
                                  ("none", "preset"), ("none", "pe")}


_JSON_LIKE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=10 ** 40)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=200),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner,
                                                                  max_size=5),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(cls=st.sampled_from(CONFIG_CLASSES), data=st.data(), value=_JSON_LIKE)
def test_any_value_in_any_field_is_a_config_or_one_line_error(cls, data, value):
    field = data.draw(st.sampled_from([f.name for f in dataclasses.fields(cls)]))
    try:
        config_from_dict({"engine": cls.kind, field: value})
    except ConfigError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 600


ENGINE_VALUES = [
    ([1], "[1]"), ({"a": 1}, "{a = 1}"), (HUGE, "<integer of 16610 bits>"), (math.nan, "nan"),
    (True, "true"),
]


@pytest.mark.parametrize("engine, shown", ENGINE_VALUES, ids=[s for _, s in ENGINE_VALUES])
def test_engine_of_the_wrong_type(engine, shown):
    assert one_line_error(lambda: config_from_dict({"engine": engine})) == (
        f'<config>: engine = {shown}: expected one of "mac_array", "snn", "snn_network", "sparse_attention"')


def test_unknown_field_with_a_huge_or_odd_key():
    message = one_line_error(lambda: config_from_dict({"engine": "snn", "k" * 10_000: 1}))
    assert message.startswith('<config>: unknown field "kkkk')
    assert one_line_error(lambda: config_from_dict({"engine": "snn", HUGE: 1})).startswith(
        "<config>: unknown field <integer of 16610 bits> for engine 'snn' (allowed: ")


@pytest.mark.parametrize("spec, message", [
    ("low_hamming_" + "9" * 5000, 'weight_set = "low_hammin'),
    ([0, HUGE], "weight_set = [0, <integer of 16610 bits>]: expected values in the 8-bit weight "
                "range -128..127 (<integer of 16610 bits> is not)"),
    ([0] + list(range(-128, 128)) * 300, "weight_set = [0, -128, "),
])
def test_weight_set_hostile_specs(spec, message):
    start = time.monotonic()
    assert message in one_line_error(lambda: MacArrayConfig(weight_set=spec))
    assert time.monotonic() - start < 2


def test_sparsity_with_thousands_of_digits():
    assert one_line_error(lambda: MacArrayConfig(sparsity="9" * 5000 + ":4")).startswith(
        'sparsity = "99999')


# --- files ------------------------------------------------------------------------------------

def load_error(tmp_path: Path, text: str, filename: str = "bad.toml") -> str:
    path = tmp_path / filename
    path.write_text(text)
    start = time.monotonic()
    message = one_line_error(lambda: load_config(path))
    assert time.monotonic() - start < 10, "a hostile file must fail fast"
    return message


DEEP = 100_000
BAD_FILES = [
    ("deep_array.toml", "x = " + "[" * DEEP + "]" * DEEP,
     "bad.toml: cannot read: arrays or tables nested too deeply"),
    ("deep_table.toml", "x = " + "{a = " * 5000 + "1" + "}" * 5000,
     "bad.toml: cannot read: arrays or tables nested too deeply"),
    ("deep_array.json", '{"x": ' + "[" * DEEP + "]" * DEEP + "}",
     "bad.json: cannot read: arrays or tables nested too deeply"),
    ("deep_object.json", '{"a": ' * DEEP + "1" + "}" * DEEP,
     "bad.json: cannot read: arrays or tables nested too deeply"),
    # tomllib's work grows with the square of a key's parts: this one would take ~40 GB.
    ("dotted_key.toml", 'engine = "snn"\n' + "a" + ".a" * DEEP + " = 1\n",
     "bad.toml: line 2: a key of more than 32 dotted parts: expected plain field names"),
    ("dotted_header.toml", "[" + ".".join(['"a"'] * 1000) + "]\n",
     "bad.toml: line 1: a key of more than 32 dotted parts: expected plain field names"),
    ("huge_int.toml", 'engine = "mac_array"\nrows = ' + "9" * 5000 + "\n",
     "bad.toml: line 2: rows = <integer of more than 4300 digits>: expected an integer of at "
     "most 4300 digits"),
    ("huge_int.json", '{"engine": "mac_array", "rows": ' + "9" * 5000 + "}",
     "bad.json: line 1: rows = <integer of more than 4300 digits>: expected an integer of at "
     "most 4300 digits"),
    ("huge_int_in_array.toml", 'engine = "snn"\nx = [1,\n  -' + "9" * 5000 + "]\n",
     "bad.toml: line 3: <integer of more than 4300 digits>: expected an integer of at most "
     "4300 digits"),
    ("big_int.toml", 'engine = "mac_array"\nrows = ' + "9" * 4000 + "\n",
     "bad.toml: rows = <integer of 13288 bits>: expected an integer from 1 to 64"),
    ("nan.json", '{"engine": "snn", "threshold": NaN}',
     "bad.json: threshold = nan: expected an integer from 1 to 262143"),
    ("inf.toml", 'engine = "sparse_attention"\nhead_dim = -inf\n',
     "bad.toml: head_dim = -inf: expected an integer from 1 to 256"),
    ("engine_list.toml", 'engine = ["snn"]\n',
     'bad.toml: engine = ["snn"]: expected one of "mac_array", "snn", "snn_network", "sparse_attention"'),
    ("engine_table.toml", "[engine]\nkind = 1\n",
     'bad.toml: engine = {kind = 1}: expected one of "mac_array", "snn", "snn_network", "sparse_attention"'),
    ("engine_table.json", '{"engine": {"a": [1, 2]}}',
     'bad.json: engine = {a = [1, 2]}: expected one of "mac_array", "snn", "snn_network", "sparse_attention"'),
    ("table_for_int.toml", 'engine = "mac_array"\n[rows]\nx = 1\n',
     "bad.toml: rows = {x = 1}: expected an integer from 1 to 64"),
    ("long_name.json", json.dumps({"engine": "snn", "name": "n" * 100_000}),
     'bad.json: name = "' + "n" * 40 + '..." (100000 characters): expected an identifier '
     "matching [A-Za-z_][A-Za-z0-9_]* of at most 64 characters"),
]


@pytest.mark.parametrize("filename, text, message", BAD_FILES, ids=[f[0] for f in BAD_FILES])
def test_hostile_files(tmp_path, filename, text, message):
    suffix = Path(filename).suffix
    assert load_error(tmp_path, text, "bad" + suffix) == message


def test_file_larger_than_the_limit(tmp_path):
    text = 'engine = "snn"\n' + "# padding\n" * (MAX_CONFIG_CHARS // 10)
    assert load_error(tmp_path, text) == (
        f"bad.toml: more than {MAX_CONFIG_CHARS} characters: expected a config file of a few "
        f"fields")


def test_dotted_key_scan_ignores_comments_and_strings(tmp_path):
    dotted = ".".join(["a"] * 100)
    path = tmp_path / "ok.toml"
    path.write_text(f'# {dotted}\nengine = "snn"\n"{dotted}" = 1\n')
    # Not the dotted-key error: the quoted key is one part, the comment is no key.
    assert one_line_error(lambda: load_config(path)).startswith(
        'ok.toml: unknown field "a.a.a.a.a.')


# --- names ------------------------------------------------------------------------------------

NAME_RULES = {
    "verilog": "a name that is not a Verilog keyword",
    "reserved": "a name that neither starts with _ nor contains __ (C and C++ reserve them)",
    "port": "a name that is not a port or wire of the core or its AXI4-Stream wrapper",
    "cpp": "a name that is not a C++ keyword",
    "library": "a name that is not a C or C++ library name the generated C++ sees",
    "hls": "a name that the generated HLS C++ does not use itself",
    "case": "a name other than hwgen_hls or hls in any letter case",
    "device": "a name that is not a Windows device name",
}
REFUSED_NAMES = [
    *[(n, "verilog") for n in ("accept_on checker endchecker eventually global implies let "
                               "nexttime reject_on restrict s_always s_eventually s_nexttime "
                               "s_until s_until_with strong sync_accept_on sync_reject_on unique0 "
                               "until until_with untyped weak implements interconnect nettype "
                               "soft module logic").split()],
    *[(n, "reserved") for n in ("_x", "_X", "a__b", "x__")],
    *[(n, "port") for n in ("clk", "rst", "aclk", "aresetn", "core", "core_rst", "unused_inputs",
                            "s_axis_acts_tdata", "m_axis_out_tlast", "core_tokens_payload",
                            "core_results_valid")],
    *[(n, "cpp") for n in ("template", "nullptr", "constexpr", "co_await", "bitand")],
    *[(n, "library") for n in ("NULL", "EOF", "errno", "stdin", "stdout", "stderr", "NDEBUG",
                               "uint32_t", "int8_t", "size_t", "FILE", "printf", "fopen", "exit",
                               "main", "INT32_MAX", "UINT64_C", "LC_ALL", "EINVAL", "time_t",
                               "linux")],
    *[(n, "hls") for n in ("hwgen", "hls", "std", "Cursor", "ROWS", "word_t", "weights", "out",
                           "t", "tiles", "lif", "mask_bits")],
    *[(n, "case") for n in ("hwgen_hls", "HWGEN_HLS", "HLS", "Hls")],
    *[(n, "device") for n in ("CON", "con", "Nul", "COM1", "lpt9", "aux", "PRN")],
]


@pytest.mark.parametrize("name, rule", REFUSED_NAMES, ids=[n for n, _ in REFUSED_NAMES])
def test_refused_names(name, rule):
    assert one_line_error(lambda: check_name("name", name)).startswith(
        f'name = "{name}": expected {NAME_RULES[rule]}')


@pytest.mark.parametrize("name", ["kernel_top2", "Main", "word_t2", "hls_top", "mac8", "snn",
                                  "mac_array", "sparse_attention", "x1", "Clk", "cons", "com10",
                                  "a" * 64])
def test_allowed_names(name):
    assert check_name("name", name) == name


def test_refused_name_is_a_config_error_for_every_engine():
    for cls in CONFIG_CLASSES:
        assert one_line_error(lambda: cls(name="stdout")).startswith(
            f'name = "stdout": expected {NAME_RULES["library"]}')


TOP = "kernel_top2"
# One config per branch of the HLS templates.
HLS_CONFIGS = [
    MacArrayConfig(name=TOP), MacArrayConfig(name=TOP, sparsity="2:4", weight_set="pow2",
                                             act_signed=False, overflow="saturate"),
    *[SnnConfig(name=TOP, join=join, dataflow=dataflow, leak=leak, reset=reset, in_neurons=16,
                chunk=8)
      for join, dataflow, leak, reset in itertools.product(
          ("fast", "laggy"), ("ftp", "sequential"), ("subtract_shift", "shift", "none"),
          ("zero", "subtract"))],
    *[SparseAttentionConfig(name=TOP, mask=mask)
      for mask in ("topk", "threshold", "window", "dense")],
]
# Comments, string and character literals, #include lines, pragmas and directive keywords.
_NOT_CODE = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\''
                       r"|^[ \t]*#[ \t]*(?:pragma|include)\b[^\n]*|^[ \t]*#[ \t]*\w+",
                       re.S | re.M)


def rendered_cpp(cfg) -> dict[str, str]:
    return {name: text for name, text in render_files(cfg).items()
            if name.endswith((".h", ".cpp"))}


def test_every_identifier_of_the_generated_hls_is_refused():
    """Every identifier the rendered C++ declares or uses (outside comments, strings and
    pragmas), other than those made from the config name, is refused as a name."""
    identifiers = set()
    for cfg in HLS_CONFIGS:
        for text in rendered_cpp(cfg).values():
            code = _NOT_CODE.sub(" ", text)
            identifiers |= {word for word in re.findall(r"\b[A-Za-z_]\w*\b", code)
                            if TOP not in word.lower()}
    assert len(identifiers) > 250
    allowed = []
    for identifier in sorted(identifiers):
        try:
            check_name("name", identifier)
            allowed.append(identifier)
        except ConfigError:
            pass
    assert allowed == [], "add these to HLS_NAMES in hwgen/names.py"


def _gxx(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["g++", "-std=c++17", "-DHWGEN_NATIVE_CSIM", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@NEEDS_GXX
def test_every_library_macro_and_global_the_hls_sees_is_refused(tmp_path):
    """The system C++ library as the generated files include it: every macro is refused, and so
    is every other name a file-scope function ``void name(...)`` (the top function) clashes with
    (types, objects); library functions may be overloaded and are not probed."""
    headers = set()
    for cfg in (HLS_CONFIGS[0], HLS_CONFIGS[2], HLS_CONFIGS[-1]):
        for name, text in rendered_cpp(cfg).items():
            (tmp_path / name).write_text(text)
            # hwgen_hls.h chooses its own headers (the vendor's hls_stream.h or native ones).
            if name != "hwgen_hls.h":
                headers |= set(re.findall(r"#include ([<\"][\w.]+[>\"])", text))
    headers.discard(f'"{TOP}.h"')
    (tmp_path / "all.cpp").write_text("".join(f"#include {h}\n" for h in sorted(headers)))
    assert '"hwgen_hls.h"' in headers and "<cstdio>" in headers

    macros = _gxx("-E", "-dM", "all.cpp", cwd=tmp_path)
    assert macros.returncode == 0, macros.stderr
    names = {line.split()[1].split("(")[0] for line in macros.stdout.splitlines()}
    refused = set()
    for name in sorted(names):
        try:
            check_name("name", name)
        except ConfigError:
            refused.add(name)
    # Names starting with _ fail the identifier rule or the _ rule; the rest must be listed.
    assert sorted(names - refused) == []

    source = _gxx("-E", "-P", "all.cpp", cwd=tmp_path)
    assert source.returncode == 0, source.stderr
    candidates = []
    for word in sorted(set(re.findall(r"\b[A-Za-z_]\w*\b", source.stdout)) - names):
        try:
            candidates.append(check_name("name", word))
        except ConfigError:
            pass
    probe = "".join(f"#include {h}\n" for h in sorted(headers))
    first = probe.count("\n") + 1
    probe += "".join(f"struct hwgen_probe_{i} {{}}; void {word}(hwgen_probe_{i} &);\n"
                     for i, word in enumerate(candidates))
    (tmp_path / "probe.cpp").write_text(probe)
    result = _gxx("-fsyntax-only", "-fmax-errors=0", "probe.cpp", cwd=tmp_path)
    lines = {int(n) for n in re.findall(r"^probe\.cpp:(\d+):\d+: error", result.stderr, re.M)}
    assert sorted(candidates[line - first] for line in lines) == []


UNUSUAL_BUT_VALID = [
    MacArrayConfig(name="Main", rows=2, cols=2, sparsity="2:4"),
    SnnConfig(name=TOP, timesteps=2, in_neurons=8, out_neurons=3, chunk=4, pes=2, threshold=4),
    SparseAttentionConfig(name="hls_top", max_len=5, head_dim=2, topk=2, lanes=2),
]


@NEEDS_GXX
@pytest.mark.parametrize("cfg", UNUSUAL_BUT_VALID, ids=[c.kind for c in UNUSUAL_BUT_VALID])
def test_unusual_valid_names_compile_and_pass_csim(tmp_path, cfg):
    artifacts = render_hls(cfg, tmp_path)
    result = csim(cfg, artifacts.directory, seed=3, vectors=2)
    assert result.passed, f"{cfg.name}: {result.message}; see {result.log_path}"


# --- snn stimulus -----------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [
    # The widest membrane and the largest threshold it allows.
    {"membrane_bits": 48, "threshold": 2 ** 47 - 1},
    # A threshold the 40-bit accumulator holds: the edge case is only skipped for K.
    {"membrane_bits": 48, "pseudo_bits": 40, "threshold": 2 ** 39 - 2},
])
def test_snn_edge_layers_with_a_huge_threshold_are_quick(kwargs):
    cfg = SnnConfig(in_neurons=64, chunk=32, **kwargs)
    start = time.monotonic()
    names = [name for name, _, _ in edge_layers(cfg, np.random.default_rng(1))]
    assert time.monotonic() - start < 5
    assert "at_threshold" not in names and "silent_chunks" in names


def test_snn_edge_layers_keep_a_reachable_threshold():
    cfg = SnnConfig(in_neurons=8, chunk=8, weight_bits=4, threshold=20)
    cases = {name: (a, b) for name, a, b in edge_layers(cfg, np.random.default_rng(1))}
    a, b = cases["at_threshold"]
    # theta = 20 from 7 + 7 + 6 (wmax = 7); theta - 1 and theta + 1 likewise, 3 weights each.
    assert b[:3, 0].tolist() == [7, 7, 6] and b[:3, 1].tolist() == [7, 7, 5]
    assert b[:3, 2].tolist() == [7, 7, 7] and a[0, :3].all() and not a[0, 3:].any()


# --- the validation helpers -------------------------------------------------------------------

FORMATTED = [
    (HUGE, "<integer of 16610 bits>"), (-(10 ** 40), "<negative integer of 133 bits>"),
    (10 ** 29, "1" + "0" * 29), (math.nan, "nan"), (-math.inf, "-inf"), (4.0, "4.0"),
    (True, "true"), ("a\nb", '"a\\nb"'), ("z" * 1000, '"' + "z" * 40 + '..." (1000 characters)'),
    ([[[[[1]]]]], "[[[[...]]]]"), ({"a": 1, "b c": [True]}, '{a = 1, "b c" = [true]}'),
    (None, "None"), ((1, 2), "[1, 2]"),
]


@pytest.mark.parametrize("value, shown", FORMATTED, ids=[s[:30] for _, s in FORMATTED])
def test_format_value(value, shown):
    assert format_value(value) == shown


def test_format_value_cuts_long_lists_and_tables():
    text = format_value(list(range(10 ** 6)))
    assert text.startswith("[0, 1, 2, ") and text.endswith(", ... (1000000 values)]")
    assert len(text) < 120
    text = format_value({f"k{i}": "v" * 50 for i in range(1000)})
    assert text.endswith(", ... (1000 fields)}") and len(text) < 250
    assert "\n" not in format_value(np.zeros((50, 50)))


@pytest.mark.parametrize("call, message", [
    (lambda: check_float("f", math.nan, 0, 1), "f = nan: expected a number from 0 to 1"),
    (lambda: check_float("f", HUGE, 0), "f = <integer of 16610 bits>: expected a finite number "
                                        ">= 0"),
    (lambda: check_float("f", "1", hi=2), 'f = "1": expected a finite number <= 2'),
    (lambda: check_float("f", True), "f = true: expected a finite number"),
    (lambda: check_float("freq_mhz", 0, 0, 2000, lo_open=True),
     "freq_mhz = 0: expected a number above 0 and at most 2000"),
    (lambda: check_float("f", -1, 0, lo_open=True), "f = -1: expected a finite number > 0"),
    (lambda: check_probability("valid_prob", 0.01, 0.05),
     "valid_prob = 0.01: expected a number from 0.05 to 1"),
    (lambda: check_int("seed", -1, 0), "seed = -1: expected an integer >= 0"),
    (lambda: check_int("rows", [1], 1, 64), "rows = [1]: expected an integer from 1 to 64"),
    (lambda: check_choice("mode", ["a"], ("a", "b")), 'mode = ["a"]: expected one of "a", "b"'),
    (lambda: check_choice("mode", np.array(["a", "b"]), ("a", "b")),
     "mode = array(['a', 'b'], dtype='<U1'): expected one of \"a\", \"b\""),
])
def test_helper_messages(call, message):
    assert one_line_error(call) == message


def test_helpers_return_the_value():
    assert check_float("f", 3, 0, 4) == 3.0 and isinstance(check_float("f", 3, 0, 4), float)
    assert check_probability("p", 1) == 1.0
    assert check_int("seed", 10 ** 30, 0) == 10 ** 30


# --- environment ------------------------------------------------------------------------------

ALLOWED_CACHE = "expected a folder (or a path where one can be created)"


@pytest.mark.parametrize("relative, problem", [
    ("file", "{tmp}/file is a file"),
    ("file/sub/cache", "{tmp}/file is a file, not a folder"),
])
def test_cache_root_refuses_a_file(tmp_path, monkeypatch, relative, problem):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("HWGEN_CACHE", str(tmp_path / relative))
    assert one_line_error(cache_root) == (f'HWGEN_CACHE = "{tmp_path / relative}": '
                                          f"{ALLOWED_CACHE}; " + problem.format(tmp=tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_cache_root_default_and_creation(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HWGEN_CACHE", raising=False)
    assert cache_root() == tmp_path.resolve() / ".hwgen-cache"
    monkeypatch.setenv("HWGEN_CACHE", "")          # empty is unset
    assert cache_root() == tmp_path.resolve() / ".hwgen-cache"
    (tmp_path / ".hwgen-cache").write_text("")
    assert one_line_error(cache_root) == (
        f'cache folder (HWGEN_CACHE is not set: ./.hwgen-cache) = '
        f'"{tmp_path.resolve() / ".hwgen-cache"}": {ALLOWED_CACHE}; '
        f'{tmp_path.resolve() / ".hwgen-cache"} is a file')
    # A folder that does not exist yet is fine; checking it creates nothing.
    monkeypatch.setenv("HWGEN_CACHE", str(tmp_path / "new" / "cache"))
    assert cache_root() == tmp_path.resolve() / "new" / "cache"
    assert not (tmp_path / "new").exists()


# --- the command line: exit 2, one line, nothing written ---------------------------------------

CLI_CASES = [
    ("deep.toml", "x = " + "[" * DEEP + "]" * DEEP),
    ("dotted.toml", "a" + ".a" * DEEP + " = 1"),
    ("huge.json", '{"engine": "snn", "threshold": ' + "7" * 5000 + "}"),
    ("engine.toml", "engine = [1, 2]"),
    ("table.toml", 'engine = "sparse_attention"\nmax_len = {a = 1}'),
    *[(f"name_{name}.toml", f'engine = "mac_array"\nname = "{name}"')
      for name in ("clk", "rst", "aresetn", "printf", "stdout", "errno", "uint32_t", "NULL",
                   "accept_on", "checker", "let", "until", "implies", "nettype", "hwgen_hls",
                   "HLS", "CON", "_x", "word_t")],
]


def run_cli(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.err


@pytest.mark.parametrize("filename, text", CLI_CASES, ids=[c[0] for c in CLI_CASES])
@pytest.mark.parametrize("command", ["generate", "hls"])
def test_cli_one_error_line(tmp_path, capsys, command, filename, text):
    config = tmp_path / filename
    config.write_text(text)
    code, err = run_cli(capsys, command, config, "-o", tmp_path / "out")
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"hwgen: error: {filename}: "), err
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [filename]


@pytest.mark.parametrize("command, args", [
    ("sim", ["--vectors", 1]),
    ("synth", ["--target", "ecp5-85k", "-o", "out"]),
    ("flow", ["-o", "out"]),
    ("select", ["--weights", "W.npy", "--acts", "A.npy", "--max-error", 0.1]),
])
def test_cli_with_a_file_as_cache_fails_before_any_stage(tmp_path, capsys, monkeypatch,
                                                         command, args):
    # The cache is checked with the other inputs: no stage starts, nothing is written (flow
    # would otherwise publish its design folder before the simulation found the cache).
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("HWGEN_CACHE", str(tmp_path / "file" / "cache"))
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "mac.toml"
    config.write_text('engine = "mac_array"\nname = "tiny_cache"\nrows = 1\ncols = 1\n')
    code = main([command, *([] if command == "select" else [str(config)]), *map(str, args)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.splitlines() == [f'hwgen: error: HWGEN_CACHE = "{tmp_path / "file" / "cache"}": '
                                f"{ALLOWED_CACHE}; {tmp_path / 'file'} is a file, not a folder"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "mac.toml"]