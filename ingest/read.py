"""Read corpus files into posts: Markdown (with optional YAML front matter) -> Post."""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from ingest.errors import BadPost

POST_SUFFIXES = {".md", ".markdown"}
# A user's own English-Chinese term pairs live beside the posts (ingest/bridge.py); not a post, not skipped.
BRIDGE_FILE = "bridge.tsv"
_ID_RE = re.compile(r"^[\w][\w.\-]{0,127}$")
_HEADING_RE = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.M)
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


def valid_id(post_id: str) -> bool:
    return bool(_ID_RE.match(post_id)) and ".." not in post_id


def first_sentence(text: str, limit: int = 60) -> str:
    """The first heading, else the first sentence, cut at `limit` characters."""
    heading = _HEADING_RE.search(text)
    if heading:
        return heading.group(1).strip()[:limit]
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
    try:
        meta = yaml.safe_load(block) if block.strip() else {}
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 2}" if where else ""
        raise BadPost(f"broken front matter{line}: {getattr(exc, 'problem', None) or exc}") from None
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
        title=_as_text(meta, "title") or first_sentence(body),
        text=body,
        date=_as_text(meta, "date"),
        tags=_as_tags(meta),
        url=_as_text(meta, "url"),
        source=name,
        hash=hashlib.sha256(raw).hexdigest(),
    )


def read_post(path: Path, max_bytes: int) -> Post:
    size = path.stat().st_size
    if size > max_bytes:
        raise BadPost(f"file too large ({size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB)")
    return parse_post(path.read_bytes(), path.name)


def read_corpus(corpus_dir: Path, max_bytes: int) -> tuple[list[Post], list[Skipped]]:
    """Every post under `corpus_dir`, and every file that was skipped with its reason."""
    posts: dict[str, Post] = {}
    skipped: list[Skipped] = []
    for path in sorted(p for p in corpus_dir.rglob("*") if p.is_file() or p.is_symlink()):
        rel = path.relative_to(corpus_dir).as_posix()
        if any(part.startswith(".") for part in path.relative_to(corpus_dir).parts) or rel == BRIDGE_FILE:
            continue
        if path.suffix.lower() not in POST_SUFFIXES:
            skipped.append(Skipped(rel, f"not a Markdown file (expected {', '.join(sorted(POST_SUFFIXES))})"))
            continue
        try:
            if not path.is_file():
                raise BadPost("not a regular file")
            post = read_post(path, max_bytes)
        except BadPost as exc:
            skipped.append(Skipped(rel, str(exc)))
            continue
        except OSError as exc:
            skipped.append(Skipped(rel, f"cannot be read: {exc.strerror or exc}"))
            continue
        post = dataclasses.replace(post, source=rel)
        other = posts.get(post.post_id)
        if other is not None:
            # The file named after the id keeps it; otherwise the first in name order does.
            if path.stem == post.post_id and Path(other.source).stem != post.post_id:
                post, other = other, post
                posts[other.post_id] = other
            skipped.append(Skipped(post.source, f"duplicate post id {post.post_id!r} (also in {other.source})"))
            continue
        posts[post.post_id] = post
    return list(posts.values()), skipped
