"""Turning a validated config into files: Verilog, manifest, FuseSoC core."""
