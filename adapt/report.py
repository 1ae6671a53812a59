"""report.json for programs, report.md for people, per_query.csv for digging in."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pandas as pd

from adapt.data import IRData
from adapt.evaluate import DEV_METRIC, Evaluation
from adapt.explain import (SIGNIFICANCE_METRICS, SYSTEMS, about_text, fallback_text, interpret_change,
                           interval_text)
from adapt.recommend import dev_results, recommend
from adapt.stats import SMALL_TEST_SET, paired_bootstrap

HEADLINE = ("accuracy@1", "accuracy@3", "accuracy@5", "accuracy@10", "mrr@10", "ndcg@10", "map@10",
            "recall@10", "precision@1")
# A cell a spreadsheet would run as a formula starts with one of these; quotes before them are kept
# countable, so ``spreadsheet_text`` gives back the exact text.
_FORMULA = re.compile(r"^'*[=+\-@\t\r]")
_MARKDOWN = re.compile(r"([\\`*_\[\]|#])")


def _intervals(base: Evaluation, other: Evaluation, config) -> dict:
    """Paired bootstrap of ``other`` minus base over the same test questions, per significance metric."""
    return {metric: paired_bootstrap(base.per_query[metric], other.per_query[metric], metric,
                                     config.bootstrap, config.seed).to_dict()
            for metric in SIGNIFICANCE_METRICS if metric in base.per_query}


def build_report(*, config, version: str, models: dict, counts: dict, evaluations: dict[str, Evaluation],
                 dev: dict[str, Evaluation], training: dict, indexes: dict, leakage: dict, timings: dict,
                 hybrid: dict | None = None, negatives: dict | None = None, precision: dict | None = None) -> dict:
    """``evaluations`` on test and ``dev`` on dev, by system; dev alone decides the recommendation."""
    base = evaluations["base"]
    comparisons = {system: _intervals(base, evaluation, config)
                   for system, evaluation in evaluations.items() if system != "base"}
    dev = {system: evaluation for system, evaluation in dev.items() if evaluation is not None}
    n_dev = len(dev["base"].per_query) if "base" in dev else 0
    choices = {s: e for s, e in dev.items() if s in ("base", "finetuned", "hybrid")}
    pick = recommend(dev_results(choices, config.bootstrap, config.seed) if n_dev else None, n_dev)
    warnings = []
    n_test = len(base.per_query)
    if n_test < SMALL_TEST_SET:
        warnings.append(f"Only {n_test} test questions (fewer than {SMALL_TEST_SET}): the confidence intervals "
                        "are wide and small changes may be noise.")
    if leakage.get("exact_or_normalised") or leakage.get("near_duplicates"):
        warnings.append(
            f"{leakage['exact_or_normalised']} test questions duplicate a training question after normalising, "
            f"and {leakage['near_duplicates']} are near duplicates (guide similarity >= "
            f"{leakage['near_duplicate_threshold']}); the test scores may be optimistic (see --drop-leaks).")
    for fell in (m for m in models.values() if m.get("fallback_reason")):
        warnings.append(fallback_text(fell))
    report = {
        "adapt_version": version,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "metrics": {name: evaluation.metrics for name, evaluation in evaluations.items()},
        "recommended": pick.system,
        "verdict": pick.reason,
        "recommendation": {"system": pick.system, "reason": pick.reason, "dev_questions": pick.dev_questions,
                           "dev_interval": pick.interval.to_dict() if pick.interval else None},
        "significance": comparisons["finetuned"],
        "comparisons": comparisons,
        "dev": {
            "metric": DEV_METRIC,
            "questions": n_dev,
            **{system: (evaluation.metrics.get(DEV_METRIC) if evaluation is not None else None)
               for system, evaluation in dev.items()},
            "history": training.get("dev_history", []),
            "best_step": training.get("best_step"),
        },
        "hybrid": hybrid,
        "hard_negatives": negatives,
        "precision": precision,  # adapt.precision: requested, used, why, device
        "warnings": warnings,
        "models": models,
        "data": counts,
        "leakage": leakage,
        "training": training,
        "index": indexes,
        "timings": timings,
        "config": config.to_dict(),
    }
    report["dev"].setdefault("base", None)
    report["dev"].setdefault("finetuned", None)
    report["headline"] = interpret_change(report).__dict__
    return report


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
        if name != "bm25":  # BM25 is the baseline; base, fine-tuned and hybrid are the systems to choose from
            table[f"{name}_ndcg@10"] = table["query_id"].map(frame["ndcg@10"]) if "ndcg@10" in frame else None
    table["rank_change"] = rank_change(table["base_rank"], table["finetuned_rank"])
    if "hybrid_rank" in table:
        table["hybrid_rank_change"] = rank_change(table["base_rank"], table["hybrid_rank"])
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
    """Rows are metrics; columns Base, Fine-tuned, Change (fine-tuned minus base), then Hybrid and BM25
    when the run has them."""
    metrics = report["metrics"]
    keys = [k for k in keys if k in metrics["base"]]
    table = pd.DataFrame({"metric": keys})
    table["Base"] = [metrics["base"][k] for k in keys]
    table["Fine-tuned"] = [metrics["finetuned"][k] for k in keys]
    table["Change"] = table["Fine-tuned"] - table["Base"]
    for system in ("hybrid", "bm25"):
        if system in metrics:
            table[SYSTEMS[system]] = [metrics[system][k] for k in keys]
    return table.set_index("metric")


def render_markdown(report: dict) -> str:
    data, training = report["data"], report["training"]
    lines = ["# adapt run report", "", f"**{interpret_change(report).sentence}**", "", markdown_text(report["verdict"]), ""]
    table = metrics_table(report)
    lines += ["## Test metrics", "", "| metric | " + " | ".join(table.columns).lower() + " |",
              "|---|" + "---:|" * len(table.columns)]
    for metric, row in table.iterrows():
        lines.append(f"| {metric} | " + " | ".join(f"{v:+.4f}" if c == "Change" else f"{v:.4f}"
                                                   for c, v in row.items()) + " |")
    lines += ["", "## Is the change real?", "",
              "Paired bootstrap over test questions (95% interval of each system minus base):", "",
              "| system | metric | change | 95% interval | p-value | reading |", "|---|---|---:|---:|---:|---|"]
    for system, intervals in report.get("comparisons", {"finetuned": report["significance"]}).items():
        for metric, s in intervals.items():
            lines.append(f"| {SYSTEMS.get(system, system)} | {metric} | {s['change']:+.4f} | "
                         f"[{s['low']:+.4f}, {s['high']:+.4f}] | {s['p_value']:.3f} | "
                         f"{interval_text(s, system).split(': ', 1)[-1]} |")
    lines += ["", "## How dev decided", ""] + _dev_lines(report)
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
    lines += _negative_lines(report.get("hard_negatives"))
    lines += ["", "## Timings (s)", "", "| stage | seconds |", "|---|---:|"]
    lines += [f"| {stage} | {seconds:.1f} |" for stage, seconds in report["timings"].items()]
    return "\n".join(lines) + "\n"


def _dev_lines(report: dict) -> list[str]:
    dev = report["dev"]
    if not dev.get("questions", 1) or dev["base"] is None:
        return ["No dev questions: nothing was chosen on dev (see --dev-fraction)."]
    scores = ", ".join(f"{SYSTEMS[s].lower()} {dev[s]:.4f}" for s in ("base", "finetuned", "hybrid")
                       if dev.get(s) is not None)
    lines = [f"- dev NDCG@10 on {dev.get('questions', '?')} questions: {scores}; fine-tuning kept the checkpoint "
             f"of step {dev['best_step']}."]
    hybrid = report.get("hybrid")
    if hybrid:
        fusion = hybrid["fusion"]
        how = (f"convex, weight {fusion['alpha']:.1f} on the dense side" if fusion["method"] == "convex"
               else "reciprocal rank fusion")
        lines.append(f"- hybrid: BM25 fused with the {SYSTEMS[fusion['dense_system']].lower()} model, {how} "
                     f"(best of {len(hybrid['tried'])} fusions tried on dev)")
    lines.append(f"- {report['verdict']}")
    return lines


def _negative_lines(negatives: dict | None) -> list[str]:
    if not negatives:
        return []
    lines = ["", "## Hard negatives", "",
             f"- {negatives['per_question']} per training pair, mined from the search corpus: "
             f"{negatives['candidates']} candidates looked at, {negatives['removed']} removed by the guide as likely "
             f"false negatives (guide similarity at or above the positive's x {1 - negatives['margin']:.2f}), "
             f"{negatives['kept']} kept, {negatives['filled_random']} slots filled with random passages",
             "", "Removed as likely false negatives (first examples):", "",
             "| question | removed passage | guide sim | positive's sim |", "|---|---|---:|---:|"]
    for e in negatives["examples"]:
        lines.append(f"| {e['question'][:80]} | {e['removed'][:100]} | {e['removed_similarity']:.3f} | "
                     f"{e['positive_similarity']:.3f} |")
    return lines
