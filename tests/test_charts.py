"""The results page's charts of change, read from their altair specs for a small made-up run."""

from __future__ import annotations

import json

import pandas as pd
from streamlit.testing.v1 import AppTest

from app import charts

NAN = float("nan")


def interval(metric: str, change: float, low: float, high: float) -> dict:
    return {"metric": metric, "change": change, "low": low, "high": high, "p_value": 0.5}


def made_up_report(recommended: str = "hybrid") -> dict:
    base = {"ndcg@10": 0.5, "mrr@10": 0.4, "accuracy@1": 0.3}
    return {
        "metrics": {"base": base, "finetuned": {"ndcg@10": 0.56, "mrr@10": 0.42, "accuracy@1": 0.35},
                    "hybrid": {"ndcg@10": 0.6, "mrr@10": 0.5, "accuracy@1": 0.4},
                    "bm25": {"ndcg@10": 0.45, "mrr@10": 0.38, "accuracy@1": 0.25}},
        "recommended": recommended,
        "data": {"test_questions": 6},
        "comparisons": {
            "finetuned": {"ndcg@10": interval("ndcg@10", 0.06, 0.01, 0.11),
                          "mrr@10": interval("mrr@10", 0.02, -0.03, 0.07)},
            "hybrid": {"ndcg@10": interval("ndcg@10", 0.1, 0.04, 0.16),
                       "mrr@10": interval("mrr@10", 0.1, None, None)},  # no interval: null in report.json
            "bm25": {"ndcg@10": interval("ndcg@10", -0.05, -0.12, NAN),
                     "mrr@10": interval("mrr@10", -0.02, -0.08, 0.04)},
        },
    }


def made_up_per_query() -> pd.DataFrame:
    """Ranks of the first relevant passage; empty: not in the top 100 (read as rank 101)."""
    return pd.DataFrame({
        "question": ["q0", "q1", "q2", "q3", "q4", "q5"],
        "base_rank": pd.array([1, 6, 3, None, 2, None], dtype="Int64"),
        "finetuned_rank": pd.array([1, 5, 3, 9, 2, None], dtype="Int64"),
        "hybrid_rank": pd.array([1, 2, 5, 4, 2, None], dtype="Int64"),
    })


def rows(spec: dict) -> list[dict]:
    (values,) = spec["datasets"].values()
    return values


def test_each_system_s_change_is_drawn_on_its_95_percent_interval():
    spec = charts.intervals_chart(made_up_report()).to_dict()
    assert sorted((r["system"], r["metric"], r["change"], r["low"], r["high"]) for r in rows(spec)) == [
        ("BM25", "MRR@10", -0.02, -0.08, 0.04),
        ("BM25", "NDCG@10", -0.05, -0.12, None),  # NaN in an older report: no bar
        ("Fine-tuned", "MRR@10", 0.02, -0.03, 0.07),
        ("Fine-tuned", "NDCG@10", 0.06, 0.01, 0.11),
        ("Hybrid", "MRR@10", 0.1, None, None),
        ("Hybrid", "NDCG@10", 0.1, 0.04, 0.16),
    ]
    zero, bars, dots = spec["spec"]["layer"]
    assert zero["encoding"]["x"] == {"datum": 0} and zero["mark"]["type"] == "rule"
    assert bars["mark"]["type"] == "errorbar"
    assert (bars["encoding"]["x"]["field"], bars["encoding"]["x2"]["field"]) == ("low", "high")
    assert (dots["mark"]["type"], dots["encoding"]["x"]["field"]) == ("point", "change")
    assert dots["encoding"]["y"]["sort"] == ["Fine-tuned", "Hybrid", "BM25"]
    assert dots["encoding"]["color"]["scale"] == {"domain": ["Fine-tuned", "Hybrid", "BM25"],
                                                  "range": ["#4c78a8", "#54a24b", "#a0a0a0"]}
    assert spec["facet"]["column"] == {"field": "metric", "sort": ["NDCG@10", "MRR@10", "Accuracy@1"],
                                       "title": None, "type": "nominal"}


def test_a_report_from_before_hybrid_draws_its_one_interval():
    report = made_up_report("finetuned")
    report["significance"] = report.pop("comparisons")["finetuned"]
    spec = charts.intervals_chart(report).to_dict()
    assert sorted((r["system"], r["metric"], r["low"]) for r in rows(spec)) == [
        ("Fine-tuned", "MRR@10", -0.03), ("Fine-tuned", "NDCG@10", 0.01)]


def test_the_histogram_counts_the_recommended_system_s_rank_changes():
    spec = charts.rank_chart(*charts.rank_changes(made_up_report("hybrid"), made_up_per_query())).to_dict()
    # base minus hybrid: 1-1, 6-2, 3-5, 101-4, 2-2, 101-101
    assert rows(spec) == [
        {"change": -2, "questions": 1, "start": -2.5, "end": -1.5, "moved": "down"},
        {"change": 0, "questions": 3, "start": -0.5, "end": 0.5, "moved": "same"},
        {"change": 4, "questions": 1, "start": 3.5, "end": 4.5, "moved": "up"},
        {"change": 97, "questions": 1, "start": 96.5, "end": 97.5, "moved": "up"},
    ]
    encoding = spec["encoding"]
    assert (spec["mark"]["type"], encoding["x"]["field"], encoding["x2"]["field"], encoding["y"]["field"]) == (
        "bar", "start", "end", "questions")
    assert encoding["x"]["title"] == "places the first relevant passage moved up (base rank minus hybrid rank)"
    assert encoding["color"]["scale"] == {"domain": ["up", "down", "same"], "range": ["#1a7f37", "#cf222e", "#a0a0a0"]}
    assert spec["title"] == "Rank change per test question: Hybrid against base"


def test_the_caption_says_how_many_moved_up_down_and_stayed():
    system, changes = charts.rank_changes(made_up_report("hybrid"), made_up_per_query())
    assert (system, list(changes)) == ("hybrid", [0, 4, -2, 97, 0, 0])
    assert charts.moves_text(system, changes) == (
        "Hybrid against base, per test question: the first relevant passage moved up for 2 questions, down for "
        "1 question and stayed for 3 questions (not in the top 100 counts as rank 101).")


def test_with_base_recommended_or_no_hybrid_ranks_the_histogram_is_the_fine_tuned_model_s():
    table = made_up_per_query()
    assert list(charts.rank_changes(made_up_report("base"), table)[1]) == [0, 1, 0, 92, 0, 0]
    system, changes = charts.rank_changes(made_up_report("hybrid"), table.drop(columns="hybrid_rank"))
    assert (system, list(changes)) == ("finetuned", [0, 1, 0, 92, 0, 0])


def test_the_page_shows_the_three_charts_as_one_and_the_caption_under_it():
    def page(report, per_query):
        from types import SimpleNamespace

        from app.charts import charts_ui

        charts_ui(SimpleNamespace(report=report, per_query=per_query))

    at = AppTest.from_function(page, args=(made_up_report(), made_up_per_query()), default_timeout=30).run()
    assert not at.exception
    (chart,) = at.get("vega_lite_chart")
    spec = json.loads(chart.proto.spec)
    assert [part.get("title") for part in spec["vconcat"]] == [
        "Test change against base, with its 95% interval (right of 0: better than base)",
        "Rank change per test question: Hybrid against base",
        "Change against base at each cut-off k (above 0: better than base)"]
    # the histogram's colours are moves (up, down, same), not the other charts' systems
    assert spec["resolve"] == {"scale": {"color": "independent", "strokeDash": "independent"}}
    assert [c.value for c in at.caption] == [charts.moves_text("hybrid", pd.Series([0, 4, -2, 97, 0, 0]))]
