"""The words that interpret a report: the CLI, report.md and the app all say these.

Kept apart from ``adapt.report`` (which builds report.json and report.md) so that every reader of
a finished run, old or new, words the numbers the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from adapt.config import MIN_STEPS

SIGNIFICANCE_METRICS = ("ndcg@10", "mrr@10", "accuracy@1")
SYSTEMS = {"base": "Base", "finetuned": "Fine-tuned", "hybrid": "Hybrid", "bm25": "BM25"}
NAMES = {"base": "the base model", "finetuned": "the fine-tuned model", "hybrid": "hybrid search (BM25 + dense)",
         "bm25": "BM25"}
METRIC_NAMES = {"accuracy": "Accuracy", "precision": "Precision", "recall": "Recall", "mrr": "MRR", "ndcg": "NDCG",
                "map": "MAP"}


@dataclass(frozen=True)
class Headline:
    """The recommended system's change on the test set, and what its 95% interval supports.

    ``direction`` is "better" (the whole interval above 0), "worse" (the whole interval below 0) or
    "unclear" (it includes 0, there is none, or dev recommended the base model): the app colours
    only "better" and "worse".
    """

    system: str  # the system the change is about: the recommended one, or fine-tuned when base is
    metric: str  # ndcg@10 when it was asked for
    change: float  # the system minus base, on the test set
    low: float  # the 95% interval of the change (NaN when there is none)
    high: float
    direction: str
    sentence: str


def deepest_ndcg(metrics: dict) -> str:
    """ndcg@10 when it was asked for, else the deepest NDCG cut-off there is."""
    if "ndcg@10" in metrics:
        return "ndcg@10"
    return max((k for k in metrics if k.startswith("ndcg@")), key=lambda k: int(k.split("@")[1]))


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


def interval_text(s: dict, system: str = "finetuned") -> str:
    """One bootstrap interval (``report["comparisons"][system]``) and what it supports, in words."""
    if _no_interval(s):
        return "too few test questions for an interval, so there is no telling how sure this is"
    reading = {"better": "the whole interval is above zero, so the gain is unlikely to be noise",
               "worse": f"the whole interval is below zero, so {NAMES.get(system, system)} retrieves worse",
               "unclear": "the interval includes zero, so the change may be noise"}[interval_direction(s)]
    return f"95% interval {s['low']:+.4f} to {s['high']:+.4f}, p = {s['p_value']:.3f}: {reading}"


def _comparison(report: dict, system: str) -> tuple[str, dict]:
    """The metric and the test interval of ``system`` against base (reports before hybrid: fine-tuned only)."""
    found = report.get("comparisons", {}).get(system) or (report["significance"] if system == "finetuned" else {})
    key = next((k for k in SIGNIFICANCE_METRICS if k in found), None)
    if key is None:  # no metric with an interval was asked for (e.g. -k 3)
        key = deepest_ndcg(report["metrics"]["base"])
        nan = float("nan")
        return key, {"change": report["metrics"][system][key] - report["metrics"]["base"][key], "low": nan,
                     "high": nan, "p_value": nan}
    return key, {name: float("nan") if value is None else value for name, value in found[key].items()}


def interpret_change(report: dict) -> Headline:
    """What people read first: the recommended system's test change against base, with its 95% interval.

    When dev recommends the base model, the sentence says so and gives the fine-tuned model's test
    change for reference, never coloured: dev, not test, decides what to use.
    """
    recommended = report.get("recommended", "finetuned")
    system = recommended if recommended in report["metrics"] and recommended != "base" else "finetuned"
    key, s = _comparison(report, system)
    change = s["change"]
    moved = (f"{abs(change):.4f} higher than" if change >= 5e-5 else f"{abs(change):.4f} lower than"
             if change <= -5e-5 else "the same as")
    n = report["data"]["test_questions"]
    if recommended == "base":
        sentence = (f"Recommended: the base model (dev could not tell the others from it). For reference, on the "
                    f"{n:,} held-out test questions the fine-tuned model's {metric_label(key)} is {moved} the "
                    f"base model's ({interval_text(s, system)}).")
        direction = "unclear"
    else:
        sentence = (f"Recommended: {NAMES[system]}. On the {n:,} held-out test questions its {metric_label(key)} "
                    f"is {moved} the base model's ({interval_text(s, system)}).")
        direction = interval_direction(s)
    return Headline(system, key, change, s["low"], s["high"], direction, sentence)


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


def planned_text(report: dict) -> str:
    """" of N planned" epochs, and how N was chosen when the run set none (``adapt.config.auto_epochs``)."""
    planned = report["training"].get("planned_epochs")
    if not planned:
        return ""
    auto = report.get("config", {}).get("epochs", planned) is None
    return f" of {planned} planned" + (f", chosen to make at least {MIN_STEPS} steps" if auto else "")


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
        "Training": (f"{training['steps']} steps ({training['epochs']:.2f} epochs{planned_text(report)}) with "
                     f"{training['loss']}, {training['seconds']:.1f} s"
                     + (" (reused from an earlier run)" if training.get("reused") else "")),
        "Timings": ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in report["timings"].items()),
    }
