"""What a run will use, checked before it starts: the data summary and the models.

Both are read-only looks ahead of ``run_pipeline``: the summary is ``prepare_data`` itself (so it
matches the run exactly), and ``model_plan`` tells which model a spec will load without loading or
unpacking anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from adapt import models
from adapt.config import RunConfig
from adapt.data import read_table
from adapt.errors import ModelError
from adapt.pipeline import prepare_data

PREVIEW_ROWS = 8


@dataclass(frozen=True)
class DataSummary:
    preview: pd.DataFrame  # the first rows of the pairs file, as uploaded
    counts: dict  # Splits.counts: what cleaning dropped and the split sizes

    def tiles(self) -> list[tuple[str, int]]:
        """The headline numbers."""
        c, read = self.counts, self.counts["input"]
        return [("Pairs", read["pairs"]), ("Questions", read["questions"]), ("Passages", read["passages"]),
                ("Test questions", c["test_questions"]), ("Search corpus", c["corpus_size"])]

    def lines(self) -> list[str]:
        """What cleaning dropped and how the questions are split, in words."""
        c, read = self.counts, self.counts["input"]
        dropped = read["dropped_empty"] + read["dropped_duplicate"]
        lines = [f"{read['rows_read']:,} rows read; "
                 + (f"{dropped:,} dropped: {read['dropped_empty']:,} with an empty question or passage, "
                    f"{read['dropped_duplicate']:,} exact duplicates" if dropped else "none dropped"),
                 f"Split by question: {c['train_questions']:,} to train on ({c['train_pairs']:,} pairs), "
                 f"{c['dev_questions']:,} to pick the best checkpoint (dev), "
                 f"{c['test_questions']:,} held out to test both models",
                 f"Search corpus: {c['corpus_size']:,} passages"
                 + (f", {c['extra_passages']:,} of them from the extra passages file" if c["extra_passages"] else "")]
        if c.get("leaks_exact"):
            lines.append(f"{c['leaks_exact']:,} test questions repeat a training question (after normalising)")
        return lines


def data_summary(config: RunConfig) -> DataSummary:
    """Read, clean and split exactly as the run will; raises ``DataError`` with the CLI's message."""
    splits = prepare_data(config)
    preview = read_table(config.pairs).head(PREVIEW_ROWS)
    return DataSummary(preview, splits.counts)


@dataclass(frozen=True)
class ModelPlan:
    """Which model a spec will load, from where, and the fallback note when it will not be the one asked for."""

    requested: str
    resolved: str
    source: str  # "bundled", "local", "hub", "hub-cache"
    fallback_reason: str | None = None


def model_plan(spec: str, role: str, fallback: bool = True) -> ModelPlan:
    """``models.resolve`` without its side effects (no unpacking of bundled models); raises ``ModelError``.

    It probes the hub for a hub id, so it can take up to ``models.HUB_TIMEOUT_S`` seconds.
    """
    spec = str(spec).strip()
    if spec in models.BUNDLED:
        if spec not in models.available_bundled():
            return _resolve(spec, role, fallback=False)  # raises with the install hint
        return ModelPlan(spec, models.BUNDLED[spec][0], "bundled")
    if not spec or Path(spec).expanduser().exists() or spec.count("/") > 1 or spec.startswith((".", "/", "~")):
        return _resolve(spec, role, fallback=False)  # a local folder: cheap to check, raises when not a model
    if models._hub_cache_path(spec) is not None:
        return ModelPlan(spec, spec, "hub-cache")
    reachable, why = models.probe_hub(spec)
    if reachable and not why:
        return ModelPlan(spec, spec, "hub")
    if reachable:
        raise ModelError(f"model '{spec}' was not found on the Hugging Face hub ({why}); check the id, "
                         f"or pass a local directory or one of: {', '.join(models.BUNDLED)}")
    alias = models._fallback_alias(role, None)
    if not fallback or alias is None:
        return _resolve(spec, role, fallback=fallback)  # raises the library's message
    resolved = models.BUNDLED[alias][0]
    return ModelPlan(spec, resolved, "bundled",
                     f"cannot load '{spec}': {why}; using the bundled {resolved} instead")


def _resolve(spec: str, role: str, fallback: bool) -> ModelPlan:
    found = models.resolve(spec, role, fallback=fallback)
    return ModelPlan(spec, found.resolved, found.source, found.fallback_reason)
