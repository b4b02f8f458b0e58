"""A question's weighted BM25 terms across languages, worked by hand."""
import pytest

from app.expand import query

BRIDGE = {"en": {"gradient": [["坡度", 0.25], ["梯度", 0.25]], "bias": [["偏差", 1.0]]}}


def test_translations_join_the_questions_own_words_at_their_share_of_the_weight() -> None:
    q = query("bias gradient", ["bias", "gradient"], BRIDGE, weight=2.0)
    assert q.weights == {"bias": 1.0, "gradient": 1.0, "偏差": pytest.approx(2.0), "坡度": pytest.approx(0.5), "梯度": pytest.approx(0.5)}
    assert q.translations == ("偏差", "坡度", "梯度")


def test_repeated_words_add_up_and_a_chinese_question_is_left_alone() -> None:
    assert query("偏差 偏差", ["偏差", "偏差"], BRIDGE).weights == {"偏差": 2.0}
    assert query("偏差和 bias", ["偏差", "bias"], BRIDGE).translations == ()
