"""A hostile or clumsy person at the command line: random flag values, damaged and crafted run folders.

Every case ends in exit status 0 or one ``Error:`` line, never a traceback; a run folder's files never
run code the person did not ask for; and a good run folder keeps every byte.
"""

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapt import run, search
from adapt.index import PassageIndex, encode_passages
from tests.conftest import SAMPLE_PAIRS

QUICK = settings(max_examples=25, derandomize=True, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def make_run(out: Path, base: Path) -> Path:
    """A small finished run folder, written directly: base and "fine-tuned" are both ``base``."""
    from sentence_transformers import SentenceTransformer

    pairs = pd.read_csv(SAMPLE_PAIRS).drop_duplicates("passage").head(20)
    corpus = pd.DataFrame({"passage_id": [f"d{i}" for i in range(len(pairs))], "passage": pairs["passage"]})
    test = pairs[["question", "passage"]].head(8)
    (out / "data").mkdir(parents=True)
    test.to_csv(out / "data" / "test.csv", index=False)
    corpus.to_csv(out / "data" / "corpus.csv", index=False)
    per_query = pd.DataFrame({"query_id": [f"q{i}" for i in range(len(test))], "question": test["question"],
                              "relevant_ids": list(corpus["passage_id"][: len(test)]), "base_rank": 1,
                              "finetuned_rank": 1, "bm25_rank": 1, "rank_change": 0})
    per_query.to_csv(out / "per_query.csv", index=False)
    shutil.copytree(base, out / "model")
    vectors = encode_passages(SentenceTransformer(str(base), device="cpu"), list(corpus["passage"]))
    for which in ("base", "finetuned"):
        PassageIndex.build(vectors, list(corpus["passage_id"]), list(corpus["passage"]), "flat").save(
            out / "index" / which)
    facts = {"requested": str(base), "resolved": str(base), "path": str(base), "source": "local"}
    report = {"models": {"base": facts}, "config": {"trust_remote_code": False}}
    (out / "report.json").write_text(json.dumps(report))
    return out


def with_own_code(model: Path, marker: Path) -> Path:
    """Make ``model`` name a Python module of its own that writes ``marker`` when imported."""
    (model / "marker_pooling.py").write_text(
        "from pathlib import Path\n"
        f"Path({str(marker)!r}).write_text('code from the run folder ran')\n"
        "from sentence_transformers.sentence_transformer.modules import Pooling\n\n\n"
        "class MarkerPooling(Pooling):\n    pass\n")
    modules = json.loads((model / "modules.json").read_text())
    modules[-1]["type"] = "marker_pooling.MarkerPooling"
    (model / "modules.json").write_text(json.dumps(modules))
    return model


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in text, text
    return lines[0]


@pytest.fixture(scope="module")
def good_run(tiny_models, tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("good") / "run", tiny_models["student"])


# ----------------------------------------------------------------------------------------------
# A run folder never decides to run code


def test_search_never_runs_code_from_a_crafted_run_folder(tiny, tmp_path, capsys):
    marker = tmp_path / "marker.txt"
    out = make_run(tmp_path / "crafted", tiny["student"])
    model = with_own_code(tiny["student"], marker)
    report = json.loads((out / "report.json").read_text())
    report["config"]["trust_remote_code"] = True  # the folder asks for trust; only the person may give it
    (out / "report.json").write_text(json.dumps(report))

    assert search.main([str(out), "aphids on roses"]) == 1
    assert one_error_line(capsys.readouterr().err) == (
        f"Error: the base model '{model}' ships its own Python code; pass --trust-remote-code if you trust it")
    assert not marker.exists()


def test_the_fine_tuned_model_of_a_run_folder_is_not_trusted_either(tiny, tmp_path, capsys):
    marker = tmp_path / "marker.txt"
    out = make_run(tmp_path / "crafted", tiny["student"])
    with_own_code(out / "model", marker)
    assert search.main([str(out), "aphids on roses"]) == 1
    assert one_error_line(capsys.readouterr().err) == (
        f"Error: the fine-tuned model '{out / 'model'}' ships its own Python code; pass --trust-remote-code "
        "if you trust it")
    assert not marker.exists()


def test_the_persons_own_flag_does_run_the_code(tiny, tmp_path, monkeypatch, capsys):
    """The control: the crafted folder is dangerous, so the refusal above is what keeps it out."""
    from transformers import dynamic_module_utils

    monkeypatch.setattr(dynamic_module_utils, "HF_MODULES_CACHE", str(tmp_path / "modules"))
    monkeypatch.syspath_prepend(str(tmp_path / "modules"))
    marker = tmp_path / "marker.txt"
    out = make_run(tmp_path / "crafted", tiny["student"])
    with_own_code(tiny["student"], marker)
    assert search.main([str(out), "aphids on roses", "--trust-remote-code"]) == 0
    assert marker.read_text() == "code from the run folder ran"
