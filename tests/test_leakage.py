"""Near-duplicate test questions, found by the guide's similarity, are counted and --drop-leaks removes them."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import adapt.guide
from adapt import pipeline
from adapt.data import Pairs, split_pairs
from adapt.errors import DataError


def splits_with(test_questions):
    train = [(f"train question {i}", f"passage {i}") for i in range(6)]
    test = [(q, "test passage") for q in test_questions]
    pairs = Pairs(pd.DataFrame(train, columns=["question", "passage"]), {"pairs": 6})
    eval_pairs = Pairs(pd.DataFrame(test, columns=["question", "passage"]), {"pairs": len(test)})
    return split_pairs(pairs, 0.2, 0.0, seed=0, eval_pairs=eval_pairs)


@pytest.fixture
def fake_guide(monkeypatch):
    """A guide whose embedding puts 'near copy' on top of training question 0 and the rest far away."""
    def vectors(model, guide, texts, prompt=None, guide_name="", cache_dir=None):
        out = np.eye(len(texts), 8 + len(texts), dtype=np.float32)
        for row, text in enumerate(texts):
            if text == "near copy":
                out[row] = out[0] * 0.99 + out[row] * 0.05
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    monkeypatch.setattr(adapt.guide, "guide_vectors", vectors)


def test_near_duplicates_are_counted_with_an_example(fake_guide):
    splits = splits_with(["near copy", "something new"])
    leaks = pipeline.find_leaks(SimpleNamespace(prompts={}), None, "guide", splits, None)
    assert leaks["near_duplicates"] == 1 and leaks["near_duplicate_questions"] == ["near copy"]
    assert leaks["examples"][0]["train"] == "train question 0"
    assert leaks["examples"][0]["similarity"] >= pipeline.NEAR_DUPLICATE_SIMILARITY


def test_drop_leaks_removes_them_from_the_test_set_only(fake_guide):
    splits = splits_with(["near copy", "something new"])
    kept = pipeline.drop_test_questions(splits, {"near copy"})
    assert kept.test["question"].tolist() == ["something new"]
    assert kept.counts["test_questions"] == 1 and kept.counts["leaks_dropped"] == 1
    assert kept.train.equals(splits.train) and kept.corpus.equals(splits.corpus)


def test_dropping_every_test_question_is_a_clear_error():
    splits = splits_with(["near copy"])
    with pytest.raises(DataError, match="every test question nearly duplicates a training question"):
        pipeline.drop_test_questions(splits, {"near copy"})
