"""Build or update the search index from the corpus.

    python -m ingest [--corpus DIR] [--index DIR] [--full] [--strict]
    python -m ingest --watch                              # then again after every change, until Ctrl-C
    python -m ingest import SNAPSHOT...   [--corpus DIR]   # feed snapshots -> corpus/*.md
    python -m ingest terms                [--corpus DIR]   # candidate user-dictionary terms
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ingest.errors import NotesError
from ingest.settings import IngestSettings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ingest", description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, help="folder of Markdown posts (NOTES_CORPUS_DIR, default corpus/)")
    parser.add_argument("--index", type=Path, help="index folder (NOTES_INDEX_DIR, default indexes/)")
    sub = parser.add_subparsers(dest="command")
    build = sub.add_parser("build", help="build or update the index (the default)")
    imp = sub.add_parser("import", help="import feed snapshots into the corpus as Markdown posts")
    imp.add_argument("files", nargs="+", type=Path)
    sub.add_parser("terms", help="print candidate terms for ingest/data/userdict.txt")
    for p in (parser, build):
        p.add_argument("--full", action="store_true", help="re-embed every chunk instead of reusing vectors")
        p.add_argument("--strict", action="store_true", help="exit 1 when any file was skipped")
        p.add_argument("--watch", action="store_true", help="keep watching the corpus and ingest after each change")
    # The watcher's warm child: ready first, then one ingest when a line arrives on stdin (ingest/watch.py).
    parser.add_argument("--armed", action="store_true", help=argparse.SUPPRESS)
    return parser


def _watch(settings: IngestSettings) -> int:
    import logging
    import signal

    from ingest.watch import describe, watch

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    # `kill`, a service manager or `docker stop` end the watch as Ctrl-C does, children included.
    signal.signal(signal.SIGTERM, stop)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    log = logging.getLogger("ingest.watch")
    log.info("watching %s/ (Ctrl-C stops)", settings.corpus_dir)
    try:
        watch(settings, on_run=lambda run: (log.info if run.ok else log.warning)(describe(run)))
    except KeyboardInterrupt:
        log.info("stopped watching")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides = {k: v for k, v in {"corpus_dir": args.corpus, "index_dir": args.index}.items() if v is not None}
    settings = IngestSettings(**overrides)
    try:
        if args.command == "import":
            from ingest.feed import import_snapshots

            counts = import_snapshots(args.files, settings.corpus_dir)
            print(f"{sum(counts.values())} posts from {len(args.files)} snapshots into {settings.corpus_dir}/: "
                  f"{counts['new']} new, {counts['updated']} updated, {counts['unchanged']} unchanged")
        elif args.command == "terms":
            from collections import Counter

            from ingest.bridge import bracket_pairs, read_notes
            from ingest.read import read_corpus
            from ingest.segment import words

            posts, _ = read_corpus(settings.corpus_dir, settings.max_post_bytes)
            texts, _ = read_notes(p.text for p in posts)
            pairs = Counter(pair for text, emphasis in texts for pair in bracket_pairs(text, words, emphasis))
            for (term, gloss), _ in pairs.most_common():
                print(f"{term} 20 n\t# {gloss}")
        elif args.armed:
            from ingest.watch import armed

            return armed(settings)
        elif args.watch:
            if args.full or args.strict:
                _parser().error("--watch runs incremental ingests; --full and --strict do not apply")
            return _watch(settings)
        else:
            from ingest.build import build

            print(build(settings, full=args.full, strict=args.strict))
    except NotesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
