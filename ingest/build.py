"""Run the ingest stages in order: corpus/ -> posts -> chunks -> tokens and vectors -> a new index build."""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from ingest import bm25, extras, store
from ingest.chunk import Chunk, chunk, split_sentences
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


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def _sentences(chunks: list[Chunk]) -> tuple[list[str], list[list[int]]]:
    """Distinct sentences of all chunks, and the positions of each chunk's sentences among them."""
    ids: dict[str, int] = {}
    per_chunk = [[ids.setdefault(s, len(ids)) for s in split_sentences(c.text)] for c in chunks]
    return list(ids), per_chunk


def _settings_record(settings: IngestSettings, embedder_name: str, dim: int) -> dict:
    return {
        "embedder": {"name": embedder_name, "dim": dim},
        "segmenter": {"name": SEGMENTER, "dictionary_hash": dictionary_hash()},
        "chunking": {"size": settings.chunk_size, "overlap": settings.chunk_overlap},
        "extras": extras.fingerprint(settings.corpus_dir),
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


def embed_in_batches(embedder: Embedder, texts: list[str], batch_size: int, unit: str = "chunks") -> np.ndarray:
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    with tqdm(total=len(texts), desc=f"embedding {unit}", unit="", disable=None, leave=False) as bar:
        for i in range(0, len(texts), batch_size):
            out[i : i + batch_size] = embedder.passages(texts[i : i + batch_size])
            bar.update(len(texts[i : i + batch_size]))
    return out


def _embed_new(
    embedder: Embedder,
    texts: list[str],
    hashes: list[str],
    previous: tuple[list[str], np.ndarray] | None,
    batch_size: int,
    unit: str,
) -> tuple[np.ndarray, int]:
    """Vectors for `texts`, reusing the previous build's vector wherever the content hash is unchanged."""
    known = {h: i for i, h in enumerate(previous[0])} if previous else {}
    vectors = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    todo = []
    for i, h in enumerate(hashes):
        if h in known:
            vectors[i] = previous[1][known[h]]
        else:
            todo.append(i)
    if todo:
        vectors[todo] = embed_in_batches(embedder, [texts[i] for i in todo], batch_size, unit)
    return vectors, len(todo)


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
            prev.manifest.get(k) == v for k, v in _settings_record(settings, prev.embedder, prev.manifest["embedder"]["dim"]).items()
        )
        if same_rules and not (summary.added or summary.updated or summary.removed):
            summary.chunks, summary.version = len(prev.chunks), prev.version
            summary.seconds = time.perf_counter() - started
            return summary

        chunks = [c for p in posts for c in chunk(p, settings.chunk_size, settings.chunk_overlap)]
        hashes = [text_hash(c.context) for c in chunks]
        sentences, chunk_sentences = _sentences(chunks)
        embedder = embedder or load_embedder(settings.embedder)
        vectors, embedded = _embed_new(
            embedder, [c.context for c in chunks], hashes, prev and (prev.chunk_hashes, prev.vectors),
            settings.batch_size, "chunks",
        )
        prev_sentences = prev and ([text_hash(t) for t in prev.sentences], prev.sentence_vectors)
        sentence_vectors, _ = _embed_new(
            embedder, sentences, [text_hash(t) for t in sentences], prev_sentences, settings.batch_size * 4, "sentences"
        )
        weights = bm25.build([segment(c.context) for c in chunks])
        mined = extras.mine(posts, list(weights.terms), embedder, settings.corpus_dir, prev and prev.extras)
        path = store.write_build(
            settings.index_dir, posts, chunks, hashes, vectors, weights, sentences, sentence_vectors, chunk_sentences,
            _settings_record(settings, embedder.name, embedder.dim), settings.hnsw_threshold, mined,
        )
        store.publish(settings.index_dir, path.name)
        store.prune(settings.index_dir, settings.keep_builds)
    summary.chunks, summary.embedded, summary.version, summary.changed = len(chunks), embedded, path.name, True
    summary.seconds = time.perf_counter() - started
    return summary
