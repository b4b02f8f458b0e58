"""Probe questions that no single-subject corpus answers: ingest/data/probes.txt -> their vectors, kept with each build.

The service runs them through retrieval when it loads a build: how well they match *this* corpus is the
bar a real question must clear to count as covered (app/abstain.py). They are generic everyday and
computing questions, written for no particular corpus.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ingest.embed import Embedder

PROBES = Path(__file__).parent / "data" / "probes.txt"


def questions(path: Path = PROBES) -> list[str]:
    return [line.strip() for line in path.read_text("utf-8").splitlines() if line.strip() and not line.startswith("#")]


def record(embedder: Embedder, texts: list[str], previous: dict | None) -> dict:
    """{"embedder", "engine", "texts", "vectors"} as JSON data: the probe questions as the service embeds
    them (translated through the bridge, see ingest/bridge.py); the previous build's record when nothing
    changed."""
    if previous and previous.get("texts") == texts and (previous.get("embedder"), previous.get("engine")) == (
        embedder.name, embedder.engine
    ):
        return previous
    vectors = embedder.queries(texts) if texts else np.zeros((0, embedder.dim))
    return {"embedder": embedder.name, "engine": embedder.engine, "texts": texts, "vectors": np.round(vectors, 6).tolist()}
