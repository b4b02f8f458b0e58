"""Adapt multilingual-e5-small to bilingual notes: pairs -> trained weights -> a small adapter (ingest/adapter.py).

Training is contrastive with in-batch negatives (InfoNCE, "multiple negatives ranking"): a batch of pairs,
each query's own passage the positive and every other passage of the batch a negative, no two pairs of one
group in a batch. The word table is frozen (it is 250,037 x 384, and the notes' words are few). The fine-tuned
encoder forgets some of what the bundled one knew, so it is merged back: bundled + `merge` x (fine-tuned -
bundled), as LM-Cocktail does; the merged delta of each matrix is kept at rank `rank` (its largest singular
directions), biases and LayerNorms whole. Options measured against this recipe (docs/benchmarks.md): the
bundled model as a guide against false negatives, hard negatives from the pair's page, and LoRA in place of
training every weight. sentence-transformers, torch and peft are the `st` extra.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ingest.adapter import Adapter, ENCODER, ours
from train.pairs import Pair

PROMPTS = {"query": "query: ", "passage": "passage: "}


@dataclass(frozen=True)
class Settings:
    """Everything that decides the adapter; recorded in it, so that the command can make it again."""

    seed: int = 0
    epochs: int = 1
    batch: int = 32
    lr: float = 3e-5
    scale: float = 20.0  # 1 / temperature 0.05
    warmup: float = 0.1
    max_tokens: int = 256
    merge: float = 0.7
    rank: int = 32
    # GISTEmbed: an in-batch negative that the bundled model finds closer to the query than its positive is
    # likely another answer to it (a sibling section), and is left out of the loss.
    guide: bool = False
    # Hard negatives: this many other sections of each pair's page join the batch's passages (a note's
    # sections share its words, and telling them apart is what retrieval over notes gets wrong).
    siblings: int = 0
    # LoRA (peft) of this rank on every linear layer of the encoder instead of training all its weights (0).
    lora: int = 0


def pages_of(pairs: list[Pair]) -> dict[str, dict[str, str]]:
    """Each page's passages, with the group of each: where hard negatives are drawn from."""
    pages: dict[str, dict[str, str]] = {}
    for p in pairs:
        if p.page:
            pages.setdefault(p.page, {})[p.passage] = p.group
    return pages


def sibling_passages(batch: list[Pair], pages: dict[str, dict[str, str]], count: int, rng: random.Random) -> list[str]:
    """Up to `count` passages per pair from other sections of its page, none already in the batch."""
    taken = {p.passage for p in batch}
    out: list[str] = []
    for p in batch:
        options = [text for text, group in pages.get(p.page, {}).items() if group != p.group and text not in taken]
        for text in rng.sample(options, min(count, len(options))):
            out.append(text)
            taken.add(text)
    return out


def batches(pairs: list[Pair], size: int, rng: random.Random) -> list[list[Pair]]:
    """Shuffled batches in which no group and no passage appears twice (a repeat would be its own negative)."""
    order = pairs[:]
    rng.shuffle(order)
    out: list[list[Pair]] = []
    open_batches: list[tuple[list[Pair], set[str]]] = []
    for p in order:
        for batch, seen in open_batches:
            if p.group not in seen and p.passage not in seen:
                batch.append(p)
                seen.update((p.group, p.passage))
                if len(batch) == size:
                    out.append(batch)
                    open_batches.remove((batch, seen))
                break
        else:
            open_batches.append(([p], {p.group, p.passage}))
    out += [b for b, _ in open_batches if len(b) > 1]
    rng.shuffle(out)
    return out


@dataclass(frozen=True)
class Trained:
    """The encoder's weights before and after, by our names (in transformers' shapes), and the loss of each step."""

    before: dict[str, np.ndarray]
    after: dict[str, np.ndarray]
    losses: list[float]


def train(folder: Path, pairs: list[Pair], settings: Settings, log: Callable[[str], None] = print) -> Trained:
    """Fine-tune the sentence-transformers folder of the bundled model."""
    import torch
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(settings.seed)
    rng = random.Random(settings.seed)
    model = SentenceTransformer(str(folder), device="cpu")
    model.max_seq_length = settings.max_tokens
    encoder = model[0].auto_model
    encoder.embeddings.word_embeddings.weight.requires_grad = False
    before = {ours(name): t.detach().float().numpy().copy() for name, t in encoder.state_dict().items() if name in ENCODER}
    lora = None
    if settings.lora:
        from peft import LoraConfig, get_peft_model

        targets = ["query", "key", "value", "dense"]
        # The LoRA layers are put into the encoder in place, so the model trains them; the wrapper merges them.
        lora = get_peft_model(encoder, LoraConfig(r=settings.lora, lora_alpha=settings.lora, target_modules=targets))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.01)
    plan = [b for _ in range(settings.epochs) for b in batches(pairs, settings.batch, rng)]
    warm = max(1, int(len(plan) * settings.warmup))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warm, max(0.0, (len(plan) - s) / max(1, len(plan) - warm)))
    )
    # sentence-transformers 6 renamed `tokenize` to `preprocess`.
    tokenize = getattr(model, "preprocess", None) or model.tokenize
    guide = SentenceTransformer(str(folder), device="cpu") if settings.guide else None
    if guide is not None:
        guide.max_seq_length = settings.max_tokens
        guide.eval()
    pages = pages_of(pairs) if settings.siblings else {}

    def embed(m: SentenceTransformer, features: dict) -> torch.Tensor:
        return torch.nn.functional.normalize(m(features)["sentence_embedding"].float(), dim=-1)

    model.train()
    losses: list[float] = []
    started = time.perf_counter()
    for step, batch in enumerate(plan):
        q = tokenize([PROMPTS["query"] + p.query for p in batch])
        extra = sibling_passages(batch, pages, settings.siblings, rng) if settings.siblings else []
        d = tokenize([PROMPTS["passage"] + text for text in [p.passage for p in batch] + extra])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            qv, dv = embed(model, q), embed(model, d)
        logits = settings.scale * qv @ dv.T
        if guide is not None:
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
                gq, gd = embed(guide, q), embed(guide, d)
            sims = gq @ gd.T  # in fp32: bf16 would round a false negative level with the positive
            false = sims > sims.diagonal()[:, None]  # the positives are the first len(batch) columns
            logits = logits.masked_fill(false, float("-inf"))
        loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(batch)))
        loss.backward()
        losses.append(loss.item())
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if step % 20 == 0 or step == len(plan) - 1:
            log(f"step {step + 1}/{len(plan)} loss {loss.item():.3f} ({time.perf_counter() - started:.0f} s)")
    if lora is not None:
        encoder = lora.merge_and_unload()
    state = encoder.state_dict()
    return Trained(before, {ours(name): state[name].detach().float().numpy() for name in ENCODER}, losses)


def adapter(
    bundled: dict[str, np.ndarray], tuned: dict[str, np.ndarray], settings: Settings, meta: dict | None = None,
) -> Adapter:
    """The merged delta: bundled + merge x (tuned - bundled), each matrix's delta kept at `rank`."""
    factors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    whole: dict[str, np.ndarray] = {}
    for name, weight in tuned.items():
        delta = settings.merge * (weight - bundled[name])
        if delta.ndim == 2 and settings.rank < min(delta.shape):
            u, s, vt = np.linalg.svd(delta, full_matrices=False)
            factors[name] = ((u[:, : settings.rank] * s[: settings.rank]).astype(np.float16), vt[: settings.rank].astype(np.float16))
        else:
            whole[name] = delta.astype(np.float16 if delta.ndim == 2 else np.float32)
    return Adapter(factors, whole, meta or {})
