"""Search: encode throughput of the bundled models, and FAISS flat / HNSW / IVF against numpy brute force.

Part 1 encodes real passages (askextension-kb-california corpus) with ``adapt.index.encode_passages``.
Part 2 searches clustered synthetic vectors (Gaussian clusters around random centres, normalised,
384-d like minilm) at several corpus sizes, with held-out queries from the same distribution.
Indexes are built by ``adapt.index.build_faiss`` with adapt's own settings; recall@10 is measured
against exact search. "batch" throughput searches all queries in one call (evaluation); "1-query"
latency searches them one at a time (the interactive ``adapt.search`` case).

    python -m bench.search                 # 10k, 100k, 1M vectors
    python -m bench.search --quick         # 10k vectors, few passages
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.common import DATA, append_results, load_model, machine_facts, median, quiet_logs, table

K = 10


def encode_rows(args) -> list[dict]:
    from adapt.data import load_corpus
    from adapt.index import encode_passages

    passages = load_corpus(DATA / "askextension-kb-california" / "corpus.csv")[: args.passages]
    rows = []
    for alias in ("minilm", "mpnet"):
        model = load_model(alias)
        encode_passages(model, passages[:64])  # warm-up, untimed
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            encode_passages(model, passages)
            times.append(time.perf_counter() - start)
        rows.append({"model": alias, "passages": len(passages), "max tokens": model.max_seq_length,
                     "s (median)": median(times), "passages/s": len(passages) / median(times)})
        print(rows[-1], flush=True)
    return rows


def clustered(n: int, dim: int, clusters: int, rng: np.random.Generator, spread: float = 0.35) -> np.ndarray:
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, dim), dtype=np.float32)
    step = 100_000
    for s in range(0, n, step):
        m = min(step, n - s)
        block = centres[rng.integers(0, clusters, m)]
        block += rng.standard_normal((m, dim), dtype=np.float32) * (spread / np.sqrt(dim))
        out[s:s + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def numpy_search(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    ids = np.empty((len(queries), k), dtype=np.int64)
    for s in range(0, len(queries), 64):
        scores = queries[s:s + 64] @ vectors.T
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
        ids[s:s + 64] = np.take_along_axis(top, order, axis=1)
    return ids


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    return sum(len(set(a) & set(e)) for a, e in zip(found, exact)) / exact.size


def time_searches(search, queries: np.ndarray, single: int, repeats: int) -> tuple[float, float, np.ndarray]:
    """(batch queries/s, median 1-query ms, ids of the batch search), at the default thread count."""
    batch = []
    for _ in range(repeats):
        start = time.perf_counter()
        ids = search(queries)
        batch.append(time.perf_counter() - start)
    one = []
    for q in queries[:single]:
        start = time.perf_counter()
        search(q[None, :])
        one.append(time.perf_counter() - start)
    return len(queries) / median(batch), 1000 * median(one), ids


def search_rows(args) -> list[dict]:
    import faiss

    from adapt.index import build_faiss, recall_against_flat

    rng = np.random.default_rng(args.seed)
    rows = []
    for n in args.sizes:
        start = time.perf_counter()
        vectors = clustered(n, args.dim, max(10, n // 1000), rng)
        queries = _queries_near(vectors, args.queries, rng)
        print(f"{n}: generated in {time.perf_counter() - start:.1f} s", flush=True)

        qps, ms, exact = time_searches(lambda q: numpy_search(vectors, q, K), queries, args.single, args.repeats)
        rows.append({"vectors": n, "method": "numpy q @ X.T", "build s": 0.0, "batch q/s": qps,
                     "1-query ms": ms, "recall@10": 1.0})
        print(rows[-1], flush=True)
        for kind in ("flat", "hnsw", "ivf"):
            limit = {"flat": None, "hnsw": args.hnsw_max, "ivf": args.ivf_max}[kind]
            if limit is not None and n > limit:
                rows.append({"vectors": n, "method": f"faiss {kind}", "build s": None, "batch q/s": None,
                             "1-query ms": None, "recall@10": None, "note": f"skipped (> --{kind}-max {limit})"})
                continue
            start = time.perf_counter()
            index = build_faiss(vectors, kind, args.seed)
            built = time.perf_counter() - start
            qps, ms, found = time_searches(lambda q: index.search(q, K)[1], queries, args.single, args.repeats)
            threads = faiss.omp_get_max_threads()
            faiss.omp_set_num_threads(1)  # one query needs no thread team; on a busy machine the team costs
            ms_one = time_searches(lambda q: index.search(q, K)[1], queries[:args.single], args.single, 1)[1]
            faiss.omp_set_num_threads(threads)
            rows.append({"vectors": n, "method": f"faiss {kind}", "build s": built, "batch q/s": qps,
                         "1-query ms": ms, "1-query ms, 1 thread": ms_one, "recall@10": recall(found, exact),
                         "adapt self-query recall@10": recall_against_flat(index, vectors, K, args.queries, args.seed),
                         "note": _settings(index, faiss)})
            print(rows[-1], flush=True)
            del index
        del vectors
    return rows


def _queries_near(vectors: np.ndarray, count: int, rng: np.random.Generator, spread: float = 0.35) -> np.ndarray:
    """Held-out queries: a random corpus vector plus fresh noise, normalised (so they sit in the clusters)."""
    base = vectors[rng.choice(len(vectors), count, replace=False)].copy()
    base += rng.standard_normal(base.shape, dtype=np.float32) * (spread / np.sqrt(vectors.shape[1]))
    return np.ascontiguousarray(base / np.linalg.norm(base, axis=1, keepdims=True), dtype=np.float32)


def _settings(index, faiss) -> str:
    if isinstance(index, faiss.IndexHNSW):
        return f"M {index.hnsw.nb_neighbors(0) // 2}, efC {index.hnsw.efConstruction}, efS {index.hnsw.efSearch}"
    if isinstance(index, faiss.IndexIVF):
        return f"nlist {index.nlist}, nprobe {index.nprobe}"
    return "exact"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="corpus sizes, comma-separated")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200, help="queries for the batch search and recall")
    parser.add_argument("--single", type=int, default=20, help="queries timed one at a time")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--passages", type=int, default=512, help="real passages to encode per model")
    parser.add_argument("--hnsw-max", type=int, default=100_000, help="skip HNSW builds above this size")
    parser.add_argument("--ivf-max", type=int, default=100_000, help="skip IVF builds above this size")
    parser.add_argument("--latency-budget-ms", type=float, default=10.0,
                        help="1-query latency at which flat search stops being good enough")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="10k vectors, 64 passages, 1 repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.passages, args.repeats, args.queries, args.single = "10000", 64, 1, 100, 10
    args.sizes = [int(s) for s in str(args.sizes).split(",")]
    quiet_logs()
    started = time.perf_counter()
    facts = machine_facts()

    encode = encode_rows(args)
    search = search_rows(args)
    encode_table = table(encode)
    search_table = table(search, ["vectors", "method", "build s", "batch q/s", "1-query ms", "1-query ms, 1 thread",
                                   "recall@10", "adapt self-query recall@10", "note"])
    print("\n" + encode_table + "\n\n" + search_table)

    from adapt.index import AUTO_APPROXIMATE_AT

    flat = sorted((r["vectors"], r["1-query ms, 1 thread"]) for r in search if r["method"] == "faiss flat")
    lines = []
    if len(flat) >= 1:
        n, ms = flat[-1]
        per_vector = ms / n
        at_budget = args.latency_budget_ms / per_vector
        lines.append(f"Flat 1-query latency (1 thread) at {n:,} vectors: {ms:.1f} ms, i.e. about {per_vector * 1e5:.2f} ms per "
                     f"100k vectors; a {args.latency_budget_ms:g} ms budget is reached near "
                     f"{at_budget:,.0f} vectors (linear extrapolation from the largest size).")
    lines.append(f"adapt.index.AUTO_APPROXIMATE_AT when this ran: {AUTO_APPROXIMATE_AT:,}.")
    body = ("Encode throughput, real passages of askextension-kb-california/corpus.csv (300-character "
            f"answers), batch 64, median of {args.repeats}:\n\n{encode_table}\n\n"
            f"Search, clustered synthetic vectors ({args.dim}-d, n/1000 Gaussian clusters, normalised; "
            f"{args.queries} held-out queries for batch q/s and recall@10 against exact numpy search, "
            f"{args.single} timed one at a time for 1-query ms; medians of {args.repeats}). Build times are "
            "single runs. \"adapt self-query recall@10\" is `adapt.index.recall_against_flat`, which queries with "
            "indexed vectors themselves (what report.json records); \"recall@10\" uses held-out queries.\n\n"
            f"{search_table}\n\n" + "\n".join(f"- {x}" for x in lines))
    print("\n".join(lines))
    append_results("bench.search", "Search and encode throughput" + (" (--quick)" if args.quick else ""),
                   body, facts, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
