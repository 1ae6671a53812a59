"""Hybrid search: a dense index and BM25, fused per query, with the fusion chosen on dev.

Each side returns its top ``DEPTH`` passages. Two fusions:

- ``convex``: each side's scores min-max normalised over that query's candidates, then
  ``alpha * dense + (1 - alpha) * lexical``; a passage one side did not return gets 0 there.
  Bruch et al. (arXiv 2210.11934) find it beats reciprocal rank fusion in-domain and that its one
  weight can be set from a few labelled queries.
- ``rrf``: reciprocal rank fusion, ``sum 1 / (60 + rank)`` over the sides that returned the passage.

Neither wins on every corpus, so ``choose_fusion`` tries both, the weight on a 0.0..1.0 grid, and
the base or the fine-tuned model as the dense side, and keeps what scores best by dev NDCG@10.
Test questions never take part in the choice. BM25 hits scoring 0 share no word with the question
and are not candidates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from adapt.data import IRData
from adapt.errors import ConfigError
from adapt.evaluate import DEV_METRIC, Evaluation, evaluate_ranked, order_hits, query_metrics
from adapt.index import Hit, PassageIndex, encode_queries
from adapt.lexical import BM25Index

DEPTH = 100  # candidates from each side
RRF_K = 60
ALPHAS = tuple(round(0.1 * i, 1) for i in range(11))
METHODS = ("convex", "rrf")
DENSE_SYSTEMS = ("base", "finetuned")


@dataclass
class Candidates:
    """One query's candidates: passage id -> score, from the dense side and from BM25."""

    dense: dict[str, float]
    lexical: dict[str, float]


@dataclass
class FusionConfig:
    method: str = "convex"
    alpha: float | None = 0.5  # weight of the dense side (convex only)
    dense_system: str = "base"

    def __post_init__(self):
        if self.method not in METHODS:
            raise ConfigError(f"fusion method must be one of {', '.join(METHODS)}, found {self.method!r}")
        if self.dense_system not in DENSE_SYSTEMS:
            raise ConfigError(f"the dense side must be one of {', '.join(DENSE_SYSTEMS)}, "
                              f"found {self.dense_system!r}")
        if self.method == "convex" and (self.alpha is None or not 0.0 <= self.alpha <= 1.0):
            raise ConfigError(f"convex fusion needs a weight between 0 and 1, found {self.alpha!r}")
        if self.method == "rrf":
            self.alpha = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class FusionChoice:
    config: FusionConfig
    dev_score: float  # dev NDCG@10 of the chosen fusion
    dev_questions: int
    tried: list[dict] = field(default_factory=list)  # every candidate fusion with its dev NDCG@10


def _normalised(scores: dict[str, float]) -> dict[str, float]:
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if high == low:
        return {pid: 1.0 for pid in scores}
    return {pid: (s - low) / (high - low) for pid, s in scores.items()}


def _ranks(scores: dict[str, float]) -> dict[str, int]:
    return {pid: r for r, pid in enumerate(order_hits(list(scores.values()), list(scores)), start=1)}


def fuse(candidates: Candidates, config: FusionConfig) -> dict[str, float]:
    """The fused score of every candidate passage of one query."""
    ids = list(dict.fromkeys([*candidates.dense, *candidates.lexical]))
    if config.method == "rrf":
        dense, lexical = _ranks(candidates.dense), _ranks(candidates.lexical)
        return {pid: sum(1.0 / (RRF_K + side[pid]) for side in (dense, lexical) if pid in side) for pid in ids}
    dense, lexical = _normalised(candidates.dense), _normalised(candidates.lexical)
    a = config.alpha
    return {pid: a * dense.get(pid, 0.0) + (1 - a) * lexical.get(pid, 0.0) for pid in ids}


def fused_ranking(candidates: dict[str, Candidates], config: FusionConfig) -> dict[str, list[str]]:
    """Passage ids best first per query id; equal fused scores ordered by passage id."""
    ranked = {}
    for qid, c in candidates.items():
        scores = fuse(c, config)
        ranked[qid] = order_hits(list(scores.values()), list(scores))
    return ranked


def evaluate_hybrid(ir: IRData, candidates: dict[str, Candidates], config: FusionConfig,
                    ks: tuple[int, ...]) -> Evaluation:
    """The same metrics and per-query ranks as ``evaluate.evaluate_index``, for the fused lists."""
    return evaluate_ranked(ir, fused_ranking(candidates, config), ks)


def _dev_score(candidates: dict[str, Candidates], relevant_docs: dict[str, set[str]], config: FusionConfig) -> float:
    k = int(DEV_METRIC.split("@")[1])
    ranked = fused_ranking(candidates, config)
    return float(np.mean([query_metrics(ranked[q][:k], relevant_docs[q], (k,))[DEV_METRIC] for q in ranked]))


def fusion_grid(systems) -> list[FusionConfig]:
    """Every fusion tried, in order of preference when dev scores tie (base first, then low weights, then RRF)."""
    return [FusionConfig(method, alpha, system) for system in systems
            for method, alpha in [*(("convex", a) for a in ALPHAS), ("rrf", None)]]


def choose_fusion(dev: dict[str, dict[str, Candidates]], relevant_docs: dict[str, set[str]]) -> FusionChoice:
    """The fusion, weight and dense side with the best dev NDCG@10.

    ``dev`` maps a dense system ("base", "finetuned") to its dev candidates per query id.
    """
    systems = [s for s in DENSE_SYSTEMS if s in dev]
    if not systems or not any(dev[s] for s in systems):
        raise ConfigError("choosing a fusion needs dev questions with candidates from the base or fine-tuned "
                          "model; use a dev split (--dev-fraction above 0)")
    tried = []
    best: tuple[float, FusionConfig] | None = None
    for config in fusion_grid(systems):
        score = _dev_score(dev[config.dense_system], relevant_docs, config)
        tried.append({**config.to_dict(), DEV_METRIC: score})
        if best is None or score > best[0]:
            best = (score, config)
    return FusionChoice(best[1], best[0], len(dev[best[1].dense_system]), tried)


def hybrid_candidates(index: PassageIndex, query_vectors: np.ndarray, bm25: BM25Index, queries: dict[str, str],
                      depth: int = DEPTH) -> dict[str, Candidates]:
    """Top ``depth`` of each side per query id (``query_vectors`` in the order of ``queries``)."""
    D, I = index.search(query_vectors, depth)
    L, J = bm25.search(list(queries.values()), depth)
    out = {}
    for n, qid in enumerate(queries):
        dense = {index.ids[r]: float(s) for s, r in zip(D[n], I[n]) if r >= 0}
        lexical = {bm25.ids[r]: float(s) for s, r in zip(L[n], J[n]) if r >= 0 and s > 0}
        out[qid] = Candidates(dense, lexical)
    return out


class HybridRetriever:
    """The dense system's model and index plus BM25, fused as ``config`` says: text in, ``Hit``s out."""

    def __init__(self, model, index: PassageIndex, bm25: BM25Index, config: FusionConfig, depth: int = DEPTH):
        self.model, self.index, self.bm25, self.config, self.depth = model, index, bm25, config, depth
        self._rows = {pid: row for row, pid in enumerate(index.ids)}

    def search(self, query: str, k: int = 5) -> list[Hit]:
        candidates = hybrid_candidates(self.index, encode_queries(self.model, [query]), self.bm25, {"q": query},
                                       max(self.depth, k))["q"]
        scores = fuse(candidates, self.config)
        order = order_hits(list(scores.values()), list(scores))[:k]
        return [Hit(pid, scores[pid], self.index.texts[self._rows[pid]], rank)
                for rank, pid in enumerate(order, start=1)]


@dataclass
class HybridResult:
    choice: FusionChoice
    test: Evaluation
    dev: Evaluation  # NDCG@10 only: what the recommendation compares

    def to_dict(self) -> dict:
        """For report.json: the chosen fusion, its dev score, and every fusion tried."""
        return {"fusion": self.choice.config.to_dict(), "dev_ndcg@10": self.choice.dev_score,
                "dev_questions": self.choice.dev_questions, "tried": self.choice.tried}


def hybrid_system(dense: dict[str, tuple[PassageIndex, np.ndarray, np.ndarray]], bm25: BM25Index, dev: IRData,
                  test: IRData, ks: tuple[int, ...]) -> HybridResult:
    """Choose the fusion on dev and measure it on test.

    ``dense`` maps "base" and "finetuned" to (index, dev query vectors, test query vectors).
    """
    dev_candidates = {system: hybrid_candidates(index, dev_vectors, bm25, dev.queries)
                      for system, (index, dev_vectors, _) in dense.items()}
    choice = choose_fusion(dev_candidates, dev.relevant_docs)
    index, _, test_vectors = dense[choice.config.dense_system]
    test_candidates = hybrid_candidates(index, test_vectors, bm25, test.queries)
    return HybridResult(choice, evaluate_hybrid(test, test_candidates, choice.config, ks),
                        evaluate_hybrid(dev, dev_candidates[choice.config.dense_system], choice.config, (10,)))
