"""What retrieval mines from a corpus at ingest: posts, BM25 vocabulary, embedder -> extras.json data.

Two parts: the cross-lingual bridge (ingest/bridge.py) and the abstention probes (ingest/probes.py).
Kept out of build.py so that the index format only needs to carry one JSON file for them.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from ingest import bridge, probes
from ingest.embed import Embedder
from ingest.read import BRIDGE_FILE, Post
from ingest.segment import words


def mine(posts: list[Post], vocabulary: list[str], embedder: Embedder, corpus_dir: Path, previous: dict | None) -> dict:
    """{"bridge": ..., "probes": ...}; a user's own pairs are read from `<corpus>/bridge.tsv` when it exists."""
    table = bridge.mine(*bridge.read_notes(p.text for p in posts), vocabulary, corpus_dir / BRIDGE_FILE, words)
    texts = [bridge.embedding_text(q, table) for q in probes.questions()]
    return {"bridge": table, "probes": probes.record(embedder, texts, (previous or {}).get("probes"))}


def fingerprint(corpus_dir: Path) -> str:
    """Identifies the inputs of mining besides the posts, so that editing bridge.tsv or the probes triggers a build."""
    h = hashlib.sha256()
    for path in (corpus_dir / BRIDGE_FILE, probes.PROBES):
        h.update(path.read_bytes() if path.is_file() else b"")
        h.update(b"\0")
    return h.hexdigest()[:16]
