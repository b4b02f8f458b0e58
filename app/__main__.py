"""Serve the notes assistant, or ask it from the terminal.

    python -m app [serve] [--index DIR] [--host H] [--port P] [--watch] [--corpus DIR]   # http://127.0.0.1:8000
    python -m app ask "问题" [--top-k N] [--json] [--tag T] [--since D] [--until D]      # no server needed
    python -m app search "query" [-k N] [--json] [--tag T] [--since D] [--until D]
    python -m app feedback export > feedback.jsonl        # the 👍/👎 given in the page, as JSON lines
    python -m app feedback delete ID... | --all           # remove some feedback, or all of it
    python -m app.mcp [--index DIR]                       # the notes as MCP tools over stdio
    uvicorn app.main:app                                  # the same app as `serve`, settings from NOTES_*

`ask` exits 0 when answered, 3 when the notes do not cover the question, 2 on a usage error and 1 when
there is no index (run `python -m ingest`).
"""
from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from pathlib import Path

from app.filters import Filters
from app.schemas import trimmed
from app.settings import LOOPBACK_HOSTS, Settings


def _date(value: str) -> dt.date:
    from app.schemas import iso_date

    try:
        return iso_date(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r}: {exc}") from None


def _count(low: int, high: int):  # -> a type for argparse
    def parse(value: str) -> int:
        if not value.isdigit() or not low <= int(value) <= high:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number from {low} to {high}")
        return int(value)

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", metavar="{serve,ask,search,feedback}")
    serve = sub.add_parser("serve", help="serve the API and the chat page (the default)")
    ask = sub.add_parser("ask", help="answer a question from the notes, with numbered citations")
    ask.add_argument("question")
    ask.add_argument("--top-k", type=_count(1, 20), default=5, metavar="N", help="passages, 1..20 (default 5)")
    search = sub.add_parser("search", help="list the passages that match a query, best first")
    search.add_argument("query")
    search.add_argument("-k", type=_count(1, 50), default=10, metavar="N", help="passages, 1..50 (default 10)")
    feedback = sub.add_parser("feedback", help="export or delete the feedback given on answers")
    action = feedback.add_subparsers(dest="action", required=True, metavar="{export,delete}")
    action.add_parser("export", help="print every feedback record as a JSON line")
    delete = action.add_parser("delete", help="remove feedback records by id, or all of them")
    delete.add_argument("ids", nargs="*", metavar="ID", help="record ids, as `export` shows them")
    delete.add_argument("--all", action="store_true", help="remove every record")
    feedback.add_argument("--file", type=Path, help="the feedback file (NOTES_FEEDBACK_FILE, default indexes/feedback.jsonl)")
    # Options given before the command too (`python -m app --index X`), as before there were commands;
    # SUPPRESS keeps a command's unset option from overwriting the value given before it.
    for p in (parser, serve, ask, search, feedback):
        default = None if p is parser else argparse.SUPPRESS
        p.add_argument("--index", type=Path, default=default, help="index folder (NOTES_INDEX_DIR, default indexes/)")
    for p in (parser, serve):
        default = None if p is parser else argparse.SUPPRESS
        p.add_argument("--host", default=default, help="address to listen on (NOTES_HOST, default 127.0.0.1)")
        p.add_argument("--port", type=int, default=default, help="port (NOTES_PORT, default 8000)")
        p.add_argument("--watch", action="store_true", default=False if p is parser else argparse.SUPPRESS,
                       help="also watch the corpus and ingest every change (what `make run` does)")
        p.add_argument("--corpus", type=Path, default=default, help="corpus to watch (NOTES_CORPUS_DIR, default corpus/)")
    for p in (ask, search):
        p.add_argument("--json", action="store_true", help="print the HTTP response body instead")
        p.add_argument("--tag", action="append", default=[], help="only posts with this tag (repeatable: any of them)")
        p.add_argument("--since", type=_date, help="only posts dated on or after YYYY-MM-DD")
        p.add_argument("--until", type=_date, help="only posts dated on or before YYYY-MM-DD")
    return parser


def serve(settings: Settings, watch: bool, corpus: Path | None) -> int:
    import uvicorn

    from app.main import create_app
    from ingest.settings import IngestSettings

    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")
    if not settings.loopback and settings.allowed_hosts == LOOPBACK_HOSTS:
        logging.getLogger("app").warning(
            "listening on %s, but only requests addressed to %s are answered; set NOTES_ALLOWED_HOSTS "
            "to the names clients use, and NOTES_API_KEY", settings.host, ", ".join(LOOPBACK_HOSTS),
        )
    watched = None
    if watch:
        overrides = {"index_dir": settings.index_dir, **({"corpus_dir": corpus} if corpus else {})}
        watched = IngestSettings(**overrides)
    app = create_app(settings, watch=watched)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    command = args.command or "serve"
    overrides = {"index_dir": args.index, "host": getattr(args, "host", None), "port": getattr(args, "port", None)}
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    if command == "serve":
        return serve(settings, args.watch, args.corpus)

    from app import cli

    if command == "feedback":
        if args.file:
            settings = settings.model_copy(update={"feedback_file": args.file})
        if args.action == "export":
            return cli.feedback_export(settings)
        if bool(args.ids) == args.all:
            parser.error("feedback delete takes record ids or --all, not both or neither")
        return cli.feedback_delete(settings, None if args.all else set(args.ids))
    text = trimmed(args.question if command == "ask" else args.query)
    if not 1 <= len(text) <= 2000:
        parser.error(f"the {'question' if command == 'ask' else 'query'} must be 1 to 2000 characters")
    if args.since and args.until and args.since > args.until:
        parser.error(f"--since {args.since} is after --until {args.until}")
    filters = Filters(tuple(args.tag), args.since, args.until)
    if command == "ask":
        return cli.ask(settings, text, args.top_k, filters, args.json)
    return cli.search(settings, text, args.k, filters, args.json)


if __name__ == "__main__":
    sys.exit(main())
