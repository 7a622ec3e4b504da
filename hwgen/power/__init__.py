"""Power analysis of the generated engines: switching-activity energy proxies and power-aware
weight-set selection for the MAC array (docs/architecture.md §4.1), built on the engine's golden
model and
on the simulation flow."""
