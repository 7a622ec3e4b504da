"""benchmarks/mac_array.py without simulating or synthesizing: the GMAC/s and DSP-ceiling
arithmetic, the synth list, ``--synth-only`` and the largest-fit summary."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from hwgen.engines.mac_array import MacArrayConfig
from hwgen.flows.synth import TARGETS

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "mac_array.py"


@pytest.fixture(scope="module")
def bench():
    # benchmarks/ is not a package: load the script as a module.
    spec = importlib.util.spec_from_file_location("bench_mac_array", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gmacs_is_macs_per_cycle_times_fmax(bench):
    assert bench.gmacs(60.0, 150.0) == pytest.approx(9.0)
    assert bench.gmacs(60.0, None) is None
    assert bench.gmacs(None, 150.0) is None


def test_dsp_ceiling_is_the_targets_dsps_times_fmax(bench):
    assert bench.dsp_ceiling_gmacs("ecp5-85k", 100.0) == pytest.approx(15.6)
    assert bench.dsp_ceiling_gmacs("ice40-up5k", 50.0) == pytest.approx(0.4)
    assert bench.dsp_ceiling_gmacs("ice40-up5k", None) is None


def test_synth_list_has_every_design_on_ecp5_and_distinct_entries(bench):
    runs = [(cfg.name, target) for cfg, target in bench.SYNTH_RUNS]
    assert len(runs) == len(set(runs))
    assert all((cfg.name, "ecp5-85k") in runs for cfg in bench.DESIGNS)
    assert all(target in TARGETS for _, target in runs)
    # A name stands for one design: the same name on two targets is the same config.
    by_name = {}
    for cfg, _ in bench.SYNTH_RUNS:
        assert by_name.setdefault(cfg.name, cfg) == cfg


def test_size_key_puts_shift_and_dsp_arrays_of_one_size_together(bench):
    dense = MacArrayConfig(name="m_dense", rows=8, cols=8)
    shift = MacArrayConfig(name="m_shift", rows=8, cols=8, weight_set="pow2")
    sparse = MacArrayConfig(name="m_sparse", rows=8, cols=8, sparsity="2:4")
    assert bench.size_key(dense) == bench.size_key(shift) != bench.size_key(sparse)


def test_synth_only_picks_by_design_by_target_and_both(bench):
    assert [t for _, t in bench.pick_runs("bench_dense_4x4")] == ["ecp5-85k", "ice40-up5k"]
    ice40 = bench.pick_runs("ice40-up5k")
    assert ice40 and all(t == "ice40-up5k" for _, t in ice40)
    picked = bench.pick_runs("bench_dense_4x4, ice40-up5k")
    assert [(cfg.name, t) for cfg, t in picked] == [("bench_dense_4x4", "ice40-up5k")]
    both = bench.pick_runs("bench_dense_2x2,bench_pow2_2x2")
    assert [cfg.name for cfg, _ in both] == ["bench_dense_2x2", "bench_pow2_2x2"]


def test_synth_only_refuses_unknown_names_and_empty_selections(bench, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--synth-only", "bench_dense_2x2,nope"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "'nope'" in err and "bench_dense_2x2" in err and "ice40-up5k" in err
    with pytest.raises(ValueError, match="no entry"):
        bench.pick_runs("bench_dense_2x2,ecp5-85k")


def test_largest_fits_names_the_largest_fit_and_the_next_miss(bench):
    def cfg(size, pow2=True):
        return MacArrayConfig(name=f"s{size}", rows=size, cols=size,
                              weight_set="pow2" if pow2 else "all")

    lines = bench.largest_fits([(cfg(4), "ice40-up5k", True), (cfg(6), "ice40-up5k", True),
                                (cfg(8), "ice40-up5k", False), (cfg(7), "ice40-up5k", False),
                                (cfg(2, pow2=False), "ice40-up5k", True)])
    assert lines == ["largest shift array that fits ice40-up5k: s6 (s7 does not)",
                     "largest DSP array that fits ice40-up5k: s2 (no larger one was run)"]
    assert bench.largest_fits([(cfg(32), "ecp5-85k", False)]) == [
        "largest shift array that fits ecp5-85k: none of those run (s32 does not)"]


def test_synth_table_rows_from_fake_reports(bench, monkeypatch, capsys):
    """The table from stand-in reports: a fit (simulated here, its size not measured yet), a
    does-not-fit (not simulated) and a tool error (a row, and the list goes on)."""
    import hwgen.flows.synth as synth

    def report(fits, fmax):
        return synth.SynthReport(
            target="ice40-up5k", luts=800, ffs=700, dsps=8 if fits else 16, brams=0,
            fmax_mhz=fmax, target_mhz=48.0, fits=fits, overflow=[] if fits else ["dsps"],
            counted_by="nextpnr" if fits else "yosys", capacity={}, tools={}, seeds=[1, 2],
            seed_fmax_mhz=[fmax, fmax], reported_seed=1 if fits else None, router=None)

    def fake_synthesize(cfg, target, seeds):
        if cfg.name == "bench_pow2_2x2":
            raise synth.SynthError("nextpnr-ice40 failed")
        return report(cfg.rows * cfg.cols <= 8, 60.0 if cfg.rows * cfg.cols <= 8 else None)

    simulated = []

    def fake_simulate(cfg):
        simulated.append(cfg.name)
        return {"dense_eq_per_cycle": 7.5, "numpy_gmacs": 1.25}

    monkeypatch.setattr(synth, "synthesize", fake_synthesize)
    bench.synth_table(bench.pick_runs("bench_dense_2x4,bench_dense_4x4,bench_pow2_2x2,"
                                      "ice40-up5k"), (1, 2), {}, fake_simulate)
    out, err = capsys.readouterr()
    assert simulated == ["bench_dense_2x4"]
    assert "bench_pow2_2x2 on ice40-up5k: nextpnr-ice40 failed" in err
    rows = {line.split()[0]: line.split() for line in out.splitlines()
            if line.startswith("bench_")}
    # 7.5 dense-eq MACs/cycle at 60 MHz: 0.45 GMAC/s; 8 DSPs at 60 MHz: 0.48.
    assert rows["bench_dense_2x4"][3:] == ["800", "700", "8", "0", "60", "60.0", "/", "60.0",
                                          "yes", "7.5", "0.45", "0.48", "1.25"]
    assert "no: dsps (yosys)" in out and rows["bench_pow2_2x2"][3:] == ["-"] * 6 + ["error"] \
        + ["-"] * 4
    assert "largest DSP array that fits ice40-up5k: bench_dense_2x4 (bench_dense_4x4 does " \
           "not)" in out
