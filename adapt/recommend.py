"""Which system to use, decided on dev, and a headline that says exactly how sure the test change is.

The rule: the system with the best dev NDCG@10 is recommended only when its paired bootstrap
interval against base on the same dev questions lies wholly above 0. Otherwise dev cannot tell it
from base, and the simplest system, base, is recommended with that said in words. Test questions
never take part in the choice; they only measure it, in the headline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from adapt.evaluate import DEV_METRIC, Evaluation
from adapt.stats import Interval, paired_bootstrap

DEV_QUESTIONS_TARGET = 60
DEV_FRACTION_FLOOR = 0.1
DEV_FRACTION_CAP = 0.3
NAMES = {"base": "the base model", "finetuned": "the fine-tuned model", "hybrid": "hybrid search",
         "bm25": "BM25"}


@dataclass
class DevResult:
    score: float  # dev NDCG@10
    interval: Interval | None  # paired against base on the same dev questions (None for base itself)


@dataclass
class Recommendation:
    system: str
    reason: str
    dev_questions: int
    interval: Interval | None = None  # the deciding dev interval, when there was one


@dataclass
class Headline:
    text: str
    tone: str  # "good": the test interval lies above 0; "bad": below; "neutral" otherwise


def name(system: str) -> str:
    return NAMES.get(system, system)


def _signed(x: float) -> str:
    return f"{x:+.3f}"


def _interval_words(interval: Interval) -> str:
    if math.isnan(interval.low):
        return "no interval: too few questions to resample"
    return f"95% interval {_signed(interval.low)} to {_signed(interval.high)}"


def dev_results(evaluations: dict[str, Evaluation], resamples: int = 1000, seed: int = 0,
                metric: str = DEV_METRIC) -> dict[str, DevResult]:
    """Each system's dev score, and its paired interval against base, question by question."""
    base = per_query_values(evaluations["base"], metric)
    out = {"base": DevResult(float(base.mean()), None)}
    for system, evaluation in evaluations.items():
        if system == "base":
            continue
        values = per_query_values(evaluation, metric).reindex(base.index)
        out[system] = DevResult(float(values.mean()), paired_bootstrap(base.to_numpy(), values.to_numpy(), metric,
                                                                       resamples, seed))
    return out


def recommend(dev: dict[str, DevResult] | None, dev_questions: int) -> Recommendation:
    """Best dev NDCG@10 wins only when its dev interval against base lies above 0; else base."""
    others = {s: r for s, r in (dev or {}).items() if s != "base"}
    if not dev_questions or not others:
        return Recommendation("base", "There are no dev questions to choose a system on, so the base model is "
                                      "recommended; use a dev split (--dev-fraction above 0) to let dev decide.", 0)
    best = max(others, key=lambda s: others[s].score)
    result, base_score = others[best], dev["base"].score
    scores = f"dev NDCG@10 {result.score:.4f} vs {base_score:.4f}"
    if result.score <= base_score:
        return Recommendation("base", f"No system beat the base model on {dev_questions} dev questions (best: "
                                      f"{name(best)}, {scores}); the base model is recommended.",
                              dev_questions, result.interval)
    interval = result.interval
    if interval is not None and interval.side() == "above":
        return Recommendation(best, f"{name(best).capitalize()} scored best on {dev_questions} dev questions "
                                    f"({scores}, change {_signed(interval.change)}, {_interval_words(interval)}).",
                              dev_questions, interval)
    words = _interval_words(interval) if interval is not None else "no interval"
    return Recommendation("base", f"{dev_questions} dev questions cannot tell {name(best)} from the base model "
                                  f"({scores}, {words}); the simplest, the base model, is recommended.",
                          dev_questions, interval)


def headline(system: str, interval: Interval | None, score: float) -> Headline:
    """The recommended system's test change against base, with its 95% interval, in plain words.

    ``score`` is the recommended system's test NDCG@10 and ``interval`` its paired test change
    against base (None when base itself is recommended).
    """
    if system == "base" or interval is None:
        return Headline(f"Recommended: the base model (test NDCG@10 {score:.3f}).", "neutral")
    side = interval.side()
    verdict = {"above": "a real gain", "below": "worse than the base model"}.get(
        side, "too small to tell apart from no change")
    text = (f"Recommended: {name(system)}. Test NDCG@10 {score:.3f}, {_signed(interval.change)} against the base "
            f"model ({_interval_words(interval)}): {verdict}.")
    return Headline(text, {"above": "good", "below": "bad"}.get(side, "neutral"))


def dev_fraction_for(n_questions: int) -> float:
    """The share of unique questions to hold out for dev, so dev has enough questions to decide.

    Rationale: per-question NDCG@10 changes between two systems spread with a standard deviation of
    roughly 0.25, so a paired 95% interval is about +-0.11 wide on 20 dev questions and +-0.063 on
    60 (1.96 * 0.25 / sqrt(n)). Changes worth shipping are around 0.05, so dev aims for at least
    ``DEV_QUESTIONS_TARGET`` (60) questions: 10% of a large set, more of a small one, but never
    above 30% so training and test keep most questions (a 100-question set gets 30 dev questions
    and the report says how many decided).
    """
    if n_questions <= 0:
        raise ValueError(f"expected a positive number of questions, found {n_questions}")
    return round(min(DEV_FRACTION_CAP, max(DEV_FRACTION_FLOOR, DEV_QUESTIONS_TARGET / n_questions)), 4)


def per_query_values(evaluation: Evaluation, metric: str = DEV_METRIC) -> pd.Series:
    """One system's per-question values by query id, for pairing with another system's."""
    return evaluation.per_query.set_index("query_id")[metric]
