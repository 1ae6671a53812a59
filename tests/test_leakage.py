"""Test questions that repeat training ones: exact (after normalising) and near (by embedding) leaks are
counted, --drop-leaks removes them from the test set only, and the run's data summary sees it."""

import numpy as np
import pandas as pd
import pytest

from adapt import leakage
from adapt.config import RunConfig
from adapt.data import Pairs, Splits, split_pairs
from adapt.errors import DataError
from adapt.pipeline import prepare_data
from app.preflight import data_summary

NOTHING_LEFT = ("every test question repeats or nearly repeats a training question, so nothing is left to "
                "evaluate; run without --drop-leaks or use a test set with new questions")


def pairs_of(rows) -> Pairs:
    frame = pd.DataFrame(rows, columns=["question", "passage"])
    return Pairs(frame, {"pairs": len(frame)})


def splits_with(test_questions, n_train=6):
    train = pairs_of([(f"train question {i}", f"passage {i}") for i in range(n_train)])
    return split_pairs(train, 0.2, 0.0, seed=0, eval_pairs=pairs_of([(q, "test passage") for q in test_questions]))


def embed(texts):
    """Puts 'near copy' (and 'near copy 2') on top of training question 0 and every other text far away."""
    out = np.eye(len(texts), 8 + len(texts), dtype=np.float32)
    for row, text in enumerate(texts):
        if text.startswith("near copy"):
            out[row] = out[0] * 0.99 + out[row] * 0.05
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_normalise():
    assert leakage.normalise("  What's   the PH of Soil?? ") == "what s the ph of soil"


def test_exact_leaks_are_counted_and_dropped():
    splits = splits_with(["Train question 3?", "TRAIN QUESTION 4", "new one", "Train question 3?"])
    assert leakage.find_exact(splits) == ["Train question 3?", "TRAIN QUESTION 4"]
    kept = leakage.check_exact(splits, drop=False)
    assert (kept.counts["leaks_exact"], kept.counts["leaks_dropped"], len(kept.test)) == (2, 0, 4)
    dropped = leakage.check_exact(splits, drop=True)
    assert dropped.test["question"].tolist() == ["new one"]
    counts = dropped.counts
    assert (counts["leaks_dropped"], counts["test_pairs"], counts["test_questions"]) == (3, 1, 1)
    assert dropped.corpus.equals(splits.corpus)  # the dropped questions' passages stay searchable


def test_split_pairs_only_splits():
    splits = splits_with(["Train question 3?"])
    assert "leaks_exact" not in splits.counts and len(splits.test) == 1


def test_near_duplicates_are_found_with_their_training_question():
    splits = splits_with(["near copy", "something new"])
    near = leakage.find_near(splits, embed)
    assert [(n.test, n.train) for n in near] == [("near copy", "train question 0")]
    assert near[0].similarity == round(float(0.99 / np.hypot(0.99, 0.05)), 4) == 0.9987


def test_check_near_reports_and_drops_them():
    splits = leakage.check_exact(splits_with(["near copy", "something new", "Train Question 1!"]), drop=True)
    assert splits.counts["leaks_dropped"] == 1
    kept, section = leakage.check_near(splits, embed, drop=True)
    assert section == {"exact_or_normalised": 1, "dropped_exact": 1, "near_duplicate_threshold": 0.95,
                       "near_duplicates": 1,
                       "examples": [{"test": "near copy", "train": "train question 0", "similarity": 0.9987}]}
    assert kept.test["question"].tolist() == ["something new"]
    assert (kept.counts["leaks_dropped"], kept.counts["test_questions"]) == (2, 1)
    assert kept.train.equals(splits.train) and kept.corpus.equals(splits.corpus)
    same, _ = leakage.check_near(splits, embed, drop=False)
    assert same.test.equals(splits.test)


def test_no_training_or_no_test_questions_find_nothing():
    splits = splits_with(["near copy"])
    empty = Splits(splits.train.iloc[:0], splits.dev, splits.test, splits.corpus, {})
    assert leakage.find_near(empty, embed) == []


@pytest.mark.parametrize("kind", ["exact", "near"])
def test_dropping_every_test_question_is_one_clear_error(kind):
    splits = splits_with(["TRAIN question 2" if kind == "exact" else "near copy"])
    with pytest.raises(DataError) as excinfo:
        if kind == "exact":
            leakage.check_exact(splits, drop=True)
        else:
            leakage.check_near(splits, embed, drop=True)
    assert str(excinfo.value) == NOTHING_LEFT


def write_pairs(path, rows):
    pd.DataFrame(rows, columns=["question", "passage"]).to_csv(path, index=False)
    return path


def test_run_data_and_app_summary_drop_exact_leaks(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.csv", [(f"question {i}", f"passage {i}") for i in range(12)])
    test = write_pairs(tmp_path / "test.csv", [("Question 3?", "passage 3"), ("new one", "x")])
    config = RunConfig(pairs=pairs, eval_pairs=test, out=tmp_path / "run", drop_leaks=True)
    splits = prepare_data(config)
    assert splits.test["question"].tolist() == ["new one"]
    summary = data_summary(config)
    assert summary.counts == splits.counts and summary.counts["test_questions"] == 1
    assert summary.lines()[-2:] == [
        "1 test question repeats a training question (after normalising); dropped, as asked",
        "Near-duplicate test questions (guide similarity 0.95 or more) are found when the run starts "
        "and dropped then, as asked; the test count may fall",
    ]
    config = RunConfig(pairs=pairs, eval_pairs=test, out=tmp_path / "run")
    assert data_summary(config).lines()[-2:] == [
        "1 test question repeats a training question (after normalising); "
        "kept (tick 'Drop leaked test questions' to drop it)",
        "Near-duplicate test questions (guide similarity 0.95 or more) are counted when the run starts",
    ]


def test_the_run_reports_and_drops_leaks_as_its_summary_said(tiny, tmp_path, cache_dir):
    from adapt.pipeline import run_pipeline

    pairs = write_pairs(tmp_path / "pairs.csv", [(f"how do I grow plant number {i}", f"passage {i}")
                                                 for i in range(12)])
    test = write_pairs(tmp_path / "test.csv", [("How do I grow plant number 3?", "passage 3"),
                                               ("how do i grow plant number 4", "passage 4"),
                                               ("what eats aphids", "ladybirds eat aphids")])
    config = RunConfig(pairs=pairs, eval_pairs=test, out=tmp_path / "run", base=str(tiny["student"]),
                       guide=str(tiny["guide"]), epochs=1, batch_size=16, bootstrap=50, dev_fraction=0.0,
                       drop_leaks=True)
    summary = data_summary(config)
    assert summary.counts["leaks_exact"] == 2 and summary.counts["test_questions"] == 1
    report = run_pipeline(config).report
    near = report["leakage"]["near_duplicates"]
    assert report["leakage"]["exact_or_normalised"] == 2 and report["leakage"]["dropped_exact"] == 2
    assert report["data"]["test_questions"] == summary.counts["test_questions"] - near
    written = pd.read_csv(tmp_path / "run" / "data" / "test.csv")
    assert written["question"].tolist() == ["what eats aphids"]  # (so near is 0: dropping it would leave none)
    assert "ladybirds eat aphids" in set(pd.read_csv(tmp_path / "run" / "data" / "corpus.csv")["passage"])
