"""End to end through the library call, with tiny models."""

import json

import pandas as pd

from adapt.config import RunConfig
from adapt import pipeline
from adapt.pipeline import run_pipeline
from app import jobs


def tiny_config(tiny, pairs, out, **overrides) -> RunConfig:
    settings = dict(pairs=pairs, out=out, base=str(tiny["student"]), guide=str(tiny["guide"]), epochs=1,
                    batch_size=16, bootstrap=200)
    settings.update(overrides)
    return RunConfig(**settings)


def test_pipeline_writes_a_complete_run(tiny, sample_pairs, sample_corpus, tmp_path, cache_dir):
    out = tmp_path / "run"
    stages = []
    result = run_pipeline(tiny_config(tiny, sample_pairs, out, corpus=sample_corpus),
                          progress=lambda stage, done, total: stages.append(stage))
    report = json.loads((out / "report.json").read_text())
    assert set(report["metrics"]) == {"base", "finetuned", "bm25"}
    for system in ("base", "finetuned"):
        assert {"accuracy@1", "mrr@10", "ndcg@10", "map@10", "precision@5", "recall@3"} <= set(report["metrics"][system])
    assert report["data"]["corpus_size"] == len(pd.read_csv(out / "data" / "corpus.csv"))
    assert report["data"]["extra_passages"] == 161
    assert (out / "model" / "modules.json").exists()
    assert "train" in stages and "encode base" in stages
    assert set(stages) <= set(pipeline.STAGES)
    assert list(jobs.STAGES) == list(pipeline.STAGES)  # the app has a label for each
    assert result.report["recommended"] in ("base", "finetuned")
    assert not (out / ".staging").exists() and not (out / ".lock").exists()


def test_without_a_dev_set_the_test_set_decides_and_training_runs_every_epoch(tiny, sample_pairs, tmp_path,
                                                                              cache_dir):
    result = run_pipeline(tiny_config(tiny, sample_pairs, tmp_path / "run", dev_fraction=0.0, k=(1, 5)))
    report = result.report
    assert report["dev"]["base"] is None and report["data"]["dev_questions"] == 0
    assert "on test (no dev set) NDCG@5" in report["verdict"]
    assert report["training"]["epochs"] == 1.0 and report["training"]["best_step"] is None
    assert set(report["significance"]) == {"accuracy@1"}
