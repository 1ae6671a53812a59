"""The fine-tuned model's own README.md: what it scored on the run's test set, the data it saw, and the
command that made it, so the model folder still explains itself once it leaves the run."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

from adapt.config import RunConfig
from adapt.explain import SYSTEMS, about_text, interpret_change, metric_label
from adapt.files import atomic_write_text

CARD_METRICS = ("ndcg@10", "mrr@10", "accuracy@1", "accuracy@10", "recall@10", "map@10")


def run_command(config: dict) -> str:
    """``python -m adapt.run`` with the settings of ``config`` (``RunConfig.to_dict()``) that differ from the
    defaults, as flags; settings that are not ``RunConfig`` fields are ignored."""
    parts = ["python", "-m", "adapt.run"]
    for f in dataclasses.fields(RunConfig):
        if f.name not in config:
            continue
        value = config[f.name]
        default = (str(f.default) if isinstance(f.default, Path) else list(f.default) if isinstance(f.default, tuple)
                   else f.default)  # as RunConfig.to_dict() writes it
        if f.metadata.get("positional"):
            parts.append(str(value))
        elif value != default and value is not None:
            flag = "--" + f.name.replace("_", "-")
            if isinstance(value, bool):
                parts.append(flag if value else "--no-" + f.name.replace("_", "-"))
            else:
                parts += [flag, ",".join(map(str, value)) if isinstance(value, list) else str(value)]
    return shlex.join(parts)


def _metrics_rows(report: dict) -> list[str]:
    metrics = report["metrics"]
    systems = [s for s in ("base", "finetuned", "hybrid", "bm25") if s in metrics]
    keys = [k for k in CARD_METRICS if k in metrics["base"]]
    rows = ["| metric | " + " | ".join(SYSTEMS[s] for s in systems) + " |", "|---|" + "---:|" * len(systems)]
    rows += [f"| {metric_label(k)} | " + " | ".join(f"{metrics[s][k]:.4f}" for s in systems) + " |" for k in keys]
    return rows


def model_card(report: dict, command: str, trainer_card: str = "") -> str:
    """README.md for the fine-tuned model folder, from a run's ``report.json`` and the command that made it.

    ``trainer_card`` is the card sentence-transformers wrote when it saved the model (hub metadata, training
    logs, versions): its front matter is kept, adapt's sections lead, and its body follows.
    """
    base = report["models"]["base"]
    about = about_text(report)
    inp = report["data"]["input"]
    front, body = _split_front_matter(trainer_card)
    front = front or ("---\nlibrary_name: sentence-transformers\n"
                      "tags: [sentence-transformers, sentence-similarity, feature-extraction, adapt]\n---\n")
    lines = [front.rstrip("\n"), "", f"# {base['resolved']} fine-tuned with adapt", "",
             "Fine-tuned with GISTEmbed by adapt.", "", f"- base model: {about['Base model']}",
             f"- guide model: {about['Guide model']}", "",
             "## Test results", "", f"**{interpret_change(report).sentence}**", "",
             f"Retrieval on the run's held-out test set ({report['data']['test_questions']:,} questions), "
             "searching the whole corpus:", ""]
    lines += _metrics_rows(report)
    lines += ["", f"Dev recommended: {report['verdict']}", ""]
    lines += [f"Warning: {w}\n" for w in report.get("warnings", [])]
    lines += ["## Data", "",
              f"- pairs read: {inp['rows_read']:,}; dropped: {inp['dropped_empty']:,} with an empty field, "
              f"{inp['dropped_duplicate']:,} exact duplicates",
              f"- {about['Data']}", f"- training: {about['Training']}", "",
              "## Use it", "", "```python", "from sentence_transformers import SentenceTransformer", "",
              'model = SentenceTransformer("path/to/this/folder")',
              'passages = model.encode_document(["a passage to search"], normalize_embeddings=True)',
              'query = model.encode_query("a question", normalize_embeddings=True)',
              "scores = passages @ query", "```", "",
              "## How it was made", "", f"adapt {report['adapt_version']}, {report['created']}:", "",
              "```bash", command, "```"]
    body = body.strip()
    if body.startswith("# "):  # its own title ("# SentenceTransformer") gives way to adapt's
        body = body.partition("\n")[2].strip()
    if body:
        lines += ["", "## The trainer's card", "", "Written by sentence-transformers when it saved the model.", "", body]
    return "\n".join(lines) + "\n"


def write_model_card(model_dir: Path, report: dict) -> Path:
    """Replace ``model_dir/README.md`` (the trainer's card) with adapt's card, which keeps the trainer's below."""
    path = Path(model_dir) / "README.md"
    trainer_card = path.read_text(encoding="utf-8") if path.exists() else ""
    atomic_write_text(path, model_card(report, run_command(report["config"]), trainer_card))
    return path


def _split_front_matter(card: str) -> tuple[str, str]:
    """(``---`` front matter with its fences, the rest); ("", card) when there is none."""
    if card.startswith("---\n"):
        end = card.find("\n---\n", 4)
        if end >= 0:
            return card[: end + 5], card[end + 5:]
    return "", card
