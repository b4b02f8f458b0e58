"""Mining the cross-lingual bridge from small synthetic notes: pairs, false pairs, weights, determinism."""
from pathlib import Path

from ingest.bridge import (
    bracket_pairs, dictionary_pairs, glossary_pairs, is_english_term, mine, read_notes, table, user_pairs,
)
from ingest.segment import words

NOTES = [
    "感受野(Receptive Field)是卷积网络里的概念。",
    "Negative Sampling（负采样）是 NCE 的简化版本。",
    "**批标准化**（Batch Normalization (BN)）可以加速训练。",
    "如图所示(见图 1),训练误差先降后升(2019)。",
    "随机森林（Breiman, 2001）是一种集成方法。",
    "又称反卷积（Deconvolution）。",
]


def test_both_bracket_styles_and_nested_brackets_give_pairs() -> None:
    assert bracket_pairs(NOTES[0], words) == [("感受野", "Receptive Field")]
    assert bracket_pairs(NOTES[1], words) == [("负采样", "Negative Sampling")]
    # The bold span names the Chinese term; the nested bracket is a second English name for it.
    [(text, emphasis)], _ = read_notes([NOTES[2]])
    assert (text, emphasis) == ("批标准化（Batch Normalization (BN)）可以加速训练。", ("批标准化",))
    assert bracket_pairs(text, words, emphasis) == [("批标准化", "Batch Normalization"), ("批标准化", "BN")]
    assert bracket_pairs("用于加速的批标准化(Batch Normalization)", words) == [("批标准化", "Batch Normalization")]
    assert bracket_pairs(NOTES[5], words) == [("反卷积", "Deconvolution")]


def test_figure_references_years_and_citations_are_not_pairs() -> None:
    assert bracket_pairs(NOTES[3], words) == []
    assert bracket_pairs(NOTES[4], words) == []
    assert not is_english_term("2019") and not is_english_term("Smith et al") and not is_english_term("the of")


def test_glossary_tables_give_pairs() -> None:
    page = "| 中文 | English |\n|---|---|\n| **过拟合** | overfitting |\n| 学习率 | learning rate |\n| 说明 | 见正文 |"
    _, rows = read_notes([page])
    assert glossary_pairs(rows) == [("中文", "English"), ("过拟合", "overfitting"), ("学习率", "learning rate")]


def test_the_table_shares_each_terms_weight_by_how_often_the_notes_pair_it() -> None:
    t = table([("偏差", "Bias"), ("偏差", "bias"), ("偏置", "bias"), ("方差", "variance")])
    assert t["en"] == {"bias": [["偏差", 0.6667], ["偏置", 0.3333]], "variance": [["方差", 1.0]]}
    assert t["zh"]["偏差"] == [["bias", 1.0]]


def test_dictionary_senses_only_fill_in_what_the_notes_do_not_pair() -> None:
    senses = {"梯度": ("gradient",), "坡度": ("gradient", "slope"), "方差": ("variance (statistics)",), "激活": ("to activate",)}
    pairs = dictionary_pairs(["梯度", "坡度", "方差", "激活", "未收录"], senses)
    assert pairs == [("坡度", "gradient"), ("坡度", "slope"), ("方差", "variance"), ("梯度", "gradient"), ("激活", "activate")]
    t = table([("方差", "variance")], pairs)
    # The notes' own pair wins; "gradient" is ambiguous between two words and each gets half of the dictionary weight.
    assert t["en"]["variance"] == [["方差", 1.0]]
    assert t["en"]["gradient"] == [["坡度", 0.25], ["梯度", 0.25]]
    assert t["en"]["activate"] == [["激活", 0.5]]


def test_a_users_own_pairs_are_read_and_outweigh_the_notes(tmp_path: Path) -> None:
    path = tmp_path / "bridge.tsv"
    path.write_text("# mine\nreceptive field|RF\t感受野\n\nno tab here\n", "utf-8")
    assert user_pairs(path) == [("感受野", "receptive field"), ("感受野", "RF")]
    assert user_pairs(tmp_path / "missing.tsv") == []
    mined = mine([("感受野(receptive field)", ()), ("视野(receptive field)", ())], [], [], path, words, use_dictionary=False)
    assert mined["en"]["receptive field"] == [["感受野", 0.8571], ["视野", 0.1429]]


def test_mining_is_deterministic() -> None:
    first = mine(*read_notes(NOTES), ["梯度", "方差"], None, words)
    assert first == mine(*read_notes(list(NOTES)), ["方差", "梯度"], None, words)
    assert list(first["en"]) == sorted(first["en"])


TABLE = {"en": {"receptive field": [["感受野", 1.0]], "gradient": [["坡度", 0.25], ["梯度", 0.25]], "bias": [["偏差", 1.0]]}}


def test_a_question_finds_the_longest_terms_in_their_dictionary_forms() -> None:
    from ingest.bridge import english_terms, variants

    assert variants("gradients") == ["gradients", "gradient"]
    assert english_terms("How do receptive fields grow?", TABLE["en"]) == ["receptive field"]
    assert english_terms("Gradients and BIAS", TABLE["en"]) == ["gradient", "bias"]


def test_only_a_question_without_chinese_is_translated_and_embedded_with_its_translations() -> None:
    from ingest.bridge import embedding_text, translations

    assert translations("What is a receptive field?", TABLE) == [("感受野", 1.0)]
    assert translations("感受野和 bias 的关系", TABLE) == []
    assert embedding_text("bias of the gradient", TABLE) == "bias of the gradient 偏差 坡度 梯度"
    assert embedding_text("Why batch norm?", TABLE) == "Why batch norm?"
