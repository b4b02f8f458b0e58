"""Read corpus files into posts: Markdown (with optional YAML front matter) -> Post."""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ingest.blocks import HEADING, PROSE, blocks
from ingest.errors import BadPost

POST_SUFFIXES = {".md", ".markdown"}
# Front matter is a handful of flat fields; these bounds leave room for any real one.
MAX_FRONT_MATTER_CHARS = 64 * 1024
MAX_FRONT_MATTER_DEPTH = 8
# A user's own English-Chinese term pairs live beside the posts (ingest/bridge.py); not a post, not skipped.
BRIDGE_FILE = "bridge.tsv"
_ID_RE = re.compile(r"^[\w][\w.\-]{0,127}$")
# "1. " and "128. " number a list item; they end no sentence.
_SENTENCE_END_RE = re.compile(r"[。！？!?；;:：\n]|(?<![0-9])[.](?=\s|$)")
# C0 controls except tab and newline, DEL and C1 controls: never part of a note.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Post:
    post_id: str
    title: str
    text: str
    date: str | None = None
    tags: tuple[str, ...] = ()
    url: str | None = None
    source: str = ""
    # Hash of the file's bytes: an unchanged file is never re-chunked or re-embedded.
    hash: str = ""


@dataclass(frozen=True)
class Skipped:
    source: str
    reason: str


_FILE_KINDS = {
    stat.S_IFDIR: "a folder", stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
}


def valid_id(post_id: str) -> bool:
    return bool(_ID_RE.match(post_id)) and ".." not in post_id


def title_of(markdown: str, limit: int = 60) -> str:
    """A note's title when its front matter gives none: its first heading, else its first sentence."""
    found = blocks(markdown)
    heading = next((b.text for b in found if b.kind == HEADING), None)
    if heading:
        return heading[:limit]
    return first_sentence(next((b.text for b in found if b.kind in PROSE), "") or markdown, limit)


def first_sentence(text: str, limit: int = 60) -> str:
    """The first sentence of plain text, cut at `limit` characters."""
    text = text.strip()
    # A comma ends a title too, once it is long enough to say something.
    end = _SENTENCE_END_RE.search(text) or None
    comma = re.compile(r"[,，]").search(text, 8)
    if comma and (not end or comma.start() < end.start()):
        end = comma
    head = text[: end.start() + 1] if end else text
    head = head.rstrip(":：;；,， \n")
    if len(head) > limit:
        cut = head[:limit]
        # Do not end in the middle of an English word.
        cut = re.sub(r"[A-Za-z0-9_]+$", "", cut) if re.match(r"[A-Za-z0-9_]", head[limit]) else cut
        head = (cut.rstrip() or head[:limit]) + "…"
    return head


class _FrontMatterLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases and with bounded nesting.

    Aliases are what makes a "billion laughs" bomb (a few lines that expand to gigabytes), and deep
    nesting is what makes the composer recurse until Python gives up; front matter needs neither.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        line = self.peek_event().start_mark.line + 2  # +1 for 1-based, +1 for the opening '---'
        if self.check_event(yaml.AliasEvent):
            raise BadPost(f"front matter uses a YAML alias at line {line}; aliases are not allowed")
        self._depth += 1
        if self._depth > MAX_FRONT_MATTER_DEPTH:
            raise BadPost(f"front matter nested deeper than {MAX_FRONT_MATTER_DEPTH} levels at line {line}")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _load_yaml(block: str) -> object:
    if len(block) > MAX_FRONT_MATTER_CHARS:
        raise BadPost(f"front matter longer than {MAX_FRONT_MATTER_CHARS // 1024} KB")
    loader = _FrontMatterLoader(block)
    try:
        return loader.get_single_data()
    except BadPost:
        raise
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 2}" if where else ""
        raise BadPost(f"broken front matter{line}: {getattr(exc, 'problem', None) or exc}") from None
    except Exception as exc:
        # PyYAML's constructors let plain errors through on hostile values: ValueError for a
        # 5,000-digit integer or a 13th month, AttributeError for `!!timestamp nonsense`.
        raise BadPost(f"broken front matter: {type(exc).__name__}: {exc}") from None
    finally:
        loader.dispose()


def split_front_matter(text: str) -> tuple[dict, str]:
    """YAML front matter between `---` lines, and the body after it."""
    if not text.startswith("---"):
        return {}, text
    first_nl = text.find("\n")
    if first_nl == -1 or text[:first_nl].strip() != "---":
        return {}, text
    end = re.search(r"^(---|\.\.\.)\s*$", text[first_nl + 1 :], re.M)
    if not end:
        raise BadPost("front matter opened with '---' is never closed")
    block = text[first_nl + 1 : first_nl + 1 + end.start()]
    body = text[first_nl + 1 + end.end() :]
    meta = _load_yaml(block) if block.strip() else {}
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise BadPost("front matter is not a mapping of keys to values")
    return meta, body


def _as_text(meta: dict, key: str) -> str | None:
    value = meta.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (str, int, float)):
        return str(value).strip()
    raise BadPost(f"front matter field {key!r} must be a single value")


def _as_tags(meta: dict) -> tuple[str, ...]:
    tags = meta.get("tags") or meta.get("categories") or []
    if isinstance(tags, str):
        tags = [t for t in re.split(r"[,，]", tags)]
    if not isinstance(tags, list):
        raise BadPost("front matter field 'tags' must be a list")
    if not all(isinstance(t, (str, int, float, dt.date)) for t in tags):
        raise BadPost("front matter field 'tags' must be a list of words")
    return tuple(str(t).strip() for t in tags if str(t).strip())


def parse_post(raw: bytes, name: str) -> Post:
    """One post from a file's bytes; `name` is the file name, the default id."""
    if not raw.strip():
        raise BadPost("empty file")
    if b"\x00" in raw[:8192]:
        raise BadPost("binary file, not Markdown text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadPost(f"not UTF-8 text (invalid byte at offset {exc.start})") from None
    text = _CONTROL_RE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    meta, body = split_front_matter(text)
    body = body.strip()
    if not body:
        raise BadPost("no text after the front matter")
    post_id = _as_text(meta, "id") or Path(name).stem
    if not valid_id(post_id):
        raise BadPost(f"invalid post id {post_id!r}: use letters, digits, '_', '-' or '.'")
    return Post(
        post_id=post_id,
        title=_as_text(meta, "title") or title_of(body),
        text=body,
        date=_as_text(meta, "date"),
        tags=_as_tags(meta),
        url=_as_text(meta, "url"),
        source=name,
        hash=hashlib.sha256(raw).hexdigest(),
    )


def _kind(mode: int) -> str:
    return f"not a regular file ({_FILE_KINDS.get(stat.S_IFMT(mode), 'a special file')})"


def regular_file(path: Path, root: Path) -> Path:
    """Where `path` really is: a regular file inside `root`, once a symlink is resolved; else BadPost.

    A symlink may point anywhere, so `corpus/leak.md -> ~/.ssh/id_rsa` would make a secret a note.
    """
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode):
        try:
            target = path.resolve(strict=True)
        except FileNotFoundError:
            raise BadPost("broken symlink") from None
        except RuntimeError:  # how Python 3.11 reports a symlink loop
            raise BadPost("symlink loop") from None
        if not target.is_relative_to(root):
            raise BadPost("symlink to a file outside the corpus folder")
        path, mode = target, target.stat().st_mode
    if not stat.S_ISREG(mode):
        raise BadPost(_kind(mode))
    return path


def read_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of the regular file `path`, at most `max_bytes` of them, else BadPost."""
    # O_NONBLOCK: opening a FIFO for reading waits for a writer, forever; O_NOFOLLOW: a file swapped
    # for a symlink since it was checked fails here. fstat then describes exactly what was opened.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BadPost(_kind(st.st_mode))
        if st.st_size > max_bytes:
            raise BadPost(f"file too large ({st.st_size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB)")
        raw = f.read(max_bytes + 1)
    if len(raw) > max_bytes:  # it grew while being read
        raise BadPost(f"file too large (over the limit of {max_bytes / 1e6:.1f} MB)")
    return raw


def _printable(text: str, limit: int = 200) -> str:
    """One short line without control characters: a file name or a reason cannot rewrite the terminal."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in " ".join(text.split("\n")))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_corpus(corpus_dir: Path, max_bytes: int) -> tuple[list[Post], list[Skipped]]:
    """Every post under `corpus_dir`, and every other file with the reason it was skipped."""
    root = corpus_dir.resolve()
    posts: dict[str, Post] = {}
    skipped: list[Skipped] = []
    for path in sorted(corpus_dir.rglob("*")):
        rel = path.relative_to(corpus_dir)
        if any(part.startswith(".") for part in rel.parts) or (path.is_dir() and not path.is_symlink()):
            continue
        if rel.as_posix() == BRIDGE_FILE:
            continue
        try:
            real = regular_file(path, root)
            if path.suffix.lower() not in POST_SUFFIXES:
                raise BadPost(f"not a Markdown file (expected {', '.join(sorted(POST_SUFFIXES))})")
            post = parse_post(read_file(real, max_bytes), path.name)
        except BadPost as exc:
            skipped.append(Skipped(_printable(rel.as_posix()), _printable(str(exc))))
            continue
        except OSError as exc:
            skipped.append(Skipped(_printable(rel.as_posix()), _printable(f"cannot be read: {exc.strerror or exc}")))
            continue
        post = dataclasses.replace(post, source=rel.as_posix())
        other = posts.get(post.post_id)
        if other is not None:
            # The file named after the id keeps it; otherwise the first in name order does.
            if path.stem == post.post_id and Path(other.source).stem != post.post_id:
                post, other = other, post
                posts[other.post_id] = other
            skipped.append(Skipped(_printable(post.source), f"duplicate post id {post.post_id!r} (also in {_printable(other.source)})"))
            continue
        posts[post.post_id] = post
    return list(posts.values()), skipped
