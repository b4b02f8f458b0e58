"""Benchmarks and evaluations: run from the source tree, never imported by the service."""
