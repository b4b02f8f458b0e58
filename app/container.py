"""The container's start-up: the two volumes and who started it -> one user, the index up to date, then the server.

    python -m app.container [serve]     # the image's default: ingest, then `python -m app --watch`
    python -m app.container CMD ARG...  # any other command, as the same user: python -m app ask "…"

Started as root (the image's default), it runs as the owner of the index volume, so that a host folder's files
stay its owner's; an index volume that root owns (a named volume, a folder Docker made) is handed to `notes`
(uid 10001) first. Nothing else is changed: the notes may be read-only. Started with `--user`, it runs as
that user, and stops with one line that says what to run if it cannot write the index or read the notes.

`serve` then brings the index up to date with the notes before anything is served (an index built by another
model is embedded again, never served), and becomes `python -m app --watch`: the server, and the watcher that
ingests each saved note.
"""
from __future__ import annotations

import errno
import os
import pwd
import signal
import stat
import sys
from pathlib import Path

from app.settings import Settings
from ingest.errors import EmptyCorpus, NotesError
from ingest.settings import IngestSettings

USER = "notes"
# The image's user (Dockerfile); its uid where the account is missing, as when run outside the image.
UID = 10001


class Refused(Exception):
    """Why the container cannot start; the message is one line that says what to run."""


def notes_ids() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(USER)
        return entry.pw_uid, entry.pw_gid
    except KeyError:
        return UID, UID


def choose_user(euid: int, egid: int, owner: tuple[int, int], notes: tuple[int, int]) -> tuple[int, int, bool]:
    """(uid, gid, hand the index over first) for a process started as euid:egid, with an index owned by `owner`."""
    if euid != 0:
        return euid, egid, False
    if owner[0] != 0:
        return owner[0], owner[1], False
    return notes[0], notes[1], True


def read_only(index_dir: Path) -> Refused:
    return Refused(f"the index volume {index_dir} is mounted read-only; mount it read-write (the notes may stay :ro)")


def hand_over(index_dir: Path, uid: int, gid: int) -> None:
    """chown -R of the index folder to uid:gid, leaving what is already theirs; links are changed, not followed."""
    try:
        for folder, dirs, files in os.walk(index_dir):
            for path in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
                if os.lstat(path).st_uid != uid:
                    os.lchown(path, uid, gid)
    except OSError as exc:
        if exc.errno == errno.EROFS:
            raise read_only(index_dir) from None
        raise Refused(
            f"cannot hand {index_dir} to uid {uid} ({exc.strerror}); run `chown -R {uid} <your index folder>` "
            "on the host"
        ) from None


def become(uid: int, gid: int) -> None:
    """Drop root for good: the index's user, no other groups, and a home it can write."""
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    # /root would be unreadable; nothing is kept in a home, but some libraries look for one.
    os.environ["HOME"] = "/tmp"


def check(settings: IngestSettings) -> None:
    """Refused, in one line, unless this process can write the index and read the notes."""
    uid, index, corpus = os.getuid(), settings.index_dir, settings.corpus_dir
    if index.is_dir() and os.statvfs(index).f_flag & os.ST_RDONLY:
        raise read_only(index)
    if not os.access(index, os.W_OK | os.X_OK):
        mode = stat.filemode(index.stat().st_mode) if index.exists() else "missing"
        owner = index.stat().st_uid if index.exists() else "-"
        raise Refused(
            f"uid {uid} cannot write the index in {index} (owner uid {owner}, {mode}); run `chown -R {uid} "
            f"<your index folder>` on the host, or start the container without --user and it hands the folder over"
        )
    if corpus.is_dir() and not os.access(corpus, os.R_OK | os.X_OK):
        raise Refused(
            f"uid {uid} cannot read the notes in {corpus}; run `chmod -R a+rX <your notes folder>` on the host, "
            "or start the container with --user set to the notes' owner"
        )


def ingest(settings: IngestSettings) -> None:
    """One incremental ingest before serving. A corpus that cannot be ingested is reported, not fatal: the server
    starts anyway (answering 503 until there is an index) and the watcher ingests the first note saved."""
    from ingest.build import build

    try:
        print(f"ingest: {build(settings)}", flush=True)
    except EmptyCorpus as exc:
        print(f"warning: {exc} Mount your notes on {settings.corpus_dir} "
              f"(-v /path/to/notes:{settings.corpus_dir}:ro); serving and watching meanwhile.", file=sys.stderr)
    except NotesError as exc:
        print(f"warning: {exc} Serving the index as it is, and watching.", file=sys.stderr)


def main(argv: list[str]) -> int:
    # As process 1 of a container, a signal with no handler is ignored: `docker stop` would wait out its
    # timeout during the first ingest. The server, once it runs, handles SIGTERM itself.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    settings = IngestSettings()
    command = argv or ["serve"]
    try:
        index = settings.index_dir
        if os.geteuid() == 0:
            index.mkdir(parents=True, exist_ok=True)
        owner = (index.stat().st_uid, index.stat().st_gid) if index.exists() else (0, 0)
        uid, gid, handing = choose_user(os.geteuid(), os.getegid(), owner, notes_ids())
        if handing:
            print(f"{index} belongs to root: handing it to uid {uid}", file=sys.stderr)
            hand_over(index, uid, gid)
        become(uid, gid)
        check(settings)
    except Refused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if command != ["serve"]:
        os.execvp(command[0], command)
    ingest(settings)
    serving = Settings()
    print(f"serving on {serving.host}:{serving.port} as uid {uid}; watching {settings.corpus_dir}", flush=True)
    os.execv(sys.executable, [sys.executable, "-m", "app", "--watch"])
    return 0  # not reached: the process is now the server


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
