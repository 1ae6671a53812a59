"""FAISS indexes over normalised passage embeddings (inner product = cosine).

Flat search is exact and the default for small corpora. ``auto`` picks by size and a memory budget
(``index_bytes``): flat below ``AUTO_APPROXIMATE_AT`` passages, HNSW up to ``HNSW_UP_TO``, and beyond
that, or when the budget would be exceeded, an inverted file over compressed vectors whose candidates
are re-scored exactly on the full vectors, which stay on disk (a memmap of the saved ``vectors.npy``):
"ivf-sq8" (one byte a dimension in RAM, ``dim + 8`` bytes a passage, ``REFINE["ivf-sq8"] * k``
candidates re-scored) when it fits the budget, else "ivf-pq" (one byte per 4 dimensions, ``dim / 4 + 8``
bytes, ``REFINE["ivf-pq"] * k`` re-scored: its coarser codes need a wider net, and so more reads). The
re-scoring counts are bench.search's at 10M clustered vectors, where neighbours differ by about 0.001
in cosine: 20 k candidates left ivf-pq at recall@10 0.87, 50 k reached 0.96; 8-bit vectors re-scored
3 k reached 0.98, 5 k 0.99 (bench/RESULTS.md, 2026-12-06). Every approximate index records its recall@10 against
exact search on the very corpus it indexes, computed chunk by chunk so it works at millions. Vectors are
added in chunks, so an ``np.memmap`` (or anything sliced by rows) can be indexed without a second copy.
With faiss-gpu and a GPU, flat and IVF-Flat indexes search on the GPU; the saved index is the CPU one.
numpy in, numpy out: ``D, I`` are scores and row numbers.
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

from adapt.errors import ConfigError, RunError
from adapt.files import atomic_dir
from adapt.precision import in_precision

logger = logging.getLogger(__name__)

AUTO_APPROXIMATE_AT = 100_000  # bench/RESULTS.md "Search": flat < 0.1 s/query at 100k; HNSW build ~100 s
HNSW_UP_TO = 5_000_000  # beyond: an HNSW build takes many hours on a few cores, and 4 dim bytes a vector
GIB = 2 ** 30
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 128
ASSIGN_EF_SEARCH = 16  # faiss's default: the centroid graph's search width while vectors are added to lists
RECALL_SAMPLE = 1000
IVF_MAX_LISTS = 8192  # at 10M, ~1,200 passages a list; more lists make the build's k-means slower
IVF_COMPRESSED_NPROBE = 48
PQ_MIN = 10_000  # 256 codes a sub-quantiser want a few thousand vectors to train on
REFINE = {"ivf-sq8": 5, "ivf-pq": 50}  # candidates re-scored exactly, per result (module docstring)
RESCORED = tuple(REFINE)  # the kinds whose candidates are re-scored on the full vectors
CHUNK = 131_072  # vectors added, or searched exactly, at a time
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


def pq_bytes(dim: int) -> int:
    """Sub-quantisers of the PQ codes: one byte per 4 dimensions (96 at 384-d), dividing ``dim``."""
    return max(m for m in range(1, max(1, dim // 4) + 1) if dim % m == 0)


def index_bytes(kind: str, n: int, dim: int) -> int:
    """About how much memory an index of ``kind`` over ``n`` vectors of ``dim`` floats holds."""
    per_vector = {"flat": 4 * dim, "ivf": 4 * dim + 8, "hnsw": 4 * dim + 2 * HNSW_M * 4,
                  "ivf-sq8": dim + 8, "ivf-pq": pq_bytes(dim) + 8}[kind]  # re-scored kinds: full vectors on disk
    return n * per_vector


def choose_kind(kind: str, n: int, dim: int = 384, memory_gb: float = 5.0) -> str:
    """``kind``, or for "auto" the first of flat, HNSW, ivf-sq8 that suits ``n`` and fits ``memory_gb``,
    else ivf-pq (or ivf-sq8 below ``PQ_MIN``, too few passages to train PQ codes on). The budget is the
    built index's size; building a compressed one peaks higher while faiss's lists grow (bench/RESULTS.md:
    5.8 GiB for a 3.7 GiB ivf-sq8 at 10M)."""
    if kind != "auto":
        return kind
    for candidate, below in (("flat", AUTO_APPROXIMATE_AT), ("hnsw", HNSW_UP_TO), ("ivf-sq8", None)):
        if (below is None or n < below) and index_bytes(candidate, n, dim) <= memory_gb * GIB:
            return candidate
    return "ivf-pq" if n >= PQ_MIN else "ivf-sq8"


def ivf_lists(n: int, kind: str) -> int:
    lists = max(1, min(int(4 * np.sqrt(n)), n // 39 or 1))
    return min(lists, IVF_MAX_LISTS) if kind in RESCORED else lists


def new_faiss(kind: str, n: int, dim: int) -> faiss.Index:
    """An empty inner-product index of ``kind`` ("flat", "hnsw", "ivf", "ivf-sq8" or "ivf-pq") sized for ``n``
    vectors."""
    ip = faiss.METRIC_INNER_PRODUCT
    if kind == "flat":
        return faiss.IndexFlatIP(dim)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, ip)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
        return index
    nlist = ivf_lists(n, kind)
    if kind == "ivf":
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, ip)
        index.nprobe = max(1, min(nlist, max(8, nlist // 8)))
        return index
    if kind in RESCORED:  # lists found through a small HNSW over the centroids: adding 10M stays cheap
        quantizer = faiss.IndexHNSWFlat(dim, HNSW_M, ip)
        quantizer.hnsw.efSearch = ASSIGN_EF_SEARCH  # build_faiss widens it for queries once vectors are in
        if kind == "ivf-pq":
            index = faiss.IndexIVFPQ(quantizer, dim, nlist, pq_bytes(dim), 8, ip)
            index.pq.cp.niter = 10
        else:
            index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, ip)
        index.nprobe = min(nlist, IVF_COMPRESSED_NPROBE)
        index.cp.niter = 10  # k-means rounds: 25 (faiss's default) would treble a 10M build
        return index
    raise ValueError(f"unknown index kind {kind!r}")


def build_faiss(vectors: np.ndarray, kind: str, seed: int = 0) -> faiss.Index:
    """An index of ``kind`` holding ``vectors`` (normalised rows; an array or memmap), added in chunks."""
    n, dim = vectors.shape
    if kind == "ivf-pq" and n < PQ_MIN:
        raise ConfigError(f"index ivf-pq needs at least {PQ_MIN:,} passages to train its codes; found {n:,}; "
                          "use --index auto or flat")
    index = new_faiss(kind, n, dim)
    if not index.is_trained:  # k-means on a sample: 256 a list for ivf, 40 for the compressed kinds' many lists
        limit = (256 if kind == "ivf" else 40) * ivf_lists(n, kind)
        rows = np.sort(np.random.default_rng(seed).choice(n, limit, replace=False)) if n > limit else slice(None)
        sample = vectors[rows]
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
    for start in range(0, n, CHUNK):
        index.add(np.ascontiguousarray(vectors[start:start + CHUNK], dtype=np.float32))
    if kind in RESCORED:
        # Adding assigns each vector its nearest list at the graph's narrow width; searched at the queries'
        # width (6x) while adding, the centroid graph made adding 10M vectors the slow part of a build.
        faiss.downcast_index(index.quantizer).hnsw.efSearch = 2 * IVF_COMPRESSED_NPROBE
    return index


def exact_search(queries: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``D, I`` of exact inner-product search, one chunk of ``vectors`` at a time (a memmap never loads whole)."""
    D = np.full((len(queries), k), -np.inf, dtype=np.float32)
    I = np.full((len(queries), k), -1, dtype=np.int64)
    for start in range(0, len(vectors), CHUNK):
        block = np.ascontiguousarray(vectors[start:start + CHUNK], dtype=np.float32)
        d, i = faiss.knn(queries, block, min(k, len(block)), metric=faiss.METRIC_INNER_PRODUCT)
        D, I = np.hstack([D, d]), np.hstack([I, i + start])
        order = np.argsort(-D, axis=1, kind="stable")[:, :k]
        D, I = np.take_along_axis(D, order, axis=1), np.take_along_axis(I, order, axis=1)
    return D, I


def recall_against_flat(index: faiss.Index, vectors: np.ndarray, k: int = 10, sample: int = RECALL_SAMPLE,
                        seed: int = 0) -> float:
    """recall@k of ``index`` against exact search, with a sample of the indexed vectors as queries."""
    n = len(vectors)
    rows = np.sort(np.random.default_rng(seed).choice(n, min(sample, n), replace=False))
    queries = np.ascontiguousarray(vectors[rows], dtype=np.float32)
    k = min(k, n)
    _, exact = exact_search(queries, vectors, k)
    _, approx = searchable(index, vectors).search(queries, k)
    found = sum(len(set(a) & set(e)) for a, e in zip(approx, exact))
    return found / (len(queries) * k)


def kind_of(index: faiss.Index) -> str:
    """adapt's name for a FAISS index it built ("flat", "hnsw", "ivf", "ivf-sq8" or "ivf-pq")."""
    if isinstance(index, faiss.IndexIVFPQ):
        return "ivf-pq"
    if isinstance(index, faiss.IndexIVFScalarQuantizer):
        return "ivf-sq8"
    if isinstance(index, faiss.IndexHNSW):
        return "hnsw"
    return "ivf" if isinstance(index, faiss.IndexIVF) else "flat"


class Rescored:
    """A compressed IVF index searched as faiss would, its ``factor * k`` candidates (``REFINE`` by kind)
    re-scored exactly on ``vectors`` (an array, or a memmap whose rows are read only for each query's
    candidates). faiss's own ``IndexRefineFlat`` would hold the full vectors in RAM, which is what the
    compressed kinds exist to avoid."""

    def __init__(self, index: faiss.Index, vectors: np.ndarray, factor: int | None = None):
        self.index, self.vectors = index, vectors
        self.factor = factor or REFINE[kind_of(index)]
        self.ntotal = index.ntotal

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        _, candidates = self.index.search(queries, k * self.factor)
        D = np.full((len(queries), k), -np.inf, dtype=np.float32)
        I = np.full((len(queries), k), -1, dtype=np.int64)
        for row, (query, found) in enumerate(zip(queries, candidates)):
            found = np.sort(found[found >= 0])  # in file order: a memmap reads forward
            scores = np.asarray(self.vectors[found], dtype=np.float32) @ query
            top = np.argsort(-scores, kind="stable")[:k]
            D[row, :len(top)], I[row, :len(top)] = scores[top], found[top]
        return D, I


def searchable(index: faiss.Index, vectors: np.ndarray, factor: int | None = None):
    """What answers queries for ``index``: the compressed kinds re-scored on ``vectors`` (``Rescored``,
    ``factor`` k candidates, default ``REFINE``), others as they are."""
    return Rescored(index, vectors, factor) if kind_of(index) in RESCORED else index


def on_gpu(index: faiss.Index) -> faiss.Index:
    """A GPU copy of a flat or IVF-Flat index when faiss-gpu and a GPU are present; ``index`` itself otherwise."""
    if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() < 1:
        return index
    if not isinstance(index, (faiss.IndexFlat, faiss.IndexIVFFlat)):
        return index  # HNSW has no GPU version; the compressed kinds re-score on the CPU
    return faiss.index_cpu_to_all_gpus(index)


class PassageIndex:
    """A FAISS index with the passage ids and texts it returns."""

    def __init__(self, index: faiss.Index, ids: list[str], texts: list[str], info: dict,
                 vectors: np.ndarray | None = None):
        if index.ntotal != len(ids) or len(ids) != len(texts):
            raise ValueError(f"index holds {index.ntotal} vectors but {len(ids)} ids and {len(texts)} texts")
        self.index, self.ids, self.texts, self.info = index, list(ids), list(texts), dict(info)
        self.vectors = vectors if kind_of(index) in RESCORED else None  # the compressed kinds re-score on them
        # what answers queries; ``index`` (on the CPU) is what is saved. A loaded index re-scores as many
        # candidates as when its recall was measured (runs from before info.json recorded it: adapt's width)
        self.searcher = (searchable(index, vectors, self.info.get("rescored_per_result"))
                         if self.vectors is not None else on_gpu(index))

    @classmethod
    def build(cls, embeddings: np.ndarray, ids: list[str], texts: list[str], kind: str = "auto",
              model_name: str = "", seed: int = 0, memory_gb: float = 5.0) -> "PassageIndex":
        vectors = normalise_rows(embeddings)
        kind = choose_kind(kind, len(vectors), vectors.shape[1], memory_gb)
        start = time.perf_counter()
        index = build_faiss(vectors, kind, seed)
        info = {"kind": kind, "size": len(ids), "dimension": int(vectors.shape[1]), "model": model_name,
                "build_seconds": round(time.perf_counter() - start, 3)}
        if kind in RESCORED:
            info["memory_gb"] = round(index_bytes(kind, len(ids), vectors.shape[1]) / GIB, 3)
            info["rescored_per_result"] = REFINE[kind]
        if kind != "flat":
            info["recall@10_vs_flat"] = round(recall_against_flat(index, vectors, seed=seed), 4)
            logger.info("%s index: recall@10 against exact search %.4f", kind, info["recall@10_vs_flat"])
        return cls(index, ids, texts, info, vectors)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``D, I`` for each query row; I is -1 where fewer than k passages exist."""
        queries = normalise_rows(np.atleast_2d(queries))
        if len(queries) >= FEW_QUERIES:
            return self.searcher.search(queries, min(k, self.index.ntotal))
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)  # one interactive query: starting a thread team costs more than it saves
        try:
            return self.searcher.search(queries, min(k, self.index.ntotal))
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
            if self.vectors is not None:
                np.save(tmp / "vectors.npy", self.vectors)

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
        vectors = np.load(folder / "vectors.npy", mmap_mode="r") if (folder / "vectors.npy").exists() else None
        if kind_of(index) in RESCORED and vectors is None:
            raise RunError(f"index folder '{folder}' is incomplete (missing vectors.npy); re-run adapt.run")
        return cls(index, ids, texts, info if isinstance(info, dict) else {}, vectors)


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


@in_precision  # bf16 in a bf16 run (adapt.precision); queries stay fp32, as every later search encodes them
def encode_passages(model, texts: list[str], batch_size: int = 64, pool: dict | None = None) -> np.ndarray:
    """Normalised passage embeddings; ``pool`` is a sentence-transformers multi-process pool (adapt.encode)."""
    return np.asarray(model.encode_document(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                            convert_to_numpy=True, show_progress_bar=False, pool=pool),
                      dtype=np.float32)
