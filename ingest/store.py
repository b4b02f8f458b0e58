"""Write the index on disk: a Build -> a verified build folder, published through an atomic CURRENT pointer.

The layout is described in ingest/index.py, which reads it back. A build is written under a temporary
name, read back in full, renamed, and only then pointed at; a crash at any moment leaves the previous
build served. One ingest at a time holds the lock.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
import time
import uuid
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Iterator

import faiss
import numpy as np

from ingest.errors import IndexCorrupt, IngestBusy
from ingest.index import CURRENT, HNSW_EF_SEARCH, Build, builds_dir, current_version, load_build
from ingest.manifest import FORMAT_VERSION, BM25Params, Counts, Manifest

LOCK = ".lock"
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW


def new_version() -> str:
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _create(path: Path) -> Iterator[BinaryIO]:
    """A new file, on disk when the block ends; never opened through a link planted at `path`."""
    with open(os.open(path, _NEW_FILE, 0o644), "wb") as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


def _write(path: Path, data: bytes) -> None:
    with _create(path) as f:
        f.write(data)


def _json(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


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


def _write_files(folder: Path, build: Build, dense: faiss.Index) -> dict[str, int]:
    """Every data file of a build, one at a time; returns their sizes by name."""
    rows = [
        {**{k: v for k, v in asdict(c).items() if k != "answers"}, "hash": h, "sentences": s}
        for c, h, s in zip(build.chunks, build.chunk_hashes, build.chunk_sentences)
    ]
    _write(folder / "posts.json", _json([asdict(p) for p in build.posts.values()]))
    _write(folder / "chunks.json", _json(rows))
    _write(folder / "sentences.json", _json(build.sentences))
    _write(folder / "bm25_terms.json", _json(sorted(build.bm25.terms, key=build.bm25.terms.__getitem__)))
    _write(folder / "extras.json", _json(build.extras))
    for name, array in (("vectors.npy", build.vectors), ("sentence_vectors.npy", build.sentence_vectors)):
        with _create(folder / name) as f:
            np.save(f, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
    w = build.bm25.weights
    with _create(folder / "bm25.npz") as f:
        np.savez(f, data=w.data, indices=w.indices, indptr=w.indptr, shape=np.array(w.shape))
    with _create(folder / "dense.faiss") as f:
        faiss.write_index(dense, faiss.PyCallbackIOWriter(f.write))
    return {p.name: p.stat().st_size for p in sorted(folder.iterdir())}


def write_build(index_dir: Path, build: Build, hnsw_threshold: int) -> Path:
    """Write a complete build under a temporary name, read it back, then give it its final name."""
    version = new_version()
    root = builds_dir(index_dir)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{version}"
    tmp.mkdir()
    dense = dense_index(build.vectors, hnsw_threshold)
    sizes = _write_files(tmp, build, dense)
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        version=version,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        rules=build.rules,
        counts=Counts(len(build.posts), len(build.chunks), len(build.bm25.terms), len(build.sentences)),
        bm25=BM25Params(build.bm25.k1, build.bm25.b, build.bm25.epsilon),
        dense="hnsw" if isinstance(dense, faiss.IndexHNSW) else "flat",
        files=sizes,
    )
    # The manifest is written last: a build without one is unfinished by definition.
    _write(tmp / "manifest.json", manifest.to_json())
    _fsync_dir(tmp)
    load_build(tmp)  # refuse to publish what cannot be read back
    final = root / version
    os.replace(tmp, final)
    _fsync_dir(root)
    return final


def publish(index_dir: Path, version: str) -> None:
    """Point CURRENT at `version`: write, fsync, rename; a crash leaves the old or the new pointer."""
    tmp = index_dir / f".{CURRENT}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # left by a crash; unlinking a planted link removes the link, not its target
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
    done = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))
    for name in done[: max(0, len(done) - keep)]:
        if name != current:
            shutil.rmtree(root / name, ignore_errors=True)


@contextlib.contextmanager
def lock(index_dir: Path, timeout: float) -> Iterator[None]:
    """Hold the ingest lock; wait up to `timeout` seconds for another ingest to finish."""
    index_dir.mkdir(parents=True, exist_ok=True)
    try:
        # O_NOFOLLOW: a link planted as the lock file must not make ingest truncate the file it points at.
        fd = os.open(index_dir / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise IndexCorrupt(
            f"Cannot open the lock file {index_dir / LOCK} ({exc.strerror}); if it is a symbolic link, "
            "remove it and run again."
        ) from None
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
