"""End to end through the library call, with tiny models: every number in report.json is recomputed
from the files the run saved."""

import json
import math
from types import SimpleNamespace

import pandas as pd
import pytest

from adapt import padding, pipeline
from adapt.config import RunConfig, auto_epochs
from adapt.data import ir_data
from adapt.evaluate import evaluate_index
from adapt.explain import about_text, planned_text
from adapt.files import MARKER
from adapt.index import PassageIndex, encode_queries
from adapt.hybrid import FusionConfig, evaluate_hybrid, hybrid_candidates
from adapt.lexical import BM25Index, evaluate_bm25
from adapt.pipeline import run_pipeline
from adapt.runs import load_model, open_run
from app import jobs

TIMED = [stage for stage in pipeline.STAGES if stage != "guide"]  # "guide" reports from inside "train"


def report_text(report: dict) -> str:
    return about_text(report)["Training"]


def tiny_config(tiny, pairs, out, **overrides) -> RunConfig:
    settings = dict(pairs=pairs, out=out, base=str(tiny["student"]), guide=str(tiny["guide"]), epochs=1,
                    batch_size=16, bootstrap=200)
    settings.update(overrides)
    return RunConfig(**settings)


def recomputed(out, which: str, split: str, ks) -> dict:
    """Metrics of the saved model searching its saved index, for data/<split>.csv."""
    run = open_run(out)
    questions = pd.read_csv(out / "data" / f"{split}.csv", dtype=str, keep_default_na=False)
    ir = ir_data(questions, pd.read_csv(out / "data" / "corpus.csv", dtype=str, keep_default_na=False))
    vectors = encode_queries(load_model(run, which), list(ir.queries.values()))
    return evaluate_index(PassageIndex.load(out / "index" / which), vectors, ir, ks).metrics


def fused_by_hand(out, fusion: dict, ks) -> dict:
    """The saved BM25 index and the saved dense side, fused with the fusion report.json names."""
    run = open_run(out)
    system = fusion["dense_system"]
    vectors = encode_queries(load_model(run, system), list(run.test.queries.values()))
    candidates = hybrid_candidates(PassageIndex.load(out / "index" / system), vectors,
                                   BM25Index.load(out / "index" / "bm25"), run.test.queries)
    return evaluate_hybrid(run.test, candidates, FusionConfig(**fusion), ks).metrics


def test_pipeline_writes_a_complete_run(tiny, sample_pairs, sample_corpus, tmp_path, cache_dir):
    out = tmp_path / "run"
    stages = []
    config = tiny_config(tiny, sample_pairs, out, corpus=sample_corpus)
    result = run_pipeline(config, progress=lambda stage, done, total: stages.append(stage))
    report = json.loads((out / "report.json").read_text())
    assert report == json.loads(json.dumps(result.report, default=str))

    for system in ("base", "finetuned"):
        assert report["metrics"][system] == pytest.approx(recomputed(out, system, "test", config.k), abs=1e-6)
        assert report["dev"][system] == pytest.approx(recomputed(out, system, "dev", (10,))["ndcg@10"], abs=1e-6)
    assert report["metrics"]["bm25"] == pytest.approx(evaluate_bm25(open_run(out).test, config.k).metrics)
    dev = report["dev"]
    best = max(("finetuned", "hybrid"), key=lambda system: dev[system])
    interval = report["recommendation"]["dev_interval"]
    expected = best if dev[best] > dev["base"] and interval["low"] > 0 else "base"
    assert report["recommended"] == expected and report["recommendation"]["dev_questions"] == dev["questions"]
    assert report["metrics"]["hybrid"] == pytest.approx(fused_by_hand(out, report["hybrid"]["fusion"], config.k))
    assert report["headline"]["system"] == (expected if expected != "base" else "finetuned")

    negatives = report["hard_negatives"]
    assert negatives["per_question"] == 1 and negatives["pairs"] == report["data"]["train_pairs"]
    assert negatives["kept"] + negatives["filled_random"] == negatives["pairs"]
    assert 0 <= negatives["removed"] <= negatives["candidates"] and len(negatives["examples"]) <= 5

    corpus = pd.read_csv(out / "data" / "corpus.csv")
    assert report["data"]["corpus_size"] == len(corpus)
    assert report["data"]["extra_passages"] == 161
    assert report["data"]["test_questions"] == len(open_run(out).test.queries)
    assert (out / "model" / "modules.json").exists()

    assert stages[0] == "data" and stages[-1] == "report"
    # "guide" reports only batches it encodes: here mining the negatives already filled the guide cache
    assert set(stages) | {"guide"} == set(pipeline.STAGES) and list(jobs.STAGES) == list(pipeline.STAGES)
    assert list(report["timings"]) == TIMED  # the report stage times itself too, up to writing report.json
    assert 0 < report["timings"]["report"] <= result.timings["report"]
    assert list(result.timings) == TIMED
    assert (out / MARKER).is_file()
    assert not (out / ".staging").exists() and not (out / ".lock").exists()


def test_without_a_dev_set_nothing_is_chosen_and_training_runs_every_epoch(tiny, sample_pairs, tmp_path, cache_dir):
    result = run_pipeline(tiny_config(tiny, sample_pairs, tmp_path / "run", dev_fraction=0.0, k=(1, 5), epochs=None))
    report = result.report
    assert report["dev"]["base"] is None and report["data"]["dev_questions"] == 0
    assert report["recommended"] == "base" and report["hybrid"] is None and "hybrid" not in report["metrics"]
    assert report["verdict"].startswith("There are no dev questions to choose a system on")
    # no epochs set: as many as make 40 steps (one mined negative a pair, so one row a pair)
    per_epoch = math.ceil(report["data"]["train_pairs"] / 16)
    planned = math.ceil(40 / per_epoch)
    assert 1 < planned <= 3 and report["training"]["planned_epochs"] == planned
    assert report["training"]["epochs"] == float(planned) and report["training"]["steps"] == planned * per_epoch
    assert report["training"]["best_step"] is None
    assert f"({planned}.00 epochs of {planned} planned, chosen to make at least 40 steps)" in report_text(report)
    assert report["training"]["slice_rows"] == padding.SLICE_ROWS  # a CPU run trains in length-sorted slices
    assert set(report["significance"]) == {"accuracy@1"}


@pytest.mark.parametrize(("rows", "batch", "processes", "epochs"), [
    (392, 32, 1, 3),  # agxqa: 13 steps an epoch, three epochs (39 steps), capped at 3
    (480, 32, 1, 3),  # 15 steps: 45
    (825, 32, 1, 2),  # scifact: 26 steps, two epochs
    (1248, 32, 1, 2),  # 39 steps: one short of 40
    (1280, 32, 1, 1),  # exactly 40 steps: one epoch
    (1519, 32, 1, 1),  # askextension: 48 steps
    (1519, 32, 2, 2),  # two processes share each epoch's 47 full batches: 23 steps each
    (1260, 32, 2, 3),  # 39 full batches: 19 steps each, so two epochs would be 38
    (2560, 32, 2, 1),  # 80 full batches: 40 steps each
    (2500, 32, 2, 2),  # 78 full batches: 39 steps each
    (1, 32, 1, 3),  # one step an epoch: still at most three
])
def test_epochs_left_unset_make_at_least_40_steps_within_one_to_three(rows, batch, processes, epochs):
    assert auto_epochs(rows, batch, processes) == epochs


def test_planned_epochs_are_called_chosen_only_when_the_run_set_none():
    assert planned_text({"config": {"epochs": 2}, "training": {"planned_epochs": 2}}) == " of 2 planned"
    assert planned_text({"config": {"epochs": None}, "training": {"planned_epochs": 3}}) == (
        " of 3 planned, chosen to make at least 40 steps")
    assert planned_text({"config": {"epochs": 3}, "training": {}}) == ""  # a run from before planned_epochs


def test_with_epochs_unset_the_training_key_holds_the_process_count(monkeypatch):
    config = RunConfig(pairs="pairs.csv")
    assert pipeline.processes_for_epochs(config) == ()  # one process: the key single runs always had
    monkeypatch.setattr(pipeline.distributed, "world", lambda: SimpleNamespace(size=2))
    assert pipeline.processes_for_epochs(config) == ("processes", 2)  # two share each epoch: other epochs
    assert pipeline.processes_for_epochs(RunConfig(pairs="pairs.csv", epochs=2)) == ()
