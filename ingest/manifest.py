"""What a build records about itself: manifest.json <-> a typed, frozen Manifest."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from ingest.errors import IndexCorrupt, IndexMismatch

FORMAT_VERSION = 2


@dataclass(frozen=True)
class EmbedderInfo:
    name: str
    dim: int
    # The engine that computed the vectors, for the record: engines of one model are interchangeable.
    engine: str = ""


@dataclass(frozen=True)
class SegmenterInfo:
    name: str
    dictionary_hash: str


@dataclass(frozen=True)
class Chunking:
    size: int
    overlap: int
    # How posts are cut (ingest/chunk.py's METHOD); empty in builds made before it was recorded.
    method: str = ""


@dataclass(frozen=True)
class Rules:
    """Everything that decides what a build contains; a build made under other rules is not reused."""

    embedder: EmbedderInfo
    segmenter: SegmenterInfo
    chunking: Chunking
    # Hash of what mining reads besides the posts (a user's bridge.tsv, the probe questions): ingest/extras.py.
    extras: str


@dataclass(frozen=True)
class Counts:
    posts: int
    chunks: int
    terms: int
    sentences: int


@dataclass(frozen=True)
class BM25Params:
    k1: float
    b: float
    epsilon: float


@dataclass(frozen=True)
class Manifest:
    format_version: int
    version: str
    created_at: str
    rules: Rules
    counts: Counts
    bm25: BM25Params
    # "flat" (exact) or "hnsw", always inner product over normalised vectors.
    dense: str
    # File name -> size in bytes: a truncated or missing file is caught before it is read.
    files: dict[str, int]

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1).encode("utf-8")


def _record(cls: type, data: Any, where: str) -> Any:
    """A frozen record from a JSON object with exactly its fields."""
    names = {f.name for f in fields(cls)}
    if not isinstance(data, dict) or not set(data) <= names:
        raise ValueError(f"{where} is not a {cls.__name__}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise ValueError(f"{where}: {exc}") from None


def parse(raw: bytes, where: str) -> Manifest:
    """A manifest from its JSON; refuses another format version before looking at anything else."""
    rebuild = "Rebuild it with `python -m ingest --full`."
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise IndexCorrupt(f"{where} is not valid JSON ({exc}). {rebuild}") from None
    found = data.get("format_version") if isinstance(data, dict) else None
    if found != FORMAT_VERSION:
        raise IndexMismatch(f"{where} has format version {found}; this program reads {FORMAT_VERSION}. {rebuild}")
    try:
        rules = data["rules"]
        parsed = {
            **data,
            "rules": Rules(
                _record(EmbedderInfo, rules["embedder"], "rules.embedder"),
                _record(SegmenterInfo, rules["segmenter"], "rules.segmenter"),
                _record(Chunking, rules["chunking"], "rules.chunking"),
                rules["extras"],
            ),
            "counts": _record(Counts, data["counts"], "counts"),
            "bm25": _record(BM25Params, data["bm25"], "bm25"),
        }
        manifest = _record(Manifest, parsed, "the manifest")
        files = manifest.files
        if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, int) for k, v in files.items()):
            raise ValueError("files must map names to sizes")
    except (KeyError, TypeError, ValueError) as exc:
        raise IndexCorrupt(f"{where} is malformed ({exc}). {rebuild}") from None
    return manifest
