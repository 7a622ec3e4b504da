"""Length-adaptive top-k sparse attention, one head (docs/architecture.md §4.3, after Peng et
al.)."""

from hwgen.engines.base import Engine

from . import cycle_model, golden, hls, stimulus
from .config import SparseAttentionConfig
from .rtl import SparseAttention

__all__ = ["SparseAttentionConfig", "ENGINE"]

ENGINE = Engine(
    kind="sparse_attention",
    config_class=SparseAttentionConfig,
    component=SparseAttention,
    golden=golden.attention,
    stimulus=stimulus.test_sequences,
    cycle_model=cycle_model.sequence_cycles,
    hls_context=hls.hls_context,
    hls_vectors=hls.hls_vectors,
    testbench="hwgen.testbench.test_sparse_attention",
)
