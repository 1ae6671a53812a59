"""The real bundled all-MiniLM-L6-v2, end to end on the bundled sample (slow, still run in CI)."""

import pytest

from adapt.config import RunConfig
from adapt.pipeline import run_pipeline
from adapt.runs import open_run


@pytest.mark.slow
def test_real_minilm_fine_tunes_and_retrieves(sample_pairs, sample_corpus, tmp_path, cache_dir):
    out = tmp_path / "run"
    result = run_pipeline(RunConfig(pairs=sample_pairs, corpus=sample_corpus, out=out, base="minilm",
                                    guide="minilm", epochs=1, bootstrap=200))
    report = result.report
    assert report["models"]["base"]["resolved"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert report["models"]["base"]["parameters"] == pytest.approx(22.7e6, rel=0.01)
    assert report["models"]["base"]["dimension"] == 384
    # a real pretrained model finds agriculture answers far better than chance or a random model
    assert report["metrics"]["base"]["ndcg@10"] > 0.6
    assert report["metrics"]["finetuned"]["ndcg@10"] > 0.6
    assert report["training"]["guide"]["texts"] > 100

    run = open_run(out)
    question = next(iter(run.test.queries.values()))
    hits = run.retriever("finetuned").search(question, 5)
    assert len(hits) == 5 and hits[0].score >= hits[-1].score
