"""Open a finished run directory: its report, per-query table, test data, models and indexes."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from adapt import models
from adapt.data import IRData, ir_data
from adapt.errors import AdaptError, RunError
from adapt.index import PassageIndex, Retriever
from adapt.report import spreadsheet_text


SEARCHABLE = ("base", "finetuned", "hybrid")
RANK_COLUMNS = ("base_rank", "finetuned_rank", "hybrid_rank", "bm25_rank")  # empty: not in the top 100


@dataclass
class Run:
    out: Path
    report: dict
    per_query: pd.DataFrame
    test: IRData

    _loaded: dict = field(default_factory=dict, repr=False)  # models and indexes, each loaded once

    def retriever(self, which: str, trust_remote_code: bool = False):
        """A ``Retriever`` for "base" or "finetuned", or a ``HybridRetriever`` for "hybrid".

        Everything comes from the run folder: the saved indexes (no re-encoding, no re-indexing) and,
        for hybrid, the fusion chosen on dev. Each model and index loads once per ``Run``, so the hybrid's
        dense side shares them with the system it was built on.
        ``trust_remote_code`` comes from the person (a flag, a setting), never from the run folder.
        """
        if which not in SEARCHABLE:
            raise ValueError(f"which must be one of {', '.join(map(repr, SEARCHABLE))}, not {which!r}")
        if which == "hybrid":
            return self._hybrid(trust_remote_code)
        return Retriever(self._model(which, trust_remote_code), self._index(which))

    def has_hybrid(self) -> bool:
        return isinstance(self.report.get("hybrid"), dict) and "fusion" in self.report["hybrid"]

    def systems(self) -> list[str]:
        """The systems this run can search: base, fine-tuned, and hybrid when it has one."""
        return [s for s in SEARCHABLE if s != "hybrid" or self.has_hybrid()]

    def _hybrid(self, trust_remote_code: bool):
        from adapt.hybrid import FusionConfig, HybridRetriever
        from adapt.lexical import BM25Index

        if not self.has_hybrid():
            raise RunError(f"run '{self.out}' has no hybrid search (it was made without a dev set, or before "
                           "adapt had hybrid search); search its base or fine-tuned model, or run adapt.run "
                           "again with a dev split to get one")
        try:
            config = FusionConfig(**self.report["hybrid"]["fusion"])
        except (TypeError, AdaptError) as exc:
            raise RunError(f"'{self.out / 'report.json'}' has a damaged hybrid fusion ({_first_line(exc)}); "
                           "run adapt.run again to rebuild the run") from None
        bm25 = BM25Index.load(self.out / "index" / "bm25")
        return HybridRetriever(self._model(config.dense_system, trust_remote_code), self._index(config.dense_system),
                               bm25, config)

    def _model(self, which: str, trust_remote_code: bool):
        return self._once(("model", which, trust_remote_code), lambda: load_model(self, which, trust_remote_code))

    def _index(self, which: str) -> PassageIndex:
        return self._once(("index", which), lambda: PassageIndex.load(self.out / "index" / which))

    def _once(self, key: tuple, load):
        if key not in self._loaded:
            self._loaded[key] = load()
        return self._loaded[key]

    def question_id(self, text: str) -> str | None:
        """The id of the test question with this text (surrounding spaces ignored), or None for any other query."""
        text = text.strip()
        return next((qid for qid, question in self.test.queries.items() if question.strip() == text), None)


def open_run(out: Path | str) -> Run:
    out = Path(out)
    if not out.is_dir():
        raise RunError(f"run directory '{out}' not found; pass the --out folder of a finished adapt.run")
    try:
        report = read_report(out)
    except ValueError as exc:  # truncated or not JSON at all
        raise RunError(f"'{out / 'report.json'}' is damaged ({exc}); run adapt.run again to rebuild the run") from None
    _check_report(report, out)
    for needed in ("model", "index/base", "index/finetuned", "per_query.csv", "data/test.csv", "data/corpus.csv"):
        if not (out / needed).exists():
            raise RunError(f"run directory '{out}' is incomplete (missing {needed}); run adapt.run again")
    try:
        per_query = pd.read_csv(out / "per_query.csv", dtype={"question": str}, keep_default_na=False,
                                na_values={c: [""] for c in RANK_COLUMNS})
        per_query["question"] = per_query["question"].map(spreadsheet_text)
        test = pd.read_csv(out / "data" / "test.csv", dtype=str, keep_default_na=False)
        corpus = pd.read_csv(out / "data" / "corpus.csv", dtype=str, keep_default_na=False)
        return Run(out, report, per_query, ir_data(test, corpus))
    except (OSError, ValueError, KeyError) as exc:  # pandas' parser and decoding errors are ValueErrors
        raise RunError(f"run directory '{out}' is damaged ({type(exc).__name__}: {_first_line(exc)}); "
                       "run adapt.run again to rebuild it") from None


def _check_report(report, out: Path) -> None:
    found = report.get("models") if isinstance(report, dict) else None
    base = found.get("base") if isinstance(found, dict) else None
    fields = ("requested", "resolved", "path", "source")
    if not isinstance(base, dict) or not all(isinstance(base.get(f), str) for f in fields):
        raise RunError(f"'{out / 'report.json'}' is not an adapt report (no base model in it); "
                       "run adapt.run again to rebuild the run")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else "no details"


def read_report(out: Path | str) -> dict:
    path = Path(out) / "report.json"
    if not path.exists():
        raise RunError(f"'{out}' holds no finished run (no report.json); run: python -m adapt.run PAIRS --out {out}")
    return json.loads(path.read_text())


def load_model(run: Run, which: str, trust_remote_code: bool = False):
    if which == "finetuned":
        spec = models.fine_tuned(run.out / "model")
    else:
        facts = run.report["models"]["base"]
        spec = models.ResolvedModel("base", facts["requested"], facts["resolved"], facts["path"], facts["source"])
        if spec.source in ("bundled", "local", "hub-cache") and not os.path.exists(spec.path):
            spec = models.resolve(facts["resolved"] if facts["source"] == "bundled" else facts["requested"], "base",
                                  fallback=True)
    return models.load(spec, trust_remote_code=trust_remote_code)
