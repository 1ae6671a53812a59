"""The command line, end to end, with tiny models."""

import csv
import json
import os
import shutil
import subprocess
import sys

import pandas as pd
from sentence_transformers import SentenceTransformer

from adapt import run, search
from adapt.runs import open_run
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
    assert "| metric | base | fine-tuned | change | hybrid | bm25 |" in markdown

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

    finished = open_run(out)
    qid = next(q for q, text in finished.test.queries.items() if text == question)
    relevant = finished.test.relevant_docs[qid]
    lines = shown.splitlines()
    assert lines[0] == f"Query: {question}"
    assert lines[2].startswith("Base") and lines[2].endswith("| Fine-tuned")
    for which, side in (("base", 0), ("finetuned", 1)):
        hits = finished.retriever(which).search(question, 3)
        assert len(hits) == 3
        for hit in hits:
            head = f"{hit.rank}. [{hit.score:.3f}] {hit.passage_id}" + (" *" if hit.passage_id in relevant else "")
            assert any(line.split(" | ")[side].strip() == head for line in lines if " | " in line), head
    assert lines[-1] == "* a relevant passage for this test question"


def test_files_for_people_neutralise_formulas_and_markup(tiny, sample_pairs, tmp_path, cache_dir, capsys):
    pairs = pd.read_csv(sample_pairs)
    starts = ["=", "+", "-", "@"]  # (a leading tab or CR is stripped when the pairs are cleaned)
    pairs["question"] = [starts[i % len(starts)] + q for i, q in enumerate(pairs["question"])]
    pairs.to_csv(tmp_path / "hostile.csv", index=False)
    base = tmp_path / "m<script>alert(1)"
    shutil.copytree(tiny["student"], base)
    out = tmp_path / "run"
    args = cli_args(tiny, tmp_path / "hostile.csv", out)
    args[args.index("--base") + 1] = str(base)
    assert run.main(args) == 0

    exact = list(dict.fromkeys(pd.read_csv(out / "data" / "test.csv", keep_default_na=False)["question"]))
    assert all(q[0] in "=+-@" for q in exact)  # data/ keeps the exact text
    with open(out / "per_query.csv", newline="") as handle:
        cells = [row["question"] for row in csv.DictReader(handle)]
    assert cells == ["'" + q for q in exact]  # a spreadsheet shows them as text
    assert list(open_run(out).per_query["question"]) == exact  # and reading back gives the exact text
    markdown = (out / "report.md").read_text()
    assert "<script>" not in markdown and "/m&lt;script&gt;alert(1), " in markdown


def test_search_of_a_missing_run_is_a_clean_error(tmp_path, capsys):
    assert search.main([str(tmp_path / "nope"), "aphids"]) == 1
    assert capsys.readouterr().err.strip() == (
        f"Error: run directory '{tmp_path / 'nope'}' not found; pass the --out folder of a finished adapt.run")


def test_bad_setting_is_a_clean_error(tiny, sample_pairs, tmp_path, capsys):
    assert run.main(cli_args(tiny, sample_pairs, tmp_path / "r", "--eval-fraction", "1.5")) == 1
    assert capsys.readouterr().err.strip() == (
        "Error: --eval-fraction must be a number between 0 and 1, e.g. 0.2; got '1.5'")
    assert not (tmp_path / "r").exists()


def test_python_dash_m_adapt_run(tiny, sample_pairs, tmp_path, cache_dir):
    out = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "adapt.run", *cli_args(tiny, sample_pairs, out), "-q"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert (out / "report.json").exists()
