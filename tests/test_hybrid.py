"""Hybrid fusion: scores worked by hand, metrics equal to fusing by hand, the choice made on dev alone."""

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from adapt.data import IRData
from adapt.errors import ConfigError
from adapt.evaluate import evaluate_ranked
from adapt.hybrid import (ALPHAS, Candidates, FusionConfig, HybridRetriever, choose_fusion, evaluate_hybrid, fuse,
                          fused_ranking, hybrid_candidates)
from adapt.index import PassageIndex, encode_passages
from adapt.lexical import BM25Index

ONE = Candidates(dense={"a": 0.9, "b": 0.5, "c": 0.1}, lexical={"b": 10.0, "d": 4.0, "a": 6.0})


def test_convex_fusion_by_hand():
    scores = fuse(ONE, FusionConfig("convex", 0.3))
    # dense normalised: a 1, b 0.5, c 0; lexical normalised: b 1, a 1/3, d 0
    assert scores == pytest.approx({"a": 0.3 + 0.7 / 3, "b": 0.15 + 0.7, "c": 0.0, "d": 0.0})
    assert fused_ranking({"q": ONE}, FusionConfig("convex", 0.3))["q"] == ["b", "a", "c", "d"]


def test_rrf_by_hand():
    scores = fuse(ONE, FusionConfig("rrf", None))
    assert scores == pytest.approx({"a": 1 / 61 + 1 / 62, "b": 1 / 62 + 1 / 61, "c": 1 / 63, "d": 1 / 63})
    assert fused_ranking({"q": ONE}, FusionConfig("rrf"))["q"] == ["a", "b", "c", "d"]


def test_hybrid_metrics_equal_fusing_by_hand():
    ir = IRData({"q1": "x", "q2": "y"}, {p: p for p in "abcd"}, {"q1": {"a"}, "q2": {"d"}})
    candidates = {"q1": ONE, "q2": ONE}
    by_hand = {"q1": ["b", "a", "c", "d"], "q2": ["b", "a", "c", "d"]}
    got = evaluate_hybrid(ir, candidates, FusionConfig("convex", 0.3), (1, 10))
    expected = evaluate_ranked(ir, by_hand, (1, 10))
    assert got.metrics == expected.metrics
    assert got.metrics["ndcg@10"] == pytest.approx((1 / np.log2(3) + 1 / np.log2(5)) / 2)
    assert list(got.per_query["rank"]) == [2, 4]


def _scenario(lexical_right: bool, n: int, seed: int) -> tuple[dict, dict]:
    """n queries, relevant passage 'r': BM25 puts it first when ``lexical_right``, else the dense side does."""
    rng = np.random.default_rng(seed)
    candidates, relevant = {}, {}
    for q in range(n):
        others = {f"p{i}": float(s) for i, s in enumerate(rng.uniform(0.2, 0.6, 5))}
        strong, weak = {**others, "r": 0.9}, {**others, "r": 0.1}
        dense, lexical = (weak, {k: 10 * v for k, v in strong.items()}) if lexical_right else \
            (strong, {k: 10 * v for k, v in weak.items()})
        candidates[f"q{q}"] = Candidates(dense, lexical)
        relevant[f"q{q}"] = {"r"}
    return candidates, relevant


def test_fusion_is_chosen_on_dev_only():
    dev, dev_relevant = _scenario(lexical_right=True, n=12, seed=0)
    test, test_relevant = _scenario(lexical_right=False, n=12, seed=1)
    choice = choose_fusion({"base": dev}, dev_relevant)
    assert choice.config == FusionConfig("convex", 0.0, "base")  # dev: BM25 alone is right
    assert choice.dev_score == 1.0 and choice.dev_questions == 12
    assert len(choice.tried) == len(ALPHAS) + 1
    # on test the dense side would have won; the choice does not move
    test_ir = IRData({q: q for q in test}, {}, test_relevant)
    on_test = {cfg: evaluate_hybrid(test_ir, test, FusionConfig("convex", cfg), (10,)).metrics["ndcg@10"]
               for cfg in (0.0, 1.0)}
    assert on_test[1.0] == 1.0 and on_test[0.0] < 1.0
    assert choose_fusion({"base": dev}, dev_relevant).config == choice.config


def test_choice_takes_the_better_dense_side_and_agrees_with_evaluate_hybrid():
    lexical_wrong, relevant = _scenario(lexical_right=False, n=10, seed=2)
    # the base model ranks the relevant passage as badly as BM25 does
    weak_dense = {q: Candidates({k: v / 10 for k, v in c.lexical.items()}, c.lexical) for q, c in lexical_wrong.items()}
    choice = choose_fusion({"base": weak_dense, "finetuned": lexical_wrong}, relevant)
    assert choice.config.dense_system == "finetuned" and choice.dev_score == 1.0
    ir = IRData({q: q for q in relevant}, {}, relevant)
    best = max(choice.tried, key=lambda t: t["ndcg@10"])
    assert best["ndcg@10"] == choice.dev_score
    assert evaluate_hybrid(ir, lexical_wrong, choice.config, (10,)).metrics["ndcg@10"] == choice.dev_score


def test_no_dev_questions_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"^choosing a fusion needs dev questions with candidates from the base "
                                          r"or fine-tuned model; use a dev split \(--dev-fraction above 0\)$"):
        choose_fusion({"base": {}}, {})


@pytest.mark.parametrize("kwargs, message", [
    (dict(method="sum"), "fusion method must be one of convex, rrf, found 'sum'"),
    (dict(alpha=1.5), "convex fusion needs a weight between 0 and 1, found 1.5"),
    (dict(dense_system="hybrid"), "the dense side must be one of base, finetuned, found 'hybrid'"),
])
def test_fusion_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=f"^{message}$"):
        FusionConfig(**kwargs)


def test_retriever_with_all_weight_on_bm25_ranks_as_bm25(tiny):
    model = SentenceTransformer(str(tiny["student"]), device="cpu")
    texts = ["apple scab shows olive green spots on apple leaves", "tomato late blight turns leaves brown",
             "plant garlic cloves two inches deep", "aphids suck sap from young apple shoots"]
    ids = ["p1", "p2", "p3", "p4"]
    index = PassageIndex.build(encode_passages(model, texts), ids, texts)
    bm25 = BM25Index.build(texts, ids)
    hits = HybridRetriever(model, index, bm25, FusionConfig("convex", 0.0)).search("apple leaves", k=3)
    D, I = bm25.search(["apple leaves"], 3)
    matched = [ids[i] for d, i in zip(D[0], I[0]) if d > 0]
    assert len(matched) == 3  # min-max puts BM25's lowest candidate at 0, level with passages it did not return
    assert [h.passage_id for h in hits][:2] == matched[:2]
    assert hits[0].text == texts[ids.index(hits[0].passage_id)] and [h.rank for h in hits] == [1, 2, 3]
    # the retriever fuses exactly the batch candidates
    batch = hybrid_candidates(index, model.encode_query(["apple leaves"]), bm25, {"q": "apple leaves"})
    config = FusionConfig("convex", 0.4)
    assert [h.passage_id for h in HybridRetriever(model, index, bm25, config).search("apple leaves", 4)] == \
        fused_ranking(batch, config)["q"]
