"""Reading VCD waveforms (hwgen/power/vcd.py) on small hand-written files.

A Verilator waveform is read end to end by ``test_mac_energy_sim.py``; these files show each rule
on its own: scopes, aliases, timescales, x/z bits, malformed input, the per-cycle view.
"""

from __future__ import annotations

import numpy as np
import pytest

from hwgen.power.vcd import VcdError, read_vcd

HEADER = """$date today $end
$version hand-written $end
$timescale {scale} $end
$scope module TOP $end
$var wire 1 ! clk $end
$scope module core $end
$var wire 8 # count [7:0] $end
$var wire 8 # count_alias [7:0] $end
$var wire 1 % flag $end
$var wire 4 & noisy [3:0] $end
$var real 64 ' level $end
$upscope $end
$upscope $end
$enddefinitions $end
"""

CHANGES = """#0
$dumpvars
0!
b00000000 #
0%
bxxxx &
r0.5 '
$end
#5
1!
b00000011 #
1%
#10
0!
#15
1!
b11111111 #
0%
bz &
"""


def _write(tmp_path, text: str, name: str = "w.vcd"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_signals_scopes_aliases_and_times(tmp_path):
    wave = read_vcd(_write(tmp_path, HEADER.format(scale="10 ps") + CHANGES),
                    {"count", "count_alias", "flag"})
    assert sorted(wave.signals) == ["TOP.core.count", "TOP.core.count_alias", "TOP.core.flag"]
    count = wave.find("core", "count")
    assert count.width == 8
    assert count.changes == [(0, 0), (50, 3), (150, 255)]        # times in ps
    assert wave.find("core", "count_alias").changes == count.changes
    assert wave.find("core", "flag").changes == [(0, 0), (50, 1), (150, 0)]


def test_names_starting_with_a_dollar_sign(tmp_path):
    """Verilator writes a "$rootio" scope and keeps Amaranth's "$1" names (which pyvcd 0.4
    alone refuses); a "$" identifier code is not a name."""
    text = """$timescale 1ps $end
 $scope module $rootio $end
  $var wire 1 $ clk $end
 $upscope $end
 $scope module top $end
  $var wire 17 # $10 [16:0] $end
  $var wire 1 ( $auto$verilog_backend.cc:2355:dump_module$1 $end
 $upscope $end
$enddefinitions $end
#0
1$
b101 #
#10
0$
"""
    wave = read_vcd(_write(tmp_path, text))
    assert sorted(wave.signals) == ["$rootio.clk", "top.$10",
                                    "top.$auto$verilog_backend.cc:2355:dump_module$1"]
    assert wave.find("$rootio", "clk").changes == [(0, 1), (10, 0)]
    assert (wave.find("top", "$10").width, wave.find("top", "$10").changes) == (17, [(0, 5)])


def test_all_variables_without_a_filter(tmp_path):
    with pytest.raises(VcdError, match=r"w\.vcd: value 'xxxx' at 0 ps has x/z bits"):
        read_vcd(_write(tmp_path, HEADER.format(scale="1 ns") + CHANGES))


def test_x_and_z_bits_of_a_kept_signal_are_errors(tmp_path):
    text = HEADER.format(scale="1 ns") + CHANGES.replace("bz &", "b1z #")
    with pytest.raises(VcdError, match=r"w\.vcd: value '1z' at 15000 ps has x/z bits"):
        read_vcd(_write(tmp_path, text), {"count"})
    text = HEADER.format(scale="1 ns") + CHANGES.replace("0%\nbz &", "x%")
    with pytest.raises(VcdError, match=r"value 'x' at 15000 ps has x/z bits"):
        read_vcd(_write(tmp_path, text), {"flag"})


@pytest.mark.parametrize("scale, factor", [("1 ps", 1), ("100ps", 100), ("1 us", 10**6),
                                           ("10 ns", 10**4)])
def test_timescales(tmp_path, scale, factor):
    wave = read_vcd(_write(tmp_path, HEADER.format(scale=scale) + CHANGES), {"count"})
    assert [t for t, _ in wave.find("core", "count").changes] == [0, 5 * factor, 15 * factor]


def test_femtosecond_timescale_is_refused(tmp_path):
    with pytest.raises(VcdError, match=r"w\.vcd: timescale 100 fs is not a multiple of 1 ps"):
        read_vcd(_write(tmp_path, HEADER.format(scale="100 fs") + CHANGES), {"count"})


@pytest.mark.parametrize("text, message", [
    ("hello\n", r"w\.vcd: not a valid VCD file: 1:1: confused: h"),
    ("$timescale 3 ns $end\n", r"w\.vcd: not a valid VCD file: 1:\d+: Invalid \$timescale"),
    ("$scope module a $end $upscope $end $upscope $end\n",
     r"w\.vcd: \$upscope without an open \$scope"),
])
def test_malformed_files(tmp_path, text, message):
    with pytest.raises(VcdError, match=message) as info:
        read_vcd(_write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_find_needs_exactly_one_match(tmp_path):
    wave = read_vcd(_write(tmp_path, HEADER.format(scale="1 ns") + CHANGES), {"count"})
    with pytest.raises(VcdError, match=r"signal TOP\.count: 0 matches in the waveform"):
        wave.find("TOP", "count")


def test_per_cycle_values(tmp_path):
    wave = read_vcd(_write(tmp_path, HEADER.format(scale="1 ns") + CHANGES), {"count", "flag"})
    count = wave.find("core", "count")
    # Edges every 5 ns from 0 ns; the changes are at 0 (to 0), 5 (to 3) and 15 ns (to 255).
    np.testing.assert_array_equal(wave.per_cycle(count, 0, 5000, 5), [0, 3, 3, 255, 255])
    np.testing.assert_array_equal(wave.per_cycle(count, 0, 5000, 2), [0, 3])
    # Cycle 0 at 10 ns: the change to 0 before it is the initial state, the change to 3 is not.
    with pytest.raises(VcdError, match="a change to 3 at 5000 ps is not at a clock edge of "
                                       "cycles 0..1"):
        wave.per_cycle(count, 10000, 5000, 2)
    with pytest.raises(VcdError, match="a change to 3 at 5000 ps is not at a clock edge"):
        wave.per_cycle(count, 0, 4000, 4)
