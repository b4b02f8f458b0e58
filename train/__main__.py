"""Train the adapter of the bundled model on public bilingual machine-learning text.

    python -m train [--training ../shared/training] [--out ingest/data/adapter.npz] [--kinds heading]
                    [--epochs 1] [--lr 3e-5] [--batch 32] [--merge 0.7] [--rank 32] [--seed 0]

Needs the `st` extra (torch, sentence-transformers). The same sources, settings and seed make the same
adapter on the same machine (make train).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from ingest.settings import IngestSettings

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    from train.fit import Settings
    from train.pairs import KINDS

    defaults = Settings()
    parser = argparse.ArgumentParser(prog="python -m train", description=__doc__.split("\n")[0])
    parser.add_argument("--training", type=Path, default=ROOT.parent / "shared" / "training")
    parser.add_argument("--out", type=Path, default=ROOT / "ingest" / "data" / "adapter.npz")
    parser.add_argument("--kinds", default="heading", help=f"comma-separated, of {', '.join(KINDS)}")
    for field in dataclasses.fields(Settings):
        value = getattr(defaults, field.name)
        kind = {"action": argparse.BooleanOptionalAction} if isinstance(value, bool) else {"type": type(value)}
        parser.add_argument(f"--{field.name.replace('_', '-')}", default=value, **kind)
    parser.add_argument("--limit", type=int, default=0, help="train on the first N pairs only (a quick check)")
    parser.add_argument("--save-tuned", type=Path, help="also keep the fine-tuned weights whole (npz), to merge again")
    args = parser.parse_args(argv)
    try:
        import torch  # noqa: F401
        from sentence_transformers import SentenceTransformer  # noqa: F401
    except ImportError as exc:
        print(f"error: training needs the st extra (pip install -e '.[st]'): {exc}", file=sys.stderr)
        return 1
    from ingest.convert import ensure_model
    from train.fit import adapter, train
    from train.pairs import pairs

    settings = Settings(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Settings)})
    kinds = tuple(k for k in args.kinds.split(",") if k)
    if unknown := set(kinds) - set(KINDS):
        parser.error(f"unknown kinds {sorted(unknown)}; choose from {', '.join(KINDS)}")
    found = pairs(args.training, kinds)
    if args.limit:
        found = found[: args.limit]
    print(f"{len(found)} pairs: {dict(Counter(p.kind for p in found))}; {settings}", flush=True)
    started = time.perf_counter()
    folder = ensure_model(IngestSettings().model_dir)
    trained = train(folder, found, settings, log=lambda line: print(line, flush=True))
    before, after = trained.before, trained.after
    seconds = time.perf_counter() - started
    meta = {"settings": dataclasses.asdict(settings), "kinds": list(kinds), "pairs": len(found),
            "seconds": round(seconds), "sources": str(args.training)}
    adapter(before, after, settings, meta).save(args.out)
    if args.save_tuned:
        np.savez(args.save_tuned, **{f"before/{k}": v for k, v in before.items()}, **{f"after/{k}": v for k, v in after.items()})
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB) after {seconds / 60:.1f} min of training")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
