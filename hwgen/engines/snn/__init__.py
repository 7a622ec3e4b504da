"""Spike-compressing buffers and a dual-sparse SNN layer (docs/architecture.md §4.2, after LoAS)."""

from hwgen.engines.base import Engine

from . import cycle_model, golden, hls, stimulus
from .config import SnnConfig
from .rtl import SnnLayer

__all__ = ["SnnConfig", "ENGINE"]

ENGINE = Engine(
    kind="snn",
    config_class=SnnConfig,
    component=SnnLayer,
    golden=golden.layer,
    stimulus=stimulus.random_layer,
    cycle_model=cycle_model.layer_cycles,
    hls_context=hls.hls_context,
    hls_vectors=hls.hls_vectors,
    testbench="hwgen.testbench.test_snn",
)
