"""Fusion and normalisation against scores and ranks worked out by hand."""
import pytest

from app.fuse import CJK, LATIN, Hit, Policy, by_score, convex, distinct_posts_first, lift, over_best, policy_for, ranked, rrf


def test_rrf_matches_hand_computed_scores() -> None:
    fused = rrf([[1, 2, 3], [3, 1]], k=60)
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[2] == pytest.approx(1 / 62)
    assert fused[3] == pytest.approx(1 / 63 + 1 / 61)
    assert [h.chunk for h in ranked(fused, {}, {})] == [1, 3, 2]
    weighted = rrf([[1, 2], [2, 1]], weights=[2.0, 1.0], k=0)
    assert weighted == {1: pytest.approx(2 / 1 + 1 / 2), 2: pytest.approx(2 / 2 + 1 / 1)}


def test_lift_measures_cosines_above_the_crowd() -> None:
    # floor 0.8 leaves 0.2 of room: 0.9 is half-way up, 0.8 and below count nothing.
    assert lift({1: 0.9, 2: 0.8, 3: 0.7, 4: 1.0}, floor=0.8) == {
        1: pytest.approx(0.5), 2: 0.0, 3: 0.0, 4: pytest.approx(1.0)
    }


def test_over_best_makes_the_best_candidate_count_one() -> None:
    assert over_best({1: 3.0, 2: 1.5, 3: 6.0}) == {1: 0.5, 2: 0.25, 3: 1.0}
    assert over_best({1: 0.0}) == {1: 0.0}
    assert over_best({}) == {}


def test_convex_combination_counts_a_missing_side_as_zero() -> None:
    scores = convex({1: 1.0, 2: 0.5}, {2: 1.0, 3: 0.8}, Policy(dense=0.6, bm25=0.4))
    assert scores == {1: pytest.approx(0.4), 2: pytest.approx(0.8), 3: pytest.approx(0.48)}
    hits = ranked(scores, {1: 1.0, 2: 0.5}, {2: 1.0, 3: 0.8})
    assert hits == [Hit(2, pytest.approx(0.8), 0.5, 1.0), Hit(3, pytest.approx(0.48), 0.0, 0.8), Hit(1, pytest.approx(0.4), 1.0, 0.0)]


def test_a_hand_worked_hybrid_ranking() -> None:
    # Dense cosines over a crowd at 0.8, BM25 over its best candidate, fused with the Chinese policy (0.9, 0.3).
    dense = lift({7: 0.90, 8: 0.86, 9: 0.84}, floor=0.8)  # 0.5, 0.3, 0.2
    bm25 = over_best({8: 9.0, 9: 2.25, 5: 4.5})  # 1.0, 0.25, 0.5
    fused = convex(bm25, dense, CJK)
    assert fused == {
        7: pytest.approx(0.9 * 0.5),
        8: pytest.approx(0.9 * 0.3 + 0.3 * 1.0),
        9: pytest.approx(0.9 * 0.2 + 0.3 * 0.25),
        5: pytest.approx(0.3 * 0.5),
    }
    assert by_score(fused) == [8, 7, 9, 5]
    # The English policy leans on the embedding: the same candidates, 7 now first.
    assert by_score(convex(bm25, dense, LATIN)) == [7, 8, 9, 5]


def test_the_policy_follows_the_question_language() -> None:
    assert policy_for("为什么要用 Dropout?") is CJK
    assert policy_for("How does dropout work?") is LATIN
    assert LATIN.dense / LATIN.bm25 > CJK.dense / CJK.bm25  # English questions lean on the embedding


def test_ties_break_by_chunk_number() -> None:
    assert [h.chunk for h in ranked({5: 1.0, 2: 1.0, 9: 2.0}, {}, {})] == [9, 2, 5]


def test_distinct_posts_come_first() -> None:
    hits = [Hit(0, 0.9), Hit(1, 0.8), Hit(2, 0.7), Hit(3, 0.6)]
    posts = ["a", "a", "b", "a"]
    assert [h.chunk for h in distinct_posts_first(hits, posts)] == [0, 2, 1, 3]
