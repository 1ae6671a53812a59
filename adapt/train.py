"""GISTEmbed fine-tuning on sentence-transformers' trainer.

The dev set picks the checkpoint: the trainer evaluates every ``eval_steps``, keeps the best by dev
NDCG@10, and stops early after ``patience`` evaluations without improvement. Checkpoints live in a
work folder, so an interrupted run resumes where it stopped. A checkpoint a kill cut short while it
was being saved is checked for and set aside: training resumes from the one before, or starts again.
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from datasets import Dataset
from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator
from sentence_transformers.sentence_transformer.losses import GISTEmbedLoss
from sentence_transformers.sentence_transformer.training_args import BatchSamplers
from transformers import EarlyStoppingCallback, TrainerCallback
from transformers.trainer_callback import PrinterCallback
from transformers.trainer_callback import ProgressCallback as TrainerBars

from adapt import distributed, padding, precision
from adapt.config import AUTO_MAX_EPOCHS, RunConfig, auto_epochs
from adapt.data import IRData
from adapt.evaluate import DEV_METRIC
from adapt.guide import CachedGISTEmbedLoss, GuideStats, build_table

logger = logging.getLogger(__name__)

DEV_CORPUS_MAX = 1000  # passages the in-training dev evaluation searches (every relevant one, then a sample)
# Told (stage, done, total) as a run moves; the pipeline, the app and the trainer share it.
OnProgress = Callable[[str, int, int], None]
CHECKPOINT = re.compile(r"checkpoint-\d+")  # the trainer's checkpoint folders


@dataclass
class TrainResult:
    seconds: float
    steps: int
    epochs: float
    loss: str
    best_step: int | None = None
    dev_history: list[dict] = field(default_factory=list)
    guide: GuideStats | None = None
    resumed_from: str | None = None
    distributed: dict | None = None  # world size, backend and devices (adapt.distributed.describe)
    slice_rows: int | None = None  # rows a length-sorted slice of a training forward (adapt.padding); None: one pass
    planned_epochs: int | None = None  # the epochs asked for, or chosen by ``auto_epochs``; early stopping may end sooner


def training_prompts(model, columns=("anchor", "positive", "negative")) -> dict[str, str]:
    """Prompts the trainer prepends per column: the model's own query prompt for the anchor and its
    document prompt for the positive and negative, if the model has them."""
    own = getattr(model, "prompts", None) or {}
    document = own.get("document") or own.get("passage")
    prompts = {column: own.get("query") if column == "anchor" else document for column in columns}
    return {column: prompt for column, prompt in prompts.items() if prompt}


def training_columns(train: pd.DataFrame) -> dict[str, list[str]]:
    """The trainer's columns: anchor and positive, and negative when ``train`` carries mined negatives."""
    columns = {"anchor": list(train["question"]), "positive": list(train["passage"])}
    if "negative" in train:
        columns["negative"] = list(train["negative"])
    return columns


def make_loss(model, guide, guide_name: str, train: pd.DataFrame, config: RunConfig, cache_dir: Path | None,
              progress: OnProgress | None = None):
    """adapt's cached-guide GIST loss (or stock ``GISTEmbedLoss`` with ``guide_cache`` off).

    ``train`` may carry a ``negative`` column (``negatives.mine_hard_negatives``); GIST treats it as one
    more set of candidates, and the guide table then covers the negatives' texts too. Across several
    processes the loss gathers every process's candidates (``gather_across_devices``; the cached guide's
    embeddings are gathered with them), so N processes give each question N times the in-batch negatives.
    """
    options = dict(temperature=config.temperature, margin=config.margin, margin_strategy=config.margin_strategy,
                   gather_across_devices=distributed.world().several)
    if not config.guide_cache:
        return GISTEmbedLoss(model, guide, **options), None
    report = (lambda done, total: progress("guide", done, total)) if progress else None
    columns = training_columns(train)
    table, stats = build_table(
        model, guide, columns, prompts=training_prompts(model, columns), guide_name=guide_name,
        cache_dir=cache_dir, progress=report,
    )
    return CachedGISTEmbedLoss(model, guide, table, **options), stats


def dev_corpus(dev: IRData, limit: int, seed: int) -> dict[str, str]:
    """The dev set's relevant passages plus a seeded sample of the rest, ``limit`` in all.

    Checkpoint selection only needs a ranking signal, and re-encoding a large corpus at every
    evaluation would cost more than the training steps between them. The final dev and test
    numbers in the report search the whole corpus.
    """
    if len(dev.corpus) <= limit:
        return dev.corpus
    relevant = set().union(*dev.relevant_docs.values())
    others = [pid for pid in dev.corpus if pid not in relevant]
    room = max(0, limit - len(relevant))
    chosen = set(np.random.default_rng(seed).choice(len(others), min(room, len(others)), replace=False))
    keep = relevant | {others[i] for i in chosen}
    return {pid: text for pid, text in dev.corpus.items() if pid in keep}


def default_eval_steps(n_pairs: int, batch_size: int) -> int:
    """About twice an epoch."""
    return max(1, math.ceil(math.ceil(n_pairs / batch_size) / 2))


def training_arguments(model, config: RunConfig, output_dir: Path, columns: list[str],
                       **overrides) -> SentenceTransformerTrainingArguments:
    """The trainer's settings for a run: sampler, seeds and schedule from ``config``, prompts per column.

    ``overrides`` set the rest (evaluation and saving here; bench/ sets ``max_steps`` and saves nothing).
    Where bf16 runs (``auto`` or ``bf16`` on hardware that has it, adapt.precision), the trainer runs bf16
    mixed precision (on a CPU, transformers asks for ``use_cpu`` with it); ``fp32`` trains in fp32.
    """
    settings = dict(
        output_dir=str(output_dir),
        num_train_epochs=config.epochs or AUTO_MAX_EPOCHS,  # finetune passes the epochs it settled on
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_ratio,  # transformers 5: a float below 1 is a ratio
        seed=config.seed,
        data_seed=config.seed,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        prompts=training_prompts(model, columns) or None,
        report_to="none",
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    arguments = {**settings, **overrides}
    if precision.resolve(config.precision, quiet=True).student:
        arguments.update(bf16=True, use_cpu=arguments.get("use_cpu") or not torch.cuda.is_available())
    return SentenceTransformerTrainingArguments(**arguments)


def finetune(model, guide, guide_name: str, train: pd.DataFrame, dev: IRData | None, config: RunConfig,
             work_dir: Path, cache_dir: Path | None = None, progress: OnProgress | None = None) -> TrainResult:
    """Fine-tune ``model`` in place; on return it holds the dev-selected weights."""
    start = time.perf_counter()
    several = distributed.world().several
    loss, guide_stats = make_loss(model, guide, guide_name, train, config, cache_dir, progress)
    dataset = Dataset.from_dict(training_columns(train))
    epochs = config.epochs or auto_epochs(len(train), config.batch_size, distributed.world().size)
    eval_steps = config.eval_steps or default_eval_steps(len(train), config.batch_size)
    checkpoints = Path(work_dir) / "checkpoints"
    use_dev = dev is not None and len(dev.queries) > 0

    evaluator = None
    if use_dev:
        evaluator = InformationRetrievalEvaluator(
            dev.queries, dev_corpus(dev, DEV_CORPUS_MAX, config.seed), dev.relevant_docs, name="dev", mrr_at_k=[10], ndcg_at_k=[10],
            accuracy_at_k=[1], precision_recall_at_k=[10], map_at_k=[10], write_csv=False,
            batch_size=64,
        )
    metric = f"eval_dev_cosine_{DEV_METRIC}"
    args = training_arguments(
        model, config, checkpoints, list(dataset.column_names),
        num_train_epochs=epochs,
        eval_strategy="steps" if use_dev else "no",
        eval_steps=eval_steps if use_dev else None,
        save_strategy="steps",
        save_steps=eval_steps,
        save_total_limit=2,
        load_best_model_at_end=use_dev,
        metric_for_best_model=metric if use_dev else None,
        greater_is_better=True,
        logging_steps=max(1, eval_steps // 2),
        disable_tqdm=True,  # the caller draws progress from ``progress``; the numbers go to the log
        use_cpu=several and not torch.cuda.is_available(),  # several CPU processes: DDP over gloo
        dataloader_drop_last=several,  # gathering candidates needs equal batches on every process
        ddp_timeout=int(distributed.WAIT.total_seconds()),
    )
    callbacks = [LogCallback(), *([ProgressCallback(progress)] if progress else [])]
    if use_dev and config.patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.patience))
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=dataset, loss=loss, evaluator=evaluator, callbacks=callbacks,
    )
    for printer in (PrinterCallback, TrainerBars):  # they print raw dicts such as {'loss': ...}
        trainer.remove_callback(printer)
    resume = distributed.main_only(lambda: _last_checkpoint(checkpoints))  # rank 0 tidies, all resume alike
    if resume:
        logger.info("Resuming training from %s", resume)
    with padding.sorted_slices(model) as slice_rows:
        trainer.train(resume_from_checkpoint=resume)

    history = [
        {"step": e["step"], "epoch": e.get("epoch"), DEV_METRIC: e[metric]}
        for e in trainer.state.log_history if metric in e
    ]
    best = trainer.state.best_model_checkpoint
    return TrainResult(
        seconds=time.perf_counter() - start,
        steps=trainer.state.global_step,
        epochs=float(trainer.state.epoch or 0),
        loss=type(loss).__name__,
        best_step=int(best.rsplit("-", 1)[-1]) if best else None,
        dev_history=history,
        guide=guide_stats,
        resumed_from=resume,
        distributed=distributed.describe(),
        slice_rows=slice_rows,
        planned_epochs=epochs,
    )


def _last_checkpoint(folder: Path) -> str | None:
    """The newest complete checkpoint in ``folder``; newer, incomplete ones are removed, with one log line."""
    found = sorted((p for p in folder.iterdir() if p.is_dir() and CHECKPOINT.fullmatch(p.name)),
                   key=lambda p: int(p.name.rsplit("-", 1)[1]), reverse=True) if folder.is_dir() else []
    broken = []
    for path in found:
        problem = checkpoint_problem(path)
        if problem is None:
            break
        broken.append(f"{path.name} ({problem})")
        shutil.rmtree(path, ignore_errors=True)
    else:
        path = None
    if broken:
        then = f"resuming from {path.name}" if path else "no complete checkpoint is left, so training starts again"
        logger.warning("Removed incomplete checkpoints left by a run stopped while saving: %s; %s",
                       ", ".join(broken), then)
    return str(path) if path else None


def checkpoint_problem(folder: Path) -> str | None:
    """What is wrong with a saved checkpoint (missing or truncated files), or None when it is complete.

    The trainer writes the weights, optimizer, scheduler and random states first and trainer_state.json
    last, without a temporary name; so a checkpoint without a readable trainer_state.json, or with a
    file cut short, was interrupted. Each file's own framing is checked (JSON parses, a safetensors
    header and its data fit in the file, torch's zip archives have their directory), not its values.
    """
    try:
        state = json.loads((folder / "trainer_state.json").read_text())
    except FileNotFoundError:
        return "trainer_state.json is missing"
    except (OSError, ValueError):
        return "trainer_state.json is cut short"
    if not isinstance(state, dict) or "global_step" not in state:
        return "trainer_state.json has no global_step"
    weights = list(folder.rglob("*.safetensors")) + list(folder.rglob("pytorch_model.bin"))
    if not weights:
        return "no model weights"
    framing = {".json": _json_ok, ".safetensors": _safetensors_ok, ".pt": zipfile.is_zipfile,
               ".pth": zipfile.is_zipfile, ".bin": zipfile.is_zipfile}
    for path in sorted(folder.rglob("*")):
        check = framing.get(path.suffix)
        if check is not None and path.is_file() and not check(path):
            return f"{path.relative_to(folder)} is cut short"
    return None


def _json_ok(path: Path) -> bool:
    try:
        json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return True


def _safetensors_ok(path: Path) -> bool:
    """The 8-byte header length, the JSON header, and the tensors' data all fit in the file."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            length = int.from_bytes(handle.read(8), "little")
            if size < 8 or 8 + length > size:
                return False
            header = json.loads(handle.read(length))
        end = max((t["data_offsets"][1] for name, t in header.items() if name != "__metadata__"), default=0)
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return False
    return 8 + length + end <= size


class ProgressCallback(TrainerCallback):
    """Reports ("train", step, total_steps) after every optimiser step."""

    def __init__(self, progress: OnProgress):
        self.progress = progress

    def on_step_end(self, args, state, control, **kwargs):
        self.progress("train", state.global_step, state.max_steps)


class LogCallback(TrainerCallback):
    """The trainer's numbers (loss, learning rate, dev scores) as INFO log lines, not printed dicts."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs:
            numbers = ", ".join(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
                                for key, value in logs.items())
            logger.info("train step %d/%d: %s", state.global_step, state.max_steps, numbers)
