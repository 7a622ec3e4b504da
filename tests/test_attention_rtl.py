"""The sparse attention RTL in Amaranth's simulator against the golden model, sequence by sequence.

Small configs (max_len <= 16) so every mask, several lengths back to back, ties, zero tensors and
extremes run in seconds; the Verilator testbench (sim/test_sparse_attention.py) covers the rest.
"""

from __future__ import annotations

import numpy as np
import pytest
from hwgen.testbench.amaranth_streams import run_through

from hwgen.engines.sparse_attention import SparseAttentionConfig, golden
from hwgen.engines.sparse_attention.cycle_model import sequence_cycles, stream_cycles
from hwgen.engines.sparse_attention.rtl import SparseAttention, out_layout, token_layout
from hwgen.engines.sparse_attention.stimulus import edge_sequences, random_sequence
from hwgen.hdl.payload import pack, unpack

CONFIGS = {
    "topk": SparseAttentionConfig(max_len=12, head_dim=4, topk=3, lanes=2),
    "topk_lanes3": SparseAttentionConfig(max_len=10, head_dim=3, topk=4, lanes=3, rounding="floor"),
    "topk_k1": SparseAttentionConfig(max_len=8, head_dim=2, topk=1, lanes=1),
    "window": SparseAttentionConfig(max_len=12, head_dim=4, mask="window", window=2,
                                    global_tokens=2),
    "window_noglobal": SparseAttentionConfig(max_len=9, head_dim=2, mask="window", window=1),
    "dense": SparseAttentionConfig(max_len=8, head_dim=3, mask="dense", out_bits=6),
    # Query-row parallelism: L below, at and not a multiple of rows.
    "topk_rows2": SparseAttentionConfig(max_len=11, head_dim=4, topk=3, lanes=2, rows=2),
    "topk_rows3": SparseAttentionConfig(max_len=10, head_dim=5, topk=4, lanes=4, rows=3),
    "window_rows4": SparseAttentionConfig(max_len=10, head_dim=2, mask="window", window=1,
                                          global_tokens=1, rows=4),
    "dense_rows3": SparseAttentionConfig(max_len=7, head_dim=3, topk=2, mask="dense", rows=3),
    # The smallest shapes (single-bit counters, rows = max_len).
    "topk_tiny": SparseAttentionConfig(max_len=2, head_dim=1, topk=1, lanes=1, rows=2, window=0),
    "dense_one": SparseAttentionConfig(max_len=1, head_dim=1, topk=1, mask="dense", window=0),
    # k close to max_len and far above the estimate's blocks (the exact stage bounds a group,
    # and a top-k unit's sets follow each other closely), lanes above head_dim.
    "topk_deep": SparseAttentionConfig(max_len=24, head_dim=2, topk=20, lanes=8),
    # Adaptive k: the margin keeps 1..topk keys, differently per row of a group.
    "threshold": SparseAttentionConfig(max_len=12, head_dim=4, mask="threshold", topk=5,
                                       margin=6, lanes=2, rows=2),
    "threshold_m0": SparseAttentionConfig(max_len=9, head_dim=3, mask="threshold", topk=3,
                                          margin=0, lanes=3),
}


def token_beats(cfg, q, k, v):
    layout = token_layout(cfg)
    beats = []
    for j in range(q.shape[0]):
        beats.append(pack(layout, {"q": [int(x) for x in q[j]], "k": [int(x) for x in k[j]],
                                   "v": [int(x) for x in v[j]], "last": int(j == q.shape[0] - 1)}))
    return beats


def run(cfg, sequences, seed, valid_prob=1.0, ready_prob=1.0):
    dut = SparseAttention(cfg)
    beats = [b for q, k, v in sequences for b in token_beats(cfg, q, k, v)]
    outputs = sum(q.shape[0] for q, _, _ in sequences)
    accepted, received = run_through(dut, dut.tokens, dut.out, beats, outputs, seed,
                                     valid_prob, ready_prob, max_cycles=200000)
    rows = [unpack(out_layout(cfg), bits) for _, bits in received]
    return [(r["o"], r["last"]) for r in rows], accepted, received


def expected(cfg, sequences):
    rows = []
    for q, k, v in sequences:
        out = golden.attention(cfg, q, k, v).out
        rows += [([int(x) for x in out[i]], int(i == q.shape[0] - 1)) for i in range(q.shape[0])]
    return rows


@pytest.mark.parametrize("key", CONFIGS)
def test_rtl_matches_golden(key):
    cfg = CONFIGS[key]
    rng = np.random.default_rng(7)
    seqs = [seq[1:] for seq in edge_sequences(cfg)]
    seqs += [random_sequence(cfg, int(n), rng) for n in rng.integers(1, cfg.max_len + 1, size=4)]
    got, _, _ = run(cfg, seqs, seed=7, valid_prob=0.7, ready_prob=0.6)
    want = expected(cfg, seqs)
    assert len(got) == len(want)
    bad = [i for i, (a, b) in enumerate(zip(got, want)) if a != b]
    assert not bad, f"{len(bad)} rows differ, first {bad[0]}: {got[bad[0]]} != {want[bad[0]]}"


@pytest.mark.parametrize("key", ["topk_lanes3", "window", "dense", "topk_rows3", "window_rows4",
                                 "topk_deep", "threshold"])
def test_cycles_follow_the_model(key):
    """Alone (no gaps, output always ready): first token to last output row equals the cycle
    model exactly; back to back, the whole stream too (given each row's key count)."""
    cfg = CONFIGS[key]
    rng = np.random.default_rng(11)
    lengths = [1, 2, cfg.max_len, 3, cfg.max_len - 1]
    seqs = [random_sequence(cfg, n, rng, "peaked" if n > 2 else "uniform") for n in lengths]
    counts = [[len(sel) for sel in golden.attention(cfg, *seq).selected] for seq in seqs]
    for seq, n, c in zip(seqs, lengths, counts):
        _, accepted, received = run(cfg, [seq], seed=1)
        assert received[-1][0] - accepted[0] + 1 == sequence_cycles(cfg, n, c).total, n
    got, accepted, received = run(cfg, seqs, seed=1)
    assert got == expected(cfg, seqs)
    assert received[-1][0] - accepted[0] + 1 == stream_cycles(cfg, lengths, counts)
    if cfg.mask == "threshold":
        assert len({n for c in counts for n in c}) > 1, "every row kept the same count"
