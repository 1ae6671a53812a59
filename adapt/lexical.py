"""BM25 over the passages (bm25s, English stop words): a baseline, and the lexical side of hybrid search.

``BM25Index`` follows ``PassageIndex``: texts in, ``D, I`` out (scores and row numbers, -1 where
fewer than k passages exist), and ``save`` / ``load`` of a folder, so a run folder keeps its BM25
index and a search reloads it instead of re-indexing the corpus.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import bm25s
import numpy as np

from adapt.data import IRData
from adapt.errors import RunError
from adapt.evaluate import RANK_DEPTH, Evaluation, evaluate_ranked, order_hits
from adapt.files import atomic_dir

logger = logging.getLogger(__name__)

IDS_FILE = "passage_ids.json"
BM25_FILES = ("params.index.json", "vocab.index.json", "data.csc.index.npy")


def _tokens(texts: list[str]):
    return bm25s.tokenize(list(texts), stopwords="en", show_progress=False)


class BM25Index:
    """A bm25s index with the passage ids its rows stand for."""

    def __init__(self, retriever: bm25s.BM25, ids: list[str]):
        self.retriever, self.ids = retriever, list(ids)

    @classmethod
    def build(cls, passages: list[str], ids: list[str]) -> "BM25Index":
        if len(passages) != len(ids):
            raise ValueError(f"{len(passages)} passages but {len(ids)} ids")
        if not ids:
            raise ValueError("cannot build a BM25 index over no passages")
        retriever = bm25s.BM25()
        retriever.index(_tokens(passages), show_progress=False)
        return cls(retriever, ids)

    def search(self, queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """``D, I`` for each query: BM25 scores best first and the passages' row numbers."""
        k = min(k, len(self.ids))
        if not queries:
            return np.zeros((0, k), dtype=np.float32), np.zeros((0, k), dtype=np.int64)
        rows, scores = self.retriever.retrieve(_tokens(queries), k=k, show_progress=False, n_threads=1)
        return np.asarray(scores, dtype=np.float32), np.asarray(rows, dtype=np.int64)

    def ranked(self, queries: dict[str, str], k: int) -> dict[str, list[str]]:
        """Passage ids best first per query id, ties ordered as the evaluator orders them."""
        D, I = self.search(list(queries.values()), k)
        return {qid: order_hits(list(s), [self.ids[r] for r in row]) for qid, s, row in zip(queries, D, I)}

    def save(self, folder: Path) -> None:
        with atomic_dir(Path(folder)) as tmp:
            self.retriever.save(str(tmp), show_progress=False)
            (tmp / IDS_FILE).write_text(json.dumps(self.ids) + "\n")

    @classmethod
    def load(cls, folder: Path) -> "BM25Index":
        folder = Path(folder)
        missing = [name for name in (IDS_FILE, *BM25_FILES) if not (folder / name).exists()]
        if missing:
            raise RunError(f"BM25 index folder '{folder}' is incomplete (missing {', '.join(missing)}); "
                           "re-run adapt.run")
        retriever = bm25s.BM25.load(str(folder), show_progress=False)
        return cls(retriever, json.loads((folder / IDS_FILE).read_text()))


def evaluate_bm25(ir: IRData, ks: tuple[int, ...], depth: int = RANK_DEPTH,
                  index: BM25Index | None = None) -> Evaluation:
    """BM25 over the same corpus and test questions as the dense models."""
    if index is None:
        index = BM25Index.build(list(ir.corpus.values()), list(ir.corpus))
    return evaluate_ranked(ir, index.ranked(ir.queries, max(depth, max(ks))), ks)
