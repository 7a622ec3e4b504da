"""Reusable Amaranth blocks shared by the engines."""
