"""Configuration of an SNN network: layers of the snn engine chained through compressed-fiber
streams in one core (docs/architecture.md §4.2.1).

The network fixes what every link must agree on — timesteps, chunk and ``min_spikes`` (a
layer's output fiber is the next layer's input fiber, so both must drop the same words) — and
the formats of its two outer ports. Each entry of ``layers`` is one layer's own fields: its
output neurons, PEs, weight width, join, dataflow and LIF (any :class:`~hwgen.engines.snn.
SnnConfig` field of :data:`LAYER_FIELDS`). Layer ``i`` takes ``in_neurons`` (i = 0) or layer
``i - 1``'s ``out_neurons`` input neurons.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from hwgen.config import (
    NAME_DOC,
    ConfigError,
    EngineConfig,
    check_choice,
    check_int,
    check_name,
    invalid,
)
from hwgen.engines.snn.config import SnnConfig

__all__ = ["LAYER_FIELDS", "MAX_LAYERS", "SnnNetworkConfig"]

#: The SnnConfig fields a layer table may set; the others are the network's.
LAYER_FIELDS = ("out_neurons", "pes", "lif_lanes", "weight_bits", "join", "laggy_adders", "dataflow",
                "threshold", "fire", "reset", "leak", "leak_shift", "rounding", "membrane_bits",
                "membrane_overflow", "pseudo_bits", "corr_bits", "acc_overflow", "preset")

#: Most layers in one core.
MAX_LAYERS = 8

_DOCS = {f.name: f.metadata["doc"] for f in fields(SnnConfig)}


@dataclass(frozen=True)
class SnnNetworkConfig(EngineConfig):
    """SNN layers chained through compressed-fiber streams in one core."""

    kind = "snn_network"

    name: str = field(default="snn_net", metadata={"doc": NAME_DOC})
    timesteps: int = field(default=4, metadata={"doc": _DOCS["timesteps"] + " Every layer's."})
    in_neurons: int = field(default=64, metadata={
        "doc": "K of the first layer: input neurons per sample (1..4096)."})
    chunk: int = field(default=64, metadata={"doc": _DOCS["chunk"] + " Every layer's, so a "
                                             "layer's output fiber is the next one's input."})
    min_spikes: int = field(default=1, metadata={
        "doc": "A word with fewer spikes than this is dropped (1..timesteps): by the first "
               "layer's compressor and by every layer's output compressor."})
    in_format: str = field(default="fiber", metadata={
        "doc": "Spikes on the ``spikes`` port (the first layer's input): \"dense\" or \"fiber\"."})
    out_format: str = field(default="fiber", metadata={
        "doc": "Spikes on the ``out`` port (the last layer's output): \"dense\" or \"fiber\"."})
    layers: tuple = field(default=({"out_neurons": 32}, {"out_neurons": 16},
                                   {"out_neurons": 8}), metadata={
        "doc": f"The layers in order, 1 to {MAX_LAYERS} tables, each with ``out_neurons`` and any "
               f"of the snn layer fields {', '.join(LAYER_FIELDS[1:])} (absent: the snn "
               f"engine's default). Layer i takes layer i-1's out_neurons as its in_neurons."})

    def __post_init__(self):
        if isinstance(self.layers, list):
            object.__setattr__(self, "layers", tuple(self.layers))
        super().__post_init__()

    def __hash__(self):
        return hash((self.name, self.timesteps, self.in_neurons, self.chunk, self.min_spikes,
                     self.in_format, self.out_format,
                     tuple(tuple(sorted(t.items())) for t in self.layers)))

    def validate(self) -> None:
        check_name("name", self.name)
        check_int("timesteps", self.timesteps, 1, 16)
        check_int("in_neurons", self.in_neurons, 1, 4096)
        check_int("chunk", self.chunk, 4, 256)
        if self.chunk % 4:
            raise invalid("chunk", self.chunk, "a multiple of 4 from 4 to 256")
        check_int("min_spikes", self.min_spikes, 1, self.timesteps)
        check_choice("in_format", self.in_format, ("dense", "fiber"))
        check_choice("out_format", self.out_format, ("dense", "fiber"))
        if not isinstance(self.layers, tuple) or not 1 <= len(self.layers) <= MAX_LAYERS:
            raise invalid("layers", self.layers, f"a list of 1 to {MAX_LAYERS} tables")
        for i, table in enumerate(self.layers):
            if not isinstance(table, dict):
                raise invalid(f"layers[{i}]", table, "a table of layer fields")
            for key in table:
                if key not in LAYER_FIELDS:
                    raise ConfigError(f"layers[{i}]: unknown field {key!r} (allowed: "
                                      f"{', '.join(LAYER_FIELDS)})")
            if "out_neurons" not in table:
                raise ConfigError(f"layers[{i}]: out_neurons is missing: expected an integer "
                                  f"from 1 to 1024")
        self.layer_configs                 # builds (and so validates) every layer

    @property
    def layer_configs(self) -> tuple[SnnConfig, ...]:
        """Every layer as an snn layer config: ``<name>_l<i>``, fiber on every inner link."""
        out, k = [], self.in_neurons
        last = len(self.layers) - 1
        for i, table in enumerate(self.layers):
            try:
                cfg = SnnConfig(name=f"{self.name}_l{i}", timesteps=self.timesteps,
                                in_neurons=k, chunk=self.chunk, min_spikes=self.min_spikes,
                                in_format=self.in_format if i == 0 else "fiber",
                                out_format=self.out_format if i == last else "fiber", **table)
            except ConfigError as exc:
                raise ConfigError(f"layers[{i}].{exc}") from None
            out.append(cfg)
            k = cfg.out_neurons
        return tuple(out)

    @property
    def weight_bits(self) -> int:
        """Value bits of the ``weights`` port: the widest layer's ``weight_bits``."""
        return max(c.weight_bits for c in self.layer_configs)
