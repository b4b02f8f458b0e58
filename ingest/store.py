"""The index on disk: versioned build folders, an atomic CURRENT pointer, a lock and the reader.

indexes/
  CURRENT                 the served build's name, replaced atomically
  .lock                   held by the ingest that is writing
  builds/<version>/       manifest.json (written last), posts.json, chunks.json,
                          vectors.npy, dense.faiss, bm25.npz, bm25_terms.json,
                          sentences.json, sentence_vectors.npy (for extractive answers),
                          extras.json (what retrieval mined from the corpus at ingest)
Everything is JSON, NumPy or FAISS data; nothing is pickled.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import faiss
import numpy as np
from scipy import sparse

from ingest.bm25 import BM25
from ingest.chunk import Chunk
from ingest.errors import IndexCorrupt, IndexMismatch, IndexNotReady, IngestBusy
from ingest.read import Post

FORMAT_VERSION = 1
CURRENT = "CURRENT"
BUILDS = "builds"
# HNSW search breadth: recall@10 0.96 against exact at 100k vectors, 10x faster (docs/benchmarks.md).
HNSW_EF_SEARCH = 256
FILES = (
    "posts.json", "chunks.json", "vectors.npy", "dense.faiss", "bm25.npz", "bm25_terms.json",
    "sentences.json", "sentence_vectors.npy", "extras.json",
)
_CHUNK_FIELDS = set(Chunk.__dataclass_fields__)


@dataclass(frozen=True)
class Index:
    """One loaded build: what the service searches."""

    version: str
    manifest: dict
    posts: dict[str, Post]
    chunks: list[Chunk]
    # One content hash per chunk: ingest reuses the vector of an unchanged chunk.
    chunk_hashes: list[str]
    vectors: np.ndarray
    dense: faiss.Index
    bm25: BM25
    # Distinct sentences of all chunks, their vectors, and which of them each chunk holds.
    sentences: list[str]
    sentence_vectors: np.ndarray
    chunk_sentences: list[list[int]]
    # JSON data that retrieval mined from the corpus at ingest (extras.json); {} for a build without it.
    extras: dict = field(default_factory=dict)

    @property
    def embedder(self) -> str:
        return self.manifest["embedder"]["name"]


def builds_dir(index_dir: Path) -> Path:
    return index_dir / BUILDS


def new_version() -> str:
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def current_version(index_dir: Path) -> str | None:
    try:
        version = (index_dir / CURRENT).read_text("ascii").strip()
    except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
        return None
    return version if re.fullmatch(r"[0-9A-Za-z-]+", version) else None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _write_json(path: Path, obj: object) -> None:
    _write(path, json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _write_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())


def dense_index(vectors: np.ndarray, hnsw_threshold: int) -> faiss.Index:
    """Exact inner product below the threshold, HNSW above it."""
    dim = vectors.shape[1]
    if len(vectors) < hnsw_threshold:
        index = faiss.IndexFlatIP(dim)
    else:
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = HNSW_EF_SEARCH
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def write_build(
    index_dir: Path,
    posts: list[Post],
    chunks: list[Chunk],
    chunk_hashes: list[str],
    vectors: np.ndarray,
    bm25: BM25,
    sentences: list[str],
    sentence_vectors: np.ndarray,
    chunk_sentences: list[list[int]],
    manifest: dict,
    hnsw_threshold: int,
    extras: dict | None = None,
) -> Path:
    """Write a complete build under a temporary name, verify it, then give it its final name."""
    version = new_version()
    root = builds_dir(index_dir)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{version}"
    tmp.mkdir()
    _write_json(tmp / "posts.json", [asdict(p) for p in posts])
    rows = [{**asdict(c), "hash": h, "sentences": s} for c, h, s in zip(chunks, chunk_hashes, chunk_sentences)]
    _write_json(tmp / "chunks.json", rows)
    _write_json(tmp / "sentences.json", sentences)
    _write_npy(tmp / "vectors.npy", vectors)
    _write_npy(tmp / "sentence_vectors.npy", sentence_vectors)
    dense = dense_index(vectors, hnsw_threshold)
    faiss.write_index(dense, str(tmp / "dense.faiss"))
    w = bm25.weights
    with open(tmp / "bm25.npz", "wb") as f:
        np.savez(f, data=w.data, indices=w.indices, indptr=w.indptr, shape=np.array(w.shape))
        f.flush()
        os.fsync(f.fileno())
    terms = sorted(bm25.terms, key=bm25.terms.__getitem__)
    _write_json(tmp / "bm25_terms.json", terms)
    _write_json(tmp / "extras.json", extras or {})
    manifest = {
        **manifest,
        "format_version": FORMAT_VERSION,
        "version": version,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "counts": {"posts": len(posts), "chunks": len(chunks), "terms": len(terms)},
        "bm25": {"k1": bm25.k1, "b": bm25.b, "epsilon": bm25.epsilon},
        "dense": {"type": "hnsw" if len(vectors) >= hnsw_threshold else "flat", "metric": "inner_product"},
        "files": {name: (tmp / name).stat().st_size for name in FILES},
    }
    with open(tmp / "dense.faiss", "rb") as f:
        os.fsync(f.fileno())
    # The manifest is written last: a build without one is incomplete by definition.
    _write_json(tmp / "manifest.json", manifest)
    _fsync_dir(tmp)
    load_build(tmp)  # refuse to publish what cannot be read back
    final = root / version
    os.replace(tmp, final)
    _fsync_dir(root)
    return final


def publish(index_dir: Path, version: str) -> None:
    """Point CURRENT at `version`: write, fsync, rename; a crash leaves the old or the new pointer."""
    tmp = index_dir / f".{CURRENT}.tmp"
    _write(tmp, (version + "\n").encode("ascii"))
    os.replace(tmp, index_dir / CURRENT)
    _fsync_dir(index_dir)


def prune(index_dir: Path, keep: int) -> None:
    """Drop unfinished builds and all but the newest `keep` builds; never the current one."""
    root = builds_dir(index_dir)
    if not root.is_dir():
        return
    current = current_version(index_dir)
    for path in root.glob(".tmp-*"):
        shutil.rmtree(path, ignore_errors=True)
    done = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for name in done[: max(0, len(done) - keep)]:
        if name != current:
            shutil.rmtree(root / name, ignore_errors=True)


@contextlib.contextmanager
def lock(index_dir: Path, timeout: float) -> Iterator[None]:
    """Hold the ingest lock; wait up to `timeout` seconds for another ingest to finish."""
    index_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(index_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
                if time.monotonic() >= deadline:
                    raise IngestBusy(
                        f"Another ingest (pid {holder}) is still writing {index_dir}/; "
                        "wait for it to finish, then run `python -m ingest` again."
                    ) from None
                if not told:
                    print(f"Waiting for another ingest (pid {holder}) to finish…", file=sys.stderr)
                    told = True
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexCorrupt(f"Cannot read {path}: {exc}. Rebuild with `python -m ingest --full`.") from None


def load_build(path: Path) -> Index:
    """Read one build folder and check that its files agree with its manifest."""
    if not (path / "manifest.json").is_file():
        raise IndexCorrupt(f"{path} has no manifest.json (an unfinished build). Run `python -m ingest --full`.")
    manifest = _read_json(path / "manifest.json")
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        found = manifest.get("format_version") if isinstance(manifest, dict) else None
        raise IndexMismatch(
            f"Index {path} has format version {found}, this program reads {FORMAT_VERSION}. "
            "Rebuild it with `python -m ingest --full`."
        )
    for name, size in manifest["files"].items():
        if not (path / name).is_file() or (path / name).stat().st_size != size:
            raise IndexCorrupt(f"{path / name} is missing or truncated. Rebuild with `python -m ingest --full`.")
    posts = {p["post_id"]: Post(**{**p, "tags": tuple(p["tags"])}) for p in _read_json(path / "posts.json")}
    rows = _read_json(path / "chunks.json")
    chunks = [Chunk(**{k: v for k, v in r.items() if k in _CHUNK_FIELDS}) for r in rows]
    sentences = _read_json(path / "sentences.json")
    try:
        vectors = np.load(path / "vectors.npy", allow_pickle=False)
        sentence_vectors = np.load(path / "sentence_vectors.npy", allow_pickle=False)
        with np.load(path / "bm25.npz", allow_pickle=False) as z:
            weights = sparse.csc_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
        dense = faiss.read_index(str(path / "dense.faiss"))
        if isinstance(dense, faiss.IndexHNSW):
            dense.hnsw.efSearch = HNSW_EF_SEARCH
    except (OSError, ValueError, RuntimeError) as exc:
        raise IndexCorrupt(f"Cannot read the index in {path}: {exc}. Rebuild with `python -m ingest --full`.") from None
    terms = _read_json(path / "bm25_terms.json")
    extras = _read_json(path / "extras.json") if "extras.json" in manifest["files"] else {}
    n, dim = len(chunks), manifest["embedder"]["dim"]
    if (
        vectors.shape != (n, dim)
        or dense.ntotal != n
        or weights.shape != (n, len(terms))
        or sentence_vectors.shape != (len(sentences), dim)
    ):
        raise IndexCorrupt(f"The files of {path} disagree on the number of chunks. Rebuild with `python -m ingest --full`.")
    p = manifest["bm25"]
    bm25 = BM25({t: i for i, t in enumerate(terms)}, weights, p["k1"], p["b"], p["epsilon"])
    return Index(
        manifest["version"], manifest, posts, chunks, [r["hash"] for r in rows], vectors, dense, bm25,
        sentences, sentence_vectors, [r["sentences"] for r in rows], extras,
    )


def open_index(index_dir: Path, embedder: str | None = None) -> Index:
    """The current build; `embedder`, when given, must be the one that built it."""
    version = current_version(index_dir)
    if version is None:
        raise IndexNotReady(f"No index in {index_dir}/; run `python -m ingest` first.")
    index = load_build(builds_dir(index_dir) / version)
    if embedder is not None and index.embedder != embedder:
        raise IndexMismatch(
            f"The index in {index_dir}/ was built with embedder {index.embedder!r}, not {embedder!r}. "
            f"Rebuild it with `NOTES_EMBEDDER={embedder} python -m ingest --full`, or set NOTES_EMBEDDER={index.embedder}."
        )
    return index
