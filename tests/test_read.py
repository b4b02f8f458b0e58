"""Markdown posts: front matter, ids, titles, and every kind of bad file skipped with its reason."""
import os
import time
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.errors import BadPost
from ingest.read import first_sentence, parse_post, read_corpus, title_of, valid_id


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


def _write_hostile_corpus(corpus: Path, outside: Path) -> None:
    """One good post and one file for each hostile case of issue 10, rows 1-5."""
    corpus.mkdir()
    (corpus / "good.md").write_text("# 好的笔记\n\n内容。", "utf-8")
    (corpus / "huge-id.md").write_text("---\nid: " + "7" * 5000 + "\n---\n正文", "utf-8")
    (corpus / "deep-tags.md").write_text("---\ntags: " + "[" * 3000 + "]" * 3000 + "\n---\n正文", "utf-8")
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"] + [
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]" for i in range(6)
    ]
    (corpus / "alias-bomb.md").write_text("---\n" + "\n".join(levels) + "\ntags: *g\n---\n正文", "utf-8")
    secret = outside / "secret.md"
    secret.write_text("---\ntitle: secret\n---\nTOP SECRET 的内容", "utf-8")
    (corpus / "leak.md").symlink_to(secret)
    os.mkfifo(corpus / "pipe.md")


def test_hostile_files_are_skipped_each_with_a_one_line_reason(tmp_path: Path) -> None:
    _write_hostile_corpus(tmp_path / "corpus", tmp_path)
    os.mkfifo(tmp_path / "corpus" / "fifo-no-suffix")
    (tmp_path / "corpus" / "inside.md").symlink_to(tmp_path / "corpus" / "good.md")
    (tmp_path / "corpus" / "dangling.md").symlink_to(tmp_path / "nowhere.md")
    (tmp_path / "corpus" / "loop.md").symlink_to(tmp_path / "corpus" / "loop.md")
    started = time.monotonic()
    posts, skipped = read_corpus(tmp_path / "corpus", max_bytes=2_000_000)
    assert time.monotonic() - started < 10  # a FIFO is never opened for a blocking read
    assert sorted(p.post_id for p in posts) == ["good", "inside"]  # a symlink inside the corpus is followed
    reasons = {s.source: s.reason for s in skipped}
    assert reasons == {
        "huge-id.md": reasons["huge-id.md"],
        "deep-tags.md": "front matter nested deeper than 8 levels at line 2",
        "alias-bomb.md": "front matter uses a YAML alias at line 3; aliases are not allowed",
        "leak.md": "symlink to a file outside the corpus folder",
        "pipe.md": "not a regular file (a FIFO)",
        "fifo-no-suffix": "not a regular file (a FIFO)",
        "dangling.md": "broken symlink",
        "loop.md": "symlink loop",
    }
    assert reasons["huge-id.md"].startswith("broken front matter: ValueError: Exceeds the limit")
    assert all("\n" not in r and len(r) <= 200 for r in reasons.values())


def test_a_file_name_cannot_write_control_characters_to_the_terminal(tmp_path: Path) -> None:
    (tmp_path / "good.md").write_text("# 好\n\n内容。", "utf-8")
    (tmp_path / "\x1b[2Jevil\n.txt").write_text("x", "utf-8")
    _, (skipped,) = read_corpus(tmp_path, max_bytes=1000)
    assert skipped.source == "\\x1b[2Jevil .txt" and skipped.source.isprintable()


def test_a_long_heading_line_is_read_in_linear_time() -> None:
    # The old heading pattern backtracked: 20 KB of blanks inside one heading took minutes.
    started = time.monotonic()
    post = parse_post(("# a" + " " * 20_000 + "b\n\n正文。").encode(), "h.md")
    assert post.title.startswith("a ") and time.monotonic() - started < 2
    assert title_of("## 梯度检查点 ##\n\n正文") == "梯度检查点" and title_of("# C#\n\n正文") == "C#"
    assert title_of("#no-space 不是标题。正文") == "#no-space 不是标题。" and title_of("    # code\n\n正文。") == "正文。"
    assert title_of("**梯度检查点**的作用是省显存。后文") == "梯度检查点的作用是省显存。"  # plain text, never Markdown
    assert title_of("梯度检查点\n---\n\n正文") == "梯度检查点"  # a setext heading


# YAML's syntax characters, and pieces known to break naive readers: explicit tags, anchors and
# aliases, deep brackets, a number past Python's 4,300-digit limit, impossible dates.
PIECES = [
    "!!timestamp ", "!!int ", "!!float ", "!!binary ", "!!set ", "!!python/object ", "&a ", "*a", "<<: ",
    "[" * 40, "{a: " * 12, "9" * 4400, "2026-13-45", "2026-02-30 25:61:00", "? ", "- ", ": ", "\n  ", "%YAML 1.1\n",
]
HOSTILE_YAML = st.lists(
    st.one_of(st.sampled_from(PIECES), st.text(alphabet="-:[]{}&*!|>'\"#%@`,?\n\t .0123456789abcxyz<=~_", max_size=20)),
    max_size=12,
).map("".join)


@given(
    st.one_of(
        st.binary(max_size=600),
        HOSTILE_YAML.map(lambda y: f"---\n{y}\n---\n正文".encode()),
        st.tuples(st.sampled_from(["id", "title", "date", "tags", "url", "categories"]), HOSTILE_YAML).map(
            lambda kv: f"---\n{kv[0]}: {kv[1]}\n---\n# 标题\n正文".encode()
        ),
    )
)
@settings(max_examples=400, deadline=timedelta(seconds=2), suppress_health_check=[HealthCheck.too_slow])
def test_any_bytes_give_a_post_or_a_skip_reason(raw: bytes) -> None:
    try:
        post = parse_post(raw, "any.md")
    except BadPost as exc:
        assert str(exc)
    else:
        assert post.text and valid_id(post.post_id) and all(isinstance(t, str) for t in post.tags)
