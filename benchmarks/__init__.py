"""Benchmarks of logbridge against peer SDKs and baselines: run ``benchmarks/run``."""
