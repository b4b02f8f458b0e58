"""Feed snapshots -> corpus posts: exactly the 36 distinct posts of the seeds, idempotently."""
import os
from pathlib import Path

import pytest

from ingest.__main__ import main as ingest_main
from ingest.errors import BadPost
from ingest.feed import Excerpt, import_snapshots, merge, parse_snapshot
from ingest.read import read_corpus

# A copy of ../shared/seeds, so that the importer is tested on any clone.
SEEDS = Path(__file__).resolve().parent / "data" / "seeds"
seeds = sorted(SEEDS.glob("*.txt"))


def test_import_yields_the_36_distinct_posts_and_reimport_changes_nothing(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    assert import_snapshots(seeds, corpus) == {"new": 36, "updated": 0, "unchanged": 0}
    before = {p.name: p.read_bytes() for p in corpus.iterdir()}
    assert len(before) == 36
    assert import_snapshots(seeds[::-1], corpus) == {"new": 0, "updated": 0, "unchanged": 36}
    assert {p.name: p.read_bytes() for p in corpus.iterdir()} == before
    posts, skipped = read_corpus(corpus, 10**6)
    assert len(posts) == 36 and skipped == []
    assert not any(p.text in {"Python", "2026-01-11", "1 2"} for p in posts)
    ddp = next(p for p in posts if "DDP Pytorch" in p.text)
    assert ddp.date == "2026-01-11" and ddp.tags == ("Python",)


def test_the_seed_copy_is_complete() -> None:
    assert len(seeds) == 5


def test_committed_corpus_is_the_import_of_the_seeds(tmp_path: Path) -> None:
    import_snapshots(seeds, tmp_path)
    committed = Path(__file__).resolve().parents[1] / "corpus"
    imported = {p.name: p.read_bytes() for p in tmp_path.glob("*.md")}
    assert imported == {p.name: p.read_bytes() for p in committed.glob("*.md")}


def test_chrome_lines_attach_to_the_next_post_and_trailing_chrome_to_the_last() -> None:
    text = "HEADER\n\nLATEST UPDATES\n第一篇笔记的摘要,讲了很多内容...\nPython\n2026-01-11\n第二篇笔记,讲别的东西。\n深度学习\n1 2"
    assert parse_snapshot(text) == [
        Excerpt("第一篇笔记的摘要,讲了很多内容"),
        Excerpt("第二篇笔记,讲别的东西。", "2026-01-11", "Python"),
    ]
    assert parse_snapshot("LATEST UPDATES\n一篇笔记的摘要,很长很长。\n2025-12-01")[0].date == "2025-12-01"


def test_longest_version_wins_and_keeps_metadata_seen_first() -> None:
    short = Excerpt("梯度检查点 大模型的参数量巨大", "2026-01-01", None)
    long_ = Excerpt("梯度检查点 大模型的参数量巨大,即使将batch_size设置为1", None, "DL")
    assert merge([short, long_]) == [Excerpt(long_.text, "2026-01-01", "DL")]
    assert merge([long_, short]) == [Excerpt(long_.text, "2026-01-01", "DL")]


def test_a_longer_snapshot_updates_the_post_in_place(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("LATEST UPDATES\nRNN 概述 在前面讲到的DNN和CNN中,训练样本...\n", "utf-8")
    b.write_text("LATEST UPDATES\nRNN 概述 在前面讲到的DNN和CNN中,训练样本的输入和输出是确定的。...\n", "utf-8")
    corpus = tmp_path / "corpus"
    assert import_snapshots([a], corpus)["new"] == 1
    assert import_snapshots([b], corpus) == {"new": 0, "updated": 1, "unchanged": 0}
    assert import_snapshots([a], corpus) == {"new": 0, "updated": 0, "unchanged": 1}
    (post,), _ = read_corpus(corpus, 10**6)
    assert post.text.endswith("输入和输出是确定的。")


def test_a_file_that_is_not_a_snapshot_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(BadPost):
        parse_snapshot("just some text")
    (tmp_path / "x.txt").write_text("hello", "utf-8")
    assert ingest_main(["--corpus", str(tmp_path / "c"), "import", str(tmp_path / "x.txt")]) == 1
    assert "LATEST UPDATES" in capsys.readouterr().err


def test_import_skips_fifos_and_symlinks_in_the_corpus(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    import_snapshots(seeds[:1], corpus)
    first = sorted(corpus.glob("*.md"))[0]
    first.unlink()
    os.mkfifo(first)  # where the importer will write, and reads first to compare
    os.mkfifo(corpus / "a-fifo.md")
    (corpus / "leak.md").symlink_to(tmp_path / "outside.md")
    counts = import_snapshots(seeds, corpus)  # returns instead of blocking on a FIFO
    assert sum(counts.values()) == 36 and first.is_file()
