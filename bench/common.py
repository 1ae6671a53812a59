"""What the benchmarks share: machine facts, timing, the real datasets, training, and RESULTS.md.

The datasets are third-party and live outside the repository (``../shared/data`` next to it, or
``$ADAPT_BENCH_DATA``); they are read in place, never copied.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import platform  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("ADAPT_BENCH_DATA", ROOT.parent / "shared" / "data"))
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
DATASETS = ("agxqa-agriculture-sample", "askextension-kb-california", "pubmedqa-biomedical", "scifact",
            "medquad-health-faq")
SHARED_NOTE = ("The benchmark cannot see what else ran beside it (the load average at start is above; a note "
               "after the section says, where one was written); compare ratios taken within one run.")


# ----------------------------------------------------------------------------------------------
# Machine facts and RESULTS.md


def machine_facts() -> dict:
    import faiss
    import sentence_transformers
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        field = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines[:40])}
        flags = set(field.get("flags", "").split())
        # one name stands for many CPUs ("AMD EPYC"): the family/model and vector extensions tell them apart
        vector = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16") if f in flags]
        cpu = (f"{field.get('model name', cpu)} (family {field.get('cpu family', '?')} model {field.get('model', '?')}, "
               f"{' '.join(vector) or 'no AVX2'})")
    except OSError:
        pass
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        memory = f"{kb / 2**20:.0f} GiB"
    except (OSError, IndexError, ValueError):
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory": memory,
        "torch": torch.__version__,
        "torch threads": torch.get_num_threads(),
        "sentence-transformers": sentence_transformers.__version__,
        "faiss": faiss.__version__,
        "python": platform.python_version(),
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def command_line(module: str) -> str:
    return " ".join(["python", "-m", module, *(shlex.quote(a) for a in sys.argv[1:])])


def append_results(module: str, title: str, body: str, facts: dict, started: float) -> None:
    """Append one benchmark's section to bench/RESULTS.md (skipped when BENCH_NO_RECORD=1)."""
    if os.environ.get("BENCH_NO_RECORD") == "1":
        return
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = ", ".join(f"{k} {v}" for k, v in facts.items())
    text = (f"\n## {title} ({now})\n\n"
            f"Command: `{command_line(module)}`  \n"
            f"Machine: {machine}.  \n"
            f"Benchmark wall time: {time.perf_counter() - started:.0f} s. {SHARED_NOTE}\n\n"
            f"{body.strip()}\n")
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\nEach section is appended by one `python -m bench.<name>` run "
                           "(see bench/README.md).\n")
    with RESULTS.open("a") as f:
        f.write(text)


def table(rows: list[dict], columns: list[str] | None = None) -> str:
    """A markdown table; floats get 3 significant decimals unless already strings."""
    columns = columns or list(rows[0])
    def cell(v):
        if isinstance(v, float):
            return f"{v:.4f}" if abs(v) < 10 else f"{v:.1f}"
        return "" if v is None else str(v)
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def median(values) -> float:
    return float(statistics.median(values))


def spread(values) -> str:
    values = sorted(values)
    return f"{values[0]:.1f}-{values[-1]:.1f}" if len(values) > 1 else f"{values[0]:.1f}"


# ----------------------------------------------------------------------------------------------
# Data and models


def pairs_path(name: str, role: str = "pairs") -> Path:
    folder = DATA / name
    if role == "train" and (folder / "pairs_train.csv").exists():
        return folder / "pairs_train.csv"
    if role == "test":
        return folder / "pairs_test.csv"
    return folder / "pairs.csv"


def has_given_split(name: str) -> bool:
    return (DATA / name / "pairs_test.csv").exists() and (DATA / name / "pairs_train.csv").exists()


def load_split(name: str, max_train: int | None = None, max_test: int | None = None,
               max_corpus: int | None = None, seed: int = 42, eval_fraction: float = 0.2):
    """adapt's ``Splits`` for a shared dataset, with the benchmark's caps applied.

    The given split is used where one exists (scifact), else adapt's own ``split_pairs`` (no dev
    set). ``max_train`` caps training pairs and ``max_test`` test questions (random, seeded);
    ``max_corpus`` keeps every passage relevant to a kept test question plus random others.
    Returns the splits and a dict saying what was capped.
    """
    from adapt.data import load_corpus, load_pairs, split_pairs

    folder = DATA / name
    extra = load_corpus(folder / "corpus.csv") if (folder / "corpus.csv").exists() else None
    if has_given_split(name):
        splits = split_pairs(load_pairs(pairs_path(name, "train")), eval_fraction, 0.0, seed,
                             load_pairs(pairs_path(name, "test"), role="eval pairs"), extra)
        how = "given split (pairs_train.csv / pairs_test.csv)"
    else:
        splits = split_pairs(load_pairs(folder / "pairs.csv"), eval_fraction, 0.0, seed, None, extra)
        how = f"adapt.data.split_pairs, {eval_fraction:.0%} of questions held out, seed {seed}"
    rng = np.random.default_rng(seed)
    caps = {"split": how, "train pairs (all)": len(splits.train),
            "test questions (all)": int(splits.test["question"].nunique()), "corpus (all)": len(splits.corpus)}
    if max_train and len(splits.train) > max_train:
        splits.train = splits.train.iloc[np.sort(rng.choice(len(splits.train), max_train, replace=False))]
        splits.train = splits.train.reset_index(drop=True)
    questions = splits.test["question"].drop_duplicates().to_numpy()
    if max_test and len(questions) > max_test:
        kept = set(rng.choice(questions, max_test, replace=False))
        splits.test = splits.test[splits.test["question"].isin(kept)].reset_index(drop=True)
    if max_corpus and len(splits.corpus) > max_corpus:
        relevant = splits.corpus["passage"].isin(set(splits.test["passage"]))
        others = np.flatnonzero(~relevant.to_numpy())
        room = max(0, max_corpus - int(relevant.sum()))
        keep = relevant.to_numpy().copy()
        keep[rng.choice(others, min(room, len(others)), replace=False)] = True
        splits.corpus = splits.corpus[keep].reset_index(drop=True)
    caps.update({"train pairs (used)": len(splits.train),
                 "test questions (used)": int(splits.test["question"].nunique()),
                 "corpus (used)": len(splits.corpus)})
    return splits, caps


def fresh_cache(folder: Path) -> Path:
    """An empty adapt cache at ``folder`` (a first run: no guide embeddings), sharing the unpacked bundled models."""
    from adapt.bundled import cache_root

    folder.mkdir(parents=True)
    if (cache_root() / "models").is_dir():
        (folder / "models").symlink_to(cache_root() / "models")
    return folder


def load_model(alias: str):
    from adapt import models

    return models.load(models.resolve(alias, "base", fallback=False))


# ----------------------------------------------------------------------------------------------
# Training: the same trainer set-up for every loss


def make_arm_loss(arm: str, model, guide, guide_name: str, train: pd.DataFrame, cache_dir: Path | None,
                  temperature: float | None = None):
    """The loss for one arm: "mnrl", "gist-stock" or "gist-cached" (adapt's build_table + CachedGISTEmbedLoss);
    ``temperature`` overrides adapt's GIST default.

    Returns the loss and adapt's ``GuideStats`` (None for the arms without a cached guide).
    """
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from adapt.config import RunConfig
    from adapt.train import make_loss

    if arm == "mnrl":
        return MultipleNegativesRankingLoss(model), None
    if arm not in ("gist-stock", "gist-cached"):
        raise ValueError(f"unknown arm {arm!r}; expected mnrl, gist-stock or gist-cached")
    config = RunConfig(pairs=Path("unused.csv"), guide_cache=arm == "gist-cached")
    if temperature is not None:
        config.temperature = temperature
    return make_loss(model, guide, guide_name, train, config, cache_dir)


def train_steps(model, loss, train: pd.DataFrame, max_steps: int, out_dir: Path, batch_size: int = 32,
                seed: int = 42, learning_rate: float = 5e-5, warmup_ratio: float = 0.1,
                precision: str = "fp32") -> float:
    """Train ``max_steps`` steps with adapt's trainer settings and no saving; returns seconds in train().

    ``precision`` is adapt.run's ``--precision`` for the trainer (fp32 unless a bench asks for more). On a CPU
    the student's forward runs in length-sorted slices, as in adapt.run (adapt.padding; from 2026-12-06 on,
    so training times in RESULTS.md sections before that compare only with each other)."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer

    from adapt import padding
    from adapt.config import RunConfig
    from adapt.train import training_arguments, training_columns

    dataset = Dataset.from_dict(training_columns(train))
    config = RunConfig(pairs=Path("unused.csv"), batch_size=batch_size, seed=seed, learning_rate=learning_rate,
                       warmup_ratio=warmup_ratio, precision=precision)
    args = training_arguments(model, config, out_dir, dataset.column_names, max_steps=max_steps, eval_strategy="no",
                              save_strategy="no", logging_steps=max(1, max_steps), disable_tqdm=True,
                              dataloader_pin_memory=False)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
    start = time.perf_counter()
    with padding.sorted_slices(model):  # as adapt.train.finetune trains
        trainer.train()
    return time.perf_counter() - start


def add_threads_option(parser) -> None:
    parser.add_argument("--threads", type=int, default=0,
                        help="torch intra-op threads (0 = torch's default); 1 avoids oversubscribing a busy machine")


def set_threads(threads: int) -> None:
    import torch

    if threads > 0:
        torch.set_num_threads(threads)


def quiet_logs() -> None:
    import logging

    import transformers

    transformers.logging.set_verbosity_error()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("adapt").setLevel(logging.WARNING)
