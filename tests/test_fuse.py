"""Fusion against ranks worked out by hand."""
import pytest

from app.fuse import Hit, convex, distinct_posts_first, ranked, rrf


def test_rrf_matches_hand_computed_scores() -> None:
    fused = rrf([[1, 2, 3], [3, 1]], k=60)
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[2] == pytest.approx(1 / 62)
    assert fused[3] == pytest.approx(1 / 63 + 1 / 61)
    assert [h.chunk for h in ranked(fused, {}, {})] == [1, 3, 2]
    weighted = rrf([[1, 2], [2, 1]], weights=[2.0, 1.0], k=0)
    assert weighted == {1: pytest.approx(2 / 1 + 1 / 2), 2: pytest.approx(2 / 2 + 1 / 1)}


def test_convex_combination_counts_a_missing_side_as_zero() -> None:
    scores = convex({1: 1.0, 2: 0.5}, {2: 1.0, 3: 0.8}, alpha=0.6)
    assert scores == {1: pytest.approx(0.4), 2: pytest.approx(0.8), 3: pytest.approx(0.48)}
    hits = ranked(scores, {1: 1.0, 2: 0.5}, {2: 1.0, 3: 0.8})
    assert hits == [Hit(2, pytest.approx(0.8), 0.5, 1.0), Hit(3, pytest.approx(0.48), 0.0, 0.8), Hit(1, pytest.approx(0.4), 1.0, 0.0)]


def test_ties_break_by_chunk_number() -> None:
    assert [h.chunk for h in ranked({5: 1.0, 2: 1.0, 9: 2.0}, {}, {})] == [9, 2, 5]


def test_distinct_posts_come_first() -> None:
    hits = [Hit(0, 0.9), Hit(1, 0.8), Hit(2, 0.7), Hit(3, 0.6)]
    posts = ["a", "a", "b", "a"]
    assert [h.chunk for h in distinct_posts_first(hits, posts)] == [0, 2, 1, 3]
