"""Run settings: one dataclass, validated in ``__post_init__``.

The CLI builds its options from these fields (``help`` lives in each field's metadata), so no
default is written twice.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from adapt.errors import ConfigError

DEFAULT_BASE = "BAAI/bge-small-en-v1.5"
INDEX_KINDS = ("auto", "flat", "hnsw", "ivf", "ivf-pq")
MARGIN_STRATEGIES = ("absolute", "relative")


def _opt(default, help, **extra):
    return field(default=default, metadata={"help": help, **extra})


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
    epochs: int = _opt(3, "training epochs")
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
    index: str = _opt("auto", "FAISS index: flat, hnsw, ivf, ivf-pq, or auto (flat below 100,000 passages, HNSW "
                              "up to 5 million, ivf-pq beyond or past --index-memory-gb)")
    index_memory_gb: float = _opt(5.0, "memory an index may hold, in GB; auto picks a compressed index (ivf-pq) "
                                       "when flat or HNSW would need more")
    k: tuple[int, ...] = _opt((1, 3, 5, 10), "cut-offs for the metrics, e.g. 1,3,5,10")
    bootstrap: int = _opt(1000, "bootstrap resamples for the confidence intervals")
    seed: int = _opt(42, "random seed for the split, the sampler and training")

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
        self.k = tuple(sorted(set(int(k) for k in self.k)))
        _check(0 < self.eval_fraction < 1, "eval_fraction", self.eval_fraction, "a number between 0 and 1, e.g. 0.2")
        _check(self.dev_fraction is None or 0 <= self.dev_fraction < 1, "dev_fraction", self.dev_fraction,
               "a number from 0 up to 1, e.g. 0.1")
        _check(self.eval_fraction + (self.dev_fraction or 0) < 1, "eval_fraction + dev_fraction",
               self.eval_fraction + (self.dev_fraction or 0), "less than 1, so some questions are left to train on")
        _check(self.epochs >= 1, "epochs", self.epochs, "at least 1")
        _check(self.batch_size >= 2, "batch_size", self.batch_size, "at least 2 (GIST needs in-batch negatives)")
        _check(self.learning_rate > 0, "learning_rate", self.learning_rate, "a positive number, e.g. 5e-5")
        _check(0 <= self.warmup_ratio < 1, "warmup_ratio", self.warmup_ratio, "a number from 0 up to 1")
        _check(self.temperature > 0, "temperature", self.temperature, "a positive number, e.g. 0.01")
        _check(self.margin_strategy in MARGIN_STRATEGIES, "margin_strategy", self.margin_strategy,
               " or ".join(MARGIN_STRATEGIES))
        _check(self.max_seq_length is None or self.max_seq_length >= 8, "max_seq_length", self.max_seq_length,
               "at least 8 tokens")
        _check(self.eval_steps is None or self.eval_steps >= 1, "eval_steps", self.eval_steps, "at least 1")
        _check(self.patience >= 0, "patience", self.patience, "0 or more")
        _check(0 <= self.hard_negatives <= 20, "hard_negatives", self.hard_negatives, "from 0 to 20")
        _check(self.index in INDEX_KINDS, "index", self.index, ", ".join(INDEX_KINDS))
        _check(self.index_memory_gb > 0, "index_memory_gb", self.index_memory_gb, "a positive number of GB, e.g. 5")
        _check(bool(self.k) and min(self.k) >= 1, "k", self.k, "positive whole numbers, e.g. 1,3,5,10")
        _check(self.bootstrap >= 0, "bootstrap", self.bootstrap, "0 or more")

    def to_dict(self) -> dict:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = str(value) if isinstance(value, Path) else list(value) if isinstance(value, tuple) else value
        return out

    def fingerprint(self, *names: str) -> str:
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
    try:
        return tuple(int(part) for part in str(text).split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"k must be whole numbers separated by commas, e.g. 1,3,5,10; got {text!r}") from None


def _check(ok: bool, name: str, value, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{name} must be {expected}; got {value!r}")
