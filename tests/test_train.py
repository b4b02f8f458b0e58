"""The adapter: pairs from bilingual text, a training loop that learns, an artifact that changes the model and
names it, and `none` that gives the bundled model back."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ingest.adapter import Adapter, apply, load, ours
from ingest.convert import read_e5, source_file
from ingest.embed import E5_SMALL, EngineOptions, load_embedder
from tests.conftest import MODELS
from train.fit import Pair, Settings, adapter, batches, pages_of, sibling_passages
from train.pairs import aligned_pairs, cheatsheets, terms

ZH = """# 梯度下降
:label:`sec_gd`

本节介绍梯度下降，它沿着负梯度方向一步一步地更新模型的参数，直到训练损失不再明显下降为止。

学习率决定每一步沿着负梯度走多远：太大时迭代会发散，太小时收敛又很慢，所以需要仔细地选择它。

```{.python .input}
print("code is dropped")
```

## 练习

1. 为什么学习率不能太大？请用一个二次函数的例子说明原因。
"""
EN = """# Gradient Descent
:label:`sec_gd`

This section introduces gradient descent, which updates the parameters along the negative gradient until the loss stops falling.

The learning rate decides how far each step goes: too large diverges, too small converges slowly.

## Exercises

1. Why can the learning rate not be too large? Explain with a quadratic function.
"""
# Four pairs for the training loop's tests, each a term and its Chinese definition.
TERMS = [
    Pair("saddle point", "鞍点是梯度为零但既不是极大也不是极小的点。", "term", "a"),
    Pair("learning rate", "学习率决定参数每一步更新的幅度。", "term", "b"),
    Pair("dropout", "暂退法在训练时随机丢弃一部分神经元。", "term", "c"),
    Pair("batch normalization", "批量规范化对每层的输入做标准化。", "term", "d"),
]


def test_aligned_pages_give_heading_and_paragraph_pairs() -> None:
    pairs = aligned_pairs(ZH, EN, "d2l/gd")
    headings = [(p.query, p.passage[:8]) for p in pairs if p.kind == "heading"]
    # The exercise is shorter than MIN_CHARS: too little to be a positive.
    assert headings == [("梯度下降", "本节介绍梯度下降"), ("Gradient Descent", "本节介绍梯度下降")]
    paragraphs = [(p.query[:20], p.passage[:8]) for p in pairs if p.kind == "paragraph"]
    assert paragraphs[:2] == [("This section introdu", "本节介绍梯度下降"), ("The learning rate de", "学习率决定每一步")]
    assert all("code" not in p.passage and ":label:" not in p.passage for p in pairs)
    assert len({p.group for p in pairs if p.kind == "heading"}) == 1  # the two headings of a section share one


def test_cheatsheet_and_terminology_pairs(tmp_path: Path) -> None:
    (tmp_path / "zh").mkdir()
    (tmp_path / "zh" / "cs.md").write_text("1. **Supervised Learning cheatsheet**\n\n&#10230; 监督学习简明指南\n\n<br>\n", "utf-8")
    assert [(p.query, p.passage) for p in cheatsheets(tmp_path)] == [("Supervised Learning cheatsheet", "监督学习简明指南")]
    (tmp_path / "TERMINOLOGY.md").write_text("## 英汉术语对照\n\n鞍点，saddle point\n\n步幅，stride\n", "utf-8")
    assert [(p.query, p.passage) for p in terms(tmp_path / "TERMINOLOGY.md")] == [("saddle point", "鞍点"), ("stride", "步幅")]


def test_no_batch_holds_a_group_or_a_passage_twice() -> None:
    import random

    pairs = [Pair(f"q{i}", f"p{i % 7}", "heading", f"g{i % 5}") for i in range(60)]
    for batch in batches(pairs, 4, random.Random(0)):
        assert len({p.group for p in batch}) == len(batch) and len({p.passage for p in batch}) == len(batch)


def test_hard_negatives_are_other_sections_of_the_same_page() -> None:
    import random

    pairs = [Pair(f"q{i}", f"{page}-section{i}", "heading", f"g{i}", page) for i, page in enumerate("aaabbc")]
    pages = pages_of(pairs)
    batch = [pairs[0], pairs[3], pairs[5]]  # a-section0, b-section3, c-section5 (c has no other section)
    extra = sibling_passages(batch, pages, 1, random.Random(0))
    assert len(extra) == 2 and extra[0] in ("a-section1", "a-section2") and extra[1] == "b-section4"
    # None repeats a passage of the batch, whose own positives stay the first columns.
    assert sibling_passages([pairs[0], pairs[1]], pages, 5, random.Random(0)) == ["a-section2"]


def test_two_steps_lower_the_loss_and_write_an_adapter(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    from ingest.convert import ensure_model
    from train.fit import train

    settings = Settings(epochs=2, batch=4, lr=1e-4, warmup=0.0, rank=4)
    trained = train(ensure_model(MODELS), TERMS, settings, log=lambda _: None)
    assert len(trained.losses) == 2 and trained.losses[1] < trained.losses[0]
    made = adapter(trained.before, trained.after, settings, {"pairs": 4})
    made.save(tmp_path / "adapter.npz")
    again = load(tmp_path / "adapter.npz")
    assert again.meta == {"pairs": 4} and set(again.factors) == set(made.factors)
    assert all(u.shape[1] == 4 and v.shape[0] == 4 for u, v in again.factors.values())


def test_lora_changes_each_matrix_at_its_rank_and_nothing_else() -> None:
    pytest.importorskip("peft")
    from ingest.convert import ensure_model
    from train.fit import train

    trained = train(ensure_model(MODELS), TERMS[:3], Settings(epochs=2, batch=3, lr=1e-3, warmup=0.0, lora=2), log=lambda _: None)
    changed = {name for name in trained.before if not np.array_equal(trained.before[name], trained.after[name])}
    # Six linear layers in each of the 12 layers; their biases and the LayerNorms stay as bundled.
    assert len(changed) == 72 and {name.split(".", 1)[1] for name in changed} == {f"{m}.w" for m in ("q", "k", "v", "ao", "fi", "fo")}
    delta = trained.after["l0.q.w"] - trained.before["l0.q.w"]
    singular = np.linalg.svd(delta, compute_uv=False)  # beyond the rank, float32 rounding of W + BA - W
    assert singular[1] > 0.1 * singular[0] and singular[2] < 1e-2 * singular[0]


def _small_adapter() -> Adapter:
    """A delta on one matrix and one bias, big enough to move every vector."""
    rng = np.random.default_rng(0)
    u = (rng.normal(size=(384, 2)) * 0.05).astype(np.float16)
    v = rng.normal(size=(2, 1536)).astype(np.float16)
    return Adapter({"l5.fo.w": (u, v)}, {"l5.fo.b": (rng.normal(size=384) * 0.05).astype(np.float32)}, {"test": True})


def test_an_adapter_changes_the_vectors_and_the_name(tmp_path: Path) -> None:
    path = tmp_path / "a.npz"
    _small_adapter().save(path)
    texts = ["梯度检查点用重新计算换取显存。", "How does dropout prevent overfitting?"]
    adapted = load_embedder(E5_SMALL, EngineOptions(model_dir=MODELS, adapter=str(path)))
    none = load_embedder(E5_SMALL, EngineOptions(model_dir=MODELS, adapter="none"))
    assert adapted.name.startswith(f"{E5_SMALL}+") and none.name == f"{E5_SMALL}/fused-int8-pc"
    cos = np.sum(adapted.passages(texts) * none.passages(texts), axis=1)
    assert cos.max() < 0.9999


def test_the_adapter_is_added_to_the_weights_it_names() -> None:
    m = read_e5(source_file())
    a = _small_adapter()
    merged = apply(m, a)
    u, v = a.factors["l5.fo.w"]
    np.testing.assert_allclose(merged.tensors["l5.fo.w"] - m.tensors["l5.fo.w"], u.astype(np.float32) @ v.astype(np.float32), atol=1e-6)
    assert np.array_equal(merged.tensors["l4.fo.w"], m.tensors["l4.fo.w"]) and merged.tensors["emb.word"] is m.tensors["emb.word"]
    assert ours("encoder.layer.11.intermediate.dense.bias") == "l11.fi.b"


def test_an_index_of_another_adapter_is_refused(built, tmp_path: Path) -> None:
    from ingest.errors import IndexMismatch
    from ingest.index import open_index

    path = tmp_path / "a.npz"
    _small_adapter().save(path)
    other = load_embedder(E5_SMALL, EngineOptions(model_dir=MODELS, adapter=str(path)))
    with pytest.raises(IndexMismatch, match="Rebuild it"):
        open_index(built.index_dir, other.name)


def test_the_same_weights_make_the_same_name(tmp_path: Path) -> None:
    """The name hashes the arrays, not the file (its zip records when it was written) nor the meta (the
    training's duration): training again with the same seed keeps the index built before."""
    import time

    from ingest.adapter import digest

    a = _small_adapter()
    a.save(tmp_path / "one.npz")
    time.sleep(2.1)  # zip times have a resolution of 2 s
    Adapter(a.factors, a.whole, {"seconds": 1}).save(tmp_path / "two.npz")
    assert (tmp_path / "one.npz").read_bytes() != (tmp_path / "two.npz").read_bytes()
    assert digest(tmp_path / "one.npz") == digest(tmp_path / "two.npz")
    Adapter(a.factors, {"l5.fo.b": a.whole["l5.fo.b"] * 2}).save(tmp_path / "three.npz")
    assert digest(tmp_path / "three.npz") != digest(tmp_path / "one.npz")


def test_the_guide_leaves_a_false_negative_out_of_the_loss() -> None:
    """Two pairs whose passages say the same thing: without the guide each passage is the other query's
    negative; with it (GISTEmbed, the bundled model judging) they are left out, and the first loss is lower."""
    pytest.importorskip("sentence_transformers")
    from ingest.convert import ensure_model
    from train.fit import train

    pairs = [
        Pair("dropout", "暂退法在训练时随机丢弃一部分神经元。", "term", "a"),
        Pair("what does dropout do", "暂退法在训练时会随机丢弃一部分神经元。", "term", "b"),
        Pair("batch normalization", "批量规范化对每层的输入做标准化。", "term", "c"),
    ]
    losses = {}
    for guide in (False, True):
        settings = Settings(epochs=1, batch=3, lr=1e-4, warmup=0.0, rank=4, guide=guide)
        losses[guide] = train(ensure_model(MODELS), pairs, settings, log=lambda _: None).losses[0]
    assert losses[True] < losses[False]
