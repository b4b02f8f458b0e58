"""Probe questions are recorded with each build by the model that embeds questions, and reused while nothing changed."""
import numpy as np

from ingest import probes


class Fake:
    name, dim = "fake-model", 2

    def __init__(self, engine: str) -> None:
        self.engine, self.calls = engine, 0

    def queries(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        return np.tile([[0.6, 0.8]], (len(texts), 1))


def test_probes_are_reused_for_the_same_texts_and_engine() -> None:
    model = Fake("onnxruntime/a")
    first = probes.record(model, ["a", "b"], None)
    assert (first["engine"], first["texts"], first["vectors"]) == ("onnxruntime/a", ["a", "b"], [[0.6, 0.8]] * 2)
    assert probes.record(model, ["a", "b"], first) is first and model.calls == 1


def test_probes_are_embedded_again_for_new_texts_or_another_engine() -> None:
    first = probes.record(Fake("onnxruntime/a"), ["a", "b"], None)
    other = Fake("onnxruntime/b")
    again = probes.record(other, ["a", "b"], first)
    assert (again["engine"], other.calls) == ("onnxruntime/b", 1)
    assert probes.record(other, ["a", "c"], again)["texts"] == ["a", "c"] and other.calls == 2
