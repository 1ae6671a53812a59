"""Guide-filtered hard negatives: GISTEmbed's false-negative rule on hand-made cases, counts and audit."""

import math
import numpy as np
import pandas as pd
import pytest
from sentence_transformers import SentenceTransformer

from adapt.errors import ConfigError
from adapt.config import RunConfig
from adapt.lexical import BM25Index
from adapt.train import finetune
from adapt.index import PassageIndex
from adapt.negatives import (dense_candidates, guide_embedder, lexical_candidates, merge_candidates,
                              mine_hard_negatives)


def at(similarity: float) -> np.ndarray:
    """A unit vector whose cosine with the question's (1, 0) is ``similarity``."""
    return np.array([similarity, np.sqrt(1 - similarity ** 2)])


QUESTION = "why are my tomato leaves brown"
POSITIVE = "Late blight turns tomato leaves brown."
CORPUS = {
    "pos": POSITIVE,
    "copy": "Late blight turns the tomato leaves brown.",  # a near-copy of the positive
    "edge": "Blight browns tomato foliage.",
    "hard": "Early blight spots potato leaves.",
    "far": "Plant garlic cloves two inches deep.",
}
GUIDE = {QUESTION: np.array([1.0, 0.0]), POSITIVE: at(0.8), CORPUS["copy"]: at(0.79), CORPUS["edge"]: at(0.4),
         CORPUS["hard"]: at(0.39), CORPUS["far"]: at(0.05)}


def hand_guide(texts, column):
    return np.stack([GUIDE[t] for t in texts])


def mine(per_question=3, margin=0.05, candidates=("pos", "copy", "hard", "far")):
    train = pd.DataFrame({"question": [QUESTION], "passage": [POSITIVE]})
    return mine_hard_negatives(train, CORPUS, [list(candidates)], hand_guide, per_question, margin)


def test_near_copy_of_the_positive_is_removed_and_unrelated_passages_kept():
    mined = mine(per_question=2)
    assert mined.training.values.tolist() == [[QUESTION, POSITIVE, CORPUS["hard"]], [QUESTION, POSITIVE, CORPUS["far"]]]
    assert list(mined.training.columns) == ["question", "passage", "negative"]
    c = mined.counts
    assert (c.pairs, c.candidates, c.removed, c.kept, c.pairs_without_negative, c.filled_random) == (1, 3, 1, 2, 0, 0)
    [example] = mined.examples
    assert (example.question, example.positive, example.removed) == (QUESTION, POSITIVE, CORPUS["copy"])
    assert example.removed_similarity == pytest.approx(0.79) and example.positive_similarity == pytest.approx(0.8)
    assert mined.to_dict()["removed"] == 1 and mined.to_dict()["examples"][0]["removed"] == CORPUS["copy"]


def test_the_margin_is_relative_and_its_edge_is_removed():
    # 0.8 * (1 - 0.5) = 0.4: "edge" sits exactly on the line and goes, "hard" (0.39) stays
    mined = mine(per_question=2, margin=0.5, candidates=("edge", "hard", "far"))
    assert list(mined.training["negative"]) == [CORPUS["hard"], CORPUS["far"]]
    assert (mined.counts.candidates, mined.counts.removed, mined.counts.kept) == (3, 1, 2)


def test_keeps_at_most_n_best_ranked():
    mined = mine(per_question=1, candidates=("far", "hard"))
    assert list(mined.training["negative"]) == [CORPUS["far"]]
    # the guide stops at the first kept candidate: "hard" is never judged
    assert (mined.counts.candidates, mined.counts.kept, mined.counts.filled_random) == (1, 1, 0)


def test_judging_stops_at_n_kept_yet_keeps_what_judging_everything_would():
    rng = np.random.default_rng(3)
    ids = [f"p{i}" for i in range(2000)]
    corpus = {pid: f"passage {pid}" for pid in ids}
    questions = [f"question {i}" for i in range(40)]
    vectors = {t: v / np.linalg.norm(v) for t, v in zip([*questions, *corpus.values()], rng.normal(size=(2040, 6)))}
    for i, question in enumerate(questions):  # each question's positive lies near it
        near = vectors[question] + 0.3 * rng.normal(size=6)
        vectors[corpus[ids[i]]] = near / np.linalg.norm(near)
    train = pd.DataFrame({"question": questions, "passage": [corpus[ids[i]] for i in range(40)]})
    candidates = [[ids[i]] * (i % 2) + list(rng.choice(ids[40:], 20, replace=False)) for i in range(40)]
    embedded = []

    def guide(texts, column):
        embedded.extend(texts)
        return np.stack([vectors[t] for t in texts])

    mined = mine_hard_negatives(train, corpus, candidates, guide, 3, 0.05)
    for (question, positive), ranked, negatives in zip(train.values, candidates,
                                                     mined.training.groupby("question", sort=False)["negative"]):
        line = (vectors[positive] @ vectors[question]) * 0.95
        expected = [corpus[p] for p in ranked if corpus[p] != positive and vectors[corpus[p]] @ vectors[question] < line]
        if len(expected) >= 3:
            assert list(negatives[1]) == expected[:3]
    assert mined.counts.kept > 0.9 * 3 * len(questions)
    assert len(embedded) == len(set(embedded))  # nothing embedded twice
    assert len(set(embedded) & set(corpus.values())) < 0.5 * len({p for row in candidates for p in row})


def test_other_positives_of_the_same_question_are_never_negatives():
    train = pd.DataFrame({"question": [QUESTION, QUESTION], "passage": [POSITIVE, CORPUS["far"]]})
    mined = mine_hard_negatives(train, CORPUS, [["far", "hard"], ["pos", "hard"]], hand_guide, 1, 0.05)
    # row 1 drops "far" (its question's other positive); row 2 drops "pos", and "hard" is closer to the
    # question than row 2's own positive ("far", 0.05), so the guide removes it there; every other passage
    # is as close, so row 2 is filled with the least similar of them, "hard"
    assert mined.training.values.tolist() == [[QUESTION, POSITIVE, CORPUS["hard"]],
                                              [QUESTION, CORPUS["far"], CORPUS["hard"]]]
    c = mined.counts
    assert (c.candidates, c.removed, c.kept, c.pairs_without_negative, c.filled_random) == (2, 1, 1, 1, 1)


def test_slots_the_guide_leaves_empty_are_filled_with_passages_it_passes():
    mined = mine(per_question=2, candidates=("copy", "hard"))
    # "copy" is removed; "hard" is kept; the second slot takes a random passage the guide passes
    first, second = mined.training["negative"]
    assert first == CORPUS["hard"] and second in (CORPUS["edge"], CORPUS["far"])
    assert (mined.counts.removed, mined.counts.kept, mined.counts.filled_random) == (1, 1, 1)


def test_every_pair_keeps_its_row_even_when_every_candidate_is_removed():
    mined = mine(per_question=1, candidates=("copy",))
    assert len(mined.training) == 1 and mined.training["negative"][0] != POSITIVE
    assert mined.counts.pairs_without_negative == 1 and mined.counts.filled_random == 1


def test_zero_switches_mining_off():
    mined = mine(per_question=0)
    assert mined.training.values.tolist() == [[QUESTION, POSITIVE]]
    assert mined.counts.candidates == 0 and mined.examples == []


@pytest.mark.parametrize("kwargs, message", [
    (dict(per_question=-1), "hard negatives per question must be 0 or more, found -1"),
    (dict(margin=1.0), "the false-negative margin must be at least 0 and below 1, found 1.0"),
])
def test_bad_settings_are_clear_errors(kwargs, message):
    with pytest.raises(ConfigError, match=f"^{message}$"):
        mine(**kwargs)


def test_candidate_sources_merge_in_turn_without_repeats():
    assert merge_candidates([["a", "b", "c"]], [["b", "d"]], depth=3) == [["a", "b", "d"]]
    bm25 = BM25Index.build(list(CORPUS.values()), list(CORPUS))
    [found] = lexical_candidates(bm25, ["garlic cloves"], depth=5)
    assert found == ["far"]  # passages sharing no word are not candidates


def test_dense_candidates_are_the_exact_nearest_passages():
    rng = np.random.default_rng(0)
    passages, questions = rng.normal(size=(40, 8)), rng.normal(size=(3, 8))
    ids = [f"p{i}" for i in range(40)]
    found = dense_candidates(PassageIndex.build(passages, ids, ids), questions, depth=5)
    unit = passages / np.linalg.norm(passages, axis=1, keepdims=True)
    assert found == [[ids[i] for i in np.argsort(-(unit @ q))[:5]] for q in questions]


def test_mined_triplets_train_from_the_guide_cache(tiny, cache_dir, sample_pairs, tmp_path):
    model = SentenceTransformer(str(tiny["student"]), device="cpu")
    guide = SentenceTransformer(str(tiny["guide"]), device="cpu")
    train = pd.DataFrame({"question": [QUESTION, "how deep do i plant garlic"], "passage": [POSITIVE, CORPUS["far"]]})
    embed = guide_embedder(model, guide, "guide", cache_dir, prompts={})
    mined = mine_hard_negatives(train, CORPUS, [["copy", "hard"], ["edge", "hard"]], embed, 2, margin=0.0)
    vectors = embed([QUESTION], "anchor")
    assert np.linalg.norm(vectors, axis=1) == pytest.approx(1.0)
    assert mined.counts.candidates == 4 and mined.counts.kept > 0
    # training on the triplets then finds every guide embedding on disk
    config = RunConfig(pairs=sample_pairs, epochs=1, batch_size=2, guide_cache=True)
    result = finetune(model, guide, "guide", mined.training, None, config, tmp_path / "work", cache_dir=cache_dir)
    assert len(mined.training) == 2 * len(train)
    assert result.loss == "CachedGISTEmbedLoss" and result.steps == math.ceil(len(mined.training) / 2)
    assert result.guide.encoded == 0 and result.guide.cache_hit
