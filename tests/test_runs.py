"""Opening a finished run: its systems come back from the saved indexes, models load once."""

import json
import shutil

import pytest
from sentence_transformers import SentenceTransformer

from adapt.errors import RunError
from adapt.hybrid import FusionConfig, HybridRetriever
from adapt.index import PassageIndex
from adapt.lexical import BM25Index
from adapt.runs import open_run
from tests.test_cli import count_loads, finished  # noqa: F401  (finished: the shared run, a fixture)


def test_hybrid_retriever_equals_one_built_by_hand(finished):
    run = open_run(finished)
    fusion = run.report["hybrid"]["fusion"]
    dense = fusion["dense_system"]
    model = SentenceTransformer(str(finished / "model"), device="cpu") if dense == "finetuned" else \
        SentenceTransformer(run.report["models"]["base"]["path"], device="cpu")
    by_hand = HybridRetriever(model, PassageIndex.load(finished / "index" / dense),
                              BM25Index.load(finished / "index" / "bm25"), FusionConfig(**fusion))
    loaded = run.retriever("hybrid")
    assert loaded.config == FusionConfig(**fusion)
    for question in list(run.test.queries.values())[:5] + ["aphids on roses", "zzz"]:
        got = [(h.rank, h.passage_id, round(h.score, 6), h.text) for h in loaded.search(question, 10)]
        expected = [(h.rank, h.passage_id, round(h.score, 6), h.text) for h in by_hand.search(question, 10)]
        assert got == expected and len(got) == 10


def test_each_model_loads_once_per_run(finished, monkeypatch):
    loads = count_loads(monkeypatch)
    run = open_run(finished)
    assert run.systems() == ["base", "finetuned", "hybrid"]
    for system in run.systems():
        run.retriever(system).search("aphids", 3)
    run.retriever("base").search("aphids", 3)
    assert sorted(loads) == ["base", "finetuned"]


def test_a_run_without_hybrid_says_so(finished, tmp_path):
    copy = tmp_path / "old"
    shutil.copytree(finished, copy)
    report = json.loads((copy / "report.json").read_text())
    report["hybrid"] = None
    (copy / "report.json").write_text(json.dumps(report))
    run = open_run(copy)
    assert run.systems() == ["base", "finetuned"]
    with pytest.raises(RunError) as caught:
        run.retriever("hybrid")
    assert str(caught.value) == (
        f"run '{copy}' has no hybrid search (it was made without a dev set, or before adapt had hybrid search); "
        "search its base or fine-tuned model, or run adapt.run again with a dev split to get one")


def test_a_damaged_fusion_is_a_run_error(finished, tmp_path):
    copy = tmp_path / "bad"
    shutil.copytree(finished, copy)
    report = json.loads((copy / "report.json").read_text())
    report["hybrid"]["fusion"] = {"method": "mean", "alpha": 0.5, "dense_system": "base"}
    (copy / "report.json").write_text(json.dumps(report))
    with pytest.raises(RunError) as caught:
        open_run(copy).retriever("hybrid")
    assert str(caught.value) == (
        f"'{copy / 'report.json'}' has a damaged hybrid fusion (fusion method must be one of convex, rrf, "
        "found 'mean'); run adapt.run again to rebuild the run")


def test_unknown_system_is_refused(finished):
    with pytest.raises(ValueError, match="which must be one of 'base', 'finetuned', 'hybrid', not 'bm25'"):
        open_run(finished).retriever("bm25")
