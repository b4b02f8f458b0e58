"""`python -m app ask`, `search` and `feedback`: a question -> the answer or passages on the terminal, no server;
the feedback file -> exported or pruned.

They read the index directly through the same Engine the server uses, so an answer here is the answer
/ask gives, and `--json` prints exactly the HTTP response body.
"""
from __future__ import annotations

import asyncio
import json
import logging
import shutil
import sys
import time
from typing import Callable, TextIO

from pydantic import BaseModel

from app import feedback
from app.filters import Filters
from app.schemas import AskResponse, SearchResponse
from app.settings import Settings
from app.terminal import Style, clip, colour_wanted, pad, printable, width, wrap
from ingest.errors import IndexNotReady, NotesError
from ingest.index import current_version

# Exit statuses: scripts can tell "not covered" from failure (argparse itself exits 2 on a usage error).
ANSWERED, FAILED, USAGE, NOT_COVERED = 0, 1, 2, 3
# Columns of text when the output is not a terminal: passages stay on one line each.
PLAIN_WIDTH = 10_000


def _engine(settings: Settings):  # -> Engine; imported late so that a usage error costs no model load
    if current_version(settings.index_dir) is None:
        raise IndexNotReady(f"No index in {settings.index_dir}/; run `python -m ingest` first.")
    from app.engine import Engine

    # The engine logs a build it cannot load; the error printed below says it once, with what to do.
    logging.getLogger("app").setLevel(logging.ERROR)
    engine = Engine(settings)
    engine.retriever  # raises the reason when the build cannot be served
    return engine


def _columns(out: TextIO) -> int:
    return shutil.get_terminal_size((100, 24)).columns if out.isatty() else PLAIN_WIDTH


def format_answer(resp: AskResponse, style: Style, cols: int) -> str:
    """The answer wrapped to `cols`, then one entry per citation: [n] title · post id, and its passage."""
    lines = wrap(printable(resp.answer), cols) if resp.found else [printable(resp.answer)]
    for c in resp.citations:
        marker = f"[{c.n}] "
        indent = " " * width(marker)
        head = f"{printable(c.title)} · {c.post_id}" + (f" · {c.date}" if c.date else "")
        lines += ["", style.accent(marker) + style.bold(clip(head, max(10, cols - len(marker))))]
        snippet = wrap(printable(c.snippet), max(10, cols - len(indent)))
        shown = snippet if cols >= PLAIN_WIDTH else snippet[:3]
        if len(shown) < len(snippet):
            shown[-1] = clip(shown[-1] + " …", max(10, cols - len(indent)))
        lines += [indent + style.dim(s) for s in shown]
    return "\n".join(lines)


def format_results(resp: SearchResponse, style: Style, cols: int) -> str:
    """A table of rank, score, title (padded by display width, so Chinese titles align) and post id,
    each row followed by its passage."""
    if not resp.results:
        return "no passage found"
    titles = [clip(printable(r.title), 40) for r in resp.results]
    title_cols = max(width(t) for t in titles)
    lines = []
    for i, (r, title) in enumerate(zip(resp.results, titles), start=1):
        lines.append(f"{i:>2}  {r.score:6.3f}  {style.bold(pad(title, title_cols))}  {style.dim(r.post_id)}")
        text = wrap(printable(r.text), max(10, cols - 4))
        lines += ["    " + line for line in (text if cols >= PLAIN_WIDTH else text[:2])]
    return "\n".join(lines)


def _print(resp: BaseModel, format: Callable[..., str], as_json: bool, out: TextIO) -> None:
    """The HTTP body with --json, else `format`ted for the terminal `out` is."""
    if as_json:
        print(resp.model_dump_json(indent=2), file=out)
    else:
        print(format(resp, Style(colour_wanted(out)), _columns(out)), file=out)


def ask(settings: Settings, question: str, top_k: int, filters: Filters, as_json: bool, out: TextIO = sys.stdout) -> int:
    from app.routes.ask import response

    try:
        engine = _engine(settings)
        started = time.perf_counter()
        resp = response(asyncio.run(engine.answer(question, top_k, [], filters)), started)
    except NotesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return FAILED
    _print(resp, format_answer, as_json, out)
    return ANSWERED if resp.found else NOT_COVERED


def search(settings: Settings, query: str, k: int, filters: Filters, as_json: bool, out: TextIO = sys.stdout) -> int:
    from app.routes.search import search_response

    try:
        resp = search_response(_engine(settings), query, k, filters)
    except NotesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return FAILED
    _print(resp, format_results, as_json, out)
    return ANSWERED if resp.results else NOT_COVERED


def feedback_export(settings: Settings, out: TextIO | None = None) -> int:
    """Every whole record, one JSON line each, oldest first (a line torn by a crash is left out)."""
    for rec in feedback.read(settings.feedback_path):
        print(json.dumps(rec, ensure_ascii=False), file=out or sys.stdout)
    return ANSWERED


def feedback_delete(settings: Settings, ids: set[str] | None, out: TextIO | None = None) -> int:
    """Remove the records with these ids, or all of them (None); an id that matches nothing is an error."""
    path = settings.feedback_path
    if ids is not None and (unknown := ids - {r.get("id") for r in feedback.read(path)}):
        print(f"error: no feedback record with id {', '.join(sorted(unknown))} in {path}", file=sys.stderr)
        return FAILED
    removed = feedback.delete(path, ids)
    print(f"deleted {removed} feedback record{'s' if removed != 1 else ''} from {path}", file=out or sys.stdout)
    return ANSWERED
