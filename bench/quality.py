"""Retrieval quality: the base model, MNRL fine-tuning and adapt's GIST fine-tuning on every shared dataset.

Every arm trains the same student for the same steps (one epoch over the capped training pairs by
default, batch 32, NO_DUPLICATES sampler, no dev-set checkpoint selection) and is scored with
``adapt.evaluate.evaluate_index`` over a flat index of the whole (or documented sub-sampled) corpus.

    python -m bench.quality            # every dataset, the default caps
    python -m bench.quality --quick    # agxqa only, tiny caps, under a minute
"""

from __future__ import annotations

import argparse
import math
import signal
import tempfile
import time
from pathlib import Path

from bench.common import (DATASETS, add_threads_option, append_results, load_model, load_split,
                          machine_facts, make_arm_loss, quiet_logs, set_threads, table, train_steps)

METRICS = ("ndcg@10", "mrr@10", "accuracy@1")
ARMS = ("base", "mnrl", "gist")


def evaluate(model, splits):
    from adapt.data import ir_data
    from adapt.evaluate import evaluate_index
    from adapt.index import PassageIndex, encode_passages, encode_queries

    test = ir_data(splits.test, splits.corpus)
    ids, texts = list(splits.corpus["passage_id"]), list(splits.corpus["passage"])
    start = time.perf_counter()
    corpus = encode_passages(model, texts)
    queries = encode_queries(model, list(test.queries.values()))
    index = PassageIndex.build(corpus, ids, texts, kind="flat")
    evaluation = evaluate_index(index, queries, test, (1, 10))
    return evaluation, time.perf_counter() - start


def run_dataset(name: str, args, guide) -> tuple[list[dict], dict]:
    splits, caps = load_split(name, args.max_train, args.max_test, args.max_corpus, args.seed)
    steps = args.epochs * math.ceil(len(splits.train) / args.batch_size)
    caps["steps"] = steps
    evaluations, rows = {}, []
    for arm in ARMS:
        model = load_model(args.base)
        train_seconds = 0.0
        if arm != "base":
            start = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                loss, _ = make_arm_loss("mnrl" if arm == "mnrl" else "gist-cached", model, guide, args.guide,
                                        splits.train, Path(tmp) / "cache")
                train_steps(model, loss, splits.train, steps, Path(tmp) / "out", args.batch_size, args.seed)
            train_seconds = time.perf_counter() - start
        evaluation, eval_seconds = evaluate(model, splits)
        evaluations[arm] = evaluation
        row = {"dataset": name, "model": arm, **{m: evaluation.metrics[m] for m in METRICS},
               "train s": round(train_seconds, 1), "encode+eval s": round(eval_seconds, 1)}
        rows.append(row)
        print(table([row]).splitlines()[-1], flush=True)
    return rows, {"caps": caps, "evaluations": evaluations}


def verdicts(name: str, found: dict) -> dict:
    from adapt.stats import paired_bootstrap

    ev = found["evaluations"]
    ndcg = {arm: ev[arm].metrics["ndcg@10"] for arm in ARMS}
    gist_vs_mnrl = paired_bootstrap(ev["mnrl"].per_query["ndcg@10"], ev["gist"].per_query["ndcg@10"], "ndcg@10")
    return {
        "dataset": name,
        "MNRL > base": "yes" if ndcg["mnrl"] > ndcg["base"] else "NO",
        "GIST > base": "yes" if ndcg["gist"] > ndcg["base"] else "NO",
        "GIST - MNRL (NDCG@10)": f"{gist_vs_mnrl.change:+.4f} [{gist_vs_mnrl.low:+.4f}, {gist_vs_mnrl.high:+.4f}]",
        "GIST >= MNRL": "yes" if gist_vs_mnrl.change >= 0 else (
            "tie (CI spans 0)" if gist_vs_mnrl.high >= 0 else "NO"),
    }


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated folders of ../shared/data")
    parser.add_argument("--base", default="minilm")
    parser.add_argument("--guide", default="mpnet")
    parser.add_argument("--max-train", type=int, default=1000, help="cap on training pairs per dataset")
    parser.add_argument("--max-test", type=int, default=300, help="cap on test questions per dataset")
    parser.add_argument("--max-corpus", type=int, default=4000,
                        help="cap on corpus passages (every relevant test passage is kept)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--quick", action="store_true", help="agxqa only, 64 training pairs, 50 test questions")
    add_threads_option(parser)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    if args.quick:
        args.datasets, args.max_train, args.max_test = "agxqa-agriculture-sample", 64, 50
    quiet_logs()
    started = time.perf_counter()
    facts = machine_facts()
    guide = load_model(args.guide)

    signal.signal(signal.SIGTERM, _interrupt)
    rows, checks, caps, interrupted = [], [], [], None
    names = args.datasets.split(",")
    for name in names:
        print(f"# {name}", flush=True)
        try:
            found_rows, found = run_dataset(name, args, guide)
        except KeyboardInterrupt:
            interrupted = f"Interrupted during {name}: only {len(checks)} of {len(names)} datasets were measured."
            break
        rows += found_rows
        checks.append(verdicts(name, found))
        caps.append({"dataset": name, **found["caps"]})
    if not checks:
        return 130

    results = table(rows)
    summary = table(checks)
    caps_table = table(caps)
    print("\n" + results + "\n\n" + summary + "\n\n" + caps_table)
    met_base = all(c["MNRL > base"] == "yes" and c["GIST > base"] == "yes" for c in checks)
    gist_ok = sum(c["GIST >= MNRL"] != "NO" for c in checks)
    body = (
        f"Student `{args.base}`, guide `{args.guide}`; {args.epochs} epoch(s) over the capped training pairs, "
        f"batch {args.batch_size}, lr 5e-5, warmup 0.1, NO_DUPLICATES sampler, no dev-set selection; same steps "
        f"for MNRL (`MultipleNegativesRankingLoss`, scale 20) and GIST (adapt's `CachedGISTEmbedLoss`, "
        f"temperature 0.01, margin 0). Metrics from `adapt.evaluate.evaluate_index` over a flat index of the "
        f"corpus (pairs passages + corpus.csv). `train s` includes the guide pass for GIST.\n\n"
        f"{results}\n\n"
        f"Targets: fine-tuned beats base on every set: **{'met' if met_base else 'NOT met'}**. "
        f"GIST at least matches MNRL (change >= 0, or a 95% paired-bootstrap interval that spans 0) on "
        f"{gist_ok} of {len(checks)} sets: **{'met' if gist_ok > len(checks) / 2 else 'NOT met'}**.\n\n"
        f"{summary}\n\n"
        + (f"**{interrupted}**\n\n" if interrupted else "")
        + f"Caps (random, seed {args.seed}; a capped corpus keeps every passage relevant to a kept test question "
        f"plus random others):\n\n{caps_table}"
    )
    append_results("bench.quality", "Quality: base vs MNRL vs GIST" + (" (--quick)" if args.quick else ""),
                   body, facts, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
