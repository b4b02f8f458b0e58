"""Chunking: sentence boundaries, sizes, overlap, headings, stable ids."""
from ingest.chunk import chunk, sections, split_sentences
from ingest.read import Post


def post(text: str) -> Post:
    return Post(post_id="p", title="标题", text=text)


def test_sentences_split_on_chinese_and_english_punctuation() -> None:
    assert split_sentences("第一句。第二句!Third one. Fourth? 1. 列表项不是句末") == [
        "第一句。", "第二句!", "Third one.", "Fourth?", "1. 列表项不是句末",
    ]


def test_chunks_end_at_sentence_boundaries_with_overlap() -> None:
    sentences = [f"这是第{i}句话,用来测试切分的效果。" for i in range(40)]
    chunks = chunk(post("".join(sentences)), size=120, overlap=40)
    assert len(chunks) > 5
    for c in chunks:
        assert len(c.text) <= 120 and c.text.endswith("。")
    for a, b in zip(chunks, chunks[1:]):
        assert b.text.split("。")[0] in a.text  # the next chunk starts with the last sentence of this one


def test_a_long_sentence_is_never_cut_inside_an_english_word() -> None:
    text = " ".join(["gradient checkpointing trades compute for memory"] * 30)
    for c in chunk(post(text), size=100, overlap=0):
        assert len(c.text) <= 100
        assert all(w in {"gradient", "checkpointing", "trades", "compute", "for", "memory"} for w in c.text.split())


def test_headings_give_each_chunk_its_path_and_the_title_its_context() -> None:
    text = "# 模型\n\n引言。\n\n## 训练\n\n训练很慢。\n\n```\n# not a heading\n```"
    assert [h for h, _ in sections(text)] == ["模型", "模型 > 训练"]
    assert [(b.kind, b.text) for b in sections(text)[1][1]] == [("paragraph", "训练很慢。"), ("code", "# not a heading")]
    chunks = chunk(post(text), size=400, overlap=50)
    assert chunks[-1].heading == "模型 > 训练"
    assert chunks[-1].context.startswith("标题 > 模型 > 训练\n")


def test_chunk_ids_are_stable_and_change_with_content() -> None:
    a = chunk(post("一句话。另一句话。"), 400, 50)
    assert a == chunk(post("一句话。另一句话。"), 400, 50)
    assert a[0].chunk_id.startswith("p:") and a[0].chunk_id != chunk(post("一句话。改了。"), 400, 50)[0].chunk_id
