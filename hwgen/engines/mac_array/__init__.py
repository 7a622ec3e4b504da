"""Weight-stationary MAC array, dense or N:M sparse (docs/architecture.md §4.1)."""

from hwgen.engines.base import Engine

from . import golden, hls, stimulus
from .config import MacArrayConfig
from .rtl import MacArray

__all__ = ["MacArrayConfig", "ENGINE"]

ENGINE = Engine(
    kind="mac_array",
    config_class=MacArrayConfig,
    component=MacArray,
    golden=golden.run,
    stimulus=stimulus.test_tiles,
    cycle_model=golden.cycle_model,
    hls_context=hls.hls_context,
    hls_vectors=hls.hls_vectors,
    testbench="hwgen.testbench.test_mac_array",
)
