"""A hostile or clumsy person at the command line: random flag values, damaged and crafted run folders.

Every case ends in exit status 0 or one ``Error:`` line, never a traceback; a run folder's files never
run code the person did not ask for; and a good run folder keeps every byte.
"""

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapt import run, search
from adapt.index import PassageIndex, encode_passages
from adapt.report import markdown_text, per_query_csv, spreadsheet_safe, spreadsheet_text
from tests.conftest import ROOT, SAMPLE_PAIRS

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


def test_search_never_runs_code_from_a_crafted_run_folder(tiny, tmp_path):
    marker = tmp_path / "marker.txt"
    out = make_run(tmp_path / "crafted", tiny["student"])
    model = with_own_code(tiny["student"], marker)
    report = json.loads((out / "report.json").read_text())
    report["config"]["trust_remote_code"] = True  # the folder asks for trust; only the person may give it
    (out / "report.json").write_text(json.dumps(report))

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "HF_MODULES_CACHE": str(tmp_path / "hf")}
    done = subprocess.run([sys.executable, "-m", "adapt.search", str(out), "aphids on roses"], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 1
    assert one_error_line(done.stderr) == (
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


# ----------------------------------------------------------------------------------------------
# Bad settings: one Error: line naming the flag, before any work


@pytest.mark.parametrize("flag, value, message", [
    ("--k", "abc", "--k must be whole numbers from 1 to 1000 separated by commas, e.g. 1,3,5,10; got 'abc'"),
    ("--seed", "-1", "--seed must be a whole number from 0 to 4294967295; got '-1'"),
    ("--seed", "4294967296", "--seed must be a whole number from 0 to 4294967295; got '4294967296'"),
    ("--cache-dir", "/etc/passwd", "--cache-dir '/etc/passwd' is a file; pass a folder"),
    ("--cache-dir", "/etc/passwd/cache", "--cache-dir '/etc/passwd/cache' is under the file '/etc/passwd'; "
                                         "pass a folder"),
    ("--bootstrap", "1e10", "--bootstrap must be a whole number from 0 to 100,000; got '1e10'"),
    ("--bootstrap", "100001", "--bootstrap must be a whole number from 0 to 100,000; got '100001'"),
    ("--batch-size", "1", "--batch-size must be a whole number from 2 to 65536 (GIST needs in-batch negatives); "
                          "got '1'"),
    ("--learning-rate", "nan", "--learning-rate must be a positive number below 1, e.g. 5e-5; got 'nan'"),
    ("--epochs", "2.5", "--epochs must be a whole number from 1 to 1000; got '2.5'"),
    ("--max-seq-length", "4", "--max-seq-length must be a whole number of tokens, at least 8; got '4'"),
])
def test_a_bad_setting_is_one_error_line_before_any_work(sample_pairs, tmp_path, capsys, flag, value, message):
    out = tmp_path / "run"
    assert run.main([str(sample_pairs), "--out", str(out), f"{flag}={value}"]) == 1
    assert one_error_line(capsys.readouterr().err) == f"Error: {message}"
    assert not out.exists()


def test_a_bad_command_line_is_one_error_line(sample_pairs, capsys):
    assert run.main([str(sample_pairs), "--epochs"]) == 2
    assert one_error_line(capsys.readouterr().err) == (
        "Error: --epochs: expected one argument; see python -m adapt.run --help")
    assert search.main(["run", "question", "-k", "abc"]) == 2
    assert one_error_line(capsys.readouterr().err) == (
        "Error: -k: invalid int value: 'abc'; see python -m adapt.search --help")


def test_a_sequence_longer_than_the_model_reads_stops_before_training(tiny, sample_pairs, tmp_path, cache_dir,
                                                                      capsys):
    out = tmp_path / "run"
    code = run.main([str(sample_pairs), "--out", str(out), "--base", str(tiny["student"]), "--guide",
                     str(tiny["guide"]), "--max-seq-length", "100000", "-q"])  # -q: no progress bars
    assert code == 1
    assert one_error_line(capsys.readouterr().err) == (
        f"Error: --max-seq-length 100000 is longer than the base model '{tiny['student']}' can read "
        "(128 tokens); pass 128 or less")
    assert not list(out.glob(".work/train-*")) and not (out / "report.json").exists()


# ----------------------------------------------------------------------------------------------
# Damaged run folders: one Error: line that says what to do


@pytest.mark.parametrize("name, content, message", [
    ("report.json", b'{"models": {"ba', "'{run}/report.json' is damaged (Unterminated string starting at: line 1 "
                                       "column 13 (char 12)); run adapt.run again to rebuild the run"),
    ("report.json", b"[]", "'{run}/report.json' is not an adapt report (no base model in it); "
                           "run adapt.run again to rebuild the run"),
    ("index/base/index.faiss", b"not an index", "index folder '{run}/index/base' is damaged (index.faiss is not a "
                                                "FAISS index); run adapt.run again with the same --out to rebuild it"),
    ("index/finetuned/passages.parquet", b"PAR1", "index folder '{run}/index/finetuned' is damaged (passages.parquet "
                                                  "is not a table of passage_id and passage); run adapt.run again "
                                                  "with the same --out to rebuild it"),
    ("data/test.csv", b"\xff\xfe\x00bad", "run directory '{run}' is damaged (UnicodeDecodeError: 'utf-8' codec can't "
                                          "decode byte 0xff in position 0: invalid start byte); run adapt.run "
                                          "again to rebuild it"),
])
def test_a_damaged_run_folder_is_one_error_line(good_run, tmp_path, capsys, name, content, message):
    copy = tmp_path / "copy"
    shutil.copytree(good_run, copy)
    (copy / name).write_bytes(content)
    assert search.main([str(copy), "aphids on roses"]) == 1
    assert one_error_line(capsys.readouterr().err) == "Error: " + message.format(run=copy)


def test_a_good_run_folder_searches(good_run, capsys):
    assert search.main([str(good_run), "aphids on roses", "-k", "2"]) == 0
    assert capsys.readouterr().err == ""


# ----------------------------------------------------------------------------------------------
# Property: whatever the flags and whatever the damage, exit 0 or one Error: line, and a good run keeps
# every byte


RUN_FLAGS = ["--corpus", "--eval-pairs", "--question-col", "--passage-col", "--eval-fraction", "--dev-fraction",
             "--base", "--guide", "--epochs", "--batch-size", "--learning-rate", "--warmup-ratio", "--temperature",
             "--margin", "--margin-strategy", "--max-seq-length", "--eval-steps", "--patience", "--cache-dir",
             "--index", "--k", "--bootstrap", "--seed"]
SWITCHES = ["--drop-leaks", "--no-fallback", "--trust-remote-code", "--no-guide-cache", "-q"]
values = st.one_of(
    st.integers(-2**64, 2**64).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", " ", "0", "-1", "1e10", "nan", "inf", "1,2,x", "0,5", "/etc/passwd", "/dev/null", "auto",
                     "flat", "relative", "minilm", "../..", "ﬁ", "1_000", "0x10"]),
    st.text(max_size=12),
)
run_argv = st.lists(st.one_of(st.tuples(st.sampled_from(RUN_FLAGS), values).map(lambda fv: f"{fv[0]}={fv[1]}"),
                              st.sampled_from(SWITCHES)), min_size=1, max_size=4)


def exit_and_error(main, argv, capsys) -> int:
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if code != 0:
        one_error_line(err)
    return code


@QUICK
@given(argv=run_argv)
def test_random_run_flags_end_in_one_error_line_and_leave_a_good_run_alone(good_run, tmp_path, capsys, argv):
    before = digest(good_run)
    missing = tmp_path / "no such pairs.csv"  # settings are checked first; a valid set then stops at the data
    code = exit_and_error(run.main, [str(missing), "--out", str(good_run), *argv], capsys)
    assert code in (1, 2)
    assert digest(good_run) == before


search_argv = st.tuples(st.text(max_size=20), st.one_of(st.none(), st.integers(-5, 2000).map(str), values),
                        st.booleans())


@QUICK
@given(args=search_argv)
def test_random_search_flags_end_in_results_or_one_error_line(good_run, capsys, args):
    query, k, trust = args
    before = digest(good_run)
    argv = [str(good_run), query] + ([f"-k={k}"] if k is not None else []) + (["--trust-remote-code"] if trust else [])
    exit_and_error(search.main, argv, capsys)
    assert digest(good_run) == before


corruption = st.tuples(
    st.sampled_from(["report.json", "per_query.csv", "data/test.csv", "data/corpus.csv", "index/base/index.faiss",
                     "index/base/passages.parquet", "index/finetuned/info.json", "model/config.json",
                     "model/modules.json", "model/model.safetensors", "model/tokenizer.json",
                     "model/1_Pooling/config.json"]),
    st.one_of(st.floats(0, 1).map(lambda f: ("truncate", f)), st.binary(max_size=64).map(lambda b: ("write", b)),
              st.sampled_from([("write", b"[]"), ("write", b"{}"), ("write", b""), ("delete", None)]),
              st.tuples(st.floats(0, 1), st.integers(0, 255)).map(lambda fb: ("flip", fb))),
)


@QUICK
@given(damages=st.lists(corruption, min_size=1, max_size=2))
def test_a_damaged_copy_of_a_run_gives_results_or_one_error_line(good_run, tmp_path_factory, capsys, damages):
    copy = tmp_path_factory.mktemp("damaged") / "run"
    shutil.copytree(good_run, copy)
    for name, (how, arg) in damages:
        path = copy / name
        if not path.exists():
            continue
        data = path.read_bytes()
        if how == "truncate":
            path.write_bytes(data[: int(len(data) * arg)])
        elif how == "write":
            path.write_bytes(arg)
        elif how == "delete":
            path.unlink()
        elif data:
            at = min(int(len(data) * arg[0]), len(data) - 1)
            path.write_bytes(data[:at] + bytes([arg[1]]) + data[at + 1:])
    exit_and_error(search.main, [str(copy), "aphids on roses"], capsys)
    shutil.rmtree(copy)


# ----------------------------------------------------------------------------------------------
# Files for people: formulas and markup neutralised, the exact text recoverable


@settings(max_examples=200, derandomize=True, database=None)
@given(text=st.text(alphabet=st.sampled_from("'=+-@\t\r a\"<>|*_"), max_size=8) | st.text(max_size=8))
def test_a_spreadsheet_never_sees_a_formula_and_the_text_comes_back(text):
    safe = spreadsheet_safe(text)
    assert not safe[:1] or safe[0] not in "=+-@\t\r"
    assert spreadsheet_text(safe) == text
    table = pd.DataFrame({"question": [text, "plain"], "base_rank": [1, 2]})
    read = pd.read_csv(io.StringIO(per_query_csv(table)), dtype={"question": str}, keep_default_na=False)
    assert list(read["question"].map(spreadsheet_text)) == [text, "plain"]


def test_markdown_shows_text_as_itself():
    assert markdown_text("<script>alert('x')</script> [a](b) *c* | d\ne") == (
        "&lt;script&gt;alert('x')&lt;/script&gt; \\[a\\](b) \\*c\\* \\| d e")
