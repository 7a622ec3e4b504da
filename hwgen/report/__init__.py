"""Presenting results: text tables."""
