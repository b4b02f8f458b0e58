"""The corpus watcher beside the server: IngestSettings + Engine -> a thread that ingests changes, and its stop."""
from __future__ import annotations

import logging
import threading
from typing import Callable

from app.engine import Engine
from ingest.settings import IngestSettings
from ingest.watch import Run, describe, watch

log = logging.getLogger("app")


def start_watching(engine: Engine, settings: IngestSettings) -> Callable[[], None]:
    """Watch the corpus in a thread; each successful ingest is loaded at once, without waiting for the
    next reload check. Returns the function that stops the watcher and its child ingest, if one runs."""
    stop = threading.Event()

    def on_run(run: Run) -> None:
        (log.info if run.ok else log.warning)("watch: %s", describe(run))
        if run.ok:
            engine.reload()

    def loop() -> None:
        try:
            watch(settings, on_run=on_run, stop=stop)
        except Exception:  # the server goes on serving without the watcher; say so once
            log.exception("watching %s/ stopped", settings.corpus_dir)

    thread = threading.Thread(target=loop, name="corpus-watch", daemon=True)
    thread.start()
    log.info("watching %s/ for changes", settings.corpus_dir)

    def halt() -> None:
        stop.set()
        thread.join(timeout=10)

    return halt
