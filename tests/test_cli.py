"""The command line, end to end, with tiny models."""

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from sentence_transformers import SentenceTransformer

from adapt import run, runs, search
from adapt.runs import open_run
from tests.conftest import ROOT, SAMPLE_PAIRS


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


@pytest.fixture(scope="module")
def finished(tiny_models, tmp_path_factory):
    """One tiny run shared by a module's search tests (a test that changes it works on a copy)."""
    root = tmp_path_factory.mktemp("finished")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ADAPT_CACHE", str(root / "cache"))
        assert run.main(cli_args(tiny_models, SAMPLE_PAIRS, root / "run", "-q")) == 0
    return root / "run"


def shown_heads(lines: list[str], side: int) -> list[str]:
    cells = [line.split(" | ")[side] for line in lines if " | " in line]
    return [cell.strip() for cell in cells if cell[:1].isdigit()]


def count_loads(monkeypatch) -> list[str]:
    """The systems whose model adapt.runs loads from now on, one entry per load."""
    loads = []
    real = runs.load_model
    monkeypatch.setattr(runs, "load_model", lambda r, which, trust=False: loads.append(which) or real(r, which, trust))
    return loads


def test_search_shows_every_system_side_by_side(finished, capsys):
    out = finished
    question = pd.read_csv(out / "data" / "test.csv")["question"].iloc[0]
    assert search.main([str(out), question, "-k", "3"]) == 0
    shown = capsys.readouterr().out

    done = open_run(out)
    qid = next(q for q, text in done.test.queries.items() if text == question)
    relevant = done.test.relevant_docs[qid]
    lines = shown.splitlines()
    assert lines[0] == f"Query: {question}"
    assert [title.strip() for title in lines[2].split(" | ")] == ["Base", "Fine-tuned", "Hybrid"]
    for side, which in enumerate(("base", "finetuned", "hybrid")):
        hits = done.retriever(which).search(question, 3)
        assert [h.rank for h in hits] == [1, 2, 3]
        assert shown_heads(lines, side) == [f"{h.rank}. [{h.score:.3f}] {h.passage_id}"
                                            + (" *" if h.passage_id in relevant else "") for h in hits]
    assert lines[-1] == "* a relevant passage for this test question"


def test_search_reads_piped_questions_with_models_loaded_once(finished, monkeypatch, capsys):
    loads = count_loads(monkeypatch)
    questions = list(pd.read_csv(finished / "data" / "test.csv")["question"].drop_duplicates()[:2])
    assert search.main([str(finished), "-k", "2"], stdin=io.StringIO(f"{questions[0]}\n\n{questions[1]}\n")) == 0
    shown = capsys.readouterr().out
    assert [line for line in shown.splitlines() if line.startswith("Query: ")] == [f"Query: {q}" for q in questions]
    assert sorted(loads) == ["base", "finetuned"]  # hybrid's dense side reuses one of them
    assert len(shown_heads(shown.splitlines(), 2)) == 4  # two hybrid hits for each question


def test_search_without_hybrid_shows_two_columns(finished, tmp_path, capsys):
    copy = tmp_path / "old"
    shutil.copytree(finished, copy)
    report = json.loads((copy / "report.json").read_text())
    del report["hybrid"]
    (copy / "report.json").write_text(json.dumps(report))
    assert search.main([str(copy), "aphids on roses", "-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [title.strip() for title in lines[2].split(" | ")] == ["Base", "Fine-tuned"]
    assert "* a relevant passage" not in lines[-1]  # a typed question has no known answers


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


def test_run_shows_a_bar_per_stage_and_no_trainer_dicts(tiny, sample_pairs, tmp_path, cache_dir, capsys):
    assert run.main(cli_args(tiny, sample_pairs, tmp_path / "run", "--eval-steps", "2")) == 0
    err = capsys.readouterr().err
    assert "{'loss'" not in err and "train step" not in err and "Stage:" not in err
    lines = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", err).replace("\r", "\n").split("\n")  # without cursor moves
    drawn = [line[:17].strip() for line in lines
             if line.strip() and not line.startswith("Computing widget")]  # sentence-transformers' own, erased
    assert list(dict.fromkeys(drawn)) == ["data", "models", "leakage", "encode base", "index base", "evaluate base",
                                          "negatives", "train", "encode fine-tuned", "index fine-tuned", "evaluate",
                                          "hybrid", "report"]
    assert re.search(r"^train +100%\|█+\| (\d+)/\1 \[\d\d:\d\d<00:00", err.replace("\r", "\n"), re.M)


def test_verbose_run_logs_the_trainer_numbers(tiny, sample_pairs, tmp_path, cache_dir, capsys):
    assert run.main(cli_args(tiny, sample_pairs, tmp_path / "run", "--eval-steps", "2", "-v")) == 0
    err = capsys.readouterr().err
    assert "{'loss'" not in err
    err = err.replace("\r", "\n")  # a log line clears the bar's line first
    assert re.search(r"^train step \d+/\d+: loss \d", err, re.M)
    assert re.search(r"^train step \d+/\d+: eval_dev_.*, eval_dev_cosine_ndcg@10 0\.\d+, ", err, re.M)
    assert "Stage: train" in err
