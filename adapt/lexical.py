"""A BM25 baseline, so a report shows whether dense retrieval beats lexical search at all."""

from __future__ import annotations

import logging

import bm25s

from adapt.data import IRData
from adapt.evaluate import RANK_DEPTH, Evaluation, evaluate_ranked, order_hits

logger = logging.getLogger(__name__)


def evaluate_bm25(ir: IRData, ks: tuple[int, ...], depth: int = RANK_DEPTH) -> Evaluation:
    """BM25 (bm25s, English stop words) over the same corpus and test questions as the dense models."""
    ids = list(ir.corpus)
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize([ir.corpus[i] for i in ids], stopwords="en", show_progress=False),
                    show_progress=False)
    k = min(max(depth, max(ks)), len(ids))
    tokens = bm25s.tokenize(list(ir.queries.values()), stopwords="en", show_progress=False)
    rows, scores = retriever.retrieve(tokens, k=k, show_progress=False)
    ranked = {
        qid: order_hits(list(s), [ids[r] for r in row])
        for qid, row, s in zip(ir.queries, rows, scores)
    }
    return evaluate_ranked(ir, ranked, ks)
