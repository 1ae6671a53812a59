"""The words that interpret a report, which the CLI, report.md and the app share, on hand-made reports."""

from __future__ import annotations

import math

import pytest

from adapt.report import (about_text, fallback_text, interpret_change, interval_text, metric_label, model_name,
                          model_text, render_markdown, shown_warnings)

NAN = float("nan")


def interval(change: float, low: float, high: float, p: float = 0.04) -> dict:
    return {"metric": "ndcg@10", "change": change, "low": low, "high": high, "p_value": p}


def model(resolved: str, requested: str | None = None, reason: str | None = None) -> dict:
    return {"role": "base", "requested": requested or resolved, "resolved": resolved, "path": "", "source": "bundled",
            "fallback_reason": reason, "parameters": 22_713_216, "dimension": 384, "max_seq_length": 256}


FELL = model("sentence-transformers/all-MiniLM-L6-v2", "BAAI/bge-small-en-v1.5",
             "cannot load 'BAAI/bge-small-en-v1.5': the hub is unreachable ([Errno -2] Name or service not known); "
             "using the bundled sentence-transformers/all-MiniLM-L6-v2 instead")


def report(**significance) -> dict:
    verdict = "The fine-tuned model beats the base on dev NDCG@10 (0.6100 vs 0.6000): use the fine-tuned model."
    metrics = {"ndcg@10": 0.5, "ndcg@5": 0.4, "accuracy@1": 0.3}
    return {
        "metrics": {"base": metrics, "finetuned": {k: v + 0.01 for k, v in metrics.items()}},
        "significance": significance, "recommended": "finetuned", "verdict": verdict,
        "warnings": ["Only 39 test questions (fewer than 50): the confidence intervals are wide.",
                     FELL["fallback_reason"]],
        "models": {"base": FELL, "guide": model("/models/guide")},
        "data": {"train_questions": 135, "train_pairs": 142, "dev_questions": 19, "test_questions": 39,
                 "corpus_size": 1136, "extra_passages": 65,
                 "input": {"rows_read": 205, "dropped_empty": 0, "dropped_duplicate": 0}},
        "dev": {"base": 0.6, "finetuned": 0.61, "best_step": 9},
        "leakage": {"exact_or_normalised": 0, "near_duplicates": 1},
        "training": {"loss": "CachedGISTEmbedLoss", "steps": 9, "epochs": 1.0, "seconds": 3.25},
        "timings": {"data": 0.12, "train": 3.5},
    }


@pytest.mark.parametrize("s, direction, words", [
    (interval(0.0312, 0.0101, 0.0540, 0.003), "better",
     "is 0.0312 higher than the base model's (95% interval +0.0101 to +0.0540, p = 0.003: the whole interval is "
     "above zero, so the gain is unlikely to be noise)."),
    (interval(-0.0312, -0.0540, -0.0101), "worse",
     "is 0.0312 lower than the base model's (95% interval -0.0540 to -0.0101, p = 0.040: the whole interval is "
     "below zero, so fine-tuning made retrieval worse)."),
    (interval(-0.0002, -0.0050, 0.0046, 0.9), "unclear",
     "is 0.0002 lower than the base model's (95% interval -0.0050 to +0.0046, p = 0.900: the interval includes "
     "zero, so the change may be noise)."),
    (interval(0.00004, -0.0050, 0.0046, 1.0), "unclear",
     "is the same as the base model's (95% interval -0.0050 to +0.0046, p = 1.000: the interval includes zero, so "
     "the change may be noise)."),
    (interval(0.25, NAN, NAN, NAN), "unclear",
     "is 0.2500 higher than the base model's (too few test questions for an interval, so there is no telling how "
     "sure this is)."),
])
def test_the_headline_reads_the_interval(s, direction, words):
    headline = interpret_change(report(**{"ndcg@10": s}))
    assert headline.direction == direction
    assert headline.sentence == "On the 39 held-out test questions, the fine-tuned model's NDCG@10 " + words
    assert (headline.metric, headline.change) == ("ndcg@10", s["change"])
    assert headline.low == s["low"] or math.isnan(headline.low) and math.isnan(s["low"])


def test_an_interval_written_as_null_reads_as_none():
    headline = interpret_change(report(**{"ndcg@10": interval(0.25, None, None, None)}))
    assert headline.direction == "unclear" and math.isnan(headline.low) and math.isnan(headline.high)
    assert headline.sentence.endswith("(too few test questions for an interval, so there is no telling how sure "
                                      "this is).")


def test_the_headline_without_any_interval_uses_the_deepest_ndcg():
    r = report()
    del r["metrics"]["base"]["ndcg@10"], r["metrics"]["finetuned"]["ndcg@10"]
    headline = interpret_change(r)
    assert (headline.metric, headline.direction) == ("ndcg@5", "unclear")
    assert headline.change == pytest.approx(0.01)
    assert headline.sentence.startswith("On the 39 held-out test questions, the fine-tuned model's NDCG@5 is 0.0100 "
                                        "higher than the base model's (too few test questions")


def test_interval_text_and_metric_label():
    assert interval_text(interval(0.01, 0.002, 0.02, 0.012)) == (
        "95% interval +0.0020 to +0.0200, p = 0.012: the whole interval is above zero, so the gain is unlikely to "
        "be noise")
    assert [metric_label(k) for k in ("ndcg@10", "mrr@10", "accuracy@1", "map")] == [
        "NDCG@10", "MRR@10", "Accuracy@1", "MAP"]


def test_a_fallback_is_one_short_line_and_the_model_that_ran_is_named():
    assert fallback_text(FELL) == "offline: using bundled all-MiniLM-L6-v2 for bge-small-en-v1.5"
    assert model_text(FELL) == ("sentence-transformers/all-MiniLM-L6-v2 (in place of BAAI/bge-small-en-v1.5), "
                                "22.7M parameters, 384-d, max 256 tokens")
    assert model_text(model("/models/guide")) == "/models/guide, 22.7M parameters, 384-d, max 256 tokens"
    assert [model_name(s) for s in ("BAAI/bge-small-en-v1.5", "/models/guide", "./my/model", "minilm")] == [
        "bge-small-en-v1.5", "/models/guide", "./my/model", "minilm"]


def test_shown_warnings_drop_the_verdict_and_shorten_fallbacks():
    r = report()
    r["warnings"].insert(0, r["verdict"])
    r["warnings"].append(fallback_text(FELL))  # a report that holds both forms shows the line once
    assert shown_warnings(r) == ["Only 39 test questions (fewer than 50): the confidence intervals are wide.",
                                 "offline: using bundled all-MiniLM-L6-v2 for bge-small-en-v1.5"]


def test_about_text_is_what_report_md_says():
    about = about_text(report())
    assert about == {
        "Base model": model_text(FELL),
        "Guide model": model_text(model("/models/guide")),
        "Data": "135 training questions (142 pairs), 19 dev questions, 39 test questions; 1,136 passages in the "
                "search corpus (65 from the extra passages file)",
        "Training": "9 steps (1.00 epochs) with CachedGISTEmbedLoss, 3.2 s",
        "Timings": "data 0.1 s, train 3.5 s",
    }
    r = report(**{"ndcg@10": interval(0.0312, 0.0101, 0.0540, 0.003)})
    markdown = render_markdown(r)
    assert markdown.startswith(f"# adapt run report\n\n**{interpret_change(r).sentence}**\n\n{r['verdict']}\n")
    for line in (f"- base: {about['Base model']}", f"- guide: {about['Guide model']}", f"- {about['Data']}",
                 f"- {about['Training']}"):
        assert line in markdown.splitlines()
