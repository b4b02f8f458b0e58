"""Benchmark /ask over real HTTP on 127.0.0.1: sequential and concurrent latency, throughput, memory.

    python -m bench.serve [--index indexes] [--requests 300] [--clients 16] [--seconds 20] [--total 10000]

Starts `python -m app` as a subprocess on a free port, so the figures include uvicorn and the network
stack; asks new and repeated questions, one at a time and from concurrent clients; then asks new questions
until `--total` distinct ones were embedded, and reads the server's resident memory. Prints Markdown tables
for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import httpx

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "tests" / "data" / "eval_questions.jsonl"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def _stream(questions: list[str], repeated: bool, tag: str) -> Iterator[str]:
    """Questions in rotation; unless `repeated`, each is made new with a counter so no cache can help."""
    for i in itertools.count():
        q = questions[i % len(questions)]
        yield q if repeated else f"{q} ({tag}{i})"


def _sequential(url: str, questions: Iterator[str], n: int) -> tuple[list[float], list[float]]:
    latencies, embed = [], []
    with httpx.Client(base_url=url, timeout=30) as http:
        for q in itertools.islice(questions, n):
            started = time.perf_counter()
            r = http.post("/ask", json={"question": q})
            latencies.append((time.perf_counter() - started) * 1000)
            r.raise_for_status()
            embed.append(r.json()["timings_ms"]["embed"])
    return latencies, embed


def _concurrent(url: str, questions: Iterator[str], clients: int, seconds: float) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        nonlocal errors
        with httpx.Client(base_url=url, timeout=30) as http:
            while time.monotonic() < stop:
                with lock:
                    q = next(questions)
                started = time.perf_counter()
                try:
                    ok = http.post("/ask", json={"question": q}).status_code == 200
                except httpx.HTTPError:
                    ok = False
                with lock:
                    latencies.append((time.perf_counter() - started) * 1000)
                    errors += not ok

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors, time.perf_counter() - began


def _serve(index: Path, port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "app", "--index", str(index), "--port", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            raise SystemExit("server did not start; is there an index? run `python -m ingest`")
        time.sleep(0.1)


def _fill(url: str, questions: Iterator[str], n: int, clients: int = 4) -> None:
    """`n` more new questions, from a few clients at once, so that the server has embedded that many."""
    lock = threading.Lock()
    left = [n]

    def client() -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while True:
                with lock:
                    if left[0] <= 0:
                        return
                    left[0] -= 1
                    q = next(questions)
                http.post("/ask", json={"question": q}).raise_for_status()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def measure(index: Path, questions: list[str], args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """Table rows for the server, and lines on its memory."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = _serve(index, port)
    try:
        idle_rss, _ = _rss_mb(server.pid)
        with httpx.Client(base_url=url, timeout=30) as http:
            for q in questions[:10]:
                http.post("/ask", json={"question": f"{q} (warm-up)"})
        rows, asked = [], 10
        for label, repeated in (("new", False), ("repeated", True)):
            seq, embed = _sequential(url, _stream(questions, repeated, "s"), args.requests)
            conc, errors, elapsed = _concurrent(url, _stream(questions, repeated, "c"), args.clients, args.seconds)
            asked += 0 if repeated else len(seq) + len(conc)
            rows.append(
                f"| {label} | sequential | {len(seq)} | {statistics.median(seq):.1f} | {_pct(seq, 95):.1f} "
                f"| {_pct(seq, 99):.1f} | {len(seq) / (sum(seq) / 1000):.0f} | 0 | {statistics.median(embed):.1f} |"
            )
            rows.append(
                f"| {label} | {args.clients} clients, {args.seconds:.0f} s | {len(conc)} "
                f"| {statistics.median(conc):.1f} | {_pct(conc, 95):.1f} | {_pct(conc, 99):.1f} "
                f"| {len(conc) / elapsed:.0f} | {errors} | |"
            )
        loaded_rss, _ = _rss_mb(server.pid)
        _fill(url, _stream(questions, False, "f"), max(0, args.total - asked))
        rss, peak = _rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=10)
    memory = [
        f"{idle_rss:.0f} MB after start-up (the index loaded, one warm-up question)",
        f"{loaded_rss:.0f} MB after the load above ({asked} new questions)",
        f"{rss:.0f} MB after {max(asked, args.total):,} new questions (peak {peak:.0f} MB)",
    ]
    return rows, memory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__.split("\n")[0])
    parser.add_argument("--index", type=Path, default=ROOT / "indexes")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--total", type=int, default=10_000, help="new questions embedded before memory is read")
    args = parser.parse_args(argv)
    questions = [json.loads(x)["question"] for x in QUESTIONS.read_text("utf-8").splitlines() if x.strip()]
    rows, memory = measure(args.index, questions, args)
    print(f"## /ask over HTTP on 127.0.0.1 (`python -m bench.serve`, {os.cpu_count()} cores)\n")
    print("New questions are the labelled questions with a counter appended, so each one is embedded; repeated")
    print("questions cycle through the same set and hit the server's question-vector cache.\n")
    print("| questions | load | requests | p50 ms | p95 ms | p99 ms | req/s | errors | embed p50 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print()
    for line in memory:
        print(f"- Server resident memory: {line}.")
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
