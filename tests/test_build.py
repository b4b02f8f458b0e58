"""The real build(): incremental by content hash, crash-safe, locked, and clear about bad input."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ingest import store
from ingest.__main__ import main as ingest_main
from ingest.adapter import SHIPPED, digest
from ingest.build import build
from ingest.chunk import METHOD, chunk
from ingest.embed import E5_SMALL, Embedder
from ingest.errors import EmptyCorpus, IndexCorrupt, IndexMismatch, IngestBusy, SkippedPosts
from ingest.index import HNSW_EF_SEARCH, Index, builds_dir, current_version, load_build, open_index
from ingest.manifest import FORMAT_VERSION, Chunking, EmbedderInfo
from ingest.read import read_corpus
from ingest.segment import segment
from ingest.settings import IngestSettings

ROOT = Path(__file__).resolve().parents[1]
# Generous: on a machine busy with other jobs the model's threads wait for cores, and an ingest that
# takes seconds when the machine is free has taken two minutes.
INGEST_TIMEOUT = 400
NEW_POST = "---\ntitle: 学习率预热\n---\n\n学习率预热(warmup)在训练初期用较小的学习率,避免梯度过大导致训练不稳定。之后再逐渐增大到设定值。\n"


@pytest.fixture
def copy(built: IngestSettings, tmp_path: Path) -> IngestSettings:
    """A private copy of the built corpus and index that a test may change."""
    shutil.copytree(built.corpus_dir, tmp_path / "corpus")
    shutil.copytree(built.index_dir, tmp_path / "indexes")
    return built.model_copy(update={"corpus_dir": tmp_path / "corpus", "index_dir": tmp_path / "indexes"})


def top_post(index: Index, question: str) -> str:
    return index.chunks[int(np.argmax(index.bm25.scores(segment(question))))].post_id


def test_the_built_index_describes_itself(built: IngestSettings) -> None:
    name = f"{E5_SMALL}+{digest(SHIPPED)}/fused-int8-pc"
    index = open_index(built.index_dir, name)
    m = index.manifest
    assert m.format_version == FORMAT_VERSION and m.version == current_version(built.index_dir)
    assert m.rules.embedder == EmbedderInfo(name, 384, "onnxruntime/fused-int8-pc")
    assert m.rules.segmenter.name == "jieba-search" and len(m.rules.segmenter.dictionary_hash) == 16
    assert m.rules.chunking == Chunking(450, 140, METHOD)
    assert m.counts.posts == len(index.posts) == 7  # 9 files, of which broken.md and empty.md are skipped
    assert m.counts.chunks == len(index.chunks) and m.counts.sentences == len(index.sentences)
    assert index.vectors.shape == (len(index.chunks), 384)
    assert np.allclose(np.linalg.norm(index.vectors, axis=1), 1, atol=1e-4)
    assert top_post(index, "梯度检查点") == "gradient-checkpointing-7d01ea"
    assert not list(built.index_dir.rglob("*.pkl"))


def test_no_change_embeds_nothing_and_publishes_nothing(copy: IngestSettings, embedder: Embedder) -> None:
    before = current_version(copy.index_dir)
    summary = build(copy, embedder=embedder)
    assert (summary.added, summary.updated, summary.removed, summary.embedded, summary.changed) == (0, 0, 0, 0, False)
    assert current_version(copy.index_dir) == before


def test_add_edit_delete_embed_only_what_changed(copy: IngestSettings, embedder: Embedder) -> None:
    (copy.corpus_dir / "warmup.md").write_text(NEW_POST, "utf-8")
    s = build(copy, embedder=embedder)
    assert (s.added, s.updated, s.removed, s.embedded) == (1, 0, 0, 1)
    assert top_post(open_index(copy.index_dir), "学习率预热") == "warmup"

    path = copy.corpus_dir / "random-forests-cart-443cef.md"
    path.write_text(path.read_text("utf-8") + "\n\n补充:随机森林可以并行训练每一棵树。\n", "utf-8")
    posts, _ = read_corpus(copy.corpus_dir, 10**6)
    edited = next(p for p in posts if p.post_id == "random-forests-cart-443cef")
    s = build(copy, embedder=embedder)
    assert (s.added, s.updated, s.removed) == (0, 1, 0)
    assert 1 <= s.embedded <= len(chunk(edited, 450, 80))

    (copy.corpus_dir / "warmup.md").unlink()
    s = build(copy, embedder=embedder)
    assert (s.added, s.updated, s.removed, s.embedded) == (0, 0, 1, 0)
    index = open_index(copy.index_dir)
    assert "warmup" not in index.posts and all(c.post_id != "warmup" for c in index.chunks)


def test_full_rebuild_re_embeds_everything(copy: IngestSettings, embedder: Embedder) -> None:
    s = build(copy, full=True, embedder=embedder)
    assert s.changed and s.embedded == s.chunks


def test_skipped_files_are_reported_and_strict_refuses(copy: IngestSettings, embedder: Embedder) -> None:
    s = build(copy, full=True, embedder=embedder)
    assert {x.source for x in s.skipped} == {"broken.md", "empty.md"}
    assert "skipped broken.md: broken front matter" in str(s)
    with pytest.raises(SkippedPosts, match="empty.md"):
        build(copy, strict=True, embedder=embedder)


def test_an_empty_corpus_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "empty.md").write_text("", "utf-8")
    with pytest.raises(EmptyCorpus, match="No readable post"):
        build(IngestSettings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "i"))
    assert ingest_main(["--corpus", str(tmp_path / "corpus"), "--index", str(tmp_path / "i")]) == 1
    assert "error: No readable post" in capsys.readouterr().err


def test_an_index_from_another_embedder_is_refused_with_the_fix(copy: IngestSettings) -> None:
    with pytest.raises(IndexMismatch, match="Rebuild it: `python -m ingest`"):
        open_index(copy.index_dir, "sentence-transformers:other")


def _ingest(settings: IngestSettings, *args: str, **env: str) -> subprocess.Popen:
    """`python -m ingest` as a user runs it, on the shared model file."""
    env = {"NOTES_MODEL_DIR": str(settings.model_dir), **env}
    return subprocess.Popen(
        [sys.executable, "-m", "ingest", "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), *args],
        cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_a_killed_ingest_leaves_the_previous_index_served(copy: IngestSettings) -> None:
    old = open_index(copy.index_dir)
    (copy.corpus_dir / "warmup.md").write_text(NEW_POST, "utf-8")
    builds = builds_dir(copy.index_dir)
    for when in (0.3, 1.0, 2.0, "tmp-build"):
        proc = _ingest(copy, "--full")
        if when == "tmp-build":  # kill while the new build's files are being written
            deadline = time.monotonic() + 60
            while not list(builds.glob(".tmp-*")) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
        else:
            time.sleep(when)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        served = open_index(copy.index_dir)
        if served.version == old.version:
            assert top_post(served, "梯度检查点") == top_post(old, "梯度检查点")
            assert np.array_equal(served.vectors, old.vectors)
        else:  # the ingest finished before the kill: the new build must be whole
            assert "warmup" in served.posts
    proc = _ingest(copy)
    out, err = proc.communicate(timeout=INGEST_TIMEOUT)
    assert proc.returncode == 0, err
    assert "warmup" in open_index(copy.index_dir).posts
    assert not list(builds.glob(".tmp-*"))


def test_a_second_ingest_waits_for_the_lock_or_exits_clearly(copy: IngestSettings) -> None:
    with store.lock(copy.index_dir, timeout=1):
        proc = _ingest(copy, NOTES_LOCK_TIMEOUT="1")
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "Another ingest" in err and "is still writing" in err
    (copy.corpus_dir / "warmup.md").write_text(NEW_POST, "utf-8")
    first, second = _ingest(copy, "--full"), _ingest(copy, "--full")
    for p in (first, second):
        _, err = p.communicate(timeout=2 * INGEST_TIMEOUT)
        assert p.returncode == 0, err
    index = open_index(copy.index_dir)
    assert "warmup" in index.posts and index.dense.ntotal == len(index.chunks)


def test_a_lock_holder_that_never_lets_go_times_out(copy: IngestSettings) -> None:
    with store.lock(copy.index_dir, timeout=1):
        with pytest.raises(IngestBusy, match="wait for it to finish"):
            with store.lock(copy.index_dir, timeout=0.3):
                pass


def test_past_the_threshold_the_dense_index_is_hnsw(copy: IngestSettings, embedder: Embedder) -> None:
    settings = copy.model_copy(update={"hnsw_threshold": 2})
    build(settings, full=True, embedder=embedder)
    index = open_index(settings.index_dir)
    assert index.manifest.dense == "hnsw" and index.dense.hnsw.efSearch == HNSW_EF_SEARCH
    _, ids = index.dense.search(index.vectors[:1], 1)
    assert ids[0][0] == 0


def test_an_index_segmented_under_other_rules_is_refused(copy: IngestSettings) -> None:
    path = builds_dir(copy.index_dir) / current_version(copy.index_dir)
    manifest = json.loads((path / "manifest.json").read_text("utf-8"))
    manifest["rules"]["segmenter"]["dictionary_hash"] = "0" * 16
    (path / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    with pytest.raises(IndexMismatch, match="segmented with other rules"):
        open_index(copy.index_dir)


@pytest.mark.parametrize(
    "damage",
    [
        lambda m: m.pop("counts"),
        lambda m: m["rules"]["embedder"].update(dim="384"),
        lambda m: m["rules"].update(chunking=[450, 80]),
        lambda m: m.update(files={"../../etc/passwd": 1}),
        lambda m: m.update(extra=1),
    ],
)
def test_a_malformed_manifest_is_refused_as_corrupt(copy: IngestSettings, damage) -> None:
    path = builds_dir(copy.index_dir) / current_version(copy.index_dir)
    manifest = json.loads((path / "manifest.json").read_text("utf-8"))
    damage(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    with pytest.raises(IndexCorrupt):
        load_build(path)


def test_the_corpus_is_read_under_the_lock(copy: IngestSettings) -> None:
    """Of two racing ingests, the one that gets the lock second must see the corpus as it is then."""
    with store.lock(copy.index_dir, timeout=1):
        proc = _ingest(copy)
        time.sleep(3)  # the ingest has started and waits for the lock
        (copy.corpus_dir / "warmup.md").write_text(NEW_POST, "utf-8")
    _, err = proc.communicate(timeout=INGEST_TIMEOUT)
    assert proc.returncode == 0, err
    assert "warmup" in open_index(copy.index_dir).posts


def test_links_planted_as_the_lock_or_the_pointer_are_never_followed(copy: IngestSettings, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", "utf-8")
    (copy.index_dir / store.LOCK).unlink(missing_ok=True)
    (copy.index_dir / store.LOCK).symlink_to(victim)
    with pytest.raises(IndexCorrupt, match="symbolic link"):
        with store.lock(copy.index_dir, timeout=1):
            pass
    (copy.index_dir / store.LOCK).unlink()
    version = current_version(copy.index_dir)
    (copy.index_dir / ".CURRENT.tmp").symlink_to(victim)
    store.publish(copy.index_dir, version)
    assert victim.read_text("utf-8") == "precious" and current_version(copy.index_dir) == version
    (copy.index_dir / "CURRENT").unlink()
    (copy.index_dir / "CURRENT").symlink_to(victim)
    assert current_version(copy.index_dir) is None


def test_hostile_files_are_reported_and_the_rest_indexed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.test_read import _write_hostile_corpus

    _write_hostile_corpus(tmp_path / "corpus", tmp_path)
    args = ["--corpus", str(tmp_path / "corpus"), "--index", str(tmp_path / "indexes")]
    assert ingest_main(args) == 0
    out = capsys.readouterr().out
    for name in ("huge-id.md", "deep-tags.md", "alias-bomb.md", "leak.md", "pipe.md"):
        assert len([line for line in out.splitlines() if line.startswith(f"skipped {name}: ")]) == 1
    index = open_index(tmp_path / "indexes")
    assert list(index.posts) == ["good"] and "TOP SECRET" not in json.dumps([c.text for c in index.chunks])
    assert sum(f.stat().st_size for f in builds_dir(tmp_path / "indexes").rglob("*")) < 5_000_000
    assert ingest_main([*args, "--strict"]) == 1
    assert "5 files skipped and --strict given" in capsys.readouterr().err
