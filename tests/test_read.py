"""Markdown posts: front matter, ids, titles, and every kind of bad file skipped with its reason."""
from pathlib import Path

from ingest.read import first_sentence, parse_post, read_corpus


def test_front_matter_is_optional_and_ids_and_titles_have_defaults() -> None:
    post = parse_post("# 梯度检查点\n\n正文。".encode(), "grad-ckpt.md")
    assert (post.post_id, post.title, post.text) == ("grad-ckpt", "梯度检查点", "# 梯度检查点\n\n正文。")
    post = parse_post("---\nid: x1\ntitle: T\ndate: 2026-01-11\ntags: [a, b]\nurl: https://e.x/1\n---\n正文".encode(), "f.md")
    assert (post.post_id, post.title, post.date, post.tags, post.url) == ("x1", "T", "2026-01-11", ("a", "b"), "https://e.x/1")


def test_title_falls_back_to_the_first_sentence() -> None:
    assert first_sentence("什么是Word2Vec和Embeddings? Word2Vec是一种模型。") == "什么是Word2Vec和Embeddings?"
    assert first_sentence("1. 从GBDT到XGBoost 作为GBDT的高效实现,XGBoost是一个算法。") == "1. 从GBDT到XGBoost 作为GBDT的高效实现"


def test_bad_files_are_skipped_with_a_reason_and_the_rest_are_read(tmp_path: Path) -> None:
    (tmp_path / "good.md").write_text("# 好的笔记\n\n内容。", "utf-8")
    (tmp_path / "empty.md").write_bytes(b"")
    (tmp_path / "blank.md").write_text("  \n\n", "utf-8")
    (tmp_path / "binary.md").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "latin1.md").write_bytes("café, naïve".encode("latin-1"))
    (tmp_path / "broken.md").write_text("---\ntitle: [unclosed\n---\n正文", "utf-8")
    (tmp_path / "unclosed.md").write_text("---\ntitle: x\n正文", "utf-8")
    (tmp_path / "list.md").write_text("---\n- a\n- b\n---\n正文", "utf-8")
    with open(tmp_path / "huge.md", "wb") as f:
        f.truncate(50 * 1024 * 1024)
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n")
    (tmp_path / "dup.md").write_text("---\nid: good\n---\n另一篇", "utf-8")
    posts, skipped = read_corpus(tmp_path, max_bytes=2_000_000)
    assert [p.post_id for p in posts] == ["good"]
    reasons = {s.source: s.reason for s in skipped}
    assert reasons["empty.md"] == "empty file"
    assert reasons["blank.md"] == "empty file"
    assert reasons["binary.md"] == "binary file, not Markdown text"
    assert reasons["latin1.md"].startswith("not UTF-8 text")
    assert reasons["broken.md"].startswith("broken front matter")
    assert reasons["unclosed.md"] == "front matter opened with '---' is never closed"
    assert reasons["list.md"] == "front matter is not a mapping of keys to values"
    assert reasons["huge.md"].startswith("file too large (52.4 MB")
    assert reasons["image.png"].startswith("not a Markdown file")
    assert reasons["dup.md"].startswith("duplicate post id 'good'")
    assert len(skipped) == 10


def test_an_id_that_could_be_a_path_is_refused() -> None:
    for bad in ("../etc/passwd", "a/b", "..", ".hidden"):
        try:
            parse_post(f"---\nid: '{bad}'\n---\n正文".encode(), "x.md")
        except Exception as exc:  # BadPost
            assert "invalid post id" in str(exc)
        else:
            raise AssertionError(bad)
