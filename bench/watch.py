"""Benchmark the watcher: a post saved in corpus/ -> seconds until /ask answers from it.

    python -m bench.watch [--corpus corpus] [--index indexes] [--posts 5] [--threads 1,2] [--gap 2]

For each thread count of the watcher's child (NOTES_THREADS), the corpus and its index are copied into a temporary folder
and `python -m app --watch` is started there on a free port, as `make run` does. New posts are then saved
one at a time, each `--gap` seconds after the watcher's next child is ready (so that each save finds it
warm, as saves minutes apart do), and /ask is polled every 50 ms until its first citation is the new post.
The time from the end of the write to that answer includes the 1 s debounce, the child ingest and the
server's reload. Two posts are also saved the moment the previous one is answered, when the watcher's next
child is still loading: the case of a quick second save. A second table times the child ingest alone: cold (`python -m ingest` started when the
burst ends, model and jieba loaded then) and warm (started ahead, as the watcher does).
Prints Markdown tables for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from ingest.settings import IngestSettings
from ingest.watch import ingest_once, start_child

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "indexes" / "models"
# Made-up topics, so that only the new post can answer its question.
TOPICS = [
    ("青柠", "Lime"), ("榴莲", "Durian"), ("杨桃", "Starfruit"), ("山竹", "Mangosteen"), ("枇杷", "Loquat"),
    ("石榴", "Pomegranate"), ("蓝莓", "Blueberry"), ("樱桃", "Cherry"), ("荔枝", "Lychee"), ("椰子", "Coconut"),
]


def _post(i: int) -> tuple[str, str, str]:
    """(post id, Markdown, question) of a post on a topic no note covers."""
    zh, en = TOPICS[i % len(TOPICS)]
    layers = 3 + i
    text = (
        f"---\ntitle: {zh}纹理网络\n---\n\n{zh}纹理网络用 {layers} 层空洞卷积提取布料的纹理特征, 再用一层注意力汇总。\n"
        f"The {en} texture network stacks {layers} dilated convolutions to read the texture of cloth.\n"
    )
    return f"bench-watch-{i}", text, f"{zh}纹理网络用几层空洞卷积?"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _copy(corpus: Path, index: Path, into: Path) -> tuple[Path, Path]:
    shutil.copytree(corpus, into / "corpus")
    shutil.copytree(index, into / "indexes", ignore=shutil.ignore_patterns("models", ".lock"))
    return into / "corpus", into / "indexes"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _armed(corpus: Path) -> int | None:
    """The pid of the watcher's waiting child for `corpus`, if there is one."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if b"--armed" in Path(f"/proc/{pid}/cmdline").read_bytes() and (
                f"NOTES_CORPUS_DIR={corpus}\0".encode() in Path(f"/proc/{pid}/environ").read_bytes()
            ):
                return int(pid)
        except OSError:
            continue
    return None


def _until_warm(corpus: Path, timeout: float = 120.0) -> None:
    """Wait until the waiting child is ready: it exists and has used no CPU for half a second, blocked
    on its stdin with modules, jieba and the model loaded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = _armed(corpus)
        if pid is not None:
            try:
                before = _cpu_seconds(pid)
                time.sleep(0.5)
                if _cpu_seconds(pid) == before:
                    return
            except OSError:
                pass
        time.sleep(0.2)
    raise RuntimeError("the watcher's child did not get ready")


def _median(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f}" if xs else "-"


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def end_to_end(corpus: Path, index: Path, threads: str, posts: int, gap: float) -> tuple[list[float], list[float], float]:
    """Through `python -m app --watch`: seconds from each saved post to the first /ask that cites it, with
    the watcher's next child warm, then again for posts saved the moment the previous one was answered
    (its next child still loading); and the waiting child's resident memory in MB."""
    with tempfile.TemporaryDirectory() as tmp:
        corpus, index = _copy(corpus, index, Path(tmp))
        port = _free_port()
        env = {**os.environ, "NOTES_THREADS": threads, "NOTES_MODEL_DIR": str(MODELS)}
        log = open(Path(tmp) / "server.log", "w+")
        server = subprocess.Popen(
            [sys.executable, "-m", "app", "--watch", "--port", str(port), "--index", str(index), "--corpus", str(corpus)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        warm, quick, rss = [], [], 0.0
        try:
            deadline = time.monotonic() + 120
            while "watch: " not in Path(log.name).read_text():  # served, and the ingest at start is done
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(Path(log.name).read_text()[-2000:])
                time.sleep(0.2)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:

                def save_and_wait(i: int) -> float:
                    post_id, text, question = _post(i)
                    (corpus / f"{post_id}.md").write_text(text, "utf-8")
                    saved = time.perf_counter()
                    while time.perf_counter() - saved < 60:
                        body = http.post("/ask", json={"question": question}).json()
                        if body["found"] and body["citations"][0]["post_id"] == post_id:
                            return time.perf_counter() - saved
                        time.sleep(0.05)
                    raise RuntimeError(f"{post_id} was not answered within 60 s")

                for i in range(posts):
                    _until_warm(corpus)
                    rss = max(rss, _rss_mb(_armed(corpus)))
                    time.sleep(gap)
                    warm.append(save_and_wait(i))
                    if i < 2:  # at once, while the next child loads
                        quick.append(save_and_wait(posts + i))
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()
    return warm, quick, rss


def child_times(corpus: Path, index: Path, threads: str, repeats: int) -> tuple[list[float], list[float]]:
    """Seconds of one child ingest of one new post: `python -m ingest` started cold, and a warm child."""
    cold, warm = [], []
    with tempfile.TemporaryDirectory() as tmp:
        corpus, index = _copy(corpus, index, Path(tmp))
        os.environ["NOTES_THREADS"] = threads  # start_child passes it on
        settings = IngestSettings(corpus_dir=corpus, index_dir=index, model_dir=MODELS)
        env = {**os.environ, "NOTES_CORPUS_DIR": str(corpus), "NOTES_INDEX_DIR": str(index), "NOTES_MODEL_DIR": str(MODELS)}
        for r in range(repeats):
            post_id, text, _ = _post(100 + 2 * r)
            (corpus / f"{post_id}.md").write_text(text, "utf-8")
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "ingest"], env=env, check=True, capture_output=True)
            cold.append(time.perf_counter() - started)

            child = start_child(settings)
            _until_warm(corpus)
            post_id, text, _ = _post(101 + 2 * r)
            (corpus / f"{post_id}.md").write_text(text, "utf-8")
            run = ingest_once(settings, (post_id,), None, child)
            if not run.ok:
                raise RuntimeError(run.message)
            warm.append(run.seconds)
    return cold, warm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.watch", description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    parser.add_argument("--index", type=Path, default=ROOT / "indexes", help="an index built from --corpus")
    parser.add_argument("--posts", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gap", type=float, default=2.0, help="seconds between a ready child and the next save")
    parser.add_argument("--threads", default="1,2", help="the watcher child's ONNX Runtime threads, compared")
    args = parser.parse_args(argv)
    rows = []
    for threads in [t for t in args.threads.split(",") if t]:
        cold, warm = child_times(args.corpus, args.index, threads, args.repeats)
        seen, quick, rss = end_to_end(args.corpus, args.index, threads, args.posts, args.gap)
        rows.append((threads, cold, warm, seen, quick, rss))
        print(f"{threads} threads: cold {cold}, warm {warm}, saved->answered {seen}, at once {quick}", file=sys.stderr)
    print("| child threads | saves | saved -> answered, median s | max s | within 3 s | saved again at once, s | waiting child MB |")
    print("|---|---|---|---|---|---|---|")
    for engine, _, _, seen, quick, rss in rows:
        within = sum(s <= 3.0 for s in seen)
        again = ", ".join(f"{q:.2f}" for q in quick)
        print(f"| {engine} | {len(seen)} | {_median(seen)} | {max(seen):.2f} | {within} of {len(seen)} | {again} | {rss:.0f} |")
    print()
    print("| child threads | one new post: `python -m ingest` cold, median s | warm child, median s | runs |")
    print("|---|---|---|---|")
    for engine, cold, warm, *_ in rows:
        print(f"| {engine} | {_median(cold)} | {_median(warm)} | {len(cold)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
