"""The recommendation rule at its edges, the headline's words and tone, and the dev share."""

import numpy as np
import pandas as pd
import pytest

from adapt.evaluate import Evaluation
from adapt.recommend import DevResult, Headline, dev_fraction_for, dev_results, headline, recommend
from adapt.stats import Interval, paired_bootstrap


def interval(low, high, change=None):
    return Interval("ndcg@10", (low + high) / 2 if change is None else change, low, high, 0.5)


def test_best_dev_system_wins_when_its_interval_lies_above_zero():
    dev = {"base": DevResult(0.60, None), "finetuned": DevResult(0.63, interval(-0.01, 0.07)),
           "hybrid": DevResult(0.70, interval(0.02, 0.18, 0.10))}
    rec = recommend(dev, 80)
    assert (rec.system, rec.dev_questions, rec.interval) == ("hybrid", 80, dev["hybrid"].interval)
    assert rec.reason == ("Hybrid search scored best on 80 dev questions (dev NDCG@10 0.7000 vs 0.6000, "
                          "change +0.100, 95% interval +0.020 to +0.180).")


def test_interval_touching_zero_recommends_base():
    dev = {"base": DevResult(0.60, None), "finetuned": DevResult(0.65, interval(0.0, 0.10, 0.05))}
    rec = recommend(dev, 22)
    assert rec.system == "base"
    assert rec.reason == ("22 dev questions cannot tell the fine-tuned model from the base model (dev NDCG@10 "
                          "0.6500 vs 0.6000, 95% interval +0.000 to +0.100); the simplest, the base model, "
                          "is recommended.")
    just_above = recommend({**dev, "finetuned": DevResult(0.65, interval(1e-9, 0.10))}, 22)
    assert just_above.system == "finetuned"


def test_rule_looks_only_at_the_best_dev_system():
    # the fine-tuned model's interval clears 0, but hybrid scores higher on dev and its interval spans 0
    dev = {"base": DevResult(0.60, None), "finetuned": DevResult(0.64, interval(0.01, 0.07)),
           "hybrid": DevResult(0.66, interval(-0.02, 0.14))}
    assert recommend(dev, 50).system == "base"


def test_no_dev_set_recommends_base():
    rec = recommend(None, 0)
    assert (rec.system, rec.dev_questions, rec.interval) == ("base", 0, None)
    assert rec.reason == ("There are no dev questions to choose a system on, so the base model is recommended; "
                          "use a dev split (--dev-fraction above 0) to let dev decide.")
    assert recommend({"base": DevResult(0.5, None)}, 30).system == "base"


def test_base_best_on_dev():
    rec = recommend({"base": DevResult(0.60, None), "finetuned": DevResult(0.58, interval(-0.05, 0.01))}, 40)
    assert rec.system == "base"
    assert rec.reason == ("No system beat the base model on 40 dev questions (best: the fine-tuned model, dev "
                          "NDCG@10 0.5800 vs 0.6000); the base model is recommended.")


@pytest.mark.parametrize("low, high, tone, verdict", [
    (0.004, 0.030, "good", "a real gain"),
    (0.0, 0.030, "neutral", "too small to tell apart from no change"),
    (-0.012, 0.020, "neutral", "too small to tell apart from no change"),
    (-0.030, -0.004, "bad", "worse than the base model"),
])
def test_headline_tone_follows_the_test_interval(low, high, tone, verdict):
    got = headline("hybrid", interval(low, high, 0.017), 0.904)
    assert got == Headline(f"Recommended: hybrid search. Test NDCG@10 0.904, +0.017 against the base model "
                           f"(95% interval {low:+.3f} to {high:+.3f}): {verdict}.", tone)


def test_headline_for_base_and_for_too_few_questions():
    assert headline("base", None, 0.887) == Headline("Recommended: the base model (test NDCG@10 0.887).", "neutral")
    nan = Interval("ndcg@10", 0.1, float("nan"), float("nan"), float("nan"))
    assert nan.side() == "spans"
    assert headline("finetuned", nan, 0.5).text == ("Recommended: the fine-tuned model. Test NDCG@10 0.500, +0.100 "
                                                    "against the base model (no interval: too few questions to "
                                                    "resample): too small to tell apart from no change.")


@pytest.mark.parametrize("n, fraction", [(50, 0.3), (200, 0.3), (300, 0.2), (600, 0.1), (5000, 0.1)])
def test_dev_fraction_aims_for_60_questions_within_10_to_30_percent(n, fraction):
    assert dev_fraction_for(n) == fraction


def test_dev_results_pair_questions_by_id():
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, 30)
    tuned = np.clip(base + 0.2, 0, 1)
    ids = [f"q{i}" for i in range(30)]
    frame = lambda v, order: Evaluation({}, pd.DataFrame({"query_id": [ids[i] for i in order], "ndcg@10": v[order]}))
    shuffled = rng.permutation(30)
    results = dev_results({"base": frame(base, np.arange(30)), "finetuned": frame(tuned, shuffled)}, seed=3)
    assert results["base"].score == pytest.approx(base.mean()) and results["base"].interval is None
    assert results["finetuned"].interval == paired_bootstrap(base, tuned, "ndcg@10", 1000, 3)
    assert recommend(results, 30).system == "finetuned"
