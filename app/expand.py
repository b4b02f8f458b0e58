"""Bridge the two languages of a question: str -> the same question plus the other language's technical terms.

English questions over Chinese notes share almost no words with them; "receptive field" and 感受野 are
joined by a glossary of the corpus's terms (ingest/data/glossary.tsv), in both directions.
"""
from __future__ import annotations

import re
from functools import lru_cache

from ingest.segment import DATA_DIR

GLOSSARY = DATA_DIR / "glossary.tsv"


@lru_cache(maxsize=1)
def _pairs() -> tuple[re.Pattern, dict[str, str], re.Pattern, dict[str, str]]:
    to_zh: dict[str, str] = {}
    to_en: dict[str, str] = {}
    for line in GLOSSARY.read_text("utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        en, zh = line.split("\t")
        english, chinese = en.split("|"), zh.split("|")
        for e in english:
            to_zh[e.lower()] = chinese[0]
        for c in chinese:
            to_en[c] = english[0]
    longest_first = lambda terms: sorted(terms, key=len, reverse=True)  # noqa: E731
    en_re = re.compile(r"(?<![A-Za-z0-9])(" + "|".join(map(re.escape, longest_first(to_zh))) + r")(?![A-Za-z0-9])", re.I)
    zh_re = re.compile("(" + "|".join(map(re.escape, longest_first(to_en))) + ")")
    return en_re, to_zh, zh_re, to_en


def expand(question: str) -> str:
    """The question, then the glossary terms of the other language that it mentions (each once)."""
    en_re, to_zh, zh_re, to_en = _pairs()
    extra = [to_zh[m.lower()] for m in en_re.findall(question)] + [to_en[m] for m in zh_re.findall(question)]
    extra = [t for t in dict.fromkeys(extra) if t.lower() not in question.lower()]
    return f"{question} {' '.join(extra)}" if extra else question
