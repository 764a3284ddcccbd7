"""Helpers of ``benchmarks/run.py`` (the real-model benchmark). Never imported by tests."""
