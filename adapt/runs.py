"""Open a finished run directory: its report, per-query table, test data, models and indexes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from adapt import models
from adapt.data import IRData, ir_data
from adapt.errors import RunError
from adapt.index import PassageIndex, Retriever


@dataclass
class Run:
    out: Path
    report: dict
    per_query: pd.DataFrame
    test: IRData

    def retriever(self, which: str) -> Retriever:
        """``which`` is "base" or "finetuned"; loads the model and its saved index (no re-encoding)."""
        if which not in ("base", "finetuned"):
            raise ValueError(f"which must be 'base' or 'finetuned', not {which!r}")
        index = PassageIndex.load(self.out / "index" / which)
        return Retriever(load_model(self, which), index)

    def question_id(self, text: str) -> str | None:
        """The id of the test question with this text (surrounding spaces ignored), or None for any other query."""
        text = text.strip()
        return next((qid for qid, question in self.test.queries.items() if question.strip() == text), None)


def open_run(out: Path | str) -> Run:
    out = Path(out)
    if not out.is_dir():
        raise RunError(f"run directory '{out}' not found; pass the --out folder of a finished adapt.run")
    report = read_report(out)
    for needed in ("model", "index/base", "index/finetuned", "per_query.csv", "data/test.csv", "data/corpus.csv"):
        if not (out / needed).exists():
            raise RunError(f"run directory '{out}' is incomplete (missing {needed}); run adapt.run again")
    per_query = pd.read_csv(out / "per_query.csv", dtype={"question": str}, keep_default_na=False,
                            na_values={c: [""] for c in ("base_rank", "finetuned_rank", "bm25_rank")})
    test = pd.read_csv(out / "data" / "test.csv", dtype=str, keep_default_na=False)
    corpus = pd.read_csv(out / "data" / "corpus.csv", dtype=str, keep_default_na=False)
    return Run(out, report, per_query, ir_data(test, corpus))


def read_report(out: Path | str) -> dict:
    path = Path(out) / "report.json"
    if not path.exists():
        raise RunError(f"'{out}' holds no finished run (no report.json); run: python -m adapt.run PAIRS --out {out}")
    return json.loads(path.read_text())


def load_model(run: Run, which: str):
    if which == "finetuned":
        spec = models.ResolvedModel("fine-tuned", "fine-tuned", "fine-tuned", str(run.out / "model"), "local")
    else:
        facts = run.report["models"]["base"]
        spec = models.ResolvedModel("base", facts["requested"], facts["resolved"], facts["path"], facts["source"])
        if spec.source in ("bundled", "local", "hub-cache") and not Path(spec.path).exists():
            spec = models.resolve(facts["resolved"] if facts["source"] == "bundled" else facts["requested"], "base",
                                  fallback=True)
    return models.load(spec, trust_remote_code=run.report["config"].get("trust_remote_code", False))
