"""report.json for programs, report.md for people, per_query.csv for digging in."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone

import pandas as pd

from adapt.data import IRData
from adapt.evaluate import Evaluation
from adapt.stats import SMALL_TEST_SET, paired_bootstrap

SIGNIFICANCE_METRICS = ("ndcg@10", "mrr@10", "accuracy@1")
HEADLINE = ("accuracy@1", "accuracy@3", "accuracy@5", "accuracy@10", "mrr@10", "ndcg@10", "map@10",
            "recall@10", "precision@1")
SYSTEMS = {"base": "Base", "finetuned": "Fine-tuned", "bm25": "BM25"}
# A cell a spreadsheet would run as a formula starts with one of these; quotes before them are kept
# countable, so ``spreadsheet_text`` gives back the exact text.
_FORMULA = re.compile(r"^'*[=+\-@\t\r]")
_MARKDOWN = re.compile(r"([\\`*_\[\]|#])")
METRIC_NAMES = {"accuracy": "Accuracy", "precision": "Precision", "recall": "Recall", "mrr": "MRR", "ndcg": "NDCG",
                "map": "MAP"}


def _dev_score(evaluation: Evaluation | None) -> float | None:
    return None if evaluation is None else evaluation.metrics["ndcg@10"]


def recommendation(dev: dict, test: dict[str, Evaluation]) -> tuple[str, str]:
    """Which model to use, judged on dev (test only when there is no dev set), and why."""
    base_dev, tuned_dev = _dev_score(dev.get("base")), _dev_score(dev.get("finetuned"))
    if base_dev is not None and tuned_dev is not None:
        where, base_score, tuned_score = "dev", base_dev, tuned_dev
        metric = "NDCG@10"
    else:
        key = _deepest_ndcg(test["base"].metrics)
        where, metric = "test (no dev set)", key.replace("ndcg", "NDCG")
        base_score, tuned_score = test["base"].metrics[key], test["finetuned"].metrics[key]
    if tuned_score > base_score:
        return "finetuned", (f"The fine-tuned model beats the base on {where} {metric} "
                             f"({tuned_score:.4f} vs {base_score:.4f}): use the fine-tuned model.")
    return "base", (f"The fine-tuned model is NOT better than the base on {where} {metric} "
                    f"({tuned_score:.4f} vs {base_score:.4f}): keep using the base model.")


def _deepest_ndcg(metrics: dict) -> str:
    """ndcg@10 when it was asked for, else the deepest NDCG cut-off there is."""
    if "ndcg@10" in metrics:
        return "ndcg@10"
    return max((k for k in metrics if k.startswith("ndcg@")), key=lambda k: int(k.split("@")[1]))


def build_report(*, config, version: str, models: dict, counts: dict, evaluations: dict[str, Evaluation],
                 dev: dict, training: dict, indexes: dict, leakage: dict, timings: dict) -> dict:
    base, tuned = evaluations["base"], evaluations["finetuned"]
    significance = {
        metric: paired_bootstrap(base.per_query[metric], tuned.per_query[metric], metric,
                                 config.bootstrap, config.seed).to_dict()
        for metric in SIGNIFICANCE_METRICS if metric in base.per_query
    }
    recommended, verdict = recommendation(dev, evaluations)
    warnings = []
    n_test = len(base.per_query)
    if n_test < SMALL_TEST_SET:
        warnings.append(f"Only {n_test} test questions (fewer than {SMALL_TEST_SET}): the confidence intervals "
                        "are wide and small changes may be noise.")
    if recommended == "base":
        warnings.append(verdict)
    if leakage.get("exact_or_normalised") or leakage.get("near_duplicates"):
        warnings.append(
            f"{leakage['exact_or_normalised']} test questions duplicate a training question after normalising, "
            f"and {leakage['near_duplicates']} are near duplicates (guide similarity >= "
            f"{leakage['near_duplicate_threshold']}); the test scores may be optimistic (see --drop-leaks).")
    for fell in (m for m in models.values() if m.get("fallback_reason")):
        warnings.append(fallback_text(fell))
    return {
        "adapt_version": version,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "metrics": {name: evaluation.metrics for name, evaluation in evaluations.items()},
        "recommended": recommended,
        "verdict": verdict,
        "significance": significance,
        "dev": {
            "metric": "ndcg@10",
            "base": _dev_score(dev.get("base")),
            "finetuned": _dev_score(dev.get("finetuned")),
            "history": training.get("dev_history", []),
            "best_step": training.get("best_step"),
        },
        "warnings": warnings,
        "models": models,
        "data": counts,
        "leakage": leakage,
        "training": training,
        "index": indexes,
        "timings": timings,
        "config": config.to_dict(),
    }


def per_query_table(test: IRData, evaluations: dict[str, Evaluation]) -> pd.DataFrame:
    """One row per test question: the rank of its first relevant passage under each system."""
    table = pd.DataFrame({
        "query_id": list(test.queries),
        "question": list(test.queries.values()),
        "relevant_ids": [" ".join(sorted(test.relevant_docs[q])) for q in test.queries],
    })
    for name, evaluation in evaluations.items():
        frame = evaluation.per_query.set_index("query_id")
        table[f"{name}_rank"] = table["query_id"].map(frame["rank"]).astype("Int64")
        if name != "bm25":
            table[f"{name}_ndcg@10"] = table["query_id"].map(frame["ndcg@10"]) if "ndcg@10" in frame else None
    table["rank_change"] = rank_change(table["base_rank"], table["finetuned_rank"])
    return table


def spreadsheet_safe(text: str) -> str:
    """A cell a spreadsheet shows as text: ``=1+1`` becomes ``'=1+1``; ``spreadsheet_text`` undoes it."""
    return "'" + text if isinstance(text, str) and _FORMULA.match(text) else text


def spreadsheet_text(cell: str) -> str:
    """The exact text of a cell written by ``spreadsheet_safe``."""
    return cell[1:] if isinstance(cell, str) and cell.startswith("'") and _FORMULA.match(cell) else cell


def per_query_csv(table: pd.DataFrame) -> str:
    """per_query.csv's text, every text cell safe to open in a spreadsheet (data/ keeps the exact text).

    Lines end in CRLF as RFC 4180 has them, so a cell holding a lone CR is quoted and stays one cell.
    """
    safe = table.copy()
    for column in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[column]):
            safe[column] = safe[column].map(spreadsheet_safe)
    return safe.to_csv(index=False, lineterminator="\r\n")


def markdown_text(text) -> str:
    """Text from a person or a file, shown in report.md as itself: no HTML, links or emphasis."""
    text = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN.sub(r"\\\1", text).replace("\r", " ").replace("\n", " ")


def rank_change(base_rank: pd.Series, tuned_rank: pd.Series, depth: int = 100) -> pd.Series:
    """Positive when fine-tuning moved the first relevant passage up; ranks past ``depth`` count as depth+1."""
    return (base_rank.fillna(depth + 1) - tuned_rank.fillna(depth + 1)).astype(int)


def outcome(change: int) -> str:
    return "improved" if change > 0 else "worse" if change < 0 else "same"


def metrics_table(report: dict, keys=HEADLINE) -> pd.DataFrame:
    """Rows are metrics; columns Base, Fine-tuned, Change (and BM25 when present)."""
    metrics = report["metrics"]
    keys = [k for k in keys if k in metrics["base"]]
    table = pd.DataFrame({"metric": keys})
    table["Base"] = [metrics["base"][k] for k in keys]
    table["Fine-tuned"] = [metrics["finetuned"][k] for k in keys]
    table["Change"] = table["Fine-tuned"] - table["Base"]
    if "bm25" in metrics:
        table["BM25"] = [metrics["bm25"][k] for k in keys]
    return table.set_index("metric")


# ----------------------------------------------------------------------------------------------
# The words that interpret a report: the CLI, report.md and the app all say these


@dataclass(frozen=True)
class Headline:
    """The change fine-tuning made on the test set, and what its 95% interval supports.

    ``direction`` is "better" (the whole interval above 0), "worse" (the whole interval below 0) or
    "unclear" (it includes 0, or there is none): the app colours only "better" and "worse".
    """

    metric: str  # the metric it is about: ndcg@10 when it was asked for
    change: float  # fine-tuned minus base, on the test set
    low: float  # the 95% interval of the change (NaN when there is none)
    high: float
    direction: str
    sentence: str


def metric_label(key: str) -> str:
    """ndcg@10 -> NDCG@10, accuracy@1 -> Accuracy@1."""
    name, at, k = key.partition("@")
    return f"{METRIC_NAMES.get(name, name)}{at}{k}"


def _no_interval(s: dict) -> bool:
    """Too few test questions (or no resamples) for an interval: NaN in report.json (null read as NaN too)."""
    return s["low"] is None or math.isnan(s["low"])


def interval_direction(s: dict) -> str:
    if _no_interval(s):
        return "unclear"
    return "better" if s["low"] > 0 else "worse" if s["high"] < 0 else "unclear"


def interval_text(s: dict) -> str:
    """One bootstrap interval (a ``report["significance"]`` entry) and what it supports, in words."""
    if _no_interval(s):
        return "too few test questions for an interval, so there is no telling how sure this is"
    reading = {"better": "the whole interval is above zero, so the gain is unlikely to be noise",
               "worse": "the whole interval is below zero, so fine-tuning made retrieval worse",
               "unclear": "the interval includes zero, so the change may be noise"}[interval_direction(s)]
    return f"95% interval {s['low']:+.4f} to {s['high']:+.4f}, p = {s['p_value']:.3f}: {reading}"


def interpret_change(report: dict) -> Headline:
    """The test change of the fine-tuned model against the base, with its interval, in one sentence."""
    significance = report["significance"]
    key = next((k for k in SIGNIFICANCE_METRICS if k in significance), None)
    if key is None:  # no metric with an interval was asked for (e.g. -k 3)
        key = _deepest_ndcg(report["metrics"]["base"])
        nan = float("nan")
        s = {"change": report["metrics"]["finetuned"][key] - report["metrics"]["base"][key], "low": nan,
             "high": nan, "p_value": nan}
    else:
        s = {name: float("nan") if value is None else value for name, value in significance[key].items()}
    change = s["change"]
    moved = (f"{abs(change):.4f} higher than" if change >= 5e-5 else f"{abs(change):.4f} lower than"
             if change <= -5e-5 else "the same as")
    sentence = (f"On the {report['data']['test_questions']:,} held-out test questions, the fine-tuned model's "
                f"{metric_label(key)} is {moved} the base model's ({interval_text(s)}).")
    return Headline(key, change, s["low"], s["high"], interval_direction(s), sentence)


def model_name(spec: str) -> str:
    """A hub id without its organisation (BAAI/bge-small-en-v1.5 -> bge-small-en-v1.5); paths unchanged."""
    return spec.split("/", 1)[1] if spec.count("/") == 1 and not spec.startswith((".", "~")) else spec


def fallback_text(model: dict) -> str:
    """The fallback in one short line: "offline: using bundled all-MiniLM-L6-v2 for bge-small-en-v1.5"."""
    return f"offline: using bundled {model_name(model['resolved'])} for {model_name(model['requested'])}"


def shown_warnings(report: dict) -> list[str]:
    """The report's warnings to show beside its verdict: without the verdict itself, and each fallback in
    its short line (also in reports written before the warnings held that line)."""
    short = {m["fallback_reason"]: fallback_text(m) for m in report["models"].values() if m.get("fallback_reason")}
    return list(dict.fromkeys(short.get(w, w) for w in report["warnings"] if w != report["verdict"]))


def model_text(model: dict) -> str:
    """The model that actually ran (``report["models"][role]``), and the one asked for when it fell back."""
    used = model["resolved"] + (f" (in place of {model['requested']})" if model.get("fallback_reason") else "")
    return (f"{used}, {model['parameters'] / 1e6:.1f}M parameters, {model['dimension']}-d, "
            f"max {model['max_seq_length']} tokens")


def about_text(report: dict) -> dict[str, str]:
    """Models, data, training and timings in words: report.md's lines and the app's "about" panel."""
    data, training = report["data"], report["training"]
    extra = f" ({data['extra_passages']:,} from the extra passages file)" if data.get("extra_passages") else ""
    return {
        "Base model": model_text(report["models"]["base"]),
        "Guide model": model_text(report["models"]["guide"]),
        "Data": (f"{data['train_questions']:,} training questions ({data['train_pairs']:,} pairs), "
                 f"{data['dev_questions']:,} dev questions, {data['test_questions']:,} test questions; "
                 f"{data['corpus_size']:,} passages in the search corpus{extra}"),
        "Training": (f"{training['steps']} steps ({training['epochs']:.2f} epochs) with {training['loss']}, "
                     f"{training['seconds']:.1f} s" + (" (reused from an earlier run)" if training.get("reused")
                                                       else "")),
        "Timings": ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in report["timings"].items()),
    }


def render_markdown(report: dict) -> str:
    data, training = report["data"], report["training"]
    lines = ["# adapt run report", "", f"**{interpret_change(report).sentence}**", "", markdown_text(report["verdict"]),
             ""]
    lines += ["## Test metrics", "", "| metric | base | fine-tuned | change | BM25 |", "|---|---:|---:|---:|---:|"]
    for metric, row in metrics_table(report).iterrows():
        lines.append(f"| {metric} | {row['Base']:.4f} | {row['Fine-tuned']:.4f} | {row['Change']:+.4f} | "
                     f"{row.get('BM25', float('nan')):.4f} |")
    lines += ["", "## Is the change real?", "",
              "Paired bootstrap over test questions (95% interval of fine-tuned minus base):", "",
              "| metric | change | 95% interval | p-value |", "|---|---:|---:|---:|"]
    for metric, s in report["significance"].items():
        lines.append(f"| {metric} | {s['change']:+.4f} | [{s['low']:+.4f}, {s['high']:+.4f}] | {s['p_value']:.3f} |")
    if report["dev"]["base"] is not None:
        lines += ["", f"Dev NDCG@10 (picks the checkpoint): base {report['dev']['base']:.4f}, "
                      f"fine-tuned {report['dev']['finetuned']:.4f}, best step {report['dev']['best_step']}."]
    if report["warnings"]:
        lines += ["", "## Warnings", ""] + [f"- {markdown_text(w)}" for w in report["warnings"]]
    lines += ["", "## Models", ""]
    about = about_text(report)
    lines += [f"- base: {markdown_text(about['Base model'])}", f"- guide: {markdown_text(about['Guide model'])}"]
    inp = data["input"]
    lines += ["", "## Data", "",
              f"- pairs read: {inp['rows_read']}; dropped: {inp['dropped_empty']} with an empty field, "
              f"{inp['dropped_duplicate']} exact duplicates",
              f"- {about['Data']}",
              f"- leakage: {report['leakage']['exact_or_normalised']} duplicate and "
              f"{report['leakage']['near_duplicates']} near-duplicate test questions"]
    guide = training.get("guide") or {}
    lines += ["", "## Training", "", f"- {about['Training']}"]
    if guide:
        lines.append(f"- guide: {guide['texts']} texts, {guide['encoded']} encoded, {guide['seconds']:.1f} s, "
                     f"cache {'hit' if guide['cache_hit'] else 'miss'}")
    lines += ["", "## Timings (s)", "", "| stage | seconds |", "|---|---:|"]
    lines += [f"| {stage} | {seconds:.1f} |" for stage, seconds in report["timings"].items()]
    return "\n".join(lines) + "\n"
