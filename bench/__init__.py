"""Vigil's benchmarks. ``make bench`` (``python -m bench``) runs them all;
each prints one JSON object per result with its parameters, sample count,
p50, p99 and max."""
