"""What a run will use, checked before it starts: the data summary and the models.

Both are read-only looks ahead of ``run_pipeline``: the summary is ``prepare_data`` itself (so it
matches the run exactly, exact leaks included; near duplicates need the guide model, so the summary
says they are checked when the run starts), and ``model_plan`` tells which model a spec will load
without loading or unpacking anything. ``describe_formats`` is the sentence for the upload caption.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from adapt import models
from adapt.config import RunConfig
from adapt.leakage import NEAR_DUPLICATE_SIMILARITY
from adapt.pipeline import prepare_data
from adapt.readers import describe_formats, read_table

__all__ = ["DataSummary", "data_summary", "describe_formats", "model_plan"]

PREVIEW_ROWS = 5  # full passages wrap in the preview table, so a few rows fill a screen


@dataclass(frozen=True)
class DataSummary:
    preview: pd.DataFrame  # the first rows of the pairs file, as uploaded
    counts: dict  # Splits.counts: what cleaning dropped and the split sizes
    drop_leaks: bool = False  # as the run will be asked

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
            n = c["leaks_exact"]
            done = ("dropped, as asked" if self.drop_leaks else
                    f"kept (tick 'Drop leaked test questions' to drop {'it' if n == 1 else 'them'})")
            lines.append(f"{n:,} test question{'s' if n != 1 else ''} {'repeat' if n != 1 else 'repeats'} "
                         f"a training question (after normalising); {done}")
        near = f"Near-duplicate test questions (guide similarity {NEAR_DUPLICATE_SIMILARITY} or more)"
        lines.append(f"{near} are found when the run starts and dropped then, as asked; the test count may fall"
                     if self.drop_leaks else f"{near} are counted when the run starts")
        return lines


def data_summary(config: RunConfig) -> DataSummary:
    """Read, clean and split exactly as the run will; raises ``DataError`` with the CLI's message."""
    splits = prepare_data(config)
    preview = read_table(config.pairs).head(PREVIEW_ROWS)
    return DataSummary(preview, splits.counts, config.drop_leaks)


def model_plan(spec: str, role: str, fallback: bool = True) -> models.ResolvedModel:
    """Which model a spec will load (``models.resolve`` without unpacking anything); raises ``ModelError``.

    It probes the hub for a hub id, so it can take up to ``models.HUB_TIMEOUT_S`` seconds.
    """
    return models.resolve(spec, role, fallback=fallback, locate=False)
