"""Clean and split question/passage pairs into train / dev / test and the search corpus.

Reading a file (and every way it can be wrong) is adapt/readers.py; test questions that repeat
training ones are adapt/leakage.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from adapt.errors import DataError
from adapt.files import atomic_write_text
from adapt.readers import PASSAGE_NAMES, QUESTION_NAMES, file_label, pick_column, read_file

logger = logging.getLogger(__name__)

MIN_QUESTIONS = 10
MIN_TRAIN_QUESTIONS = 4


@dataclass
class Pairs:
    """Cleaned pairs (columns ``question``, ``passage``) and what cleaning did to them."""

    frame: pd.DataFrame
    counts: dict = field(default_factory=dict)


@dataclass
class Splits:
    """Train / dev / test pairs and the search corpus (columns ``passage_id``, ``passage``)."""

    train: pd.DataFrame
    dev: pd.DataFrame
    test: pd.DataFrame
    corpus: pd.DataFrame
    counts: dict = field(default_factory=dict)

    def passage_ids(self) -> dict[str, str]:
        return dict(zip(self.corpus["passage"], self.corpus["passage_id"]))


@dataclass
class IRData:
    """Evaluation data in sentence-transformers' terms."""

    queries: dict[str, str]
    corpus: dict[str, str]
    relevant_docs: dict[str, set[str]]


# ----------------------------------------------------------------------------------------------
# Cleaning


def load_pairs(path: Path | str, question_col: str | None = None, passage_col: str | None = None,
               role: str = "pairs") -> Pairs:
    """Read pairs, strip whitespace, drop rows with an empty field and exact duplicate pairs."""
    table = read_file(path, role)
    frame, label = table.frame, file_label(path, role)
    q = pick_column(table, question_col, QUESTION_NAMES, "question", "--question-col", label)
    p = pick_column(table, passage_col, PASSAGE_NAMES, "passage", "--passage-col", label)
    if q == p:
        raise DataError(f"{label}: the question and passage columns are both {q!r}; pass two different columns")
    pairs = pd.DataFrame({"question": frame[q].astype(str).str.strip(), "passage": frame[p].astype(str).str.strip()})
    rows_read = len(pairs)
    if rows_read == 0:
        raise DataError(f"{label} has a header but no rows; add question/passage pairs")
    empty = (pairs["question"] == "") | (pairs["passage"] == "")
    pairs = pairs[~empty]
    duplicate = pairs.duplicated(keep="first")
    pairs = pairs[~duplicate].reset_index(drop=True)
    if pairs.empty:
        raise DataError(f"{label} has {_count(rows_read, 'row')} but none with both a question and a passage; "
                        "fill them in")
    counts = {
        "rows_read": rows_read,
        "dropped_empty": int(empty.sum()),
        "dropped_duplicate": int(duplicate.sum()),
        "pairs": len(pairs),
        "questions": int(pairs["question"].nunique()),
        "passages": int(pairs["passage"].nunique()),
    }
    return Pairs(pairs, counts)


def load_corpus(path: Path | str) -> list[str]:
    """Extra passages: a ``passage`` column (or a file with a single column)."""
    table = read_file(path, "corpus")
    frame, label = table.frame, file_label(path, "corpus")
    single = frame.columns[0] if len(frame.columns) == 1 else None
    column = pick_column(table, single, PASSAGE_NAMES, "passage", "a file with a single column", label)
    passages = frame[column].astype(str).str.strip()
    passages = passages[passages != ""]
    if passages.empty:
        raise DataError(f"{label} has no non-empty passages; add a 'passage' column with text")
    return list(dict.fromkeys(passages))


# ----------------------------------------------------------------------------------------------
# Splitting


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def split_pairs(pairs: Pairs, eval_fraction: float, dev_fraction: float, seed: int,
                eval_pairs: Pairs | None = None, extra_passages: list[str] | None = None) -> Splits:
    """Split by unique question into train / dev / test; no test or dev question is trained on."""
    frame = pairs.frame
    rng = np.random.default_rng(seed)
    counts = {"input": dict(pairs.counts)}
    if eval_pairs is None:
        questions = frame["question"].drop_duplicates().to_numpy()
        n = len(questions)
        n_test, n_dev = _split_sizes(n, eval_fraction, dev_fraction, separate_test=False)
        if not _can_split(n, eval_fraction, dev_fraction, separate_test=False):
            need = _questions_needed(eval_fraction, dev_fraction, separate_test=False)
            held = f"{eval_fraction:.0%} for testing"
            if dev_fraction > 0:
                held += f" and {dev_fraction:.0%} for dev"
            raise DataError(
                f"too few pairs to split: found {_count(n, 'distinct question')}, need at least {need} "
                f"to hold out {held} and still train; add more pairs"
            )
        order = rng.permutation(questions)
        test_q, dev_q = set(order[:n_test]), set(order[n_test:n_test + n_dev])
        test = frame[frame["question"].isin(test_q)]
        dev = frame[frame["question"].isin(dev_q)]
        train = frame[~frame["question"].isin(test_q | dev_q)]
        counts["overlap_dropped"] = 0
    else:
        test = eval_pairs.frame
        counts["eval_input"] = dict(eval_pairs.counts)
        overlap = frame["question"].isin(set(test["question"]))
        counts["overlap_dropped"] = int(overlap.sum())
        rest = frame[~overlap]
        questions = rest["question"].drop_duplicates().to_numpy()
        _, n_dev = _split_sizes(len(questions), eval_fraction, dev_fraction, separate_test=True)
        if not _can_split(len(questions), eval_fraction, dev_fraction, separate_test=True):
            need = _questions_needed(eval_fraction, dev_fraction, separate_test=True)
            raise DataError(
                f"too few pairs to train on: {_count(len(questions), 'distinct question')} left after removing the "
                f"test questions, need at least {need}; add more pairs"
            )
        dev_q = set(rng.permutation(questions)[:n_dev])
        dev = rest[rest["question"].isin(dev_q)]
        train = rest[~rest["question"].isin(dev_q)]

    passages = list(dict.fromkeys([*train["passage"], *dev["passage"], *test["passage"], *(extra_passages or [])]))
    corpus = pd.DataFrame({"passage_id": [f"d{i}" for i in range(len(passages))], "passage": passages})
    train, dev, test = (df.reset_index(drop=True) for df in (train, dev, test))
    counts.update({
        "train_pairs": len(train),
        "train_questions": int(train["question"].nunique()),
        "dev_pairs": len(dev),
        "dev_questions": int(dev["question"].nunique()),
        "test_pairs": len(test),
        "test_questions": int(test["question"].nunique()),
        "corpus_size": len(corpus),
        "extra_passages": len(extra_passages or []),
    })
    return Splits(train, dev, test, corpus, counts)


def _split_sizes(n: int, eval_fraction: float, dev_fraction: float, separate_test: bool) -> tuple[int, int]:
    """How many of ``n`` distinct questions go to test and to dev."""
    n_test = 0 if separate_test else max(1, int(round(n * eval_fraction)))
    n_dev = int(round(n * dev_fraction)) if dev_fraction > 0 else 0
    return n_test, n_dev


def _can_split(n: int, eval_fraction: float, dev_fraction: float, separate_test: bool) -> bool:
    n_test, n_dev = _split_sizes(n, eval_fraction, dev_fraction, separate_test)
    return (separate_test or n >= MIN_QUESTIONS) and n - n_test - n_dev >= MIN_TRAIN_QUESTIONS


def _questions_needed(eval_fraction: float, dev_fraction: float, separate_test: bool) -> int:
    """The fewest distinct questions from which this count and every larger one can be split."""
    held = dev_fraction + (0.0 if separate_test else eval_fraction)
    # Rounding moves each held-out share by under one question, so this many always leaves enough.
    enough = int(np.ceil((MIN_TRAIN_QUESTIONS + 2) / max(1e-9, 1 - held)))
    floor = MIN_TRAIN_QUESTIONS if separate_test else MIN_QUESTIONS
    n = max(floor, enough)
    for _ in range(100_000):
        if n <= floor or not _can_split(n - 1, eval_fraction, dev_fraction, separate_test):
            break
        n -= 1
    return n


def ir_data(pairs: pd.DataFrame, corpus: pd.DataFrame) -> IRData:
    """Queries, corpus and relevant passages keyed by id, as ``InformationRetrievalEvaluator`` takes them."""
    ids = dict(zip(corpus["passage"], corpus["passage_id"]))
    queries: dict[str, str] = {}
    qid_of: dict[str, str] = {}
    relevant: dict[str, set[str]] = {}
    for question, passage in zip(pairs["question"], pairs["passage"]):
        qid = qid_of.setdefault(question, f"q{len(qid_of)}")
        queries[qid] = question
        relevant.setdefault(qid, set()).add(ids[passage])
    return IRData(queries, dict(zip(corpus["passage_id"], corpus["passage"])), relevant)


def write_splits(splits: Splits, folder: Path) -> None:
    """The exact data a run used, so anyone can re-check its numbers."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in (("train", splits.train), ("dev", splits.dev), ("test", splits.test),
                        ("corpus", splits.corpus)):
        atomic_write_text(folder / f"{name}.csv", frame.to_csv(index=False))
