"""TopK alone on ECP5-85K: LUTs, flip-flops and Fmax over placement seeds, and the critical path.

:class:`hwgen.hdl.topk.TopK` is wrapped in a small module that registers ``items.payload`` and
``items.valid`` before it and ``selected.payload``/``selected.valid`` after it (``selected.ready``
comes from a register too, ``items.ready`` goes to one), so only TopK's own paths are timed. The
wrapper goes through the project's Yosys script (``templates/synth/yosys.ys.j2``, via
:mod:`hwgen.flows.synth`: ``synth_ecp5`` with ABC9, every port but ``clk``/``rst`` made internal)
and then nextpnr-ecp5 with the project's device arguments, router choice and ``--seed``.
Printed per config and seed: Fmax of ``clk``, LUT4 sites and flip-flops; then the median Fmax and
the critical path of the median seed (the cells along it, nextpnr's names).

Usage::

    python benchmarks/topk_fmax.py [--seeds 1 2 3] [--freq 100] [--config k,lanes,bits,items ...]
                                    [--margin M] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
from pathlib import Path

from amaranth import Module, Signal, signed
from amaranth.back import verilog
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.flows import synth
from hwgen.hdl.topk import TopK, items_layout, selected_layout

CONFIGS = [(8, 4, 11, 64), (16, 8, 13, 256), (8, 8, 11, 64)]   # k, lanes, signed bits, max_items


class Registered(wiring.Component):
    """TopK between registers: its inputs come from flip-flops and its outputs go to flip-flops."""

    def __init__(self, k: int, lanes: int, bits: int, max_items: int, margin=None):
        self.topk = TopK(k, signed(bits), lanes, max_items, margin=margin)
        super().__init__({
            "items": In(stream.Signature(items_layout(signed(bits), lanes))),
            "selected": Out(stream.Signature(selected_layout(max_items))),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.topk = t = self.topk
        ready_q = Signal()
        m.d.sync += [
            t.items.payload.eq(self.items.payload),
            t.items.valid.eq(self.items.valid),
            ready_q.eq(t.items.ready),
            t.selected.ready.eq(self.selected.ready),
            self.selected.payload.eq(t.selected.payload),
            self.selected.valid.eq(t.selected.valid),
        ]
        m.d.comb += self.items.ready.eq(ready_q)
        return m


def _ports(text: str, top: str) -> list[str]:
    header = text[text.index(f"module {top}("):]
    header = header[:header.index("endmodule")]
    return re.findall(r"^\s*(?:input|output)\s+(?:wire\s+|reg\s+)?(?:\[[^\]]*\]\s*)?(\w+);",
                      header, re.MULTILINE)


def _critical_path(raw: dict) -> str:
    """nextpnr's critical path of ``clk``: delay, logic steps (carry steps among them), routing,
    start and end cells and the design's own nets along it (Yosys' generated names left out)."""
    paths = [p for p in raw.get("critical_paths", []) if "clk" in p.get("from", "").split("$")]
    if not paths:
        return "(none)"
    path = paths[0]["path"]
    total = sum(float(step["delay"]) for step in path)
    logic = [step for step in path if step["type"] == "logic"]
    carry = [step for step in logic if step["from"]["port"] in ("FCI",)]
    routing = sum(float(step["delay"]) for step in path if step["type"] == "routing")
    nets = []
    for step in path:
        net = step.get("net", "")
        if net and not any(t in net for t in ("TRELLIS", "CCU2", "LUT4", "PFUMX", "$")) \
                and net not in nets:
            nets.append(net)
    return (f"{total:.2f} ns, {len(logic)} logic steps ({len(carry)} of them carry), "
            f"{routing:.2f} ns routing; {path[0]['from']['cell']} -> {path[-1]['to']['cell']}; "
            f"nets: {', '.join(nets)}")


def measure(cfg: tuple[int, int, int, int], seeds: list[int], freq: float, work: Path,
            margin=None) -> dict:
    k, lanes, bits, items = cfg
    top = "topk_bench"
    tgt = synth.TARGETS["ecp5-85k"]
    work.mkdir(parents=True, exist_ok=True)
    text = verilog.convert(Registered(k, lanes, bits, items, margin), name=top, emit_src=False)
    (work / f"{top}.v").write_text(text)
    cells = synth._yosys(top, tgt, work, f"{top}.v", _ports(text, top))
    router = synth.nextpnr_router(tgt, cells)        # the choice hwgen synth makes
    runs = []
    for seed in seeds:
        report = f"report_{seed}.json"
        proc = synth._run(tgt.nextpnr, [*tgt.device_args, "--json", synth.NETLIST,
                                        "--freq", repr(freq), "--timing-allow-fail",
                                        "--router", router, "--seed", str(seed),
                                        "--report", report,
                                        "-l", f"nextpnr_{seed}.log", "-q"], work)
        if proc.returncode != 0:
            sys.exit(f"nextpnr failed for {cfg} seed {seed}: {proc.stderr[-2000:]}")
        raw = json.loads((work / report).read_text())
        util = raw["utilization"]
        runs.append({"seed": seed, "fmax": synth._clock_fmax(raw["fmax"]),
                     "luts": util["TRELLIS_COMB"]["used"], "ffs": util["TRELLIS_FF"]["used"],
                     "path": _critical_path(raw)})
    order = sorted(runs, key=lambda r: r["fmax"])
    return {"runs": runs, "median": statistics.median(r["fmax"] for r in runs),
            "median_run": order[len(order) // 2]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--freq", type=float, default=100.0)
    parser.add_argument("--margin", type=int, default=None)
    parser.add_argument("--config", nargs="*", default=None,
                        help="k,lanes,signed_bits,max_items (default: the three of the brief)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the work folders here")
    args = parser.parse_args()
    configs = [tuple(int(x) for x in c.split(",")) for c in args.config] if args.config \
        else CONFIGS
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        for cfg in configs:
            name = "k{}_l{}_w{}_n{}".format(*cfg)
            res = measure(cfg, args.seeds, args.freq, root / name, args.margin)
            for r in res["runs"]:
                print(f"{name} seed {r['seed']}: {r['fmax']:.2f} MHz, "
                      f"{r['luts']} LUT4, {r['ffs']} FF")
            print(f"{name} median {res['median']:.2f} MHz; critical path (seed "
                  f"{res['median_run']['seed']}): {res['median_run']['path']}", flush=True)


if __name__ == "__main__":
    main()
