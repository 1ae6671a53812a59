"""Retrieval quality on every shared dataset: base, BM25, MNRL, GIST, GIST + hard negatives, hybrid,
and the system adapt recommends, each with its paired 95% interval against base on test.

The split is adapt's: test as ``bench.common.load_split`` gives it (the given split where a dataset
has one), and dev carved out of the training questions with ``adapt.recommend.dev_fraction_for``,
so dev has enough questions to decide. Every training arm trains the same student for the same
number of steps (``--epochs`` over the training pairs, batch 32, NO_DUPLICATES sampler, no dev
checkpoint selection) so the losses compare on equal terms:

- ``mnrl``: sentence-transformers' ``MultipleNegativesRankingLoss`` (in-batch negatives only);
- ``gist``: adapt's cached-guide GIST loss on (question, passage) pairs;
- ``gist-hn``: the same on (question, passage, negative) rows, negatives mined from the corpus by the
  base model and BM25 and filtered by the guide (``adapt.negatives``), ``--hard-negatives`` a pair.

``hybrid`` fuses BM25 with the base or the ``gist-hn`` model, method, weight and dense side chosen on
dev by ``adapt.hybrid.choose_fusion``; ``recommended`` is ``adapt.recommend.recommend`` over base,
``gist-hn`` and hybrid on dev, measured on test.

    python -m bench.quality                 # every dataset at full size (medquad's training pairs capped)
    python -m bench.quality --quick         # agxqa only, a few steps: checks the wiring
"""

from __future__ import annotations

import argparse
import math
import signal
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import (DATASETS, add_threads_option, append_results, load_model, load_split,
                          machine_facts, make_arm_loss, quiet_logs, set_threads, table, train_steps)

METRICS = ("ndcg@10", "mrr@10", "accuracy@1")
TRAINED = ("mnrl", "gist", "gist-hn")
CAPS = {"medquad-health-faq": 4000}  # training pairs; the rest of its 16k pairs would take hours on 2 cores


def carve_dev(splits, seed: int):
    """Move a seeded share of the training questions (``dev_fraction_for``) into dev."""
    from adapt.recommend import dev_fraction_for

    questions = splits.train["question"].drop_duplicates().to_numpy()
    fraction = dev_fraction_for(len(questions))
    rng = np.random.default_rng(seed)
    dev_questions = set(rng.choice(questions, max(1, round(fraction * len(questions))), replace=False))
    in_dev = splits.train["question"].isin(dev_questions)
    splits.dev = splits.train[in_dev].reset_index(drop=True)
    splits.train = splits.train[~in_dev].reset_index(drop=True)
    return splits


class Sides:
    """One dataset's search corpus, dense indexes and BM25 index, with dev and test questions."""

    def __init__(self, splits):
        from adapt.data import ir_data
        from adapt.lexical import BM25Index

        self.splits = splits
        self.test, self.dev = ir_data(splits.test, splits.corpus), ir_data(splits.dev, splits.corpus)
        self.ids, self.texts = list(splits.corpus["passage_id"]), list(splits.corpus["passage"])
        self.bm25 = BM25Index.build(self.texts, self.ids)
        self.indexes, self.queries = {}, {}

    def add(self, arm: str, model) -> None:
        from adapt.index import PassageIndex, encode_passages, encode_queries

        self.indexes[arm] = PassageIndex.build(encode_passages(model, self.texts), self.ids, self.texts, kind="flat")
        self.queries[arm] = {split: encode_queries(model, list(ir.queries.values()))
                             for split, ir in (("test", self.test), ("dev", self.dev))}

    def evaluate(self, arm: str, split: str):
        from adapt.evaluate import evaluate_index

        ir = self.test if split == "test" else self.dev
        return evaluate_index(self.indexes[arm], self.queries[arm][split], ir, (1, 10))

    def candidates(self, arm: str, split: str):
        from adapt.hybrid import hybrid_candidates

        ir = self.test if split == "test" else self.dev
        return hybrid_candidates(self.indexes[arm], self.queries[arm][split], self.bm25, ir.queries)


def mined_training(splits, sides: Sides, base, guide, guide_name: str, per_question: int, cache_dir: Path):
    """The training pairs with guide-filtered hard negatives, mined as adapt.run mines them."""
    from adapt.index import encode_queries
    from adapt.negatives import (dense_candidates, guide_embedder, lexical_candidates, merge_candidates,
                                 mine_hard_negatives)
    from adapt.train import training_prompts

    questions = list(splits.train["question"])
    dense = dense_candidates(sides.indexes["base"], encode_queries(base, questions))
    lexical = lexical_candidates(sides.bm25, questions)
    embed = guide_embedder(base, guide, guide_name, cache_dir, training_prompts(base))
    embedded = []

    def counted(texts, column):
        embedded.extend(texts)
        return embed(texts, column)

    corpus = dict(zip(sides.ids, sides.texts))
    candidates = merge_candidates(dense, lexical)
    start = time.perf_counter()
    mined = mine_hard_negatives(splits.train, corpus, candidates, counted, per_question)
    print(f"  mining: {time.perf_counter() - start:.0f} s, the guide embedded {len(embedded)} texts "
          f"({len({p for row in candidates for p in row})} distinct candidate passages)", flush=True)
    return mined


def steps_for(args, rows: int) -> int:
    """Optimiser steps for ``rows`` training rows: ``--epochs`` N, or adapt.run's default (``auto_epochs``)."""
    from adapt.config import auto_epochs

    epochs = auto_epochs(rows, args.batch_size) if args.epochs == "auto" else int(args.epochs)
    return epochs * math.ceil(rows / args.batch_size)


def run_dataset(name: str, args, guide) -> tuple[list[dict], dict]:
    from adapt.hybrid import choose_fusion, evaluate_hybrid
    from adapt.lexical import evaluate_bm25
    from adapt.recommend import dev_results, recommend
    from adapt.stats import paired_bootstrap

    cap = args.max_train or CAPS.get(name)
    splits, caps = load_split(name, cap, args.max_test, args.max_corpus, args.seed)
    splits = carve_dev(splits, args.seed)
    caps.update({"train pairs (trained)": len(splits.train),
                 "dev questions": int(splits.dev["question"].nunique()),
                 "steps": steps_for(args, len(splits.train))})
    sides = Sides(splits)
    test, dev, seconds, audit = {}, {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        base = load_model(args.base)
        for arm in ("base", *args.arms):
            model = base if arm == "base" else load_model(args.base)
            start = time.perf_counter()
            if arm != "base":
                train = splits.train
                if arm == "gist-hn":
                    mined = mined_training(splits, sides, base, guide, args.guide, args.hard_negatives, cache)
                    train, audit = mined.training, mined.to_dict()
                loss, _ = make_arm_loss("mnrl" if arm == "mnrl" else "gist-cached", model, guide, args.guide,
                                        train, cache, args.temperature)
                train_steps(model, loss, train, steps_for(args, len(train)),
                            Path(tmp) / arm, args.batch_size, args.seed, learning_rate=args.learning_rate)
            seconds[arm] = time.perf_counter() - start
            sides.add(arm, model)
            test[arm], dev[arm] = sides.evaluate(arm, "test"), sides.evaluate(arm, "dev")
            print(f"  {arm}: test ndcg@10 {test[arm].metrics['ndcg@10']:.4f}", flush=True)
    test["bm25"] = evaluate_bm25(sides.test, (1, 10), index=sides.bm25)
    dense = {"base": "base", "finetuned": "gist-hn"}
    choice = choose_fusion({s: sides.candidates(arm, "dev") for s, arm in dense.items()}, sides.dev.relevant_docs)
    fused = {split: evaluate_hybrid(ir, sides.candidates(dense[choice.config.dense_system], split), choice.config,
                                    (1, 10)) for split, ir in (("test", sides.test), ("dev", sides.dev))}
    test["hybrid"], dev["hybrid"] = fused["test"], fused["dev"]
    pick = recommend(dev_results({"base": dev["base"], "finetuned": dev["gist-hn"], "hybrid": dev["hybrid"]},
                                 args.bootstrap, args.seed), len(sides.dev.queries))
    test["recommended"] = test[{"finetuned": "gist-hn"}.get(pick.system, pick.system)]

    rows = []
    for arm, evaluation in test.items():
        interval = paired_bootstrap(test["base"].per_query["ndcg@10"], evaluation.per_query["ndcg@10"],
                                    "ndcg@10", args.bootstrap, args.seed)
        rows.append({"dataset": name, "system": arm + (f" ({pick.system})" if arm == "recommended" else ""),
                     **{m: evaluation.metrics[m] for m in METRICS},
                     "NDCG@10 vs base [95%]": f"{interval.change:+.4f} [{interval.low:+.4f}, {interval.high:+.4f}]",
                     "train s": round(seconds[arm], 1) if arm in seconds else None})
    gist_vs_mnrl = paired_bootstrap(test["mnrl"].per_query["ndcg@10"], test["gist-hn"].per_query["ndcg@10"],
                                    "ndcg@10", args.bootstrap, args.seed)
    check = {"dataset": name, "recommended": pick.system,
             "recommended - base": rows[-1]["NDCG@10 vs base [95%]"],
             "GIST+HN - MNRL": f"{gist_vs_mnrl.change:+.4f} [{gist_vs_mnrl.low:+.4f}, {gist_vs_mnrl.high:+.4f}]",
             "GIST+HN >= MNRL": "yes" if gist_vs_mnrl.change >= 0 else (
                 "tie (interval spans 0)" if gist_vs_mnrl.high >= 0 else "NO"),
             "fusion": f"{choice.config.method} {choice.config.alpha if choice.config.alpha is not None else ''} "
                       f"{choice.config.dense_system}".strip(),
             "negatives removed / candidates": f"{audit.get('removed', 0)} / {audit.get('candidates', 0)}"}
    change = test["recommended"].metrics["ndcg@10"] - test["base"].metrics["ndcg@10"]
    return rows, {"caps": caps, "check": check, "change": change, "below": interval.high < 0}


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def epochs_arg(text: str):
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number or auto, got {text!r}") from None


def epochs_text(epochs) -> str:
    from adapt.config import AUTO_MAX_EPOCHS, MIN_STEPS

    return (f"adapt.run's default epochs (1 to {AUTO_MAX_EPOCHS}, as many as make at least {MIN_STEPS} steps; "
            "see the sizes table)" if epochs == "auto" else f"{epochs} epoch(s)")


def slices_text(slice_rows: int | None) -> str:
    from adapt import padding

    if slice_rows == 0:
        return "no training slices (one pass a batch)"
    return f"training slices of {slice_rows or padding.SLICE_ROWS} rows on a CPU (adapt.padding)"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated folders of ../shared/data")
    parser.add_argument("--base", default="minilm")
    parser.add_argument("--guide", default="mpnet")
    parser.add_argument("--max-train", type=int, default=0,
                        help="cap on training pairs per dataset (0 = all, medquad capped at 4000)")
    parser.add_argument("--max-test", type=int, default=0, help="cap on test questions per dataset (0 = all)")
    parser.add_argument("--max-corpus", type=int, default=0,
                        help="cap on corpus passages, every relevant test passage kept (0 = all)")
    parser.add_argument("--epochs", type=epochs_arg, default=1,
                        help="epochs of steps, or auto: adapt.run's default (adapt.config.auto_epochs)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--temperature", type=float, default=None, help="GIST temperature (default adapt's)")
    parser.add_argument("--hard-negatives", type=int, default=1, help="mined negatives per training pair")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--arms", default=",".join(TRAINED),
                        help="training arms to run (mnrl and gist-hn are needed; gist may be left out)")
    parser.add_argument("--quick", action="store_true", help="agxqa only, 64 training pairs, 50 test questions")
    parser.add_argument("--slice-rows", type=int, default=None,
                        help="rows a training slice on a CPU (adapt.padding.SLICE_ROWS; default adapt's own; 0 = one "
                             "pass a batch, as training ran before the slices)")
    add_threads_option(parser)
    args = parser.parse_args(argv)
    from adapt import padding

    if args.slice_rows is not None:  # 0: more rows than any batch holds, so every pass falls back to one
        padding.SLICE_ROWS = args.slice_rows or 10**9
    args.arms = [arm for arm in TRAINED if arm in args.arms.split(",")]
    if not {"mnrl", "gist-hn"} <= set(args.arms):
        parser.error(f"--arms must include mnrl and gist-hn; choose from {', '.join(TRAINED)}")
    set_threads(args.threads)
    if args.quick:
        args.datasets, args.max_train, args.max_test = "agxqa-agriculture-sample", 64, 50
    quiet_logs()
    started = time.perf_counter()
    facts = machine_facts()
    guide = load_model(args.guide)

    signal.signal(signal.SIGTERM, _interrupt)
    rows, checks, caps, changes, below, interrupted = [], [], [], [], [], None
    names = args.datasets.split(",")
    for name in names:
        print(f"# {name}", flush=True)
        try:
            found_rows, found = run_dataset(name, args, guide)
        except KeyboardInterrupt:
            interrupted = f"Interrupted during {name}: only {len(checks)} of {len(names)} datasets were measured."
            break
        rows += found_rows
        checks.append(found["check"])
        caps.append({"dataset": name, **found["caps"]})
        changes.append(found["change"])
        below += [name] if found["below"] else []
    if not checks:
        return 130

    results, summary, caps_table = table(rows), table(checks), table(caps)
    print("\n" + results + "\n\n" + summary + "\n\n" + caps_table)
    mean_change = float(np.mean(changes))
    from adapt.config import RunConfig

    temperature = args.temperature if args.temperature is not None else RunConfig(pairs=Path("x")).temperature
    hn_ok = sum(c["GIST+HN >= MNRL"] != "NO" for c in checks)
    body = (
        f"Student `{args.base}`, guide `{args.guide}`; arms base, {', '.join(args.arms)}; {epochs_text(args.epochs)} of steps over the training pairs "
        f"(gist-hn: {args.hard_negatives} mined negative(s) a pair, as many more steps), batch {args.batch_size}, "
        f"lr {args.learning_rate}, warmup 0.1, NO_DUPLICATES sampler, no dev checkpoint selection, "
        f"{slices_text(args.slice_rows)}. GIST arms: "
        f"adapt's `CachedGISTEmbedLoss`, temperature {temperature}, margin 0; MNRL scale 20. Dev carved from the training "
        f"questions (`dev_fraction_for`); hybrid and the recommendation chosen on dev only. Metrics from "
        f"`adapt.evaluate` over a flat index of the whole corpus; intervals: paired bootstrap over test "
        f"questions, {args.bootstrap} resamples.\n\n{results}\n\n"
        f"Mean test NDCG@10 change of the recommended system over base: **{mean_change:+.4f}** over "
        f"{len(checks)} set(s) (target +0.05). Sets where the recommended system's interval lies wholly below "
        f"base: {', '.join(below) or 'none'}. GIST + hard negatives at least matches MNRL (change >= 0 or "
        f"interval spanning 0) on {hn_ok} of {len(checks)}.\n\n{summary}\n\n"
        + (f"**{interrupted}**\n\n" if interrupted else "")
        + f"Sizes and caps (seed {args.seed}):\n\n{caps_table}"
    )
    append_results("bench.quality", "Quality: base, BM25, MNRL, GIST, GIST + hard negatives, hybrid, recommended"
                   + (" (--quick)" if args.quick else ""), body, facts, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
