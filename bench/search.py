"""Search: encode throughput of the bundled models, and FAISS flat / HNSW / IVF / ivf-sq8 / ivf-pq against exact search.

Part 1 encodes real passages (askextension-kb-california corpus) with ``adapt.index.encode_passages``.
Part 2 searches clustered synthetic vectors (Gaussian clusters around random centres, normalised, 384-d
like minilm) at several corpus sizes, with held-out queries from the same distribution. The vectors are
written to a file under --scratch and read back in chunks, so 10M (15 GB) never sits in RAM. Indexes are
built by ``adapt.index.build_faiss`` with adapt's own settings, each in its own process so its peak
memory is its own; recall@10 is measured against exact chunked search. "batch" throughput searches all
queries in one call (evaluation); "1-query" latency searches them one at a time (the interactive
``adapt.search`` case).

    python -m bench.search                 # 10k, 100k, 1M vectors
    python -m bench.search --quick         # 10k vectors, few passages
    python -m bench.search --no-encode --sizes 1000000,10000000 --queries 100 --repeats 1  # the 10M row
    python -m bench.search --no-encode --sizes 10000000 --factors 3,10,20  # also other re-scoring widths
    python -m bench.search --real-vs-synthetic --real-passages 10000 --queries 500  # real against synthetic

``--real-vs-synthetic`` asks whether the synthetic vectors flatter the approximate indexes: it encodes the
shared corpora's passages with minilm (all, or a random sample) and questions from their pairs files,
and measures recall@10 against exact search of each approximate kind on them and on as many synthetic
vectors, side by side.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import DATA, DATASETS, append_results, load_model, machine_facts, median, quiet_logs, table

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


def clustered_file(path: Path, n: int, dim: int, rng: np.random.Generator, spread: float = 0.35) -> "VectorFile":
    """n clustered, normalised vectors written to ``path`` (.npy) block by block: never all in memory."""
    clusters = max(10, n // 1000)
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    header = {"descr": "<f4", "fortran_order": False, "shape": (n, dim)}
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        for s in range(0, n, 100_000):
            m = min(100_000, n - s)
            block = centres[rng.integers(0, clusters, m)]
            block += rng.standard_normal((m, dim), dtype=np.float32) * (spread / np.sqrt(dim))
            (block / np.linalg.norm(block, axis=1, keepdims=True)).astype(np.float32).tofile(handle)
    return VectorFile(path)


class VectorFile:
    """Rows of a float32 .npy read from disk on demand (``[a:b]`` or ``[sorted rows]``): a copy of what is
    asked, no mapping, so a process's RSS counts only what it keeps (the page cache is not its memory)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        with open(self.path, "rb") as handle:
            np.lib.format.read_magic(handle)
            self.shape, _, _ = np.lib.format.read_array_header_1_0(handle)
            self.offset = handle.tell()
        self.row_bytes = self.shape[1] * 4

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        with open(self.path, "rb") as handle:
            if isinstance(key, slice):
                start, stop, _ = key.indices(self.shape[0])
                handle.seek(self.offset + start * self.row_bytes)
                return np.fromfile(handle, np.float32, (stop - start) * self.shape[1]).reshape(-1, self.shape[1])
            out = np.empty((len(key), self.shape[1]), np.float32)
            for j, row in enumerate(key):
                out[j] = np.frombuffer(os.pread(handle.fileno(), self.row_bytes, self.offset + int(row) * self.row_bytes),
                                       np.float32)
            return out


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


def measure(path: str, kind: str, queries: np.ndarray, exact: np.ndarray | None, args) -> list[dict]:
    """One method on the vectors in ``path``, in a fresh process (so its peak RSS is its own); for the
    re-scored kinds, a further row for each width in --factors, searched on the same index."""
    import faiss

    from adapt.index import RESCORED, Rescored, build_faiss, exact_search, index_bytes, recall_against_flat, searchable

    vectors = VectorFile(Path(path))
    n = len(vectors)
    row = {"vectors": n, "method": "exact, chunked" if kind == "exact" else f"faiss {kind}"}
    if kind == "exact":
        qps, ms, ids = time_searches(lambda q: exact_search(q, vectors, K)[1], queries, 1, 1)  # each query reads every vector
        row.update({"build s": 0.0, "batch q/s": qps, "1-query ms": ms, "recall@10": 1.0, "ids": ids})
    else:
        start = time.perf_counter()
        index = build_faiss(vectors, kind, args.seed)
        built = time.perf_counter() - start
        searcher = searchable(index, vectors)  # ivf-sq8, ivf-pq: re-scored on the vectors read from disk
        qps, ms, found = time_searches(lambda q: searcher.search(q, K)[1], queries, args.single, args.repeats)
        row.update({"build s": built, "batch q/s": qps, "1-query ms": ms, "recall@10": recall(found, exact),
                    "adapt self-query recall@10": recall_against_flat(index, vectors, K, args.queries, args.seed),
                    "index GB (est.)": index_bytes(kind, n, vectors.shape[1]) / 2 ** 30,
                    "note": _settings(index, faiss)})
    row["peak RSS GB"] = peak_rss_gb()  # before the wider searches below
    rows = [row]
    for factor in args.factors if kind in RESCORED else ():
        wider = Rescored(index, vectors, factor)
        qps, ms, found = time_searches(lambda q: wider.search(q, K)[1], queries, args.single, args.repeats)
        rows.append({"vectors": n, "method": f"faiss {kind}", "batch q/s": qps, "1-query ms": ms,
                     "recall@10": recall(found, exact), "note": f"same index, {factor} k re-scored (not adapt's)"})
    return rows


def peak_rss_gb() -> float:
    """This process's peak resident memory (VmHWM: its own, not inherited from the process that started it)."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 2 ** 20


def search_rows(args) -> list[dict]:
    from adapt.index import PQ_MIN

    rng = np.random.default_rng(args.seed)
    spawn = multiprocessing.get_context("spawn")
    rows = []
    for n in args.sizes:
        path = Path(args.scratch) / f"bench-search-{n}-{args.dim}.npy"
        start = time.perf_counter()
        vectors = clustered_file(path, n, args.dim, rng)
        queries = _queries_near(vectors, args.queries, rng)
        print(f"{n}: generated in {time.perf_counter() - start:.1f} s ({path})", flush=True)
        try:
            exact = None
            for kind in ("exact", "flat", "hnsw", "ivf", "ivf-sq8", "ivf-pq"):
                limit = {"flat": args.flat_max, "hnsw": args.hnsw_max, "ivf": args.ivf_max}.get(kind)
                if (limit is not None and n > limit) or (kind == "ivf-pq" and n < PQ_MIN):
                    why = f"> --{kind}-max {limit}" if limit is not None and n > limit else f"< {PQ_MIN} vectors"
                    rows.append({"vectors": n, "method": f"faiss {kind}", "note": f"skipped ({why})"})
                    continue
                with spawn.Pool(1, maxtasksperchild=1) as pool:
                    measured = pool.apply(measure, (str(path), kind, queries, exact, args))
                if kind == "exact":
                    exact = measured[0].pop("ids")
                rows.extend(measured)
                for row in measured:
                    print(row, flush=True)
        finally:
            path.unlink(missing_ok=True)
    return rows


def real_embeddings(args) -> tuple[np.ndarray, np.ndarray]:
    """minilm embeddings of every shared corpus's passages (or the first --real-passages) and of
    --queries questions drawn from the shared pairs files, kept under --scratch for a re-run."""
    from adapt.data import load_corpus
    from adapt.index import encode_passages, encode_queries

    passages = list(dict.fromkeys(p for name in DATASETS for p in load_corpus(DATA / name / "corpus.csv")))
    if 0 < args.real_passages < len(passages):  # a random sample, so every corpus is in it
        rows = np.sort(np.random.default_rng(args.seed).choice(len(passages), args.real_passages, replace=False))
        passages = [passages[i] for i in rows]
    questions = sorted({q for name in DATASETS for q in pd.read_csv(DATA / name / "pairs.csv", dtype=str)["question"]})
    questions = list(np.random.default_rng(args.seed).choice(questions, args.queries, replace=False))
    Path(args.scratch).mkdir(parents=True, exist_ok=True)
    cached = Path(args.scratch) / f"bench-search-minilm-{len(passages)}-{args.queries}-{args.seed}-{args.real_max_tokens}.npz"
    if cached.exists():
        saved = np.load(cached)
        return saved["passages"], saved["questions"]
    model = load_model("minilm")
    model.max_seq_length = args.real_max_tokens or model.max_seq_length
    start, chunks = time.perf_counter(), []
    for s in range(0, len(passages), 2048):
        chunks.append(encode_passages(model, passages[s:s + 2048]))
        print(f"encoded {s + len(chunks[-1])} of {len(passages)} passages in {time.perf_counter() - start:.0f} s",
              flush=True)
    vectors, queries = np.vstack(chunks), encode_queries(model, questions)
    np.savez(cached, passages=vectors, questions=queries)
    return vectors, queries


def real_vs_synthetic_rows(args) -> list[dict]:
    """recall@10 against exact search of each approximate kind, on real minilm embeddings and on as many
    clustered synthetic vectors of the same dimension, with held-out queries on both sides."""
    import faiss

    from adapt.index import PQ_MIN, build_faiss, exact_search, recall_against_flat, searchable

    real, real_queries = real_embeddings(args)
    rng = np.random.default_rng(args.seed)
    path = Path(args.scratch) / f"bench-search-{len(real)}-{real.shape[1]}.npy"
    try:
        synthetic = clustered_file(path, len(real), real.shape[1], rng)
        synthetic_queries, synthetic = _queries_near(synthetic, len(real_queries), rng), synthetic[:]
    finally:
        path.unlink(missing_ok=True)
    sides = {"real": (real, real_queries), "synthetic": (synthetic, synthetic_queries)}
    exact = {name: exact_search(queries, vectors, K)[1] for name, (vectors, queries) in sides.items()}
    rows = []
    for kind in ("hnsw", "ivf", "ivf-sq8", "ivf-pq") if len(real) >= PQ_MIN else ("hnsw", "ivf", "ivf-sq8"):
        row = {"vectors": len(real), "method": f"faiss {kind}"}
        for name, (vectors, queries) in sides.items():
            index = build_faiss(vectors, kind, args.seed)
            row[f"recall@10 {name}"] = recall(searchable(index, vectors).search(queries, K)[1], exact[name])
            row[f"self-query recall@10 {name}"] = recall_against_flat(index, vectors, K, args.queries, args.seed)
        row["note"] = _settings(index, faiss)
        rows.append(row)
        print(rows[-1], flush=True)
    return rows


def _queries_near(vectors: VectorFile, count: int, rng: np.random.Generator, spread: float = 0.35) -> np.ndarray:
    """Held-out queries: a random corpus vector plus fresh noise, normalised (so they sit in the clusters)."""
    base = vectors[np.sort(rng.choice(len(vectors), count, replace=False))]
    base += rng.standard_normal(base.shape, dtype=np.float32) * (spread / np.sqrt(vectors.shape[1]))
    return np.ascontiguousarray(base / np.linalg.norm(base, axis=1, keepdims=True), dtype=np.float32)


def _settings(index, faiss) -> str:
    from adapt.index import REFINE, RESCORED, kind_of

    if kind_of(index) in RESCORED:
        codes = f"PQ{index.pq.M}" if isinstance(index, faiss.IndexIVFPQ) else "8-bit"
        return f"nlist {index.nlist}, nprobe {index.nprobe}, {codes}, {REFINE[kind_of(index)]} k re-scored from disk"
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
    parser.add_argument("--no-encode", dest="encode", action="store_false", help="skip the encode throughput part")
    parser.add_argument("--flat-max", type=int, default=2_000_000, help="skip faiss flat above this size (4 dim B a vector in RAM)")
    parser.add_argument("--hnsw-max", type=int, default=100_000, help="skip HNSW builds above this size")
    parser.add_argument("--ivf-max", type=int, default=100_000, help="skip IVF builds above this size")
    parser.add_argument("--scratch", default=tempfile.gettempdir(), help="folder for the vector files (10M x 384: 15 GB)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--factors", default="", help="also search each re-scored index (ivf-sq8, ivf-pq) with "
                        "these candidate widths, comma-separated (adapt's own width is always measured)")
    parser.add_argument("--quick", action="store_true", help="10k vectors, 64 passages, 1 repeat")
    parser.add_argument("--real-vs-synthetic", action="store_true",
                        help="instead: recall@10 of each approximate kind on real minilm embeddings of the shared "
                             "corpora and on as many synthetic vectors")
    parser.add_argument("--real-passages", type=int, default=0, help="with --real-vs-synthetic: a random "
                        "sample of N passages (0: all)")
    parser.add_argument("--real-max-tokens", type=int, default=0, help="with --real-vs-synthetic: truncate "
                        "passages to N tokens (0: minilm's 256)")
    args = parser.parse_args(argv)
    if args.real_vs_synthetic:
        return compare_main(args)
    if args.quick:
        args.sizes, args.passages, args.repeats, args.queries, args.single = "10000", 64, 1, 100, 10
    args.sizes = [int(s) for s in str(args.sizes).split(",")]
    args.factors = [int(f) for f in str(args.factors).split(",") if f]
    quiet_logs()
    started = time.perf_counter()
    facts = machine_facts()

    encode = encode_rows(args) if args.encode else []
    search = search_rows(args)
    encode_table = table(encode) if encode else "(skipped: --no-encode)"
    search_table = table(search, ["vectors", "method", "build s", "batch q/s", "1-query ms", "recall@10",
                                   "adapt self-query recall@10", "peak RSS GB", "index GB (est.)", "note"])
    print("\n" + encode_table + "\n\n" + search_table)

    from adapt.index import AUTO_APPROXIMATE_AT, HNSW_UP_TO

    lines = [f"adapt.index when this ran: flat below {AUTO_APPROXIMATE_AT:,}, HNSW up to {HNSW_UP_TO:,} within "
             "--index-memory-gb, then ivf-sq8 within it, ivf-pq beyond."]
    for row in search:
        if row["method"] in ("faiss ivf-sq8", "faiss ivf-pq") and "build s" in row and row["vectors"] >= 10_000_000:
            met = row["recall@10"] >= 0.95 and row["batch q/s"] >= 100 and row["peak RSS GB"] < 6
            lines.append(f"Target at {row['vectors']:,}, {row['method']} (recall@10 >= 0.95, >= 100 q/s, < 6 GB): "
                         f"{'met' if met else 'NOT met'} (recall@10 {row['recall@10']:.4f}, "
                         f"{row['batch q/s']:.0f} q/s, peak RSS {row['peak RSS GB']:.2f} GB).")
    body = ("Encode throughput, real passages of askextension-kb-california/corpus.csv (300-character "
            f"answers), batch 64, median of {args.repeats}:\n\n{encode_table}\n\n"
            f"Search, clustered synthetic vectors ({args.dim}-d, n/1000 Gaussian clusters, normalised, written to "
            f"disk and read in chunks; {args.queries} held-out queries for batch q/s and recall@10 against exact "
            f"chunked search, {args.single} timed one at a time for 1-query ms; medians of {args.repeats}). Each "
            "method runs in a fresh process: \"peak RSS GB\" is that process's peak (vectors read from disk, "
            "so the page cache is not counted). Build times are single runs. \"adapt self-query recall@10\" is "
            "`adapt.index.recall_against_flat` (what report.json records).\n\n"
            f"{search_table}\n\n" + "\n".join(f"- {x}" for x in lines))
    print("\n".join(lines))
    append_results("bench.search", "Search and encode throughput" + (" (--quick)" if args.quick else ""),
                   body, facts, started)
    return 0


def compare_main(args) -> int:
    quiet_logs()
    started, facts = time.perf_counter(), machine_facts()
    rows = real_vs_synthetic_rows(args)
    columns = ["vectors", "method", "recall@10 real", "recall@10 synthetic", "self-query recall@10 real",
               "self-query recall@10 synthetic", "note"]
    body = (f"recall@10 against exact search, real against synthetic vectors of the same count: \"real\" is "
            f"minilm (384-d{f', {args.real_max_tokens} tokens' if args.real_max_tokens else ''}) over "
            f"{'a random sample of ' if args.real_passages else ''}the passages of every shared corpus ({', '.join(DATASETS)}; deduplicated), "
            f"queried with {args.queries} questions drawn from their pairs files; \"synthetic\" is as many "
            "clustered vectors as part 2 of this benchmark makes (n/1000 clusters, normalised), queried with "
            f"{args.queries} held-out vectors from the same clusters. \"self-query\" is "
            "`adapt.index.recall_against_flat` (indexed vectors as queries: what report.json records). Indexes "
            "are built by `adapt.index.build_faiss` with adapt's settings.\n\n" + table(rows, columns))
    print(table(rows, columns))
    append_results("bench.search", "Search: recall on real against synthetic vectors", body, facts, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
