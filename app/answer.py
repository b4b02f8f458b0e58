"""Extractive answers: a question -> 1 to 4 sentences of the notes, each cited, or an honest refusal."""
from __future__ import annotations

import re
from dataclasses import dataclass, field


from app.retrieve import Retrieval, Retriever
from ingest.segment import has_chinese

NOT_COVERED = {
    "zh": "我的笔记里没有涉及这个问题。",
    "en": "My notes don't cover this.",
}
MAX_SENTENCES = 4
MAX_CHARS = 480
MIN_CHARS = 100
# Sentences may come from the passages whose fused score is at least this share of the best one's.
PASSAGE_FLOOR = 0.75
# A sentence that asks something (often a post's title) does not answer anything.
_QUESTION_RE = re.compile(r"[?？]\s*$")
_CJK_END_RE = re.compile(r"(?:[\u3400-\u9fff][,.;:!?]?|[。！？；：，、）」』”])$")
_WORDY_RE = re.compile(r"[\u3400-\u9fffA-Za-z]")
# Stand-ins the blog export left for code and formulas: [代码], [公式], [Math].
_PLACEHOLDER_RE = re.compile(r"\[(?:代码|公式|图片|Math|Code|Formula|Image)\]", re.I)
_MARKER_RE = re.compile(r"\[(\d+)\]")


def quote(sentence: str) -> str:
    """A note's own "[3]" becomes "［3］", so that every [n] in an answer is one of our markers."""
    return _MARKER_RE.sub(r"［\1］", sentence)


def informative(sentence: str) -> bool:
    """Enough words to say something once the placeholders are gone."""
    return len(_WORDY_RE.findall(_PLACEHOLDER_RE.sub("", sentence))) >= 8 and len(_PLACEHOLDER_RE.findall(sentence)) <= 1


@dataclass(frozen=True)
class Cited:
    n: int
    post_id: str
    title: str
    url: str | None
    snippet: str
    score: float
    date: str | None


@dataclass
class Answer:
    answer: str
    found: bool
    citations: list[Cited]
    mode: str = "extractive"
    timings_ms: dict[str, float] = field(default_factory=dict)
    warning: str | None = None
    # Why a generative answer fell back to this extractive one, in a word (a metric label): "timeout", …
    fallback: str | None = None


def language(text: str) -> str:
    return "zh" if has_chinese(text) else "en"


def covered(r: Retrieval) -> bool:
    """Do the notes answer this? Decided at retrieval against this corpus's own calibration (app/abstain.py)."""
    return bool(r.hits) and r.covered


def _lexical(question_tokens: list[str], words: frozenset[str], idf: dict[str, float]) -> float:
    """Share of the question's idf mass found among a sentence's words."""
    total = sum(idf[t] for t in question_tokens)
    if total <= 0:
        return 0.0
    return sum(idf[t] for t in question_tokens if t in words) / total


def choose_sentences(retriever: Retriever, r: Retrieval, top_k: int) -> list[tuple[int, int]]:
    """(hit position, sentence id) of the 1-4 sentences that best answer the question, in reading order."""
    index = retriever.index
    idf = retriever.weights(r.tokens)
    candidates: list[tuple[float, int, int, int]] = []
    seen: set[int] = set()
    for pos, hit in enumerate(r.hits[:top_k]):
        prior = hit.score / max(r.hits[0].score, 1e-9)
        if (pos >= 3 or prior < PASSAGE_FLOOR) and candidates:
            break  # a clearly weaker passage adds noise, not answers; unless the strong ones had none (code, tables)
        for order, sid in enumerate(index.chunk_sentences[hit.chunk]):
            text = index.sentences[sid]
            if sid in seen or not informative(text) or _QUESTION_RE.search(text):
                continue
            seen.add(sid)
            sim = float(index.sentence_vectors[sid] @ r.vector)
            score = sim + 0.15 * _lexical(r.tokens, retriever.sentence_words(sid), idf) + 0.05 * prior
            candidates.append((score, pos, order, sid))
    if not candidates:
        return []
    candidates.sort(key=lambda c: -c[0])
    best = candidates[0][0]
    chosen: list[tuple[float, int, int, int]] = []
    length = 0
    for cand in candidates:
        score, _, _, sid = cand
        # Close runners-up join the best sentence; a short answer also takes the next ones in a wider band.
        band = 0.04 if length >= MIN_CHARS else 0.10
        if len(chosen) == MAX_SENTENCES or score < best - band:
            break
        text = index.sentences[sid]
        vec = index.sentence_vectors[sid]
        if any(float(vec @ index.sentence_vectors[c[3]]) > 0.95 for c in chosen):
            continue  # says what a chosen sentence already says
        if chosen and length + len(text) > MAX_CHARS:
            continue
        chosen.append(cand)
        length += len(text)
    top_passage = [c for c in candidates if c[1] == 0]
    if top_passage and not any(c[1] == 0 for c in chosen):
        # The best-ranked passage always speaks, so the first citation is the best match.
        chosen[-1] = top_passage[0]
    chosen.sort(key=lambda c: (c[1], c[2]))
    return [(pos, sid) for _, pos, _, sid in chosen]


def not_covered(question: str, r: Retrieval, mode: str = "extractive") -> Answer:
    return Answer(NOT_COVERED[language(question)], False, [], mode=mode, timings_ms=r.timings_ms)


def cite(retriever: Retriever, r: Retrieval, pos: int, n: int) -> Cited:
    """Citation `n` for the hit at position `pos`: its post, and the passage as the snippet."""
    hit = r.hits[pos]
    chunk = retriever.index.chunks[hit.chunk]
    post = retriever.index.posts[chunk.post_id]
    return Cited(n, post.post_id, post.title, post.url, chunk.text, round(hit.score, 4), post.date)


def extractive(retriever: Retriever, r: Retrieval, question: str, top_k: int) -> Answer:
    """1-4 sentences of the notes, each followed by [n]; `question` sets the refusal's language."""
    if not covered(r):
        return not_covered(question, r)
    numbers: dict[int, int] = {}
    text, tight = "", True
    for pos, sid in choose_sentences(retriever, r, top_k):
        numbers.setdefault(pos, len(numbers) + 1)
        sentence = quote(retriever.index.sentences[sid])
        # Chinese runs on, the marker right after the full stop; English keeps spaces around it.
        gap = "" if tight and has_chinese(sentence[:1]) else " "
        tight = _CJK_END_RE.search(sentence) is not None
        text += f"{gap if text else ''}{sentence}{'' if tight else ' '}[{numbers[pos]}]"
    if not text:
        return not_covered(question, r)
    citations = [cite(retriever, r, pos, n) for pos, n in numbers.items()]
    return Answer(text, True, citations, timings_ms=r.timings_ms)


def answer(retriever: Retriever, question: str, top_k: int = 5) -> Answer:
    return extractive(retriever, retriever.search(question, k=top_k), question, top_k)
