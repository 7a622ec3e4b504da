"""hwgen: verified sparse-accelerator cores from a short configuration.

The stages are plain functions (docs/architecture.md §1)::

    from hwgen import load_config, generate, simulate, synthesize
    cfg = load_config("examples/mac_array_4x4.toml")
    artifacts = generate(cfg, "rtl_out")
    result = simulate(cfg, seed=1, vectors=64)
    report = synthesize(cfg, "ecp5-85k")
"""

from hwgen.config import ConfigError
from hwgen.engines.registry import config_from_dict, load_config

__all__ = ["ConfigError", "load_config", "config_from_dict", "generate", "simulate", "synthesize"]


def __getattr__(name):
    # The flows pull in Amaranth, cocotb and pyverilog; import them only when used.
    if name == "generate":
        from hwgen.emit.verilog import generate
        return generate
    if name == "simulate":
        from hwgen.flows.sim import simulate
        return simulate
    if name == "synthesize":
        from hwgen.flows.synth import synthesize
        return synthesize
    raise AttributeError(name)
