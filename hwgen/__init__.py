"""hwgen: verified sparse-accelerator cores from a short configuration.

The stages are plain functions (docs/architecture.md §1)::

    from hwgen import load_config, generate, simulate, synthesize
    cfg = load_config("examples/mac_array_4x4.toml")
    artifacts = generate(cfg, "rtl_out")
    result = simulate(cfg, seed=1, vectors=64)
    report = synthesize(cfg, "ecp5-85k")
"""

from hwgen.config import ConfigError
from hwgen.emit.verilog import generate
from hwgen.engines.registry import config_from_dict, load_config
from hwgen.flows.sim import simulate
from hwgen.flows.synth import synthesize

__all__ = ["ConfigError", "load_config", "config_from_dict", "generate", "simulate", "synthesize"]
