"""Run settings: one dataclass, validated in ``__post_init__``.

The CLI builds its options from these fields (``help`` lives in each field's metadata), so no
default is written twice.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from adapt.errors import ConfigError

DEFAULT_BASE = "BAAI/bge-small-en-v1.5"
INDEX_KINDS = ("auto", "flat", "hnsw", "ivf", "ivf-sq8", "ivf-pq")
MARGIN_STRATEGIES = ("absolute", "relative")
PRECISIONS = ("auto", "fp32", "bf16")  # adapt.precision
# Epochs when a run sets none (``auto_epochs``): enough for MIN_STEPS optimiser steps, at most AUTO_MAX_EPOCHS.
MIN_STEPS = 40
AUTO_MAX_EPOCHS = 3


def _opt(default, help, **extra):
    return field(default=default, metadata={"help": help, **extra})


def auto_epochs(rows: int, batch_size: int, processes: int = 1) -> int:
    """Epochs when the run sets none: as many as make ``MIN_STEPS`` optimiser steps, from 1 to ``AUTO_MAX_EPOCHS``.

    Chosen by measurement (bench/RESULTS.md, the sweep of 2026-12-05 and its three-epoch runs): a second
    and third epoch paid where one epoch is a few steps (agxqa, 13 steps an epoch: GIST + hard negatives
    +0.029 test NDCG@10 over three epochs) and cost a little where an epoch is already 48 steps
    (askextension: -0.008, for three times the training time). A fixed count of epochs cannot serve both;
    a floor on optimiser steps does. ``processes`` share each epoch's batches (distributed training), and
    there every process drops the last, short batch, as the trainer does then (``dataloader_drop_last``).
    """
    if processes > 1:
        per_epoch = max(1, (rows // batch_size) // processes)
    else:
        per_epoch = max(1, math.ceil(rows / batch_size))
    return max(1, min(AUTO_MAX_EPOCHS, math.ceil(MIN_STEPS / per_epoch)))


@dataclass
class RunConfig:
    pairs: Path = _opt(None, "question/passage pairs: .csv, .tsv, .jsonl or .parquet", positional=True)
    out: Path = _opt(Path("runs/latest"), "run directory for the model, indexes and reports")
    corpus: Path | None = _opt(None, "extra passages (a 'passage' column) that join the search corpus")
    eval_pairs: Path | None = _opt(None, "a separate test file of pairs; the dev set then comes from --pairs")
    question_col: str | None = _opt(None, "question column (default: question, query or anchor)")
    passage_col: str | None = _opt(None, "passage column (default: passage, context, positive, answer or document)")
    eval_fraction: float = _opt(0.2, "fraction of unique questions held out for the test set")
    dev_fraction: float | None = _opt(
        None, "fraction of unique questions held out as dev, which picks the checkpoint, the hybrid fusion and the "
              "recommended system (default: enough for about 60 dev questions, 10%% to 30%%; 0 = no dev set)")
    drop_leaks: bool = _opt(False, "drop test questions that duplicate or nearly duplicate a training question")
    base: str = _opt(DEFAULT_BASE, "model to fine-tune: hub id, local directory, or bundled alias (minilm, mpnet)")
    guide: str | None = _opt(None, "frozen GIST guide model (default: a stronger model of the base's family)")
    fallback: bool = _opt(True, "fall back to the bundled models when a hub model cannot be loaded")
    trust_remote_code: bool = _opt(False, "allow models that ship their own Python code (off by default)")
    epochs: int | None = _opt(None, f"training epochs (default: as many as make at least {MIN_STEPS} optimiser "
                                    f"steps, from 1 to {AUTO_MAX_EPOCHS})")
    batch_size: int = _opt(32, "training batch size (in-batch negatives per question)")
    learning_rate: float = _opt(5e-5, "peak learning rate")
    warmup_ratio: float = _opt(0.1, "fraction of steps spent warming up the learning rate")
    temperature: float = _opt(0.01, "GIST softmax temperature")
    margin: float = _opt(0.0, "GIST false-negative margin")
    hard_negatives: int = _opt(1, "hard negatives mined per training pair from the search corpus, the guide removing "
                                  "likely false negatives (0 = in-batch negatives only); N makes an epoch N rows a pair")
    margin_strategy: str = _opt("absolute", "GIST margin strategy: absolute or relative")
    max_seq_length: int | None = _opt(None, "truncate texts to this many tokens (default: the model's own)")
    eval_steps: int | None = _opt(None, "evaluate on dev every N steps (default: about twice an epoch)")
    patience: int = _opt(3, "stop after this many dev evaluations without improvement (0 = never stop early)")
    guide_cache: bool = _opt(True, "compute the guide's embeddings once and cache them on disk")
    cache_dir: Path | None = _opt(None, "where the guide cache lives (default: $ADAPT_CACHE or ~/.cache/adapt)")
    index: str = _opt("auto", "FAISS index: flat, hnsw, ivf, ivf-sq8, ivf-pq, or auto (flat below 100,000 "
                              "passages, HNSW up to 5 million, then ivf-sq8, or ivf-pq past --index-memory-gb)")
    index_memory_gb: float = _opt(5.0, "memory a built index may hold, in GB; auto picks a compressed index "
                                       "(ivf-sq8, else ivf-pq) when flat or HNSW would need more (building one "
                                       "peaks higher: 5.8 GB for ivf-sq8's 3.7 at 10M)")
    k: tuple[int, ...] = _opt((1, 3, 5, 10), "cut-offs for the metrics, e.g. 1,3,5,10")
    bootstrap: int = _opt(1000, "bootstrap resamples for the confidence intervals")
    seed: int = _opt(42, "random seed for the split, the sampler and training")
    precision: str = _opt("auto", "fp32, bf16, or auto (bf16 where the CPU has AVX-512 BF16 or AMX, or the GPU "
                                  "supports it; fp32 otherwise) for passage encoding, the guide pass and training")

    def __post_init__(self) -> None:
        if self.pairs is None:
            raise ConfigError("no pairs file given; pass the path of a CSV with question and passage columns")
        self.pairs = Path(self.pairs)
        self.out = check_out(self.out)
        self.corpus = Path(self.corpus) if self.corpus is not None else None
        self.eval_pairs = Path(self.eval_pairs) if self.eval_pairs is not None else None
        self.cache_dir = Path(self.cache_dir) if self.cache_dir is not None else None
        if isinstance(self.k, str):
            self.k = parse_k(self.k)
        for name, convert, ok, expected in RULES:
            value = getattr(self, name)
            if value is None and name in OPTIONAL:
                continue
            converted = convert(value)
            _check(converted is not None and ok(converted), name, value, expected)
            setattr(self, name, converted)
        _check(self.eval_fraction + (self.dev_fraction or 0) < 1, "eval_fraction + dev_fraction",
               self.eval_fraction + (self.dev_fraction or 0), "less than 1, so some questions are left to train on")
        if self.cache_dir is not None:
            check_folder(self.cache_dir, "cache_dir")

    def to_dict(self) -> dict:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = str(value) if isinstance(value, Path) else list(value) if isinstance(value, tuple) else value
        return out

    def digest(self, *names: str) -> str:
        """A short hash of the named settings (all of them when none are named)."""
        settings = self.to_dict()
        chosen = {n: settings[n] for n in names} if names else settings
        return hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:16]


def check_out(out) -> Path:
    """``--out`` must name a folder, new or existing: not empty, not a file or device, not inside a file.

    What the folder may hold is checked when a run starts (``adapt.files.check_run_dir``).
    """
    if out is None or not str(out).strip():
        raise ConfigError("--out is empty; pass a folder for the run, e.g. --out runs/my-run")
    path = Path(out)
    if path.exists() and not path.is_dir():
        kind = "a file" if path.is_file() else "a device or special file"
        raise ConfigError(f"--out '{path}' is {kind}, not a folder; pass a folder for the run, e.g. --out runs/my-run")
    above = next((p for p in path.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise ConfigError(f"--out '{path}' is inside '{above}', which is a file, not a folder; pass a folder for "
                          "the run, e.g. --out runs/my-run")
    return path


def parse_k(text: str) -> tuple[int, ...]:
    parts = [part.strip() for part in str(text).split(",") if part.strip()]
    if not parts or not all(re.fullmatch(r"[+-]?\d+", part) for part in parts):
        raise ConfigError(f"{flag('k')} must be {K_EXPECTED}; got {text!r}")
    return tuple(int(part) for part in parts)


def flag(name: str) -> str:
    """The command-line flag a person types for a setting: ``batch_size`` -> ``--batch-size``."""
    return " + ".join("--" + part.strip().replace("_", "-") for part in name.split("+"))


def _check(ok: bool, name: str, value, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{flag(name)} must be {expected}; got {value!r}")


def check_folder(path: Path, name: str) -> None:
    """``path`` is a folder, or can become one: nothing on the way to it is a file."""
    for step in (path, *path.parents):
        if step.exists():
            if not step.is_dir():
                where = "is a file" if step == path else f"is under the file '{step}'"
                raise ConfigError(f"{flag(name)} '{path}' {where}; pass a folder")
            if not os.access(step, os.W_OK | os.X_OK):
                raise ConfigError(f"{flag(name)} '{path}' cannot be written ('{step}' is read-only); "
                                  "pass a folder you can write to")
            return


def _whole(value) -> int | None:
    """An int from an int or its decimal text ('32', '-1'); None for anything else ('1e10', '2.5', True)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    return None


def _number(value) -> float | None:
    """A finite float from a number or its text; None for text that is not one, inf and nan."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value if math.isfinite(value) else None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def _ks(value) -> tuple[int, ...] | None:
    try:
        return tuple(sorted(set(int(k) for k in value)))
    except (TypeError, ValueError):
        return None


MAX_SEED = 2**32 - 1
MAX_K = 1000
MAX_BOOTSTRAP = 100_000
K_EXPECTED = f"whole numbers from 1 to {MAX_K} separated by commas, e.g. 1,3,5,10"
OPTIONAL = {"epochs", "max_seq_length", "eval_steps", "dev_fraction"}
# (setting, convert, check on the converted value, what it must be): one rule per setting a person types.
RULES = (
    ("eval_fraction", _number, lambda v: 0 < v < 1, "a number between 0 and 1, e.g. 0.2"),
    ("dev_fraction", _number, lambda v: 0 <= v < 1, "a number from 0 up to 1, e.g. 0.1"),
    ("epochs", _whole, lambda v: 1 <= v <= 1000, "a whole number from 1 to 1000"),
    ("hard_negatives", _whole, lambda v: 0 <= v <= 20, "a whole number from 0 to 20"),
    ("batch_size", _whole, lambda v: 2 <= v <= 65536,
     "a whole number from 2 to 65536 (GIST needs in-batch negatives)"),
    ("learning_rate", _number, lambda v: 0 < v < 1, "a positive number below 1, e.g. 5e-5"),
    ("warmup_ratio", _number, lambda v: 0 <= v < 1, "a number from 0 up to 1"),
    ("temperature", _number, lambda v: 0 < v <= 100, "a positive number up to 100, e.g. 0.01"),
    ("margin", _number, lambda v: -10 <= v <= 10, "a number from -10 to 10, e.g. 0.0"),
    ("margin_strategy", _text, lambda v: v in MARGIN_STRATEGIES, " or ".join(MARGIN_STRATEGIES)),
    ("max_seq_length", _whole, lambda v: 8 <= v <= 1_000_000, "a whole number of tokens, at least 8"),
    ("eval_steps", _whole, lambda v: 1 <= v <= 10**9, "a whole number, at least 1"),
    ("patience", _whole, lambda v: 0 <= v <= 10**6, "a whole number, 0 or more"),
    ("index", _text, lambda v: v in INDEX_KINDS, ", ".join(INDEX_KINDS)),
    ("index_memory_gb", _number, lambda v: v > 0, "a positive number of GB, e.g. 5"),
    ("k", _ks, lambda v: bool(v) and 1 <= min(v) and max(v) <= MAX_K, K_EXPECTED),
    ("bootstrap", _whole, lambda v: 0 <= v <= MAX_BOOTSTRAP, f"a whole number from 0 to {MAX_BOOTSTRAP:,}"),
    ("seed", _whole, lambda v: 0 <= v <= MAX_SEED, f"a whole number from 0 to {MAX_SEED}"),
    ("precision", _text, lambda v: v in PRECISIONS, " or ".join(PRECISIONS)),
)
