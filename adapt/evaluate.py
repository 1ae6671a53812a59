"""Retrieval metrics over ranked lists, per query and averaged.

The definitions are sentence-transformers' ``InformationRetrievalEvaluator``'s, hits ordered by
score and ties broken by passage id the same way, so the numbers agree with it to float precision
(tests/test_evaluate.py checks this). Keeping per-query values lets the report bootstrap intervals
and show which questions improved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from adapt.data import IRData
from adapt.index import PassageIndex

METRICS = ("accuracy", "precision", "recall", "mrr", "ndcg", "map")
RANK_DEPTH = 100  # how deep per-query ranks are looked for
# The one metric dev decides by: the training checkpoint kept, the hybrid fusion and the recommended system.
DEV_METRIC = "ndcg@10"


@dataclass
class Evaluation:
    metrics: dict[str, float]  # "ndcg@10" -> mean over queries
    per_query: pd.DataFrame  # one row per query: query_id, question, rank (of the first relevant), metric columns


def metric_keys(ks: tuple[int, ...]) -> list[str]:
    return [f"{name}@{k}" for name in METRICS for k in ks]


def query_metrics(ranked: list[str], relevant: set[str], ks: tuple[int, ...]) -> dict[str, float]:
    """Every metric at every cut-off for one query; ``ranked`` is ordered best first."""
    hits = np.array([pid in relevant for pid in ranked], dtype=float)
    first = int(np.argmax(hits)) + 1 if hits.any() else None
    discounts = 1.0 / np.log2(np.arange(2, len(ranked) + 2))
    out: dict[str, float] = {}
    for k in ks:
        top = hits[:k]
        found = top.sum()
        out[f"accuracy@{k}"] = float(found > 0)
        out[f"precision@{k}"] = found / k
        out[f"recall@{k}"] = found / len(relevant)
        out[f"mrr@{k}"] = 1.0 / first if first is not None and first <= k else 0.0
        ideal = (1.0 / np.log2(np.arange(2, min(len(relevant), k) + 2))).sum()
        out[f"ndcg@{k}"] = float((top * discounts[: len(top)]).sum() / ideal)
        precision_at_hit = np.cumsum(top) / np.arange(1, len(top) + 1)
        out[f"map@{k}"] = float((precision_at_hit * top).sum() / min(k, len(relevant)))
    return out


def order_hits(scores: np.ndarray, ids: list[str]) -> list[str]:
    """Best first; equal scores ordered by passage id, as the sentence-transformers evaluator does."""
    return [pid for _, pid in sorted(zip((-s for s in scores), ids))]


def evaluate_ranked(ir: IRData, ranked: dict[str, list[str]], ks: tuple[int, ...]) -> Evaluation:
    """Metrics from a ranked passage-id list per query id (best first, at least max(ks) long)."""
    rows = []
    for qid, question in ir.queries.items():
        relevant = ir.relevant_docs[qid]
        order = ranked[qid]
        rank = next((i for i, pid in enumerate(order, start=1) if pid in relevant), None)
        rows.append({"query_id": qid, "question": question, "rank": rank,
                     **query_metrics(order[: max(ks)], relevant, ks)})
    per_query = pd.DataFrame(rows)
    per_query["rank"] = per_query["rank"].astype("Int64")
    metrics = {key: float(per_query[key].mean()) for key in metric_keys(ks)}
    return Evaluation(metrics, per_query)


def evaluate_index(index: PassageIndex, query_vectors: np.ndarray, ir: IRData, ks: tuple[int, ...],
                   depth: int = RANK_DEPTH) -> Evaluation:
    """Search every query through ``index`` and score the results."""
    D, I = index.search(query_vectors, max(depth, max(ks)))
    ranked = {}
    for qid, scores, rows in zip(ir.queries, D, I):
        keep = rows >= 0
        ranked[qid] = order_hits(scores[keep], [index.ids[r] for r in rows[keep]])
    return evaluate_ranked(ir, ranked, ks)
