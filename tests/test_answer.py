"""Sentence choice and citation numbering, on a tiny corpus embedded by a deterministic stand-in."""
from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

from app.answer import choose_sentences, extractive, quote
from app.retrieve import Retrieval, Retriever
from app.fuse import Hit
from ingest.build import build
from ingest.settings import IngestSettings
from ingest.index import open_index


class Bigrams:
    """A stand-in embedder: hashed character bigrams, so texts that share words point the same way."""

    name = "bigrams"
    engine = "test"
    dim = 256

    def _embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            chars = re.sub(r"\s+", "", text.lower())
            for a, b in zip(chars, chars[1:]):
                out[row, int(hashlib.md5((a + b).encode()).hexdigest(), 16) % self.dim] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)

    passages = _embed
    queries = _embed


POSTS = {
    "warmup.md": "---\ntitle: 学习率预热\n---\n\n学习率预热在训练初期使用较小的学习率,避免梯度过大。"
    "预热结束后学习率逐渐增大到设定值,训练更加稳定。文献[3]对此有详细讨论,结论是预热对大批量训练尤其重要。\n",
    "dropout.md": "---\ntitle: Dropout\n---\n\nDropout 在训练时随机丢弃一部分神经元,防止神经网络过拟合。"
    "测试时不丢弃神经元,而是按保留概率缩放权重,使输出的期望保持一致。\n",
    "bn.md": "---\ntitle: 批标准化\n---\n\n批标准化对每一层的输入做标准化,使训练更快也更稳定。"
    "它还允许使用更大的学习率,并带来轻微的正则化效果。\n",
}


@pytest.fixture(scope="module")
def retriever(tmp_path_factory: pytest.TempPathFactory) -> Retriever:
    root = tmp_path_factory.mktemp("answer")
    (root / "corpus").mkdir()
    for name, text in POSTS.items():
        (root / "corpus" / name).write_text(text, "utf-8")
    embedder = Bigrams()
    build(IngestSettings(corpus_dir=root / "corpus", index_dir=root / "indexes"), embedder=embedder)
    return Retriever(open_index(root / "indexes"), embedder)


def with_hits(retriever: Retriever, question: str, order: list[str]) -> Retrieval:
    """The retrieval of `question` with its hits replaced by the first chunk of each named post, scored 1, 0.9, ..."""
    r = retriever.search(question)
    chunks = [next(i for i, c in enumerate(retriever.index.chunks) if c.post_id == p) for p in order]
    r.hits = [Hit(c, 1.0 - 0.1 * n) for n, c in enumerate(chunks)]
    r.covered = True
    return r


def test_sentences_come_from_the_top_passages_in_reading_order(retriever: Retriever) -> None:
    r = with_hits(retriever, "学习率预热为什么能让训练稳定?", ["warmup", "bn", "dropout"])
    chosen = choose_sentences(retriever, r, top_k=3)
    sentences = [retriever.index.sentences[sid] for _, sid in chosen]
    assert chosen[0][0] == 0  # the best passage always speaks first
    assert sentences[0].startswith("学习率预热在训练初期")
    assert chosen == sorted(chosen)  # reading order: passage, then position in it
    assert 1 <= len(chosen) <= 4


def test_a_passage_far_below_the_best_adds_no_sentence(retriever: Retriever) -> None:
    r = with_hits(retriever, "Dropout 测试时怎么处理?", ["dropout", "warmup"])
    r.hits = [Hit(r.hits[0].chunk, 1.0), Hit(r.hits[1].chunk, 0.5)]
    assert {pos for pos, _ in choose_sentences(retriever, r, top_k=2)} == {0}


def test_citations_are_numbered_by_first_use_and_every_marker_resolves(retriever: Retriever) -> None:
    r = with_hits(retriever, "训练为什么更稳定?", ["bn", "warmup"])
    a = extractive(retriever, r, "训练为什么更稳定?", top_k=2)
    markers = [int(n) for n in re.findall(r"\[(\d+)\]", a.answer)]
    assert a.found and [c.n for c in a.citations] == list(range(1, len(a.citations) + 1))
    assert list(dict.fromkeys(markers)) == [c.n for c in a.citations]
    assert a.citations[0].post_id == "bn"


def test_a_notes_own_bracket_numbers_are_quoted_not_taken_for_markers() -> None:
    assert quote("文献[3]对此有详细讨论") == "文献［3］对此有详细讨论"


def test_an_uncovered_retrieval_is_refused_in_the_question_language(retriever: Retriever) -> None:
    r = with_hits(retriever, "How do I tune a guitar?", ["warmup"])
    r.covered = False
    a = extractive(retriever, r, "How do I tune a guitar?", top_k=3)
    assert (a.found, a.citations, a.answer) == (False, [], "My notes don't cover this.")
