"""Import "latest updates" feed snapshots: snapshot text -> deduplicated Markdown posts in the corpus."""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from ingest.errors import BadPost, NotesError
from ingest.read import first_sentence, split_front_matter

HEADER = "LATEST UPDATES"
FEED_SOURCE = "feed"
_DATE_RE = re.compile(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}$")
_PAGINATION_RE = re.compile(r"^(?:\d+|[«»‹›<>…]|上一页|下一页|prev(?:ious)?|next|older|newer)(?:\s+(?:\d+|[«»‹›<>…]|上一页|下一页|prev(?:ious)?|next|older|newer))*$", re.I)
_ELLIPSIS_RE = re.compile(r"\s*(?:\.{3,}|…+)\s*$")
_SPACE_RE = re.compile(r"\s+")


@dataclass(frozen=True)
class Excerpt:
    text: str
    date: str | None = None
    category: str | None = None


def _is_category(line: str) -> bool:
    """A short label such as `Python` or `机器学习`: no sentence in it, and not an excerpt."""
    return len(line) <= 24 and not re.search(r"[。！？!?,，:：;；()（）]|\.\.\.|…", line) and len(line.split()) <= 3


def parse_snapshot(text: str) -> list[Excerpt]:
    """The post excerpts of one snapshot, best first; chrome lines become the next post's date or category."""
    lines = text.replace("\r\n", "\n").split("\n")
    try:
        start = next(i for i, line in enumerate(lines) if line.strip().upper() == HEADER) + 1
    except StopIteration:
        raise BadPost(f"no {HEADER!r} header; is this a feed snapshot?") from None
    excerpts: list[Excerpt] = []
    date = category = None
    for line in lines[start:]:
        line = line.strip()
        if not line or _PAGINATION_RE.match(line):
            continue
        if _DATE_RE.match(line):
            date = line.replace("/", "-").replace(".", "-")
        elif _is_category(line):
            category = line
        else:
            excerpts.append(Excerpt(_ELLIPSIS_RE.sub("", line), date, category))
            date = category = None
    if (date or category) and excerpts:
        # Chrome after the last excerpt can only belong to it.
        last = excerpts[-1]
        excerpts[-1] = replace(last, date=last.date or date, category=last.category or category)
    return excerpts


def _norm(text: str) -> str:
    return _SPACE_RE.sub(" ", text).strip()


def same_post(a: str, b: str) -> bool:
    """Two excerpts of one post: the shorter is a prefix of the longer, spacing aside."""
    a, b = _norm(a), _norm(b)
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    return long_.startswith(short)


def merge(excerpts: list[Excerpt]) -> list[Excerpt]:
    """One excerpt per post: the longest text, with the first date and category seen."""
    merged: list[Excerpt] = []
    for ex in excerpts:
        for i, kept in enumerate(merged):
            if same_post(kept.text, ex.text):
                longer = ex.text if len(_norm(ex.text)) > len(_norm(kept.text)) else kept.text
                merged[i] = Excerpt(longer, kept.date or ex.date, kept.category or ex.category)
                break
        else:
            merged.append(ex)
    return merged


def post_id_for(text: str) -> str:
    """A stable id: a few English words of the opening, plus a hash of its first characters."""
    opening = _norm(text)
    words = re.findall(r"[A-Za-z][A-Za-z0-9]{2,}", first_sentence(opening, 40))[:4]
    digest = hashlib.sha1(opening[:24].encode("utf-8")).hexdigest()[:6]
    return "-".join([w.lower() for w in words] + [digest]) if words else f"post-{digest}"


def render(post_id: str, ex: Excerpt) -> str:
    meta: dict = {"id": post_id, "title": first_sentence(ex.text, 40)}
    if ex.date:
        meta["date"] = ex.date
    if ex.category:
        meta["tags"] = [ex.category]
    meta["source"] = FEED_SOURCE
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False, width=1000)
    return f"---\n{front}---\n\n{ex.text}\n"


def _existing(corpus_dir: Path) -> dict[str, Excerpt]:
    """Posts an earlier import wrote, by id, so a re-import updates them in place."""
    found: dict[str, Excerpt] = {}
    for path in sorted(corpus_dir.glob("*.md")):
        if not _regular(path):
            continue
        try:
            meta, body = split_front_matter(path.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, BadPost):
            continue
        if meta.get("source") == FEED_SOURCE and meta.get("id") == path.stem:
            tags = meta.get("tags") or [None]
            found[path.stem] = Excerpt(body.strip(), meta.get("date") and str(meta["date"]), tags[0])
    return found


def _regular(path: Path) -> bool:
    """A regular file, not a symlink: reading a FIFO would block, a symlink may lead out of the corpus."""
    return path.is_file() and not path.is_symlink()


def _write_atomic(path: Path, content: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(content, "utf-8")
    os.replace(tmp, path)


def import_snapshots(files: list[Path], corpus_dir: Path) -> dict[str, int]:
    """Merge snapshots into `corpus_dir`; returns counts of new, updated and unchanged posts."""
    excerpts: list[Excerpt] = []
    for f in files:
        try:
            excerpts += parse_snapshot(f.read_text("utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise NotesError(f"Cannot read snapshot {f}: {exc}") from None
        except BadPost as exc:
            raise NotesError(f"{f}: {exc}") from None
    corpus_dir.mkdir(parents=True, exist_ok=True)
    existing = _existing(corpus_dir)
    counts = {"new": 0, "updated": 0, "unchanged": 0}
    for ex in merge(excerpts):
        post_id = next((pid for pid, old in existing.items() if same_post(old.text, ex.text)), None)
        if post_id is None:
            post_id = post_id_for(ex.text)
            existing[post_id] = ex
            counts["new"] += 1
        else:
            old = existing[post_id]
            ex = merge([old, ex])[0]
            counts["updated" if ex != old else "unchanged"] += 1
            existing[post_id] = ex
        path = corpus_dir / f"{post_id}.md"
        content = render(post_id, ex)
        if not _regular(path) or path.read_text("utf-8") != content:
            _write_atomic(path, content)
    return counts
