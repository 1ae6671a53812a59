"""FAISS indexes over normalised passage embeddings (inner product = cosine).

Flat search is exact and the default for small corpora. Past ``AUTO_APPROXIMATE_AT`` passages,
``auto`` picks HNSW, and every approximate index records its recall@10 against exact search on
the very corpus it indexes. numpy in, numpy out: ``D, I`` are scores and row numbers.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import pandas as pd

from adapt.errors import RunError
from adapt.files import atomic_dir

logger = logging.getLogger(__name__)

AUTO_APPROXIMATE_AT = 100_000  # bench/RESULTS.md "Search": flat < 0.1 s/query at 100k; HNSW build ~100 s
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 128
RECALL_SAMPLE = 1000
FEW_QUERIES = 8  # bench/RESULTS.md: a lone query ran 42 ms with all threads, 0.6 ms with one, on a busy machine


@dataclass
class Hit:
    passage_id: str
    score: float
    text: str
    rank: int


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def choose_kind(kind: str, n: int) -> str:
    if kind == "auto":
        return "hnsw" if n >= AUTO_APPROXIMATE_AT else "flat"
    return kind


def build_faiss(vectors: np.ndarray, kind: str, seed: int = 0) -> faiss.Index:
    """An inner-product index of ``kind`` ("flat", "hnsw" or "ivf") holding ``vectors``."""
    n, dim = vectors.shape
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    elif kind == "ivf":
        nlist = max(1, min(int(4 * np.sqrt(n)), n // 39 or 1))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        clustering_sample = vectors
        if n > 256 * nlist:
            rows = np.random.default_rng(seed).choice(n, 256 * nlist, replace=False)
            clustering_sample = vectors[rows]
        index.train(clustering_sample)
        index.nprobe = max(1, min(nlist, max(8, nlist // 8)))
    else:
        raise ValueError(f"unknown index kind {kind!r}")
    index.add(vectors)
    return index


def recall_against_flat(index: faiss.Index, vectors: np.ndarray, k: int = 10, sample: int = RECALL_SAMPLE,
                        seed: int = 0) -> float:
    """recall@k of ``index`` against exact search, with a sample of the indexed vectors as queries."""
    n = len(vectors)
    rows = np.random.default_rng(seed).choice(n, min(sample, n), replace=False)
    queries = vectors[rows]
    k = min(k, n)
    _, exact = faiss.knn(queries, vectors, k, metric=faiss.METRIC_INNER_PRODUCT)
    _, approx = index.search(queries, k)
    found = sum(len(set(a) & set(e)) for a, e in zip(approx, exact))
    return found / (len(queries) * k)


class PassageIndex:
    """A FAISS index with the passage ids and texts it returns."""

    def __init__(self, index: faiss.Index, ids: list[str], texts: list[str], info: dict):
        if index.ntotal != len(ids) or len(ids) != len(texts):
            raise ValueError(f"index holds {index.ntotal} vectors but {len(ids)} ids and {len(texts)} texts")
        self.index, self.ids, self.texts, self.info = index, list(ids), list(texts), dict(info)

    @classmethod
    def build(cls, embeddings: np.ndarray, ids: list[str], texts: list[str], kind: str = "auto",
              model_name: str = "", seed: int = 0) -> "PassageIndex":
        vectors = normalise_rows(embeddings)
        kind = choose_kind(kind, len(vectors))
        start = time.perf_counter()
        index = build_faiss(vectors, kind, seed)
        info = {"kind": kind, "size": len(ids), "dimension": int(vectors.shape[1]), "model": model_name,
                "build_seconds": round(time.perf_counter() - start, 3)}
        if kind != "flat":
            info["recall@10_vs_flat"] = round(recall_against_flat(index, vectors, seed=seed), 4)
            logger.info("%s index: recall@10 against exact search %.4f", kind, info["recall@10_vs_flat"])
        return cls(index, ids, texts, info)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``D, I`` for each query row; I is -1 where fewer than k passages exist."""
        queries = normalise_rows(np.atleast_2d(queries))
        if len(queries) >= FEW_QUERIES:
            return self.index.search(queries, min(k, self.index.ntotal))
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)  # one interactive query: starting a thread team costs more than it saves
        try:
            return self.index.search(queries, min(k, self.index.ntotal))
        finally:
            faiss.omp_set_num_threads(threads)

    def hits(self, query: np.ndarray, k: int) -> list[Hit]:
        D, I = self.search(query, k)
        return [Hit(self.ids[i], float(d), self.texts[i], rank) for rank, (d, i) in
                enumerate(zip(D[0], I[0]), start=1) if i >= 0]

    def save(self, folder: Path) -> None:
        with atomic_dir(Path(folder)) as tmp:
            faiss.write_index(self.index, str(tmp / "index.faiss"))
            pd.DataFrame({"passage_id": self.ids, "passage": self.texts}).to_parquet(tmp / "passages.parquet")
            (tmp / "info.json").write_text(json.dumps(self.info, indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> "PassageIndex":
        folder = Path(folder)
        needed = [folder / "index.faiss", folder / "passages.parquet", folder / "info.json"]
        missing = [p.name for p in needed if not p.exists()]
        if missing:
            raise RunError(f"index folder '{folder}' is incomplete (missing {', '.join(missing)}); re-run adapt.run")
        damaged = (f"index folder '{folder}' is damaged ({{}}); run adapt.run again with the same --out "
                   "to rebuild it")
        try:
            index = faiss.read_index(str(folder / "index.faiss"))
        except RuntimeError:
            raise RunError(damaged.format("index.faiss is not a FAISS index")) from None
        if isinstance(index, faiss.IndexHNSW):
            index.hnsw.efSearch = HNSW_EF_SEARCH
        try:
            passages = pd.read_parquet(folder / "passages.parquet", columns=["passage_id", "passage"])
        except Exception:  # pyarrow raises its own types for a truncated or foreign file
            raise RunError(damaged.format("passages.parquet is not a table of passage_id and passage")) from None
        try:
            info = json.loads((folder / "info.json").read_text())
        except ValueError:
            raise RunError(damaged.format("info.json is not JSON")) from None
        ids, texts = [str(i) for i in passages["passage_id"]], [str(t) for t in passages["passage"]]
        if index.ntotal != len(ids):
            raise RunError(damaged.format(f"index.faiss holds {index.ntotal} vectors for {len(ids)} passages"))
        return cls(index, ids, texts, info if isinstance(info, dict) else {})


class Retriever:
    """A model and its index: text in, ranked ``Hit``s out."""

    def __init__(self, model, index: PassageIndex):
        dimension = model.get_embedding_dimension()
        if dimension != index.index.d:
            raise RunError(f"the model makes {dimension}-d vectors but its index holds {index.index.d}-d ones; "
                           "the run folder is damaged: run adapt.run again to rebuild it")
        self.model, self.index = model, index

    def search(self, query: str, k: int = 5) -> list[Hit]:
        return self.index.hits(encode_queries(self.model, [query]), k)


def encode_queries(model, texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Normalised query vectors; progress is the caller's (the pipeline reports per chunk)."""
    return np.asarray(model.encode_query(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                         convert_to_numpy=True, show_progress_bar=False), dtype=np.float32)


def encode_passages(model, texts: list[str], batch_size: int = 64) -> np.ndarray:
    return np.asarray(model.encode_document(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                            convert_to_numpy=True, show_progress_bar=False), dtype=np.float32)
