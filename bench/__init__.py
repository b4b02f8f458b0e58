"""Measurement commands kept apart from the serving code: retrieval and answer quality (`python -m bench.eval`)."""
