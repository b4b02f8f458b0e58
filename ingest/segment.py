"""Segment text into search tokens: str -> list[str]. The only module that calls jieba."""
from __future__ import annotations

import hashlib
import logging
import re
import threading
import unicodedata
from functools import lru_cache
from pathlib import Path

import jieba

DATA_DIR = Path(__file__).parent / "data"
USERDICT = DATA_DIR / "userdict.txt"
STOPWORDS = DATA_DIR / "stopwords.txt"
SEGMENTER = "jieba-search"

# English and code: letters and digits joined by '_', '-', '+' or '#' stay one token
# (tf_export, n-gram, c++); decimals stay whole (1.5); anything else separates.
_ASCII = r"\d+(?:\.\d+)+|[A-Za-z0-9]+(?:[_\-][A-Za-z0-9]+)*[+#]*"
_HAN = r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+"
_TOKEN_RE = re.compile(f"({_ASCII})|({_HAN})")
_HAN_RE = re.compile(_HAN)
_lock = threading.Lock()


@lru_cache(maxsize=1)
def _jieba() -> jieba.Tokenizer:
    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    with _lock:
        tokenizer.initialize()
        tokenizer.load_userdict(str(USERDICT))
    return tokenizer


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    lines = STOPWORDS.read_text("utf-8").splitlines()
    return frozenset(w.strip() for w in lines if w.strip() and not w.startswith("#"))


def dictionary_hash() -> str:
    """Identifies the segmentation rules; an index built with other rules must be rebuilt."""
    h = hashlib.sha256()
    for part in (USERDICT.read_bytes(), STOPWORDS.read_bytes(), jieba.__version__.encode(), _TOKEN_RE.pattern.encode()):
        h.update(part)
        h.update(b"\0")
    return h.hexdigest()[:16]


def has_chinese(text: str) -> bool:
    return _HAN_RE.search(text) is not None


def segment(text: str) -> list[str]:
    """Search tokens of a document or a question, in order, repeats kept.

    Chinese runs go through jieba's search mode with the user dictionary, so 梯度检查点
    yields 梯度, 检查, 检查点 and 梯度检查点. English is lower-cased and kept whole.
    Punctuation and stopwords are dropped.
    """
    text = unicodedata.normalize("NFKC", text)
    stop = stopwords()
    tokens: list[str] = []
    for match in _TOKEN_RE.finditer(text):
        ascii_word, han = match.groups()
        if ascii_word:
            word = ascii_word.lower()
            if word not in stop:
                tokens.append(word)
        else:
            tokens.extend(w for w in _jieba().cut_for_search(han, HMM=True) if w not in stop)
    return tokens


def words(text: str) -> list[str]:
    """jieba's plain word split with the user dictionary, punctuation and all: for mining terms, not for search."""
    return _jieba().lcut(unicodedata.normalize("NFKC", text))
