"""Feedback on answers: records <-> one JSON-lines file, appended durably, read back, exported and deleted.

Every append is one `write` of one whole line to a file opened with O_APPEND, under an exclusive `flock`,
then `fsync`: concurrent writers, threads or processes, never interleave, and a record that `append`
returned for is on disk. A writer killed mid-line leaves at most that line torn; readers skip it, and the
next append starts on a fresh line so that the torn piece never swallows a good record.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import uuid
from pathlib import Path
from typing import Iterator


def record(body: dict, index_version: str | None) -> dict:
    """What is stored for one POST /feedback: the validated body, an id, the time and the build that answered."""
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return {"id": uuid.uuid4().hex[:12], "time": now, "index_version": index_version, **body}


@contextlib.contextmanager
def _locked(path: Path, flags: int) -> Iterator[int]:
    """The file open and exclusively locked; reopened if `delete` replaced it while we waited for the lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, flags | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                yield fd
                return
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)  # also releases the lock


def append(path: Path, rec: dict) -> None:
    """Append one record as one line, durably; see the module docstring."""
    line = json.dumps(rec, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    with _locked(path, os.O_RDWR | os.O_APPEND) as fd:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line  # a writer died mid-line: leave its torn piece on a line of its own
        os.write(fd, line)
        os.fsync(fd)


def read(path: Path) -> list[dict]:
    """Every whole record, oldest first; torn or foreign lines are skipped. No file means no feedback."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    records = []
    for line in data.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            records.append(rec)
    return records


def delete(path: Path, ids: set[str] | None = None) -> int:
    """Remove the records with these ids, or all of them; returns how many went. The file is replaced
    atomically (write, fsync, rename) under the writers' lock, so a crash leaves the old file or the new."""
    if not path.exists():
        return 0
    with _locked(path, os.O_RDWR):
        records = read(path)
        kept = [] if ids is None else [r for r in records if r.get("id") not in ids]
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(b"".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode() + b"\n" for r in kept))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return len(records) - len(kept)
