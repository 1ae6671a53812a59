"""``run_pipeline(config) -> RunResult``: data, models, base, training, fine-tuned, report.

No argparse and no print: the CLI and the app are thin layers over this.

A run directory is only ever replaced whole by a finished run. Work in progress lives in
``<out>/.work`` (encodings, training checkpoints, keyed by a fingerprint of their inputs), the new
outputs are assembled in ``<out>/.staging`` and published at the end, and a lock file keeps a second
run out (adapt/files.py). Re-running an interrupted command skips finished stages and resumes training.
Launched as several processes (torchrun, accelerate launch), rank 0 does all of this and the others
only train alongside it (adapt.distributed).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from adapt import __version__, distributed, leakage, models, precision
from adapt.bundled import cache_root
from adapt.card import write_model_card
from adapt.config import RunConfig
from adapt.data import Splits, ir_data, load_corpus, load_pairs, split_pairs, write_splits
from adapt.evaluate import evaluate_index
from adapt.files import (STAGING, WORK, RunLock, atomic_write_json, atomic_write_text, check_run_dir,
                         claim_run_dir, publish, recover, tidy)
from adapt.hybrid import hybrid_system
from adapt.index import PassageIndex, encode_passages, encode_queries
from adapt.lexical import BM25Index, evaluate_bm25
from adapt.recommend import dev_fraction_for
from adapt.report import build_report, per_query_csv, per_query_table, render_markdown
from adapt.work import (Stages, data_fingerprint, encode, encode_cached, fingerprint, guide_embed,
                        mined_training, train_alongside, train_cached)

if TYPE_CHECKING:
    from adapt.train import OnProgress  # the trainer's import cost waits until training

logger = logging.getLogger(__name__)

# Every stage name the progress callback can report, roughly in order; "guide" (the guide pass) reports
# its batches from inside "train", before the training steps.
STAGES = ("data", "models", "leakage", "encode base", "index base", "evaluate base", "negatives", "guide", "train",
          "encode fine-tuned", "index fine-tuned", "evaluate", "hybrid", "report")
OUTPUTS = ("model", "index", "data", "report.json", "report.md", "per_query.csv")


@dataclass
class RunResult:
    out: Path
    report: dict
    timings: dict = field(default_factory=dict)
    main: bool = True  # False on the ranks other than 0, which only train and write nothing


def prepare_data(config: RunConfig) -> Splits:
    """Read, clean and split the inputs and settle exact leaks; raises ``DataError`` before anything is written."""
    pairs = load_pairs(config.pairs, config.question_col, config.passage_col)
    eval_pairs = (load_pairs(config.eval_pairs, config.question_col, config.passage_col, role="eval pairs")
                  if config.eval_pairs else None)
    extra = load_corpus(config.corpus) if config.corpus else None
    dev_fraction = config.dev_fraction
    if dev_fraction is None:  # enough dev questions to decide (adapt.recommend.dev_fraction_for)
        dev_fraction = min(dev_fraction_for(max(1, pairs.frame["question"].nunique())),
                           round(max(0.0, 0.9 - config.eval_fraction), 4))
    splits = split_pairs(pairs, config.eval_fraction, dev_fraction, config.seed, eval_pairs, extra)
    return leakage.check_exact(splits, config.drop_leaks)


def processes_for_epochs(config: RunConfig) -> tuple:
    """Part of the training's work key: with epochs left unset, the processes sharing an epoch decide how
    many epochs train (``adapt.config.auto_epochs``), so a resumed or reused training must have the same
    number. Empty for one process, keeping the key single-process runs had before."""
    size = distributed.world().size
    return ("processes", size) if config.epochs is None and size > 1 else ()


def run_pipeline(config: RunConfig, progress: OnProgress | None = None) -> RunResult:
    try:
        with precision.use(precision.resolve(config.precision)):  # encoding, the guide pass and training
            return _run(config, progress)
    finally:
        distributed.finish()


def _run(config: RunConfig, progress: OnProgress | None) -> RunResult:
    if not distributed.start().main:
        train_alongside(config)
        return RunResult(config.out, {}, main=False)
    handoff = distributed.Handoff()
    try:
        check_run_dir(config.out)  # before any work: never write into a folder that holds someone's own files
        stages = Stages(progress)
        with stages.stage("data"):
            splits = prepare_data(config)
        with RunLock(config.out):
            claim_run_dir(config.out)
            return _run_locked(config, splits, stages, handoff)
    except Exception as exc:
        handoff.give(distributed.Stopped(str(exc)))
        raise
    finally:
        handoff.give(None)  # a reused training: nothing for the others to do


def _run_locked(config: RunConfig, splits: Splits, stages: Stages, handoff: distributed.Handoff) -> RunResult:
    out = config.out
    work = out / WORK
    staging = out / STAGING
    recover(out)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    cache_dir = cache_root(config.cache_dir)

    with stages.stage("models"):
        base_spec = models.resolve(config.base, "base", config.fallback, config.cache_dir)
        guide_spec = models.resolve(config.guide or models.default_guide(config.base), "guide",
                                    config.fallback, config.cache_dir)
        base = models.load(base_spec, config.max_seq_length, config.trust_remote_code)
        guide = models.load(guide_spec, None, config.trust_remote_code)
        model_facts = {"base": {**base_spec.to_dict(), **models.describe(base)},
                       "guide": {**guide_spec.to_dict(), **models.describe(guide)}}

    with stages.stage("leakage"):
        embed = guide_embed(base, guide, guide_spec.resolved, cache_dir if config.guide_cache else None)
        splits, leaks = leakage.check_near(splits, embed, config.drop_leaks)
    test = ir_data(splits.test, splits.corpus)
    dev = ir_data(splits.dev, splits.corpus) if len(splits.dev) else None
    data_fp = data_fingerprint(splits)
    write_splits(splits, staging / "data")

    corpus_ids, corpus_texts = list(splits.corpus["passage_id"]), list(splits.corpus["passage"])
    # work keys change only with what bf16 touched (fp32 keys as before): the guide, the student's encoding
    # and training
    student = ("student-bf16",) if precision.active().student else ()
    ran = () if precision.active().used == "fp32" else (precision.active().used, *student)
    base_fp = fingerprint(data_fp, base_spec.path, base.max_seq_length, *student)
    with stages.stage("encode base"):
        base_corpus, base_test, base_dev = encode_cached(
            work / f"base-{base_fp}", base, corpus_texts, test, dev, stages, "encode base")
    with stages.stage("index base"):
        base_index = PassageIndex.build(base_corpus, corpus_ids, corpus_texts, config.index,
                                        base_spec.resolved, config.seed, config.index_memory_gb)
        bm25 = BM25Index.build(corpus_texts, corpus_ids)
    with stages.stage("evaluate base"):
        base_eval = evaluate_index(base_index, base_test, test, config.k)
        base_dev_eval = evaluate_index(base_index, base_dev, dev, (10,)) if dev else None

    train_fp = fingerprint(data_fp, base_spec.path, guide_spec.path, config.digest(
        "epochs", "batch_size", "learning_rate", "warmup_ratio", "temperature", "margin", "margin_strategy",
        "max_seq_length", "eval_steps", "patience", "seed", "dev_fraction", "hard_negatives"), *ran,
        *processes_for_epochs(config))
    train_dir = work / f"train-{train_fp}"
    with stages.stage("negatives"):
        train, negatives = mined_training(base, guide, guide_spec.resolved, splits, base_index, bm25, config,
                                          cache_dir if config.guide_cache else None)
    with stages.stage("train"):
        training = train_cached(train_dir, base, guide, guide_spec, train, dev, config, cache_dir, stages,
                                base_spec, handoff)
    tuned = models.load(models.fine_tuned(train_dir / "model"), None, config.trust_remote_code)

    with stages.stage("encode fine-tuned"):
        tuned_corpus = encode(tuned, corpus_texts, encode_passages, stages, "encode fine-tuned",
                              work / f"train-{train_fp}" / "corpus-chunks")
        tuned_test = encode_queries(tuned, list(test.queries.values()))
        tuned_dev = encode_queries(tuned, list(dev.queries.values())) if dev else None
    with stages.stage("index fine-tuned"):
        tuned_index = PassageIndex.build(tuned_corpus, corpus_ids, corpus_texts, config.index,
                                         "fine-tuned", config.seed, config.index_memory_gb)
    with stages.stage("evaluate"):
        tuned_eval = evaluate_index(tuned_index, tuned_test, test, config.k)
        tuned_dev_eval = evaluate_index(tuned_index, tuned_dev, dev, (10,)) if dev else None
        bm25_eval = evaluate_bm25(test, config.k, index=bm25)
    with stages.stage("hybrid"):  # needs dev: the fusion is chosen there
        hybrid = hybrid_system({"base": (base_index, base_dev, base_test), "finetuned": (tuned_index, tuned_dev, tuned_test)},
                               bm25, dev, test, config.k) if dev else None
    evaluations = {"base": base_eval, "finetuned": tuned_eval, **({"hybrid": hybrid.test} if hybrid else {}),
                   "bm25": bm25_eval}

    with stages.stage("report"):
        shutil.copytree(train_dir / "model", staging / "model")
        base_index.save(staging / "index" / "base")
        tuned_index.save(staging / "index" / "finetuned")
        bm25.save(staging / "index" / "bm25")
        report = build_report(
            config=config, version=__version__, models=model_facts, counts=splits.counts, evaluations=evaluations,
            dev={"base": base_dev_eval, "finetuned": tuned_dev_eval, "hybrid": hybrid.dev if hybrid else None},
            training=training, indexes={"base": base_index.info, "finetuned": tuned_index.info},
            leakage=leaks, timings=stages.so_far(), hybrid=hybrid.to_dict() if hybrid else None,
            negatives=negatives, precision=precision.active().to_dict(),
        )
        write_model_card(staging / "model", report)
        per_query = per_query_table(test, evaluations)
        atomic_write_text(staging / "per_query.csv", per_query_csv(per_query))
        atomic_write_text(staging / "report.md", render_markdown(report))
        atomic_write_json(staging / "report.json", report)  # last: its presence marks a complete run
        publish(staging, out, OUTPUTS)
        tidy(work, keep={f"base-{base_fp}", f"train-{train_fp}"})
        shutil.rmtree(train_dir / "corpus-chunks", ignore_errors=True)  # only for resuming this run
    return RunResult(out, report, stages.timings)


