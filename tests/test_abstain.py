"""Abstention: the bar from probe questions, worked by hand, and on a small real corpus."""
import numpy as np
import pytest

from app import abstain
from app.retrieve import Retriever
from ingest.embed import E5_SMALL, Embedder
from ingest.settings import IngestSettings
from ingest.index import open_index


def test_the_bar_is_a_quantile_of_the_probes_evidence() -> None:
    cal = abstain.calibrate([0.1, 0.2, 0.3], [0.0, 0.5, 1.0], quantile=90.0, weight=1.0)
    lift_sd, cov_sd = float(np.std([0.1, 0.2, 0.3])), float(np.std([0.0, 0.5, 1.0]))
    assert (cal.lift_spread, cal.coverage_spread) == (pytest.approx(lift_sd), pytest.approx(cov_sd))
    scores = [0.1 / lift_sd, 0.2 / lift_sd + 0.5 / cov_sd, 0.3 / lift_sd + 1.0 / cov_sd]
    # numpy's linear quantile: 90 % of the way through 3 sorted values is 80 % from the second to the third.
    assert cal.bar == pytest.approx(scores[1] + 0.8 * (scores[2] - scores[1]))
    assert abstain.covered(0.3, 1.0, cal, weight=1.0)
    assert not abstain.covered(0.2, 0.5, cal, weight=1.0)


def test_probes_that_all_score_alike_do_not_divide_by_nothing() -> None:
    cal = abstain.calibrate([0.2, 0.2], [0.0, 0.0])
    assert (cal.lift_spread, cal.coverage_spread) == (abstain.MIN_LIFT_SPREAD, abstain.MIN_COVERAGE_SPREAD)
    with pytest.raises(ValueError):
        abstain.calibrate([], [])


def test_the_build_carries_the_probes_and_a_small_corpus_calibrates_on_them(built: IngestSettings, embedder: Embedder) -> None:
    index = open_index(built.index_dir, embedder.name)
    probes = index.extras["probes"]
    assert probes["embedder"] == embedder.name and len(probes["vectors"]) == len(probes["texts"]) >= 60
    retriever = Retriever(index, embedder)
    assert retriever.search("为什么需要梯度检查点?").covered
    assert retriever.search("How do random forests pick features for each tree?").covered
    assert not retriever.search("怎样学会打太极拳?").covered
    assert not retriever.search("How do I replace a bicycle chain?").covered
