"""End to end through the library call, with tiny models: every number in report.json is recomputed
from the files the run saved."""

import json

import pandas as pd
import pytest

from adapt import pipeline
from adapt.config import RunConfig
from adapt.data import ir_data
from adapt.evaluate import evaluate_index
from adapt.files import MARKER
from adapt.index import PassageIndex, encode_queries
from adapt.lexical import evaluate_bm25
from adapt.pipeline import run_pipeline
from adapt.runs import load_model, open_run
from app import jobs

TIMED = [stage for stage in pipeline.STAGES if stage != "guide"]  # "guide" reports from inside "train"


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
    better = report["dev"]["finetuned"] > report["dev"]["base"]
    assert report["recommended"] == ("finetuned" if better else "base")

    corpus = pd.read_csv(out / "data" / "corpus.csv")
    assert report["data"]["corpus_size"] == len(corpus)
    assert report["data"]["extra_passages"] == 161
    assert report["data"]["test_questions"] == len(open_run(out).test.queries)
    assert (out / "model" / "modules.json").exists()

    assert stages[0] == "data" and stages[-1] == "report"
    assert set(stages) == set(pipeline.STAGES) and list(jobs.STAGES) == list(pipeline.STAGES)
    assert list(report["timings"]) == TIMED  # the report stage times itself too, up to writing report.json
    assert 0 < report["timings"]["report"] <= result.timings["report"]
    assert list(result.timings) == TIMED
    assert (out / MARKER).is_file()
    assert not (out / ".staging").exists() and not (out / ".lock").exists()


def test_without_a_dev_set_the_test_set_decides_and_training_runs_every_epoch(tiny, sample_pairs, tmp_path,
                                                                              cache_dir):
    result = run_pipeline(tiny_config(tiny, sample_pairs, tmp_path / "run", dev_fraction=0.0, k=(1, 5)))
    report = result.report
    assert report["dev"]["base"] is None and report["data"]["dev_questions"] == 0
    base, tuned = report["metrics"]["base"]["ndcg@5"], report["metrics"]["finetuned"]["ndcg@5"]
    assert report["recommended"] == ("finetuned" if tuned > base else "base")
    assert f"on test (no dev set) NDCG@5 ({tuned:.4f} vs {base:.4f})" in report["verdict"]
    assert report["training"]["epochs"] == 1.0 and report["training"]["best_step"] is None
    assert set(report["significance"]) == {"accuracy@1"}
