"""Training cost: stock GISTEmbedLoss vs adapt's cached guide vs MultipleNegativesRankingLoss.

Same data (askextension-kb-california pairs), same student, same guide, same steps (one epoch over
N pairs: N // batch steps, NO_DUPLICATES sampler, SentenceTransformerTrainer, no saving). An arm's
time runs from building its loss to the end of ``trainer.train()``, so the cached arm pays for its
guide pass (``adapt.guide.build_table``); the "warm" arm finds the guide embeddings already on disk.
Model loading is not timed. Arms are interleaved (the order rotates every repeat) and the table
shows medians; each ratio is the median of the per-repeat ratios to that repeat's MNRL run.

    python -m bench.training_cost               # 1024 pairs, 3 repeats
    python -m bench.training_cost --quick       # 64 pairs, 1 repeat
    python -m bench.training_cost --precision auto --arms mnrl,gist-cached
                                                # as adapt.run runs by default (bf16 where the CPU has it)

``--precision`` is adapt.run's: each arm runs inside ``adapt.precision.use`` of it, so the guide pass and
the trainer run in what adapt.run would use (fp32 by default here, the reference the 2026-11 numbers used).
The speed issue's targets: the cold cached arm at most 1.5x MNRL for one epoch, and at most 1.15x per
epoch over three (derived from the same runs: one guide pass spread over three epochs of steps).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.common import (DATA, add_threads_option, append_results, load_model, machine_facts, make_arm_loss,
                          median, quiet_logs, set_threads, spread, table, train_steps)

ARMS = ("mnrl", "gist-stock", "gist-cached", "gist-cached-warm")
LABELS = {
    "mnrl": "MultipleNegativesRankingLoss",
    "gist-stock": "GISTEmbedLoss (stock, guide every batch)",
    "gist-cached": "adapt cached guide, cold cache (guide pass included)",
    "gist-cached-warm": "adapt cached guide, warm disk cache (guide pass skipped)",
}
TARGET_ONE, TARGET_THREE = 1.5, 1.15  # x MNRL: one epoch, and per epoch over three


def measure(arm: str, args, train, guide, cache_dir: Path, work: Path) -> dict:
    from adapt import precision

    model = load_model(args.base)
    start = time.perf_counter()
    with precision.use(precision.resolve(args.precision, quiet=True)):
        loss, stats = make_arm_loss("gist-cached" if arm.startswith("gist-cached") else arm, model, guide,
                                    args.guide, train, cache_dir)
        train_seconds = train_steps(model, loss, train, args.steps, work, args.batch_size, args.seed,
                                    precision=args.precision)
    total = time.perf_counter() - start
    return {"total": total, "train": train_seconds, "guide": stats.seconds if stats else 0.0,
            "encoded": stats.encoded if stats else None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="askextension-kb-california")
    parser.add_argument("--pairs", type=int, default=1024, help="training pairs (one epoch = pairs // batch steps)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--base", default="minilm")
    parser.add_argument("--guide", default="mpnet")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--amortise-epochs", type=int, default=3,
                        help="also show the cold cached arm's cost per epoch over this many epochs (3: adapt's "
                             "default where an epoch is under 20 steps)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "auto"),
                        help="adapt.run's --precision for the guide pass and the trainer")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--quick", action="store_true", help="64 pairs, 1 repeat")
    add_threads_option(parser)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    if args.quick:
        args.pairs, args.repeats = 64, 1
    args.steps = max(1, args.pairs // args.batch_size)
    arms = [a for a in args.arms.split(",") if a]
    quiet_logs()
    started = time.perf_counter()
    facts = machine_facts()

    from adapt import precision
    from adapt.data import load_pairs
    from adapt.train import make_loss  # noqa: F401  (import cost outside the timings)

    frame = load_pairs(DATA / args.dataset / "pairs.csv").frame
    train = frame.sample(n=min(args.pairs, len(frame)), random_state=args.seed).reset_index(drop=True)
    guide = load_model(args.guide)

    results: dict[str, list[dict]] = {arm: [] for arm in arms}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # untimed: warm the trainer's code paths, and fill the warm arm's disk cache
        warm_model = load_model(args.base)
        make_arm_loss("gist-cached", warm_model, guide, args.guide, train, tmp / "warm-cache")
        train_steps(warm_model, make_arm_loss("mnrl", warm_model, guide, args.guide, train, None)[0],
                    train.head(args.batch_size * 2), 1, tmp / "warmup", args.batch_size, args.seed)
        for repeat in range(args.repeats):
            order = arms[repeat % len(arms):] + arms[:repeat % len(arms)]
            for arm in order:
                cache = tmp / "warm-cache" if arm == "gist-cached-warm" else tmp / f"cold-{repeat}"
                found = measure(arm, args, train, guide, cache, tmp / f"out-{arm}-{repeat}")
                results[arm].append(found)
                print(f"repeat {repeat + 1}/{args.repeats} {arm:<17} {found['total']:7.1f} s "
                      f"(guide pass {found['guide']:.1f} s)", flush=True)

    pairs_per_epoch = args.steps * args.batch_size
    rows = []
    for arm in arms:
        runs = results[arm]
        totals = [r["total"] for r in runs]
        row = {"arm": LABELS[arm], "s/epoch (median)": median(totals), "range": spread(totals),
               "pairs/s": pairs_per_epoch / median(totals),
               "guide pass s": median([r["guide"] for r in runs]) if arm.startswith("gist-cached") else None}
        if "mnrl" in results:
            row["x MNRL"] = median([r["total"] / m["total"] for r, m in zip(runs, results["mnrl"])])
        rows.append(row)
    columns = ["arm", "s/epoch (median)", "range", "pairs/s", "guide pass s", "x MNRL"]
    columns = [c for c in columns if any(r.get(c) is not None for r in rows)]
    result_table = table(rows, columns)
    print("\n" + result_table)

    lines = []
    if "mnrl" in results and "gist-cached" in results:
        cold = median([r["total"] / m["total"] for r, m in zip(results["gist-cached"], results["mnrl"])])
        e = args.amortise_epochs
        amortised = median([(r["guide"] + e * (r["total"] - r["guide"])) / (e * m["total"])
                            for r, m in zip(results["gist-cached"], results["mnrl"])])
        lines.append(f"Target: cached-guide GIST (cold cache, guide pass included) at most {TARGET_ONE}x MNRL for "
                     f"one epoch: **{'met' if cold <= TARGET_ONE else 'NOT met'}** ({cold:.2f}x).")
        lines.append(f"Derived, not measured as such: spreading the one guide pass over {e} epochs "
                     f"(adapt's default where an epoch is under 20 steps) gives {amortised:.2f}x MNRL per epoch "
                     f"((guide + {e} x training) / ({e} x MNRL), from the same runs)"
                     + (f"; target at most {TARGET_THREE}x: **{'met' if amortised <= TARGET_THREE else 'NOT met'}**."
                        if e == 3 else "."))
    if "gist-cached-warm" in results and "mnrl" in results:
        warm = median([r["total"] / m["total"] for r, m in zip(results["gist-cached-warm"], results["mnrl"])])
        lines.append(f"Warm disk cache (second run on the same data): {warm:.2f}x MNRL.")
    if "gist-stock" in results and "gist-cached" in results:
        speedup = median([s["total"] / c["total"] for s, c in zip(results["gist-stock"], results["gist-cached"])])
        lines.append(f"Stock GISTEmbedLoss / adapt cold cached guide: {speedup:.2f}x.")
    print("\n".join(lines))
    body = (f"{args.pairs} pairs of `{args.dataset}` (random, seed {args.seed}), student `{args.base}`, guide "
            f"`{args.guide}`, batch {args.batch_size}, {args.steps} steps (one epoch), NO_DUPLICATES sampler, "
            f"{args.repeats} interleaved repeats; --precision {args.precision} (guide pass and trainer ran "
            f"{precision.resolve(args.precision, quiet=True).used}); CPU only.\n\n{result_table}\n\n" + "\n".join(f"- {x}" for x in lines))
    append_results("bench.training_cost", "Training cost per epoch" + (" (--quick)" if args.quick else ""),
                   body, facts, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
