"""Benchmarks (run by hand or `make bench`); see docs/benchmarks.md."""
