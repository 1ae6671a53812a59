"""Paired bootstrap over test questions: how sure is the change between two models?"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

SMALL_TEST_SET = 50


@dataclass
class Interval:
    metric: str
    change: float  # mean(fine-tuned) - mean(base)
    low: float  # 95% interval of the change
    high: float
    p_value: float  # two-sided: how often resampling gives a change of the other sign

    def side(self) -> str:
        """"above" or "below" when the whole 95% interval lies on one side of 0, else "spans" (also when it
        touches 0, or when there was nothing to resample)."""
        if self.low > 0:
            return "above"
        if self.high < 0:
            return "below"
        return "spans"

    def to_dict(self) -> dict:
        return asdict(self)


def paired_bootstrap(base: np.ndarray, tuned: np.ndarray, metric: str, resamples: int = 1000,
                     seed: int = 0) -> Interval:
    """Resample questions with replacement, keeping each question's base and fine-tuned values paired."""
    base, tuned = np.asarray(base, dtype=float), np.asarray(tuned, dtype=float)
    diff = tuned - base
    observed = float(diff.mean())
    if resamples == 0 or len(diff) < 2:
        return Interval(metric, observed, float("nan"), float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    samples = diff[rng.integers(0, len(diff), size=(resamples, len(diff)))].mean(axis=1)
    low, high = np.percentile(samples, [2.5, 97.5])
    if np.allclose(diff, 0):
        p = 1.0
    else:
        # share of resampled changes at or beyond zero on the far side, doubled (two-sided)
        p = 2 * min((samples <= 0).mean(), (samples >= 0).mean())
        p = float(min(1.0, max(p, 1.0 / resamples)))
    return Interval(metric, observed, float(low), float(high), p)
