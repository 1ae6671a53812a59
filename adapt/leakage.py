"""Test questions that repeat training ones: find them, count them, and (``--drop-leaks``) drop them.

Two kinds. An *exact* leak is a test question equal to a training question once both are
normalised (case, punctuation, spacing); it needs only the text, so it is settled with the split,
before any model loads. A *near duplicate* is a test question whose embedding has cosine similarity
of at least ``NEAR_DUPLICATE_SIMILARITY`` with a training question's; the caller passes the
embedding function (the run passes the guide, embedding as training will, so the training questions
cost nothing extra). Dropping a test question keeps its passages in the search corpus.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import numpy as np

from adapt.data import Splits
from adapt.errors import DataError

NEAR_DUPLICATE_SIMILARITY = 0.95
EXAMPLES = 5  # near duplicates shown in the report
BLOCK = 1024  # test questions compared at once

Embed = Callable[[list[str]], np.ndarray]  # texts -> unit-length rows


@dataclass(frozen=True)
class NearDuplicate:
    test: str
    train: str
    similarity: float


def normalise(text: str) -> str:
    """Lower case, punctuation removed, white space folded: for spotting repeated questions."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def find_exact(splits: Splits) -> list[str]:
    """The distinct test questions that equal a training question after ``normalise``."""
    train = set(splits.train["question"].map(normalise))
    return [q for q in dict.fromkeys(splits.test["question"]) if normalise(q) in train]


def find_near(splits: Splits, embed: Embed, threshold: float = NEAR_DUPLICATE_SIMILARITY) -> list[NearDuplicate]:
    """Each distinct test question whose nearest training question has cosine >= ``threshold``."""
    train = list(dict.fromkeys(splits.train["question"]))
    test = list(dict.fromkeys(splits.test["question"]))
    if not train or not test:
        return []
    vectors = embed(train + test)
    train_vectors, test_vectors = vectors[: len(train)], vectors[len(train):]
    best = np.zeros(len(test))
    nearest = np.zeros(len(test), dtype=int)
    for start in range(0, len(test), BLOCK):
        sims = test_vectors[start:start + BLOCK] @ train_vectors.T
        best[start:start + BLOCK] = sims.max(axis=1)
        nearest[start:start + BLOCK] = sims.argmax(axis=1)
    return [NearDuplicate(test[i], train[nearest[i]], round(float(best[i]), 4))
            for i in np.flatnonzero(best >= threshold)]


def drop_test_questions(splits: Splits, questions: Iterable[str]) -> Splits:
    """The splits without these test questions (their passages stay in the corpus); counts updated."""
    test = splits.test[~splits.test["question"].isin(set(questions))].reset_index(drop=True)
    if test.empty:
        raise DataError("every test question repeats or nearly repeats a training question, so nothing is left "
                        "to evaluate; run without --drop-leaks or use a test set with new questions")
    counts = dict(splits.counts)
    counts["leaks_dropped"] = counts.get("leaks_dropped", 0) + len(splits.test) - len(test)
    counts["test_pairs"], counts["test_questions"] = len(test), int(test["question"].nunique())
    return Splits(splits.train, splits.dev, test, splits.corpus, counts)


def check_exact(splits: Splits, drop: bool) -> Splits:
    """Count exact leaks (``counts["leaks_exact"]``) and, with ``drop``, drop them (``leaks_dropped``)."""
    exact = find_exact(splits)
    splits = Splits(splits.train, splits.dev, splits.test, splits.corpus,
                    {**splits.counts, "leaks_exact": len(exact), "leaks_dropped": 0})
    return drop_test_questions(splits, exact) if drop and exact else splits


def check_near(splits: Splits, embed: Embed, drop: bool) -> tuple[Splits, dict]:
    """Find near duplicates among the test questions ``check_exact`` left and, with ``drop``, drop them.

    Returns the splits and the report's ``leakage`` section.
    """
    near = find_near(splits, embed)
    section = {"exact_or_normalised": splits.counts.get("leaks_exact", 0),
               "dropped_exact": splits.counts.get("leaks_dropped", 0),
               "near_duplicate_threshold": NEAR_DUPLICATE_SIMILARITY, "near_duplicates": len(near),
               "examples": [asdict(n) for n in near[:EXAMPLES]]}
    if drop and near:
        splits = drop_test_questions(splits, [n.test for n in near])
    return splits, section
