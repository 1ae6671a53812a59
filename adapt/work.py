"""The run's resumable work: stage timing and progress, cached encodings, mined negatives, training.

Each piece is keyed by a fingerprint of its inputs under ``<out>/.work``, so re-running an
interrupted command skips what is finished; ``adapt.pipeline`` strings them together.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from adapt import distributed, leakage, models
from adapt.config import RunConfig
from adapt.encode import encode_corpus
from adapt.data import IRData, Splits
from adapt.faults import failpoint
from adapt.files import atomic_write_json, replace_dir
from adapt.index import PassageIndex, encode_passages, encode_queries
from adapt.lexical import BM25Index

if TYPE_CHECKING:
    from adapt.train import OnProgress  # the trainer's import cost waits until training

logger = logging.getLogger(__name__)



class Stages:
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


def encode(model, texts: list[str], encoder, stages: Stages, name: str, folder: Path | None = None) -> np.ndarray:
    """``texts`` encoded in chunks (adapt.encode); with ``folder``, each chunk is kept there and reused."""
    return encode_corpus(model, texts, encoder, folder, lambda done, total: stages.tell(name, done, total))


def encode_cached(folder: Path, model, corpus_texts: list[str], test: IRData, dev: IRData | None,
                   stages: Stages, name: str):
    """The base model's embeddings, computed once per data and model (and kept for a re-run)."""
    names = ("corpus", "test", "dev")
    if (folder / "DONE").exists():
        loaded = [np.load(folder / f"{n}.npy") for n in names]
        return loaded[0], loaded[1], loaded[2] if dev else None
    corpus = encode(model, corpus_texts, encode_passages, stages, name, folder / "corpus-chunks")
    test_vectors = encode_queries(model, list(test.queries.values()))
    dev_vectors = encode_queries(model, list(dev.queries.values())) if dev else np.zeros((0, corpus.shape[1]))
    folder.mkdir(parents=True, exist_ok=True)
    for n, array in zip(names, (corpus, test_vectors, dev_vectors)):
        np.save(folder / f"{n}.npy", array)
    (folder / "DONE").write_text("ok\n")
    shutil.rmtree(folder / "corpus-chunks", ignore_errors=True)
    return corpus, test_vectors, dev_vectors if dev else None


@dataclass
class TrainJob:
    """What rank 0 hands the other ranks so they train alongside it (adapt.distributed)."""

    base: models.ResolvedModel
    guide: models.ResolvedModel
    train: pd.DataFrame
    dev: IRData | None
    folder: Path
    cache_dir: Path | None


def train_cached(folder: Path, base, guide, guide_spec, train: pd.DataFrame, dev: IRData | None,
                 config: RunConfig, cache_dir: Path, stages: Stages, base_spec=None,
                 handoff: distributed.Handoff | None = None) -> dict:
    """Fine-tune once per data and settings; a finished training is reused, an interrupted one resumed.

    Across several processes rank 0 fills the guide cache, then hands ``handoff`` the job to train together.
    """
    from adapt.train import finetune, make_loss

    done = folder / "result.json"
    if done.exists() and (folder / "model").is_dir():
        result = json.loads(done.read_text())
        result["reused"] = True
        logger.info("Training already finished for these data and settings; reusing %s", folder / "model")
        if handoff is not None:
            handoff.give(None)  # nothing for the other ranks to train: they stop now
        return result
    folder.mkdir(parents=True, exist_ok=True)
    if handoff is not None and not handoff.done:
        guide_cache = cache_dir if config.guide_cache else None
        if guide_cache is not None:  # written once here; the other ranks read it
            make_loss(base, guide, guide_spec.resolved, train, config, guide_cache)
        handoff.give(TrainJob(base_spec, guide_spec, train, dev, folder, guide_cache))
    trained = finetune(base, guide, guide_spec.resolved, train, dev, config, folder,
                       cache_dir=cache_dir if config.guide_cache else None, progress=stages.tell)
    base.save(str(folder / ".model.tmp"))
    replace_dir(folder / ".model.tmp", folder / "model")
    shutil.rmtree(folder / "checkpoints", ignore_errors=True)
    result = asdict(trained)
    result["reused"] = False
    atomic_write_json(done, result)
    return result


def train_alongside(config: RunConfig) -> None:
    """A rank other than 0: wait for rank 0's ``TrainJob``, train with it, and stop (it writes nothing)."""
    from adapt.train import finetune

    job = distributed.receive()
    if job is None:
        logger.info("Nothing to train: the main process reuses a finished training")
        return
    base = models.load(job.base, config.max_seq_length, config.trust_remote_code)
    guide = models.load(job.guide, None, config.trust_remote_code)
    finetune(base, guide, job.guide.resolved, job.train, job.dev, config, job.folder, cache_dir=job.cache_dir)


def guide_embed(model, guide, guide_name: str, cache_dir: Path | None) -> leakage.Embed:
    """The guide's embedding of questions as training will make it (same tokens, same cache)."""
    from adapt.guide import guide_vectors
    from adapt.train import training_prompts

    prompt = training_prompts(model).get("anchor")
    return lambda texts: guide_vectors(model, guide, texts, prompt, guide_name, cache_dir)


def fingerprint(*parts) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:16]


def data_fingerprint(splits: Splits) -> str:
    digest = hashlib.sha256()
    for frame in (splits.train, splits.dev, splits.test, splits.corpus):
        digest.update(frame.to_csv(index=False).encode())
    return digest.hexdigest()[:16]



def mined_training(base, guide, guide_name: str, splits: Splits, index: PassageIndex, bm25: BM25Index,
                   config: RunConfig, cache_dir: Path | None) -> tuple[pd.DataFrame, dict | None]:
    """The training pairs with ``config.hard_negatives`` guide-filtered negatives each (adapt.negatives),
    candidates from the base model's index and BM25 merged; the audit goes to report.json."""
    from adapt.negatives import (dense_candidates, guide_embedder, lexical_candidates, merge_candidates,
                                 mine_hard_negatives)
    from adapt.train import training_prompts

    if config.hard_negatives == 0 or splits.train.empty:
        return splits.train, None
    questions = list(splits.train["question"])
    unique = list(dict.fromkeys(questions))
    vectors = encode_queries(base, unique)
    rows = {q: i for i, q in enumerate(unique)}
    dense = dense_candidates(index, vectors[[rows[q] for q in questions]])
    candidates = merge_candidates(dense, lexical_candidates(bm25, questions))
    embed = guide_embedder(base, guide, guide_name, cache_dir, training_prompts(base))
    corpus = dict(zip(index.ids, index.texts))
    mined = mine_hard_negatives(splits.train, corpus, candidates, embed, config.hard_negatives, seed=config.seed)
    return mined.training, {"per_question": config.hard_negatives, **mined.to_dict()}
