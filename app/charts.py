"""The results page's charts of change against base, in one altair chart:

1. each system's test change, with its 95% paired interval as an error bar (report.json ``comparisons``);
2. a histogram of how far the first relevant passage moved per question, for the recommended system
   (per_query.csv: base rank minus that system's rank; past the top 100 counts as 101, as
   ``adapt.report.rank_change`` counts it), with a caption that counts up, down and same;
3. the change per metric at each cut-off k.

The ``*_chart`` functions take a report (and the per-question table) and return the chart, so tests read
the spec; ``charts_ui`` draws them.
"""

from __future__ import annotations

import math

import altair as alt
import pandas as pd
import streamlit as st

from adapt.explain import METRIC_NAMES, SIGNIFICANCE_METRICS, SYSTEMS, interpret_change, metric_label
from adapt.report import rank_change
from adapt.runs import Run

COLOURS = {"Base": "#f58518", "Fine-tuned": "#4c78a8", "Hybrid": "#54a24b", "BM25": "#a0a0a0"}
MOVED = {"up": "#1a7f37", "down": "#cf222e", "same": "#a0a0a0"}  # the colours of adapt's better / worse
ZERO = {"color": "#808080", "strokeWidth": 1}  # the base line: no change


def charts_ui(run: Run) -> None:
    system, changes = rank_changes(run.report, run.per_query)  # once, for the histogram and its caption
    st.altair_chart(change_chart(run.report, system, changes), key="chart")
    st.caption(moves_text(system, changes))


def change_chart(report: dict, system: str, changes: pd.Series) -> alt.VConcatChart:
    return (alt.vconcat(intervals_chart(report), rank_chart(system, changes), metrics_chart(report))
            .resolve_scale(color="independent", strokeDash="independent"))  # the histogram colours moves, not systems


def intervals_chart(report: dict) -> alt.FacetChart:
    """Each system's test change against base, a dot on its 95% interval, one panel per metric with an
    interval. A change without an interval (too few test questions) is drawn without a bar."""
    comparisons = report.get("comparisons") or {"finetuned": report["significance"]}  # reports before hybrid
    rows = [{"system": SYSTEMS.get(system, system), "metric": metric_label(key), "change": s["change"],
             "low": _number(s["low"]), "high": _number(s["high"])}
            for system, intervals in comparisons.items() for key, s in intervals.items()]
    frame = pd.DataFrame(rows)
    shown = [name for name in COLOURS if name in set(frame["system"])]
    colour = alt.Color("system:N", legend=None, scale=alt.Scale(domain=shown, range=[COLOURS[n] for n in shown]))
    y = alt.Y("system:N", title=None, sort=shown)
    x = alt.X("change:Q", title="change vs base (95% interval)")
    bars = alt.Chart().mark_errorbar(ticks=True).encode(
        x=alt.X("low:Q", title="change vs base (95% interval)"), x2="high:Q", y=y, color=colour)
    dots = alt.Chart().mark_point(filled=True, size=60, opacity=1).encode(
        x=x, y=y, color=colour, tooltip=["system", "metric", alt.Tooltip("change:Q", format="+.4f"),
                                         alt.Tooltip("low:Q", format="+.4f"), alt.Tooltip("high:Q", format="+.4f")])
    zero = alt.Chart().mark_rule(**ZERO).encode(x=alt.datum(0))
    order = [metric_label(key) for key in SIGNIFICANCE_METRICS]
    return (alt.layer(zero, bars, dots, data=frame).properties(width=220, height=24 * len(shown))
            .facet(column=alt.Column("metric:N", title=None, sort=order))
            .properties(title="Test change against base, with its 95% interval (right of 0: better than base)"))


def rank_changes(report: dict, per_query: pd.DataFrame) -> tuple[str, pd.Series]:
    """The system the headline is about (the recommended one; fine-tuned when base is) and, per test
    question, the places its first relevant passage moved up against base."""
    system = interpret_change(report).system
    if f"{system}_rank" not in per_query:
        system = "finetuned"
    return system, rank_change(per_query["base_rank"], per_query[f"{system}_rank"])


def rank_chart(system: str, changes: pd.Series) -> alt.Chart:
    """A histogram of ``rank_changes``: one bar per change, green up, red down, grey same."""
    counts = changes.value_counts().sort_index()
    frame = pd.DataFrame({"change": counts.index.astype(int), "questions": counts.to_numpy(dtype=int)})
    frame["start"], frame["end"] = frame["change"] - 0.5, frame["change"] + 0.5
    frame["moved"] = ["up" if c > 0 else "down" if c < 0 else "same" for c in frame["change"]]
    name = SYSTEMS[system].lower()
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("start:Q", title=f"places the first relevant passage moved up (base rank minus {name} rank)"),
        x2="end:Q",
        y=alt.Y("questions:Q", title="questions"),
        color=alt.Color("moved:N", legend=None, scale=alt.Scale(domain=list(MOVED), range=list(MOVED.values()))),
        tooltip=[alt.Tooltip("change:Q", format="+d", title="moved up"), "questions"],
    ).properties(width=700, height=180, title=f"Rank change per test question: {SYSTEMS[system]} against base")


def moves_text(system: str, changes: pd.Series) -> str:
    up, down = int((changes > 0).sum()), int((changes < 0).sum())
    same = len(changes) - up - down
    return (f"{SYSTEMS[system]} against base, per test question: the first relevant passage moved up for "
            f"{_questions(up)}, down for {_questions(down)} and stayed for {_questions(same)} "
            "(not in the top 100 counts as rank 101).")


def metrics_chart(report: dict) -> alt.FacetChart:
    """Each system's change against base, per metric at each cut-off k (a 0.03 change stays visible)."""
    rows = []
    base = report["metrics"]["base"]
    for system, values in report["metrics"].items():
        for key, value in values.items():
            name, _, k = key.partition("@")
            if system != "base" and name in METRIC_NAMES and k.isdigit() and key in base:
                rows.append({"system": SYSTEMS.get(system, system), "metric": f"{METRIC_NAMES[name]}@k",
                             "k": int(k), "change": value - base[key]})
    frame = pd.DataFrame(rows)
    order = [f"{n}@k" for n in METRIC_NAMES.values()]
    shown = [name for name in COLOURS if name in set(frame["system"])]
    legend = alt.Legend(symbolType="stroke", symbolStrokeWidth=2, title=None)
    lines = (
        alt.Chart()
        .mark_line(point=True)
        .encode(x=alt.X("k:O", title="k", axis=alt.Axis(labelAngle=0)),
                y=alt.Y("change:Q", title="change vs base"),
                color=alt.Color("system:N", legend=legend,
                                scale=alt.Scale(domain=shown, range=[COLOURS[n] for n in shown])),
                strokeDash=alt.StrokeDash("system:N", legend=legend, scale=alt.Scale(
                    domain=shown, range=[[4, 3] if n == "BM25" else [1, 0] for n in shown])),
                tooltip=["system", "metric", "k", alt.Tooltip("change:Q", format="+.4f")])
    )
    zero = alt.Chart().mark_rule(**ZERO).encode(y=alt.datum(0))
    return (alt.layer(zero, lines, data=frame).properties(width=220, height=150)
            .facet(facet=alt.Facet("metric:N", title=None, sort=order), columns=3)
            .properties(title="Change against base at each cut-off k (above 0: better than base)"))


def _number(value) -> float | None:
    """An interval end from report.json: None where there is none (null, or NaN in older reports)."""
    return None if value is None or math.isnan(value) else float(value)


def _questions(n: int) -> str:
    return f"{n:,} question" if n == 1 else f"{n:,} questions"
