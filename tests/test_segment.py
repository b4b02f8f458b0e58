"""Segmentation: one function for documents and questions."""
from ingest.segment import dictionary_hash, segment, words


def test_english_is_lowercased_and_kept_whole() -> None:
    assert segment("动机 Faster RCNN是首个利用CNN来完成proposals的预测的") == [
        "动机", "faster", "rcnn", "首个", "利用", "cnn", "来", "完成", "proposals", "预测",
    ]
    assert segment("@tf_export为函数取了个名字!") == ["tf_export", "函数", "取", "名字"]
    assert segment("n-gram 和 C++ 以及 python=3.6") == ["n-gram", "c++", "python", "3.6"]


def test_user_dictionary_terms_survive_and_search_mode_adds_their_parts() -> None:
    tokens = segment("为什么需要梯度检查点?")
    assert "梯度检查点" in tokens and "梯度" in tokens and "检查点" in tokens
    assert "自监督学习" in segment("自监督学习(Selfsupervised):属于无监督学习")
    assert "感受野" in segment("如何计算感受野")


def test_punctuation_and_stopwords_are_dropped() -> None:
    assert segment("什么是 the 的,。!?") == []
    assert segment("How does DDP sync gradients?") == ["ddp", "sync", "gradients"]


def test_full_width_text_is_normalised() -> None:
    assert segment("ＢＥＲＴ模型") == segment("BERT模型")


def test_dictionary_hash_is_stable_and_words_keep_user_terms_whole() -> None:
    assert dictionary_hash() == dictionary_hash()
    assert words("梯度检查点(Gradient Checkpointing)")[:2] == ["梯度检查点", "("]
