"""SNN networks: snn layers chained through compressed-fiber streams in one core
(docs/architecture.md §4.2.1)."""

from hwgen.engines.base import Engine

from . import cycle_model, golden, hls, stimulus
from .config import SnnNetworkConfig
from .rtl import SnnNetwork

__all__ = ["SnnNetworkConfig", "ENGINE"]

ENGINE = Engine(
    kind="snn_network",
    config_class=SnnNetworkConfig,
    component=SnnNetwork,
    golden=golden.network,
    stimulus=stimulus.random_network,
    cycle_model=cycle_model.network_cycles,
    hls_context=hls.hls_context,
    hls_vectors=hls.hls_vectors,
    testbench="hwgen.testbench.test_snn_network",
)
