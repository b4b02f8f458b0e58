"""Run the ingest stages in order: corpus/ -> posts -> chunks -> tokens and vectors -> a new index build."""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from ingest import bm25, store
from ingest.chunk import Chunk, chunk
from ingest.embed import Embedder, load_embedder
from ingest.errors import EmptyCorpus, NotesError, SkippedPosts
from ingest.read import Skipped, read_corpus
from ingest.segment import SEGMENTER, dictionary_hash, segment
from ingest.settings import IngestSettings


@dataclass
class Summary:
    posts: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    chunks: int = 0
    embedded: int = 0
    seconds: float = 0.0
    version: str | None = None
    changed: bool = False

    def __str__(self) -> str:
        line = (
            f"{self.posts} posts ({self.added} added, {self.updated} updated, {self.removed} removed, "
            f"{len(self.skipped)} skipped), {self.chunks} chunks ({self.embedded} embedded), {self.seconds:.1f} s"
        )
        state = f"index {self.version}" + ("" if self.changed else " unchanged")
        return "\n".join([f"skipped {s.source}: {s.reason}" for s in self.skipped] + [line, state])


def content_hash(c: Chunk) -> str:
    return hashlib.sha256(c.context.encode("utf-8")).hexdigest()[:24]


def _settings_record(settings: IngestSettings, embedder_name: str, dim: int) -> dict:
    return {
        "embedder": {"name": embedder_name, "dim": dim},
        "segmenter": {"name": SEGMENTER, "dictionary_hash": dictionary_hash()},
        "chunking": {"size": settings.chunk_size, "overlap": settings.chunk_overlap},
    }


def _previous(settings: IngestSettings, full: bool) -> store.Index | None:
    """The served build, if its vectors can be reused."""
    if full:
        return None
    try:
        prev = store.open_index(settings.index_dir)
    except NotesError:
        return None
    return prev if prev.embedder == settings.embedder else None


def embed_in_batches(embedder: Embedder, texts: list[str], batch_size: int) -> np.ndarray:
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    with tqdm(total=len(texts), desc="embedding", unit="chunk", disable=None, leave=False) as bar:
        for i in range(0, len(texts), batch_size):
            out[i : i + batch_size] = embedder.passages(texts[i : i + batch_size])
            bar.update(len(texts[i : i + batch_size]))
    return out


def build(
    settings: IngestSettings, full: bool = False, strict: bool = False, embedder: Embedder | None = None
) -> Summary:
    """Bring the index up to date with the corpus; only new or changed chunks are embedded.

    With `strict`, any skipped file stops the build before the index is touched.
    """
    started = time.perf_counter()
    if not settings.corpus_dir.is_dir():
        raise EmptyCorpus(f"No corpus folder {settings.corpus_dir}/; create it and add Markdown posts.")
    posts, skipped = read_corpus(settings.corpus_dir, settings.max_post_bytes)
    if not posts:
        raise EmptyCorpus(
            f"No readable post in {settings.corpus_dir}/ ({len(skipped)} files skipped); add Markdown posts, then run again."
            + "".join(f"\n  skipped {s.source}: {s.reason}" for s in skipped)
        )
    if strict and skipped:
        raise SkippedPosts(
            f"{len(skipped)} files skipped and --strict given; the index was not changed."
            + "".join(f"\n  skipped {s.source}: {s.reason}" for s in skipped)
        )
    summary = Summary(posts=len(posts), skipped=skipped)
    with store.lock(settings.index_dir, settings.lock_timeout):
        store.prune(settings.index_dir, settings.keep_builds)  # clears builds a crash left half-written
        prev = _previous(settings, full)
        old = prev.posts if prev else {}
        summary.added = sum(p.post_id not in old for p in posts)
        summary.updated = sum(p.post_id in old and old[p.post_id].hash != p.hash for p in posts)
        summary.removed = len(set(old) - {p.post_id for p in posts})
        same_rules = prev is not None and all(
            prev.manifest[k] == v for k, v in _settings_record(settings, prev.embedder, prev.manifest["embedder"]["dim"]).items()
        )
        if same_rules and not (summary.added or summary.updated or summary.removed):
            summary.chunks, summary.version = len(prev.chunks), prev.version
            summary.seconds = time.perf_counter() - started
            return summary

        chunks = [c for p in posts for c in chunk(p, settings.chunk_size, settings.chunk_overlap)]
        hashes = [content_hash(c) for c in chunks]
        known = {h: i for i, h in enumerate(prev.chunk_hashes)} if prev else {}
        todo = [i for i, h in enumerate(hashes) if h not in known]
        embedder = embedder or load_embedder(settings.embedder)
        vectors = np.zeros((len(chunks), embedder.dim), dtype=np.float32)
        for i, h in enumerate(hashes):
            if h in known:
                vectors[i] = prev.vectors[known[h]]
        if todo:
            vectors[todo] = embed_in_batches(embedder, [chunks[i].context for i in todo], settings.batch_size)
        weights = bm25.build([segment(c.context) for c in chunks])
        path = store.write_build(
            settings.index_dir, posts, chunks, hashes, vectors, weights,
            _settings_record(settings, embedder.name, embedder.dim), settings.hnsw_threshold,
        )
        store.publish(settings.index_dir, path.name)
        store.prune(settings.index_dir, settings.keep_builds)
    summary.chunks, summary.embedded, summary.version, summary.changed = len(chunks), len(todo), path.name, True
    summary.seconds = time.perf_counter() - started
    return summary
