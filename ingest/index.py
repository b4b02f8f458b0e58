"""Read the index on disk: indexes/CURRENT -> the served build folder -> a checked, loaded Index.

indexes/
  CURRENT                 the served build's name, replaced atomically by ingest
  .lock                   held by the ingest that is writing
  builds/<version>/       manifest.json (written last), posts.json, chunks.json,
                          vectors.npy, dense.faiss, bm25.npz, bm25_terms.json,
                          sentences.json, sentence_vectors.npy (for extractive answers),
                          extras.json (what retrieval mined from the corpus: ingest/extras.py)
Everything is JSON, NumPy or FAISS data; nothing is pickled. ingest/store.py writes it.
"""
from __future__ import annotations

import errno
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
from scipy import sparse

from ingest import manifest as manifests
from ingest.bm25 import BM25
from ingest.chunk import Chunk
from ingest.errors import IndexCorrupt, IndexMismatch, IndexNotReady
from ingest.manifest import Manifest, Rules
from ingest.read import Post
from ingest.segment import SEGMENTER, dictionary_hash

CURRENT = "CURRENT"
BUILDS = "builds"
# HNSW search breadth: recall@10 0.97 against exact at 100k vectors, 9x faster (docs/benchmarks.md).
HNSW_EF_SEARCH = 256
_VERSION_RE = re.compile(r"[0-9A-Za-z-]{1,64}")
# `answers` is stored as sentence ids.
_CHUNK_FIELDS = set(Chunk.__dataclass_fields__) - {"answers"}
_REBUILD = "Rebuild with `python -m ingest --full`."


@dataclass(frozen=True)
class Build:
    """The contents of one build: what ingest writes and the service searches."""

    rules: Rules
    posts: dict[str, Post]
    chunks: list[Chunk]
    # One content hash per chunk: ingest reuses the vector of an unchanged chunk.
    chunk_hashes: list[str]
    vectors: np.ndarray
    bm25: BM25
    # Distinct sentences of all chunks, their vectors, and which of them each chunk holds.
    sentences: list[str]
    sentence_vectors: np.ndarray
    chunk_sentences: list[list[int]]
    # JSON data mined at ingest for retrieval: the cross-lingual bridge and the abstention probes.
    extras: dict


@dataclass(frozen=True)
class Index(Build):
    """A published build, loaded: its contents, its manifest and its dense index."""

    manifest: Manifest
    dense: faiss.Index

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def embedder(self) -> str:
        return self.manifest.rules.embedder.name


def builds_dir(index_dir: Path) -> Path:
    return index_dir / BUILDS


def current_version(index_dir: Path) -> str | None:
    """The name CURRENT points at; None when there is none, or when it is not a plain file with a plain name."""
    try:
        fd = os.open(index_dir / CURRENT, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            raw = os.read(fd, 128)
        finally:
            os.close(fd)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EISDIR):
            return None
        raise IndexCorrupt(f"Cannot read {index_dir / CURRENT} ({exc.strerror}).") from None
    version = raw.decode("ascii", "replace").strip()
    return version if _VERSION_RE.fullmatch(version) else None


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexCorrupt(f"Cannot read {path}: {exc}. {_REBUILD}") from None


def _read_manifest(path: Path) -> Manifest:
    if not (path / "manifest.json").is_file():
        raise IndexCorrupt(f"{path} has no manifest.json (an unfinished build). {_REBUILD}")
    try:
        raw = (path / "manifest.json").read_bytes()
    except OSError as exc:
        raise IndexCorrupt(f"Cannot read {path / 'manifest.json'}: {exc}. {_REBUILD}") from None
    manifest = manifests.parse(raw, str(path / "manifest.json"))
    for name, size in manifest.files.items():
        if "/" in name or name.startswith(".") or not (path / name).is_file() or (path / name).stat().st_size != size:
            raise IndexCorrupt(f"{path / name} is missing or truncated. {_REBUILD}")
    return manifest


def load_build(path: Path) -> Index:
    """Read one build folder and check that its files agree with its manifest and with each other."""
    manifest = _read_manifest(path)
    try:
        posts = {p["post_id"]: Post(**{**p, "tags": tuple(p["tags"])}) for p in _read_json(path / "posts.json")}
        rows = _read_json(path / "chunks.json")
        hashes, chunk_sentences = [r["hash"] for r in rows], [r["sentences"] for r in rows]
        sentences = _read_json(path / "sentences.json")
        chunks = [
            Chunk(**{k: v for k, v in r.items() if k in _CHUNK_FIELDS}, answers=tuple(sentences[i] for i in r["sentences"]))
            for r in rows
        ]
        terms = _read_json(path / "bm25_terms.json")
        extras = _read_json(path / "extras.json")
    except (KeyError, TypeError, IndexError) as exc:
        raise IndexCorrupt(f"The records of {path} are malformed ({exc}). {_REBUILD}") from None
    try:
        vectors = np.load(path / "vectors.npy", allow_pickle=False)
        sentence_vectors = np.load(path / "sentence_vectors.npy", allow_pickle=False)
        with np.load(path / "bm25.npz", allow_pickle=False) as z:
            weights = sparse.csc_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
        dense = faiss.read_index(str(path / "dense.faiss"))
        if isinstance(dense, faiss.IndexHNSW):
            dense.hnsw.efSearch = HNSW_EF_SEARCH
    except (OSError, ValueError, RuntimeError) as exc:
        raise IndexCorrupt(f"Cannot read the index in {path}: {exc}. {_REBUILD}") from None
    n, dim = len(chunks), manifest.rules.embedder.dim
    if (
        vectors.shape != (n, dim)
        or dense.ntotal != n
        or weights.shape != (n, len(terms))
        or sentence_vectors.shape != (len(sentences), dim)
        or len(posts) != manifest.counts.posts
        or not isinstance(extras, dict)
    ):
        raise IndexCorrupt(f"The files of {path} disagree on what the build holds. {_REBUILD}")
    p = manifest.bm25
    bm25 = BM25({t: i for i, t in enumerate(terms)}, weights, p.k1, p.b, p.epsilon)
    return Index(
        manifest.rules, posts, chunks, hashes, vectors, bm25, sentences, sentence_vectors, chunk_sentences, extras,
        manifest, dense,
    )


def open_index(index_dir: Path, embedder: str | None = None) -> Index:
    """The current build, refused when it was made by another embedder (when `embedder` is given)
    or segmented under other rules than this program's, since questions would not match it."""
    version = current_version(index_dir)
    if version is None:
        raise IndexNotReady(f"No index in {index_dir}/; run `python -m ingest` first.")
    index = load_build(builds_dir(index_dir) / version)
    if embedder is not None and index.embedder != embedder:
        raise IndexMismatch(
            f"The index in {index_dir}/ was built with the model {index.embedder!r}, not {embedder!r}, which this "
            f"program runs. Rebuild it: `python -m ingest` (it embeds everything again)."
        )
    segmenter = index.rules.segmenter
    if (segmenter.name, segmenter.dictionary_hash) != (SEGMENTER, dictionary_hash()):
        raise IndexMismatch(
            f"The index in {index_dir}/ was segmented with other rules ({segmenter.name}, dictionary "
            f"{segmenter.dictionary_hash}; this program uses {SEGMENTER}, {dictionary_hash()}): the user "
            f"dictionary, the stopwords or jieba changed. {_REBUILD}"
        )
    return index
