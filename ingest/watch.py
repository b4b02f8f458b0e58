"""Watch the corpus folder: bursts of file changes -> one incremental ingest in a child process per burst.

The watcher never builds anything itself. Each burst runs the ordinary incremental build() of
`python -m ingest` in a child process of its own, so an ingest that crashes, leaks or is killed cannot
take the watcher (or the server that hosts it) down, and the index keeps its usual guarantees: the lock,
the atomic CURRENT, the old build served when a new one fails.
"""
from __future__ import annotations

import itertools
import logging
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import watchfiles

from ingest.errors import EmptyCorpus
from ingest.read import POST_SUFFIXES
from ingest.settings import IngestSettings

# Names editors write next to a note while saving it: vim's write probe (4913, 4914, …), backups
# ending in `~`, emacs's `#autosave#`, and temporary copies. Hidden names (.swp, .#lock) never get here.
_TEMP_NAME_RE = re.compile(r"^\d+$|~$|^#.*#$|\.(?:tmp|temp|part|crdownload|bak|orig)$|___jb_...___$", re.I)
# Watchfiles yields at least this often (ms) so that the quiet period is checked without new events.
_TICK_MS = 100
# A child told to stop gets this long to exit before it is killed.
_GRACE_S = 5.0


def wanted(path: Path, corpus: Path) -> bool:
    """Can a change to `path` change the index? Posts yes; hidden files, `.git/` and editor droppings no.

    A suffix-less name that is not a temporary one may be a folder of posts moved in or out, so it counts.
    """
    try:
        parts = path.relative_to(corpus).parts
    except ValueError:
        return False
    if not parts or any(p.startswith(".") for p in parts) or _TEMP_NAME_RE.search(parts[-1]):
        return False
    suffix = path.suffix.lower()
    return suffix in POST_SUFFIXES or (not suffix and not path.is_file())


@dataclass(frozen=True)
class Run:
    """One child ingest: what started it, whether it published, and what it said (summary or reason)."""

    paths: tuple[str, ...]
    ok: bool
    message: str
    seconds: float


def child_env(settings: IngestSettings) -> dict[str, str]:
    """The watcher's own settings for the child, as NOTES_* variables.

    One model thread unless NOTES_THREADS says otherwise: a burst is a post or a few, and beside a server on
    two cores, threads that spin-wait for each other take the server's time (docs/benchmarks.md)."""
    env = {f"NOTES_{k.upper()}": str(v) for k, v in settings.model_dump().items() if v is not None}
    return {**env, "NOTES_THREADS": os.environ.get("NOTES_THREADS", "1")}


def start_child(settings: IngestSettings) -> subprocess.Popen:
    """`python -m ingest --armed`: loads its modules, jieba's dictionary and the model, then waits for a
    line on stdin before it reads the corpus and ingests once. Started ahead of need, it is warm when a
    burst ends: the 1.6 s of imports and dictionary loading happen while the watcher waits anyway."""
    # A session of its own: Ctrl-C in the terminal reaches the watcher, which ends the child itself,
    # rather than both at once with the child's traceback reported as a failed ingest.
    return subprocess.Popen(
        [sys.executable, "-m", "ingest", "--armed"], env={**os.environ, **child_env(settings)},
        start_new_session=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def armed(settings: IngestSettings) -> int:
    """The child's side of start_child(): get ready, wait for the word, ingest once and end the process.
    Returns (0) only when the watcher went away without needing this ingest."""
    from ingest import bridge
    from ingest.build import build
    from ingest.embed import load_embedder
    from ingest.segment import segment

    segment("预热 warm-up")
    bridge.dictionary_pairs([])  # reads CC-CEDICT (1 s), which every ingest's bridge needs
    embedder = load_embedder(settings.embedder, settings.engine_options())
    embedder.passages(["预热 warm-up"])  # a model's first call sets up its threads and buffers
    if not sys.stdin.readline():
        return 0  # the watcher went away before it needed this ingest
    print(build(settings, embedder=embedder), flush=True)
    # Published and said so: skip the interpreter's teardown, which the watcher would wait for before it loads
    # the new build.
    os._exit(0)


def end(proc: subprocess.Popen | None) -> None:
    """Stop a child; a build cut short is never published, and the next ingest clears what it left."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def ingest_once(
    settings: IngestSettings, paths: tuple[str, ...] = (), stop: threading.Event | None = None,
    child: subprocess.Popen | None = None,
) -> Run:
    """One incremental ingest in `child` (started by start_child, or now): wait for it, or end it when
    `stop` is set."""
    started = time.perf_counter()
    if child is None or child.poll() is not None:
        child = start_child(settings)
    word: str | None = "go\n"  # sent once; a child that died meanwhile is reported from its output
    try:
        while True:
            try:
                out, err = child.communicate(word, timeout=0.1)
                break
            except subprocess.TimeoutExpired:
                word = None
                if stop is not None and stop.is_set():
                    end(child)
                    return Run(paths, False, "stopped", time.perf_counter() - started)
    except BaseException:  # Ctrl-C while waiting: the child goes too, then the interrupt goes on
        end(child)
        raise
    seconds = time.perf_counter() - started
    if child.returncode == 0:
        # The summary, and why a file of this burst was skipped (a post saved with broken front matter):
        # the other files skipped, every time, would only drown that.
        lines = [line for line in out.splitlines() if line.strip()]
        ours = [line for line in lines if line.startswith("skipped ") and line[8:].split(": ", 1)[0] in paths]
        return Run(paths, True, "; ".join(ours + [line for line in lines if not line.startswith("skipped ")]), seconds)
    lines = [line for line in err.splitlines() if line.strip()]
    reason = lines[-1].removeprefix("error: ") if lines else f"exit status {child.returncode}"
    if child.returncode < 0:
        reason = f"killed by signal {-child.returncode}"
    return Run(paths, False, reason, seconds)


def _settled(paths: set[str], quiet: float) -> bool:
    """No pending file was modified in the last `quiet` seconds: a write that sent no event still counts."""
    now = time.time()
    for p in paths:
        try:
            if now - os.stat(p).st_mtime < quiet:
                return False
        except OSError:
            continue  # deleted: nothing more will be written to it
    return True


def watch(
    settings: IngestSettings,
    on_run: Callable[[Run], None] | None = None,
    stop: threading.Event | None = None,
    initial: bool = True,
) -> None:
    """Ingest once (changes made while nobody watched), then once per burst of changes, until `stop`.

    A burst ends `watch_debounce` seconds after its last change, and only when every changed file has
    kept its size and time that long: a file still being written, in one go or in pieces, waits.
    """
    corpus = settings.corpus_dir
    if not corpus.is_dir():
        raise EmptyCorpus(f"No corpus folder {corpus}/ to watch; create it and add Markdown posts.")
    report = on_run or (lambda run: None)
    # watchfiles logs every batch of changes at INFO; what was done about them is reported instead.
    logging.getLogger("watchfiles").setLevel(logging.WARNING)
    quiet = settings.watch_debounce
    root = corpus.resolve()
    events = watchfiles.watch(
        root, watch_filter=lambda _, p: wanted(Path(p), root), debounce=max(int(quiet * 1000), _TICK_MS),
        step=50, rust_timeout=_TICK_MS, yield_on_timeout=True, stop_event=stop,
    )
    # Watching starts with the first step, before the first ingest: what changes during it is not lost.
    first = next(events, None)
    if initial:
        report(ingest_once(settings, (), stop))
    spare = start_child(settings)
    pending: set[str] = set()
    last = 0.0
    try:
        for changes in itertools.chain([first or set()], events):
            now = time.monotonic()
            if changes:
                pending.update(p for _, p in changes)
                last = now
                continue
            if stop is not None and stop.is_set():
                return
            if not pending or now - last < quiet:
                continue
            if not _settled(pending, quiet):
                last = now
                continue
            paths = tuple(sorted(str(Path(p).relative_to(root)) for p in pending))
            pending.clear()
            run = ingest_once(settings, paths, stop, spare)
            if stop is not None and stop.is_set():
                return
            report(run)
            spare = start_child(settings)  # warm by the time the next burst ends
    finally:
        end(spare)
        events.close()


def describe(run: Run) -> str:
    """One log line for a run."""
    what = ", ".join(run.paths[:3]) + (f" and {len(run.paths) - 3} more" if len(run.paths) > 3 else "")
    head = f"{what} changed: " if what else ""
    if run.ok:
        return f"{head}{run.message} (ingest took {run.seconds:.1f} s)"
    return f"{head}ingest failed: {run.message}; still watching"
