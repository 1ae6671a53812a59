"""Steps 3 and 5: a run's results (the test change and its interval first, then the dev-based pick,
the metrics table and chart) and its per-question view. The words come from ``adapt.report``."""

from __future__ import annotations

import math
from pathlib import Path

import streamlit as st

from adapt.explain import SYSTEMS, about_text, interpret_change, metric_label, shown_warnings
from adapt.report import metrics_table, outcome
from adapt.runs import Run
from app import navigate
from app.charts import charts_ui
from app.ui import kept, plain, shown_path

HEADLINE_COLOURS = {"better": "green", "worse": "red", "unclear": "gray"}  # only what the interval supports


def results_ui(run: Run) -> None:
    report = run.report
    headline_ui(report)
    st.markdown(f"**Which model to use** (judged on the dev set, which picked the checkpoint): "
                f"{plain(report['verdict'])}")
    for warning in shown_warnings(report):
        st.warning(plain(warning))
    table = metrics_table(report)
    st.dataframe(table.style.format("{:.4f}").format("{:+.4f}", subset=["Change"])
                 .map(change_colour, subset=["Change"]))
    st.caption("Test-set metrics, averaged over the held-out questions. BM25 is a keyword-search baseline.")
    charts_ui(run)
    about_ui(run)


def headline_ui(report: dict) -> None:
    """The recommended system's test change against base and its 95% interval, coloured only where the
    interval lies wholly above (green) or below (red) zero and dev recommended that system."""
    headline = interpret_change(report)
    colour = HEADLINE_COLOURS[headline.direction]
    interval = "none" if math.isnan(headline.low) else f"{headline.low:+.4f} to {headline.high:+.4f}"
    with st.container(border=True, key="headline"):
        left, right = st.columns([1, 3], vertical_alignment="center")
        left.metric(f"{SYSTEMS[headline.system]}: test {metric_label(headline.metric)} change",
                    f"{headline.change:+.4f}",
                    delta=f"95% interval {interval}", delta_color=colour, delta_arrow="off")
        right.markdown(f":{colour}[**{plain(headline.sentence)}**]" if colour != "gray"
                       else f"**{plain(headline.sentence)}**")


def change_colour(change: float) -> str:
    """Green up, red down; nothing for a change that shows as +0.0000."""
    return "" if abs(change) < 5e-5 else "color: #1a7f37" if change > 0 else "color: #cf222e"


def about_ui(run: Run) -> None:
    with st.expander("Models, data and timings"):
        lines = [f"- **{label}:** {plain(text)}" for label, text in about_text(run.report).items()]
        lines.append(f"- **Run folder:** `{shown_path(run.out)}` (report.md, report.json, per_query.csv, model/, "
                     "index/)")
        st.markdown("\n".join(lines))
    report_md = Path(run.out) / "report.md"
    if report_md.exists():
        st.download_button("Download report.md", report_md.read_text(), file_name="report.md", mime="text/markdown",
                           key="download_report")


def per_query_ui(run: Run, run_dir: str) -> None:
    """Counts of the questions that improved, got worse or stayed; a table of them, a row of which opens
    that question in Compare (``app.navigate``)."""
    table = run.per_query.copy()
    table["outcome"] = table["rank_change"].map(outcome)
    counts = table["outcome"].value_counts()
    cols = st.columns(3)
    for col, (name, title) in zip(cols, (("improved", "Improved"), ("worse", "Got worse"), ("same", "Same"))):
        col.metric(title, int(counts.get(name, 0)))
    choice = st.radio("Show", ["Improved", "Got worse", "Same", "All"], horizontal=True, **kept("pq_filter"))
    wanted = {"Improved": "improved", "Got worse": "worse", "Same": "same"}.get(choice)
    view = table if wanted is None else table[table["outcome"] == wanted]
    view = view.sort_values("rank_change", ascending=wanted == "worse", kind="stable")
    hybrid = "hybrid_rank" in view.columns
    shown = ["question", "base_rank", "finetuned_rank", "rank_change"] + (
        ["hybrid_rank", "hybrid_rank_change"] if hybrid else [])
    navigate.shown_rows(run_dir, list(view["query_id"]))
    st.dataframe(
        view[shown], hide_index=True, key=navigate.table_key(run_dir), on_select="rerun",
        selection_mode="single-row",
        column_config={
            "question": st.column_config.TextColumn("Test question", width="large"),
            "base_rank": st.column_config.NumberColumn("Base rank"),
            "finetuned_rank": st.column_config.NumberColumn("Fine-tuned rank"),
            "rank_change": st.column_config.NumberColumn("Fine-tuned change", format="%+d",
                                                         help="Places the relevant passage moved up against base"),
            "hybrid_rank": st.column_config.NumberColumn("Hybrid rank"),
            "hybrid_rank_change": st.column_config.NumberColumn("Hybrid change", format="%+d",
                                                                help="Places the relevant passage moved up "
                                                                     "against base"),
        },
    )
    st.caption("Rank of the first relevant passage under each model (1 is best; empty: not in the top 100). "
               "Select a row (the box at its left) to open that question in Compare search.")
