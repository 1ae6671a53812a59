"""The command line, end to end, with tiny models."""

import json
import os
import subprocess
import sys

import pandas as pd
from sentence_transformers import SentenceTransformer

from adapt import run, search
from tests.conftest import ROOT


def cli_args(tiny, pairs, out, *extra):
    return [str(pairs), "--out", str(out), "--base", str(tiny["student"]), "--guide", str(tiny["guide"]),
            "--epochs", "1", "--batch-size", "16", "--bootstrap", "200", *extra]


def test_run_writes_a_complete_report(tiny, sample_pairs, sample_corpus, tmp_path, cache_dir, capsys):
    out = tmp_path / "run"
    assert run.main(cli_args(tiny, sample_pairs, out, "--corpus", str(sample_corpus), "--k", "1,5,10")) == 0
    printed = capsys.readouterr().out
    assert "ndcg@10" in printed and "Wrote" in printed

    report = json.loads((out / "report.json").read_text())
    for system in ("base", "finetuned"):
        assert set(report["metrics"][system]) == {f"{m}@{k}" for m in
                                                  ("accuracy", "precision", "recall", "mrr", "ndcg", "map")
                                                  for k in (1, 5, 10)}
    assert report["models"]["base"]["requested"] == str(tiny["student"])
    assert report["models"]["guide"]["resolved"] == str(tiny["guide"])
    data = report["data"]
    assert data["input"]["rows_read"] == len(pd.read_csv(sample_pairs))
    assert data["train_pairs"] + data["dev_pairs"] + data["test_pairs"] == data["input"]["pairs"]
    assert {"data", "models", "encode base", "train", "evaluate"} <= set(report["timings"])
    assert report["config"]["k"] == [1, 5, 10] and report["config"]["epochs"] == 1
    assert set(report["significance"]) == {"ndcg@10", "mrr@10", "accuracy@1"}

    markdown = (out / "report.md").read_text()
    assert "| metric | base | fine-tuned | change | BM25 |" in markdown

    per_query = pd.read_csv(out / "per_query.csv")
    assert list(per_query.columns[:4]) == ["query_id", "question", "relevant_ids", "base_rank"]
    assert len(per_query) == data["test_questions"]

    test = pd.read_csv(out / "data" / "test.csv")
    train = pd.read_csv(out / "data" / "train.csv")
    assert not set(test["question"]) & set(train["question"])
    assert len(pd.read_csv(out / "data" / "corpus.csv")) == data["corpus_size"]

    tuned = SentenceTransformer(str(out / "model"), device="cpu")
    assert tuned.encode(["aphids on roses"]).shape == (1, 32)


def test_search_shows_both_models_side_by_side(tiny, sample_pairs, tmp_path, cache_dir, capsys):
    out = tmp_path / "run"
    assert run.main(cli_args(tiny, sample_pairs, out)) == 0
    capsys.readouterr()
    question = pd.read_csv(out / "data" / "test.csv")["question"].iloc[0]
    assert search.main([str(out), question, "-k", "3"]) == 0
    shown = capsys.readouterr().out
    assert shown.splitlines()[2].startswith("Base") and "| Fine-tuned" in shown
    assert shown.count("[") >= 6  # three scored hits per column
    assert "* a relevant passage for this test question" in shown


def test_search_of_a_missing_run_is_a_clean_error(tmp_path, capsys):
    assert search.main([str(tmp_path / "nope"), "aphids"]) == 1
    assert capsys.readouterr().err.strip() == (
        f"Error: run directory '{tmp_path / 'nope'}' not found; pass the --out folder of a finished adapt.run")


def test_bad_setting_is_a_clean_error(tiny, sample_pairs, tmp_path, capsys):
    assert run.main(cli_args(tiny, sample_pairs, tmp_path / "r", "--eval-fraction", "1.5")) == 1
    assert capsys.readouterr().err.strip() == "Error: --eval-fraction must be a number between 0 and 1, e.g. 0.2; got '1.5'"
    assert not (tmp_path / "r").exists()


def test_python_dash_m_adapt_run(tiny, sample_pairs, tmp_path, cache_dir):
    out = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "adapt.run", *cli_args(tiny, sample_pairs, out), "-q"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert (out / "report.json").exists()
