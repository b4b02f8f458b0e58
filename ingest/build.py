"""Run the ingest stages in order: corpus/ -> posts -> chunks -> tokens and vectors -> a new index build."""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
import numpy as np
from tqdm import tqdm

from ingest import bm25, extras, store
from ingest.chunk import METHOD, Chunk, chunk
from ingest.embed import Embedder, load_embedder, model_name
from ingest.errors import EmptyCorpus, NotesError, SkippedPosts
from ingest.index import Build, Index, builds_dir, current_version, load_build
from ingest.manifest import Chunking, EmbedderInfo, Rules, SegmenterInfo
from ingest.read import Post, Skipped, read_corpus
from ingest.segment import SEGMENTER, dictionary_hash, segment
from ingest.settings import IngestSettings

# Texts handed to the embedder at a time: the progress bar moves between slices.
PROGRESS_STEP = 256


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
    """Distinct answer sentences of all chunks, and the positions of each chunk's among them."""
    ids: dict[str, int] = {}
    per_chunk = [[ids.setdefault(s, len(ids)) for s in c.answers] for c in chunks]
    return list(ids), per_chunk


def rules(settings: IngestSettings, embedder: Embedder) -> Rules:
    return Rules(
        EmbedderInfo(embedder.name, embedder.dim, embedder.engine),
        SegmenterInfo(SEGMENTER, dictionary_hash()),
        Chunking(settings.chunk_size, settings.chunk_overlap, METHOD),
        extras.fingerprint(settings.corpus_dir),
    )


def _same_rules(prev: Index, settings: IngestSettings) -> bool:
    """Would a build now cut and segment the posts as `prev` did? (_previous checked the embedder.)"""
    return (prev.rules.segmenter, prev.rules.chunking, prev.rules.extras) == (
        SegmenterInfo(SEGMENTER, dictionary_hash()), Chunking(settings.chunk_size, settings.chunk_overlap, METHOD),
        extras.fingerprint(settings.corpus_dir),
    )


def _previous(settings: IngestSettings, full: bool, model: str) -> Index | None:
    """The served build, if its vectors can be reused: same model, and not a --full rebuild."""
    if full:
        return None
    version = current_version(settings.index_dir)
    if version is None:
        return None
    try:
        prev = load_build(builds_dir(settings.index_dir) / version)
    except NotesError:
        return None
    return prev if prev.embedder == model else None


def embed_in_batches(embedder: Embedder, texts: list[str], unit: str) -> np.ndarray:
    """Vectors of `texts`, a slice at a time so that the bar moves; the embedder batches within a slice."""
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    with tqdm(total=len(texts), desc=f"embedding {unit}", unit="", disable=None, leave=False) as bar:
        for i in range(0, len(texts), PROGRESS_STEP):
            out[i : i + PROGRESS_STEP] = embedder.passages(texts[i : i + PROGRESS_STEP])
            bar.update(len(texts[i : i + PROGRESS_STEP]))
    return out


def _reuse(hashes: list[str], previous: tuple[list[str], np.ndarray] | None, dim: int) -> tuple[np.ndarray, list[int]]:
    """Vectors for the texts of `hashes` where the previous build has one for the same content hash, and the
    positions of the texts still to embed."""
    known = {h: i for i, h in enumerate(previous[0])} if previous else {}
    vectors = np.zeros((len(hashes), dim), dtype=np.float32)
    todo = []
    for i, h in enumerate(hashes):
        if h in known:
            vectors[i] = previous[1][known[h]]
        else:
            todo.append(i)
    return vectors, todo


def _read(settings: IngestSettings, strict: bool) -> tuple[list[Post], list[Skipped]]:
    if not settings.corpus_dir.is_dir():
        raise EmptyCorpus(f"No corpus folder {settings.corpus_dir}/; create it and add Markdown posts.")
    posts, skipped = read_corpus(settings.corpus_dir, settings.max_post_bytes)
    reasons = "".join(f"\n  skipped {s.source}: {s.reason}" for s in skipped)
    if not posts:
        raise EmptyCorpus(
            f"No readable post in {settings.corpus_dir}/ ({len(skipped)} files skipped); "
            f"add Markdown posts, then run again.{reasons}"
        )
    if strict and skipped:
        raise SkippedPosts(f"{len(skipped)} files skipped and --strict given; the index was not changed.{reasons}")
    return posts, skipped


def build(settings: IngestSettings, full: bool = False, strict: bool = False, embedder: Embedder | None = None) -> Summary:
    """Bring the index up to date with the corpus; only new or changed chunks are embedded.

    The corpus is read under the lock, so that of two racing ingests the later one publishes the newer
    corpus. With `strict`, any skipped file stops the build before the index is touched.
    """
    started = time.perf_counter()
    with store.lock(settings.index_dir, settings.lock_timeout):
        posts, skipped = _read(settings, strict)
        summary = Summary(posts=len(posts), skipped=skipped)
        store.prune(settings.index_dir, settings.keep_builds)  # clears builds a crash left half-written
        name = embedder.name if embedder else model_name(settings.embedder, settings.engine_options())
        prev = _previous(settings, full, name)
        old = prev.posts if prev else {}
        summary.added = sum(p.post_id not in old for p in posts)
        summary.updated = sum(p.post_id in old and old[p.post_id].hash != p.hash for p in posts)
        summary.removed = len(set(old) - {p.post_id for p in posts})
        unchanged = not (summary.added or summary.updated or summary.removed)
        if prev is not None and unchanged and _same_rules(prev, settings):
            summary.chunks, summary.version = len(prev.chunks), prev.version
            summary.seconds = time.perf_counter() - started
            return summary

        # The model is loaded only now: an ingest that changes nothing takes no model at all.
        embedder = embedder or load_embedder(settings.embedder, settings.engine_options())
        chunks = [c for p in posts for c in chunk(p, settings.chunk_size, settings.chunk_overlap)]
        sentences, chunk_sentences = _sentences(chunks)
        texts = [c.context for c in chunks]
        hashes, sentence_hashes = [text_hash(t) for t in texts], [text_hash(t) for t in sentences]
        vectors, todo = _reuse(hashes, prev and (prev.chunk_hashes, prev.vectors), embedder.dim)
        sentence_vectors, sentence_todo = _reuse(
            sentence_hashes, prev and ([text_hash(t) for t in prev.sentences], prev.sentence_vectors), embedder.dim
        )
        weights = bm25.build([segment(c.context) for c in chunks])
        mined = extras.mine(posts, list(weights.terms), embedder, settings.corpus_dir, prev and prev.extras)
        if todo:
            vectors[todo] = embed_in_batches(embedder, [texts[i] for i in todo], "chunks")
        if sentence_todo:
            sentence_vectors[sentence_todo] = embed_in_batches(embedder, [sentences[i] for i in sentence_todo], "sentences")
        new = Build(
            rules=rules(settings, embedder),
            posts={p.post_id: p for p in posts},
            chunks=chunks,
            chunk_hashes=hashes,
            vectors=vectors,
            bm25=weights,
            sentences=sentences,
            sentence_vectors=sentence_vectors,
            chunk_sentences=chunk_sentences,
            extras=mined,
        )
        path = store.write_build(settings.index_dir, new, settings.hnsw_threshold)
        store.publish(settings.index_dir, path.name)
        store.prune(settings.index_dir, settings.keep_builds)
    summary.chunks, summary.embedded, summary.version, summary.changed = len(chunks), len(todo), path.name, True
    summary.seconds = time.perf_counter() - started
    return summary
