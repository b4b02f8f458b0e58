"""app/container.py: who the container runs as, the index volume handed over, and the one-line refusals.

`python -m app.container CMD` runs the start-up checks, then CMD as the chosen user: the tests run `id -u` that
way, on folders of their own, as the container starts: as root. Those tests, and the read-only mount, need root
and are skipped without it (`make test` runs as root on the project's machines). A container started with
`--user` is a process that is not root from the start: a forked child that drops root, or the tests' own user.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from app.container import UID, Refused, become, check, choose_user
from ingest.settings import IngestSettings

ROOT = Path(__file__).resolve().parents[1]
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="the container starts as root; these tests need it")


def test_started_with_user_runs_as_that_user() -> None:
    assert choose_user(1000, 100, (0, 0), (UID, UID)) == (1000, 100, False)
    assert choose_user(1000, 100, (4242, 4242), (UID, UID)) == (1000, 100, False)


def test_started_as_root_runs_as_the_index_owner() -> None:
    assert choose_user(0, 0, (1000, 100), (UID, UID)) == (1000, 100, False)


def test_started_as_root_hands_a_root_owned_index_to_notes() -> None:
    assert choose_user(0, 0, (0, 0), (UID, UID)) == (UID, UID, True)


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def volumes() -> Iterator[tuple[Path, Path]]:
    """(notes, index) in a folder any user can reach: pytest's own tmp_path is root's alone."""
    top = Path(tempfile.mkdtemp(prefix="container-"))
    top.chmod(0o755)
    notes, index = top / "corpus", top / "indexes"
    notes.mkdir()
    (notes / "a.md").write_text("# A\n\nA note.\n", "utf-8")
    index.mkdir()
    try:
        yield notes, index
    finally:
        for folder in (notes, index):  # a test may have taken its permissions away
            folder.chmod(0o755)
        shutil.rmtree(top)


def start(notes: Path, index: Path, *command: str, read_only: bool = False) -> Run:
    """`python -m app.container CMD` with these volumes, the index mounted read-only in a mount namespace of its
    own if asked (like `-v …:/srv/notes/indexes:ro`)."""
    env = {**os.environ, "NOTES_CORPUS_DIR": str(notes), "NOTES_INDEX_DIR": str(index), "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "app.container", *command]
    if read_only:
        argv = ["unshare", "--mount", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"', str(index), *argv]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    return Run(done.returncode, done.stdout, done.stderr)


def refusal(notes: Path, index: Path) -> tuple[int, str]:
    """check() as a container started with `--user` runs it: in a child process that is not root (uid 10001
    when the tests run as root), with everything already imported. (uid, the message of its refusal or "")."""
    uid = UID if os.geteuid() == 0 else os.geteuid()
    settings = IngestSettings(corpus_dir=notes, index_dir=index)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running pytest's clean-up
        message = ""
        try:
            become(uid, uid)
            check(settings)
        except Refused as exc:
            message = str(exc)
        except BaseException as exc:  # reported, so that the test fails
            message = f"unexpected {exc!r}"
        finally:
            os.write(write, message.encode())
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as got:
        message = got.read()
    os.waitpid(pid, 0)
    return uid, message


def test_refuses_an_index_it_cannot_write(volumes: tuple[Path, Path]) -> None:
    notes, index = volumes
    index.chmod(0o555)
    uid, message = refusal(notes, index)
    assert message == (
        f"uid {uid} cannot write the index in {index} (owner uid {index.stat().st_uid}, dr-xr-xr-x); run "
        f"`chown -R {uid} <your index folder>` on the host, or start the container without --user and it hands "
        "the folder over"
    )


def test_refuses_notes_it_cannot_read(volumes: tuple[Path, Path]) -> None:
    notes, index = volumes
    notes.chmod(0o000)
    index.chmod(0o777)
    uid, message = refusal(notes, index)
    assert message == (
        f"uid {uid} cannot read the notes in {notes}; run `chmod -R a+rX <your notes folder>` on the host, "
        "or start the container with --user set to the notes' owner"
    )


def test_accepts_what_it_can_write_and_read(volumes: tuple[Path, Path]) -> None:
    notes, index = volumes
    index.chmod(0o777)
    assert refusal(notes, index)[1] == ""


@as_root
def test_a_named_volume_and_private_notes_are_refused_in_one_line(volumes: tuple[Path, Path]) -> None:
    """A root-owned index (a named volume) is handed to `notes`, which then cannot read notes only root reads."""
    notes, index = volumes
    notes.chmod(0o700)
    run = start(notes, index, "id", "-u")
    assert (run.code, run.out) == (1, "")
    assert run.err == (
        f"{index} belongs to root: handing it to uid {UID}\n"
        f"error: uid {UID} cannot read the notes in {notes}; run `chmod -R a+rX <your notes folder>` on the host, "
        "or start the container with --user set to the notes' owner\n"
    )


@as_root
def test_runs_as_the_owner_of_a_host_folder(volumes: tuple[Path, Path]) -> None:
    notes, index = volumes
    (index / "feedback.jsonl").write_text("{}\n", "utf-8")
    os.chown(index, 4242, 4243)
    run = start(notes, index, "sh", "-c", "id -u; id -g; id -G")
    assert (run.code, run.out, run.err) == (0, "4242\n4243\n4243\n", "")
    # Nothing was changed: the file stays root's, as the host made it.
    assert (index / "feedback.jsonl").stat().st_uid == 0


@as_root
def test_hands_a_root_owned_index_to_notes(volumes: tuple[Path, Path]) -> None:
    notes, index = volumes
    (index / "builds").mkdir()
    (index / "builds" / "manifest.json").write_text("{}", "utf-8")
    outside = index.parent / "outside"
    outside.write_text("not the index's", "utf-8")
    (index / "link").symlink_to(outside)
    run = start(notes, index, "id", "-u")
    assert (run.code, run.out) == (0, f"{UID}\n")
    assert run.err == f"{index} belongs to root: handing it to uid {UID}\n"
    for path in (index, index / "builds", index / "builds" / "manifest.json"):
        assert (path.stat().st_uid, path.stat().st_gid) == (UID, UID)
    # The link itself is handed over; what it points to is not.
    assert (index / "link").lstat().st_uid == UID and outside.stat().st_uid == 0
    # The notes are left alone: they may be read-only.
    assert notes.stat().st_uid == 0 and (notes / "a.md").stat().st_uid == 0


def _can_mount() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    with tempfile.TemporaryDirectory() as folder:
        probe = subprocess.run(["unshare", "--mount", "mount", "--bind", "-o", "ro", folder, folder], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_mount(), reason="needs root and a mount namespace")
@pytest.mark.parametrize("owner", [0, UID], ids=["root-owned", "handed-over"])
def test_refuses_a_read_only_index(volumes: tuple[Path, Path], owner: int) -> None:
    notes, index = volumes
    os.chown(index, owner, owner)
    run = start(notes, index, "id", "-u", read_only=True)
    handing = f"{index} belongs to root: handing it to uid {UID}\n" if owner == 0 else ""
    assert (run.code, run.out) == (1, "")
    assert run.err == handing + (
        f"error: the index volume {index} is mounted read-only; mount it read-write (the notes may stay :ro)\n"
    )
