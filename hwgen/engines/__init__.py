"""Engine families; each registers itself once in :mod:`hwgen.engines.registry`."""
