"""Benchmark datasets, paths and the test runner."""
