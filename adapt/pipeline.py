"""``run_pipeline(config) -> RunResult``: data, models, base, training, fine-tuned, report.

No argparse and no print: the CLI and the app are thin layers over this.

A run directory is only ever replaced whole by a finished run. Work in progress lives in
``<out>/.work`` (encodings, training checkpoints, keyed by a fingerprint of their inputs), the new
outputs are assembled in ``<out>/.staging`` and published at the end, and a lock file keeps a second
run out (adapt/files.py). Re-running an interrupted command skips finished stages and resumes training.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from adapt import __version__, leakage, models
from adapt.config import RunConfig
from adapt.data import IRData, Splits, ir_data, load_corpus, load_pairs, split_pairs, write_splits
from adapt.evaluate import evaluate_index
from adapt.faults import failpoint
from adapt.files import (STAGING, WORK, RunLock, atomic_write_json, atomic_write_text, check_run_dir,
                         claim_run_dir, publish, recover, replace_dir, tidy)
from adapt.index import PassageIndex, encode_passages, encode_queries
from adapt.lexical import evaluate_bm25
from adapt.report import build_report, per_query_csv, per_query_table, render_markdown

if TYPE_CHECKING:
    from adapt.train import OnProgress  # the trainer's import cost waits until training

logger = logging.getLogger(__name__)

# Every stage name the progress callback can report, roughly in order; "guide" (the guide pass) reports
# its batches from inside "train", before the training steps.
STAGES = ("data", "models", "leakage", "encode base", "index base", "evaluate base", "guide", "train",
          "encode fine-tuned", "index fine-tuned", "evaluate", "report")
ENCODE_CHUNK = 256
OUTPUTS = ("model", "index", "data", "report.json", "report.md", "per_query.csv")


@dataclass
class RunResult:
    out: Path
    report: dict
    timings: dict = field(default_factory=dict)


class _Stages:
    """Times each stage and tells the progress callback where the run is."""

    def __init__(self, progress: OnProgress | None):
        self.progress = progress
        self.timings: dict[str, float] = {}
        self._open: dict[str, float] = {}  # stages running now -> when they started

    @contextmanager
    def stage(self, name: str):
        logger.info("Stage: %s", name)
        self.tell(name, 0, 1)
        self._open[name] = time.perf_counter()
        yield
        self.timings[name] = self._total(name)
        del self._open[name]
        self.tell(name, 1, 1)

    def so_far(self) -> dict[str, float]:
        """The timings with the stage now running counted up to now (for the report it writes)."""
        return {**self.timings, **{name: self._total(name) for name in self._open}}

    def tell(self, name: str, done: int, total: int) -> None:
        failpoint(f"{name}@{done}")
        if self.progress is not None:
            self.progress(name, done, total)

    def _total(self, name: str) -> float:
        return round(self.timings.get(name, 0.0) + time.perf_counter() - self._open[name], 3)


def prepare_data(config: RunConfig) -> Splits:
    """Read, clean and split the inputs and settle exact leaks; raises ``DataError`` before anything is written."""
    pairs = load_pairs(config.pairs, config.question_col, config.passage_col)
    eval_pairs = (load_pairs(config.eval_pairs, config.question_col, config.passage_col, role="eval pairs")
                  if config.eval_pairs else None)
    extra = load_corpus(config.corpus) if config.corpus else None
    splits = split_pairs(pairs, config.eval_fraction, config.dev_fraction, config.seed, eval_pairs, extra)
    return leakage.check_exact(splits, config.drop_leaks)


def run_pipeline(config: RunConfig, progress: OnProgress | None = None) -> RunResult:
    check_run_dir(config.out)  # before any work: never write into a folder that holds someone's own files
    stages = _Stages(progress)
    with stages.stage("data"):
        splits = prepare_data(config)
    with RunLock(config.out):
        claim_run_dir(config.out)
        return _run_locked(config, splits, stages)


def _run_locked(config: RunConfig, splits: Splits, stages: _Stages) -> RunResult:
    out = config.out
    work = out / WORK
    staging = out / STAGING
    recover(out)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    cache_dir = models.cache_root(config.cache_dir)

    with stages.stage("models"):
        base_spec = models.resolve(config.base, "base", config.fallback, config.cache_dir)
        guide_spec = models.resolve(config.guide or models.default_guide(config.base), "guide",
                                    config.fallback, config.cache_dir)
        base = models.load(base_spec, config.max_seq_length, config.trust_remote_code)
        guide = models.load(guide_spec, None, config.trust_remote_code)
        model_facts = {"base": {**base_spec.to_dict(), **models.describe(base)},
                       "guide": {**guide_spec.to_dict(), **models.describe(guide)}}

    with stages.stage("leakage"):
        embed = _guide_embed(base, guide, guide_spec.resolved, cache_dir if config.guide_cache else None)
        splits, leaks = leakage.check_near(splits, embed, config.drop_leaks)
    test = ir_data(splits.test, splits.corpus)
    dev = ir_data(splits.dev, splits.corpus) if len(splits.dev) else None
    data_fp = _data_fingerprint(splits)
    write_splits(splits, staging / "data")

    corpus_ids, corpus_texts = list(splits.corpus["passage_id"]), list(splits.corpus["passage"])
    base_fp = _hash(data_fp, base_spec.path, base.max_seq_length)
    with stages.stage("encode base"):
        base_corpus, base_test, base_dev = _encode_cached(
            work / f"base-{base_fp}", base, corpus_texts, test, dev, stages, "encode base")
    with stages.stage("index base"):
        base_index = PassageIndex.build(base_corpus, corpus_ids, corpus_texts, config.index,
                                        base_spec.resolved, config.seed)
    with stages.stage("evaluate base"):
        base_eval = evaluate_index(base_index, base_test, test, config.k)
        base_dev_eval = evaluate_index(base_index, base_dev, dev, (10,)) if dev else None

    train_fp = _hash(data_fp, base_spec.path, guide_spec.path, config.digest(
        "epochs", "batch_size", "learning_rate", "warmup_ratio", "temperature", "margin", "margin_strategy",
        "max_seq_length", "eval_steps", "patience", "seed", "dev_fraction"))
    train_dir = work / f"train-{train_fp}"
    with stages.stage("train"):
        training = _train_cached(train_dir, base, guide, guide_spec, splits, dev, config, cache_dir, stages)
    tuned = models.load(models.fine_tuned(train_dir / "model"), None, config.trust_remote_code)

    with stages.stage("encode fine-tuned"):
        tuned_corpus = _encode(tuned, corpus_texts, encode_passages, stages, "encode fine-tuned")
        tuned_test = encode_queries(tuned, list(test.queries.values()))
        tuned_dev = encode_queries(tuned, list(dev.queries.values())) if dev else None
    with stages.stage("index fine-tuned"):
        tuned_index = PassageIndex.build(tuned_corpus, corpus_ids, corpus_texts, config.index,
                                         "fine-tuned", config.seed)
    with stages.stage("evaluate"):
        tuned_eval = evaluate_index(tuned_index, tuned_test, test, config.k)
        tuned_dev_eval = evaluate_index(tuned_index, tuned_dev, dev, (10,)) if dev else None
        bm25_eval = evaluate_bm25(test, config.k)

    with stages.stage("report"):
        shutil.copytree(train_dir / "model", staging / "model")
        base_index.save(staging / "index" / "base")
        tuned_index.save(staging / "index" / "finetuned")
        report = build_report(
            config=config, version=__version__, models=model_facts, counts=splits.counts,
            evaluations={"base": base_eval, "finetuned": tuned_eval, "bm25": bm25_eval},
            dev={"base": base_dev_eval, "finetuned": tuned_dev_eval}, training=training,
            indexes={"base": base_index.info, "finetuned": tuned_index.info},
            leakage=leaks,
            timings=stages.so_far(),
        )
        per_query = per_query_table(test, {"base": base_eval, "finetuned": tuned_eval, "bm25": bm25_eval})
        atomic_write_text(staging / "per_query.csv", per_query_csv(per_query))
        atomic_write_text(staging / "report.md", render_markdown(report))
        atomic_write_json(staging / "report.json", report)  # last: its presence marks a complete run
        publish(staging, out, OUTPUTS)
        tidy(work, keep={f"base-{base_fp}", f"train-{train_fp}"})
    return RunResult(out, report, stages.timings)


# ----------------------------------------------------------------------------------------------
# Stages that survive interruption


def _encode(model, texts: list[str], encoder, stages: _Stages, name: str) -> np.ndarray:
    parts = []
    for start in range(0, len(texts), ENCODE_CHUNK):
        parts.append(encoder(model, texts[start:start + ENCODE_CHUNK]))
        stages.tell(name, min(start + ENCODE_CHUNK, len(texts)), len(texts))
    return np.concatenate(parts) if parts else np.zeros((0, model.get_embedding_dimension()), np.float32)


def _encode_cached(folder: Path, model, corpus_texts: list[str], test: IRData, dev: IRData | None,
                   stages: _Stages, name: str):
    """The base model's embeddings, computed once per data and model (and kept for a re-run)."""
    names = ("corpus", "test", "dev")
    if (folder / "DONE").exists():
        loaded = [np.load(folder / f"{n}.npy") for n in names]
        return loaded[0], loaded[1], loaded[2] if dev else None
    corpus = _encode(model, corpus_texts, encode_passages, stages, name)
    test_vectors = encode_queries(model, list(test.queries.values()))
    dev_vectors = encode_queries(model, list(dev.queries.values())) if dev else np.zeros((0, corpus.shape[1]))
    folder.mkdir(parents=True, exist_ok=True)
    for n, array in zip(names, (corpus, test_vectors, dev_vectors)):
        np.save(folder / f"{n}.npy", array)
    (folder / "DONE").write_text("ok\n")
    return corpus, test_vectors, dev_vectors if dev else None


def _train_cached(folder: Path, base, guide, guide_spec, splits: Splits, dev: IRData | None,
                  config: RunConfig, cache_dir: Path, stages: _Stages) -> dict:
    """Fine-tune once per data and settings; a finished training is reused, an interrupted one resumed."""
    from adapt.train import finetune

    done = folder / "result.json"
    if done.exists() and (folder / "model").is_dir():
        result = json.loads(done.read_text())
        result["reused"] = True
        logger.info("Training already finished for these data and settings; reusing %s", folder / "model")
        return result
    folder.mkdir(parents=True, exist_ok=True)
    trained = finetune(base, guide, guide_spec.resolved, splits.train, dev, config, folder,
                       cache_dir=cache_dir if config.guide_cache else None, progress=stages.tell)
    base.save(str(folder / ".model.tmp"))
    replace_dir(folder / ".model.tmp", folder / "model")
    shutil.rmtree(folder / "checkpoints", ignore_errors=True)
    result = asdict(trained)
    result["reused"] = False
    atomic_write_json(done, result)
    return result


# ----------------------------------------------------------------------------------------------
# Helpers


def _guide_embed(model, guide, guide_name: str, cache_dir: Path | None) -> leakage.Embed:
    """The guide's embedding of questions as training will make it (same tokens, same cache)."""
    from adapt.guide import guide_vectors
    from adapt.train import training_prompts

    prompt = training_prompts(model).get("anchor")
    return lambda texts: guide_vectors(model, guide, texts, prompt, guide_name, cache_dir)


def _hash(*parts) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:16]


def _data_fingerprint(splits: Splits) -> str:
    digest = hashlib.sha256()
    for frame in (splits.train, splits.dev, splits.test, splits.corpus):
        digest.update(frame.to_csv(index=False).encode())
    return digest.hexdigest()[:16]

