"""BM25 weights give rank-bm25's BM25Okapi scores, exactly."""
from pathlib import Path

import numpy as np
from rank_bm25 import BM25Okapi

from ingest.bm25 import build
from ingest.chunk import chunk
from ingest.read import read_corpus
from ingest.segment import segment

CORPUS = Path(__file__).resolve().parents[1] / "corpus"


def test_scores_equal_rank_bm25_on_the_seed_corpus() -> None:
    posts, _ = read_corpus(CORPUS, 10**6)
    docs = [segment(c.context) for p in posts for c in chunk(p, 450, 80)]
    ours, ref = build(docs), BM25Okapi(docs)
    questions = ["为什么需要梯度检查点?", "how does DDP sync gradients", "随机森林 决策树 决策树 的 模型", "红烧肉", "学习"]
    for q in questions:
        tokens = segment(q)
        np.testing.assert_allclose(ours.scores(tokens), ref.get_scores(tokens), rtol=0, atol=1e-6)


def test_common_terms_get_the_epsilon_floor_like_rank_bm25() -> None:
    docs = [["a", "b"], ["a", "c"], ["a", "d"], ["e"]]
    ours, ref = build(docs), BM25Okapi(docs)
    for q in (["a"], ["a", "b"], ["zzz"], []):
        np.testing.assert_allclose(ours.scores(q), ref.get_scores(q), rtol=0, atol=1e-12)
