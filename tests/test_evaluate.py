"""Metrics against hand-worked cases and against sentence-transformers' InformationRetrievalEvaluator."""

import math

import numpy as np
import pandas as pd
import pytest
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

from adapt.data import IRData, ir_data
from adapt.evaluate import evaluate_index, evaluate_ranked, order_hits, query_metrics
from adapt.index import PassageIndex, encode_passages, encode_queries


def test_hand_worked_single_query():
    # relevant: b and d; ranking a, b, c, d, e
    m = query_metrics(["a", "b", "c", "d", "e"], {"b", "d"}, (1, 3, 5))
    assert m["accuracy@1"] == 0 and m["accuracy@3"] == 1
    assert m["precision@3"] == pytest.approx(1 / 3) and m["precision@5"] == pytest.approx(2 / 5)
    assert m["recall@3"] == pytest.approx(1 / 2) and m["recall@5"] == 1
    assert m["mrr@1"] == 0 and m["mrr@3"] == pytest.approx(1 / 2)
    dcg5 = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3)
    assert m["ndcg@5"] == pytest.approx(dcg5 / idcg)
    assert m["ndcg@3"] == pytest.approx((1 / math.log2(3)) / idcg)
    assert m["map@5"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert m["map@1"] == 0


def test_no_relevant_in_top_k_scores_zero():
    m = query_metrics(["x", "y"], {"z"}, (1, 2))
    assert all(value == 0 for value in m.values())


def test_mean_over_queries_and_ranks():
    ir = IRData({"q1": "one", "q2": "two"}, {"a": "", "b": "", "c": ""}, {"q1": {"a"}, "q2": {"c"}})
    evaluation = evaluate_ranked(ir, {"q1": ["a", "b", "c"], "q2": ["a", "b", "c"]}, (1, 3))
    assert evaluation.metrics["accuracy@1"] == 0.5
    assert evaluation.metrics["mrr@3"] == pytest.approx((1 + 1 / 3) / 2)
    assert list(evaluation.per_query["rank"]) == [1, 3]


def test_ties_are_broken_by_passage_id():
    assert order_hits(np.array([0.5, 0.9, 0.5]), ["d2", "d1", "d0"]) == ["d1", "d0", "d2"]


@pytest.mark.parametrize("ks", [(1, 3, 5, 10), (2, 7)])
def test_equals_information_retrieval_evaluator(tiny, sample_pairs, ks):
    pairs = pd.read_csv(sample_pairs).head(120)
    corpus = pd.DataFrame({"passage": list(dict.fromkeys(pairs["passage"]))})
    corpus["passage_id"] = [f"d{i}" for i in range(len(corpus))]
    ir = ir_data(pairs, corpus)
    model = SentenceTransformer(str(tiny["student"]), device="cpu")

    index = PassageIndex.build(encode_passages(model, list(ir.corpus.values())), list(ir.corpus),
                               list(ir.corpus.values()), kind="flat")
    ours = evaluate_index(index, encode_queries(model, list(ir.queries.values())), ir, ks).metrics

    evaluator = InformationRetrievalEvaluator(
        ir.queries, ir.corpus, ir.relevant_docs, mrr_at_k=list(ks), ndcg_at_k=list(ks), accuracy_at_k=list(ks),
        precision_recall_at_k=list(ks), map_at_k=list(ks), write_csv=False, name="t")
    theirs = {key.split("_cosine_", 1)[1]: value for key, value in evaluator(model).items() if "_cosine_" in key}
    assert set(theirs) == set(ours)
    for key in ours:
        assert ours[key] == pytest.approx(theirs[key], abs=1e-6), key
