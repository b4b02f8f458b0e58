"""Serve the notes assistant.

    python -m app [--index DIR] [--host H] [--port P]     # default http://127.0.0.1:8000
    uvicorn app.main:app                                  # the same app, settings from NOTES_*
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import uvicorn

from app.main import create_app
from app.settings import LOOPBACK_HOSTS, Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__.split("\n")[1].strip())
    parser.add_argument("--index", type=Path, help="index folder (NOTES_INDEX_DIR, default indexes/)")
    parser.add_argument("--host", help="address to listen on (NOTES_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (NOTES_PORT, default 8000)")
    args = parser.parse_args(argv)
    overrides = {"index_dir": args.index, "host": args.host, "port": args.port}
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")
    if settings.host not in ("127.0.0.1", "localhost", "::1") and settings.allowed_hosts == LOOPBACK_HOSTS:
        logging.getLogger("app").warning(
            "listening on %s, but only requests addressed to %s are answered; set NOTES_ALLOWED_HOSTS "
            "to the names clients use, and NOTES_API_KEY", settings.host, ", ".join(LOOPBACK_HOSTS),
        )
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
