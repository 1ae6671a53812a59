"""The Streamlit app through streamlit's AppTest (no browser), with the tiny models.

One test per step of the page: upload, bad upload, run, results, compare search, per question, and
open an earlier run; plus the app's own glue (background jobs, where uploads are stored) and its
boundary with the library (adapt/ never imports streamlit; the app's stage words match the pipeline).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.errors import AppTestError

from adapt import pipeline
from adapt.config import RunConfig
from adapt.errors import DataError, RunError
from adapt.pipeline import prepare_data, run_pipeline
from adapt.explain import SYSTEMS, interpret_change
from adapt.report import metrics_table, outcome
from app import jobs, workspace
from app.compare import arrow
from app.passages import CLIP, SLACK, clipped, highlighted, query_words
from app.ui import plain

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app" / "streamlit_app.py"
PAIRS = ROOT / "sample_data" / "agriculture_pairs.csv"
CORPUS = ROOT / "sample_data" / "agriculture_corpus.csv"
RUN_TIMEOUT_S = 240


@pytest.fixture
def app_dir(tmp_path, monkeypatch, cache_dir) -> Path:
    """A fresh app working directory, and no cached values left over from another test."""
    folder = tmp_path / "app"
    monkeypatch.setenv("ADAPT_APP_DIR", str(folder))
    monkeypatch.delenv("ADAPT_MAX_UPLOAD_MB", raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()
    return folder


@pytest.fixture(scope="module")
def finished_run(tiny_models, tmp_path_factory) -> Path:
    """A run made by the library (as `python -m adapt.run` makes it), for the views that open one."""
    root = tmp_path_factory.mktemp("finished")
    student = shutil.copytree(tiny_models["student"], root / "student")
    guide = shutil.copytree(tiny_models["guide"], root / "guide")
    out = root / "run"
    run_pipeline(RunConfig(pairs=PAIRS, out=out, base=str(student), guide=str(guide), epochs=1, batch_size=16,
                           bootstrap=200, cache_dir=root / "cache"))
    return out


def start_app() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=90).run()


def upload(at: AppTest, role: str, name: str, data: bytes) -> AppTest:
    """Upload through the widget, as a browser does ("pairs" or "corpus")."""
    widget = next(w for w in at.file_uploader if w.key.startswith(f"{role}_file"))
    widget.set_value((name, data, "text/csv"))
    return at.run()


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def no_problems(at: AppTest) -> None:
    assert not at.exception, texts(at.exception)
    assert not at.error, texts(at.error)


def open_run_page(run_dir: Path) -> AppTest:
    at = start_app()
    at.sidebar.radio(key="mode").set_value("Open an earlier run").run()
    at.text_input(key="open_path").set_value(str(run_dir)).run()
    no_problems(at)
    return at


def tab(at: AppTest, label: str):
    return next(t for t in at.tabs if t.label == label)


def copy_run(run_dir: Path, to: Path, **report_changes) -> Path:
    shutil.copytree(run_dir, to)
    report = json.loads((to / "report.json").read_text())
    for key, value in report_changes.items():
        if isinstance(value, dict):
            report[key].update(value)
        else:
            report[key] = value
    (to / "report.json").write_text(json.dumps(report))
    return to


# ----------------------------------------------------------------------------------------------
# 1. Upload


def test_upload_shows_preview_and_data_summary_and_stores_under_a_generated_name(app_dir):
    at = start_app()
    assert at.button(key="run").disabled  # nothing to run on yet
    upload(at, "pairs", "agriculture_pairs.csv", PAIRS.read_bytes())
    upload(at, "corpus", "agriculture_corpus.csv", CORPUS.read_bytes())
    no_problems(at)

    assert {m.label: m.value for m in at.metric} == {
        "Pairs": "669", "Questions": "662", "Passages": "238", "Test questions": "132", "Search corpus": "399"}
    summary = " ".join(texts(at.markdown))
    assert "669 rows read; none dropped" in summary
    assert "464 to train on (468 pairs), 66 to pick the best checkpoint (dev), 132 held out" in summary
    assert "399 passages, 161 of them from the extra passages file" in summary
    preview = at.table[0].value  # a static table: long passages wrap instead of running off the side
    assert list(preview.columns) == ["question", "passage"] and len(preview) == 5
    assert preview.equals(pd.read_csv(PAIRS, dtype=str).head(5).map(plain))  # escaped: cells are markdown
    assert not at.button(key="run").disabled

    stored = sorted((app_dir / "uploads").iterdir())
    assert len(stored) == 2 and all(re.fullmatch(r"[0-9a-f]{32}\.csv", p.name) for p in stored)
    assert {p.read_bytes() for p in stored} == {PAIRS.read_bytes(), CORPUS.read_bytes()}
    assert not list(app_dir.rglob("agriculture_*"))  # the person's file name is never a path
    columns = next(e for e in at.expander if e.label == "Columns")
    assert texts(columns.caption) == [plain(
        "Which columns hold the questions and the passages. adapt reads CSV (.csv), TSV (.tsv, .txt), JSON Lines or "
        "a JSON array of objects (.jsonl, .json) or Parquet (.parquet), with a question column named question, "
        "query, anchor, questions or queries and a passage column named passage, context, positive, answer, "
        "document, passages or text (in any case), or pick them below.")]


def test_summary_counts_dropped_rows_and_follows_the_test_fraction(app_dir):
    rows = PAIRS.read_text().splitlines()
    data = "\n".join(rows + [rows[1], "a question without a passage,"]) + "\n"
    at = upload(start_app(), "pairs", "pairs.csv", data.encode())
    no_problems(at)
    assert any("671 rows read; 2 dropped: 1 with an empty question or passage, 1 exact duplicates" in m
               for m in texts(at.markdown))

    at.slider(key="eval_fraction").set_value(0.3).run()
    assert {m.label: m.value for m in at.metric}["Test questions"] == str(round(662 * 0.3))


def test_sample_data_replaces_an_upload_and_remove_forgets_it(app_dir):
    at = upload(start_app(), "pairs", "empty.csv", b"question,passage\n")
    assert len(at.error) == 1
    at.button(key="sample").click().run()
    no_problems(at)
    assert {m.label: m.value for m in at.metric}["Search corpus"] == "399"
    assert [w.value for w in at.file_uploader] == [None, None]  # the replaced file is no longer shown
    assert any("agriculture\\_pairs\\.csv" in c for c in texts(at.caption))

    at.button(key="remove_pairs").click().run()
    no_problems(at)
    assert not at.metric and at.button(key="run").disabled


def test_data_and_settings_survive_a_look_at_an_earlier_run(app_dir, tiny):
    at = with_tiny_models(start_app(), tiny)
    at.sidebar.radio(key="mode").set_value("Open an earlier run").run()
    at.sidebar.radio(key="mode").set_value("New run").run()
    no_problems(at)
    assert at.text_input(key="base").value == str(tiny["student"]) and at.number_input(key="epochs").value == 1
    assert {m.label: m.value for m in at.metric}["Pairs"] == "669"


def test_remove_drops_a_bad_extra_passages_file(app_dir):
    at = upload(start_app(), "pairs", "agriculture_pairs.csv", PAIRS.read_bytes())
    upload(at, "corpus", "corpus.csv", b"passage\n")
    assert len(at.error) == 1 and at.button(key="run").disabled
    at.button(key="remove_corpus").click().run()
    no_problems(at)
    assert not at.button(key="run").disabled
    assert {m.label: m.value for m in at.metric}["Search corpus"] == "238"


# ----------------------------------------------------------------------------------------------
# 1b. Bad uploads: the CLI's message, in the page, and the app keeps working


BAD_FILES = {  # what a person gets wrong, and a part of what they must be told
    "wrong columns": (b"q,text\nwhat is it,a thing\n", "has no question column"),
    "no rows": (b"question,passage\n", "has a header but no rows"),
    "bad encoding": ("question,passage\ncaf\u00e9 au lait?,cr\u00e8me\n".encode("latin-1"), "is not UTF-8 text"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_upload_shows_the_cli_message_and_the_app_keeps_working(case, app_dir, tmp_path):
    data, gist = BAD_FILES[case]
    name = f"{case}.csv"
    (tmp_path / name).write_bytes(data)
    with pytest.raises(DataError) as caught:  # the CLI's first step; it prints "Error: <message>"
        prepare_data(RunConfig(pairs=tmp_path / name))
    said = f"Error: {caught.value}".replace(str(tmp_path / name), name)
    assert said.startswith(f"Error: pairs file '{name}' {gist}")

    at = upload(start_app(), "pairs", name, data)
    assert not at.exception
    # word for word what the CLI says, with the name the person knows and the page's column pickers
    assert texts(at.error) == [said.replace("pass --question-col", "choose the column below")]
    assert not any("--question-col" in e for e in texts(at.error))
    assert at.button(key="run").disabled

    upload(at, "pairs", "agriculture_pairs.csv", PAIRS.read_bytes())
    no_problems(at)
    assert {m.label: m.value for m in at.metric}["Pairs"] == "669"
    assert not at.button(key="run").disabled


def test_upload_over_the_size_limit_is_refused_and_not_stored(app_dir, monkeypatch):
    monkeypatch.setenv("ADAPT_MAX_UPLOAD_MB", "1")
    at = upload(start_app(), "pairs", "big.csv", b"question,passage\n" + b"q,p\n" * 400_000)
    assert texts(at.error) == ["Error: pairs file 'big.csv' is 1.5 MB, over the 1 MB upload limit; upload a smaller "
                               "file, or start the app with ADAPT_MAX_UPLOAD_MB set higher"]
    assert not (app_dir / "uploads").exists()
    assert at.button(key="run").disabled


def test_a_bad_upload_limit_setting_is_explained(app_dir, monkeypatch):
    monkeypatch.setenv("ADAPT_MAX_UPLOAD_MB", "lots")
    at = start_app()
    assert texts(at.error) == ["Error: ADAPT_MAX_UPLOAD_MB must be a whole number of megabytes, at least 1; "
                               "got 'lots'"]


def test_error_messages_name_the_uploaded_file_and_the_page_s_column_pickers(tmp_path):
    upload = workspace.Upload("my pairs.csv", tmp_path / "uploads" / "0123.csv", 10)
    assert workspace.shown(f"pairs file '{upload.path}' has no passage column: expected 'passage', found 'q', "
                           "'text'; rename it or pass --passage-col", [upload]) == (
        "pairs file 'my pairs.csv' has no passage column: expected 'passage', found 'q', 'text'; rename it or "
        "choose the column below")
    assert workspace.shown(f"pairs file '{upload.path}' has no column 'x' (given by --question-col); found 'q'",
                           [upload]) == "pairs file 'my pairs.csv' has no column 'x' (chosen below); found 'q'"


def test_runs_never_land_in_runs_runs(tmp_path):
    assert workspace.new_run_dir(tmp_path / "runs").parent == tmp_path / "runs"
    assert workspace.new_run_dir(tmp_path / "work").parent == tmp_path / "work" / "runs"


def test_save_upload_never_uses_the_file_name_as_a_path(tmp_path):
    saved = workspace.save_upload(b"question,passage\nq,p\n", "../../outside/evil.CSV", tmp_path, 1)
    assert saved.path.parent == tmp_path / "uploads"
    assert re.fullmatch(r"[0-9a-f]{32}\.csv", saved.path.name)
    assert saved.name == "../../outside/evil.CSV" and saved.path.read_bytes() == b"question,passage\nq,p\n"
    assert not (tmp_path.parent / "outside").exists()
    with pytest.raises(DataError, match=r"^pairs file 'data.xlsx' is not a \.csv, \.tsv, \.jsonl or \.parquet file; "):
        workspace.save_upload(b"PK\x03\x04", "data.xlsx", tmp_path, 1)


# ----------------------------------------------------------------------------------------------
# 2. Run: background thread, progress, one run at a time


def test_default_models_show_the_fallback_the_run_will_use(app_dir):
    from adapt import models

    at = start_app()
    expected = models.resolve(RunConfig.base, "base")  # offline in the tests: the bundled MiniLM
    assert expected.fallback_reason and expected.resolved == "sentence-transformers/all-MiniLM-L6-v2"
    guide = models.resolve(models.default_guide(RunConfig.base), "guide").resolved.split("/")[1]
    # one short line per model that falls back, without the resolver's raw error
    assert [w.value.replace("\\", "") for w in at.warning] == [
        "offline: using bundled all-MiniLM-L6-v2 for bge-small-en-v1.5",
        f"offline: using bundled {guide} for bge-base-en-v1.5"]
    assert at.text_input(key="base").value == "BAAI/bge-small-en-v1.5"
    assert at.text_input(key="guide").placeholder == models.default_guide("BAAI/bge-small-en-v1.5")
    epochs = at.number_input(key="epochs")  # empty: the run picks the epochs (adapt.config.auto_epochs)
    assert epochs.value is None and epochs.placeholder == "auto"


def wait_for_results(at: AppTest) -> AppTest:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        time.sleep(1)
        at.run()
        if "job_seen" in at.session_state and not at.get("progress"):  # the page has taken the result
            return at
    pytest.fail(f"the run did not finish within {RUN_TIMEOUT_S} s")


def with_tiny_models(at: AppTest, tiny, epochs: int | None = 1) -> AppTest:
    """The sample data and the tiny models; ``epochs`` None leaves the field empty (auto)."""
    at.button(key="sample").click().run()
    at.text_input(key="base").set_value(str(tiny["student"]))
    at.text_input(key="guide").set_value(str(tiny["guide"]))
    if epochs is not None:
        at.number_input(key="epochs").set_value(epochs)
    at.number_input(key="batch_size").set_value(16)
    return at.run()


@pytest.fixture
def training_held(monkeypatch):
    """Pause the real run at its first training step until the event is set (at teardown at the latest)."""
    import adapt.train

    release, real = threading.Event(), adapt.train.finetune

    def finetune(*args, progress=None, **kwargs):
        def tell(stage, done, total):
            progress(stage, done, total)
            if stage == "train" and done == 1:
                release.wait(60)
        return real(*args, progress=tell, **kwargs)

    monkeypatch.setattr(adapt.train, "finetune", finetune)
    yield release
    release.set()


def progress_text(at: AppTest) -> str:
    bars = at.get("progress")
    return bars[0].proto.text if bars else ""


def test_run_works_in_the_background_and_a_second_press_is_refused(app_dir, tiny, training_held):
    from adapt.config import auto_epochs

    at = with_tiny_models(start_app(), tiny, epochs=None)  # Epochs left empty, as the page starts
    other = with_tiny_models(start_app(), tiny, epochs=None)  # a second tab, drawn before the run starts
    no_problems(at)
    assert [c.endswith("(a local folder).") for c in texts(at.caption) if c.startswith("Will use")] == [True, True]
    assert not other.button(key="run").disabled

    at.button(key="run").click().run()
    assert re.search(r" · \d+:\d\d elapsed$", progress_text(at)) and at.button(key="run").disabled
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not progress_text(at).startswith("Training: step 1 of ") and time.monotonic() < deadline:
        time.sleep(0.5)
        at.run()  # the page stays usable: each rerun returns while the run works on
    found = re.fullmatch(r"Training: step 1 of (\d+) · \d+:\d\d elapsed", progress_text(at))
    assert found, progress_text(at)
    planned_steps = int(found.group(1))

    busy = "One run at a time: the button comes back when this one finishes."
    assert busy in texts(at.caption)
    other.run()  # the other tab sees the run too, and cannot start one on top of it
    assert other.button(key="run").disabled and busy in texts(other.caption) and other.get("progress")
    with pytest.raises(AppTestError, match="disabled"):
        other.button(key="run").click()

    training_held.set()
    wait_for_results(at)
    no_problems(at)
    assert len(list((app_dir / "runs").iterdir())) == 1  # the refused press made nothing
    assert any(s.startswith("Finished in ") for s in texts(at.success))
    assert at.session_state["run_tab"] == "3. Results"  # the new run's results, scrolled into view once
    assert ['scrollIntoView' in h.proto.body for h in at.get("html")] == [True]
    at.run()
    assert not at.get("html") and at.session_state["run_tab"] == "3. Results"
    assert [t.label for t in at.tabs] == ["3. Results", "4. Compare search", "5. Per question"]
    run_dir = next((app_dir / "runs").iterdir())
    report = json.loads((run_dir / "report.json").read_text())
    assert report["models"]["base"]["path"] == str(Path(tiny["student"]).resolve())
    assert report["config"]["epochs"] is None and report["config"]["batch_size"] == 16
    # the run chose its epochs by step count, and the progress bar counted them from the first step
    rows, steps_per_epoch = report["data"]["train_pairs"], math.ceil(report["data"]["train_pairs"] / 16)
    assert report["training"]["planned_epochs"] == auto_epochs(rows, 16) == 2  # 30 steps an epoch: two make 40
    assert planned_steps == 2 * steps_per_epoch
    assert not at.button(key="run").disabled  # ready for another


def test_a_failed_run_shows_its_error(app_dir, tiny, tmp_path):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{}")  # looks like a model folder, does not load
    at = with_tiny_models(start_app(), tiny)
    at.text_input(key="guide").set_value(str(broken)).run()
    no_problems(at)
    at.button(key="run").click().run()
    wait_for_results(at)
    assert len(at.error) == 1
    assert at.error[0].value.startswith(f"Error: could not load the guide model '{broken}' from {broken}: ")
    assert not at.tabs and not at.button(key="run").disabled


def test_job_board_runs_one_job_at_a_time(tmp_path):
    release = threading.Event()
    seen = []

    def pipeline(config, progress):
        progress("data", 0, 1)
        progress("train", 3, 10)
        seen.append(config.out)
        release.wait(10)
        return "done"

    board = jobs.JobBoard()
    config = RunConfig(pairs=PAIRS, out=tmp_path / "one")
    job = board.start(config, pipeline)
    deadline = time.monotonic() + 10
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert board.active() is job
    with pytest.raises(RunError, match=r"^a run is already in progress \(started 0:0\d ago\); wait for it"):
        board.start(RunConfig(pairs=PAIRS, out=tmp_path / "two"), pipeline)
    step = job.progress()
    assert (step.state, step.label[:25]) == ("running", "Training: step 3 of 10 · ")
    assert 0 < step.fraction < 1
    release.set()
    assert job.wait(10) and job.result == "done" and job.progress().fraction == 1.0
    assert board.active() is None
    assert board.start(RunConfig(pairs=PAIRS, out=tmp_path / "three"), lambda c, progress: None).wait(10)


def test_a_job_keeps_the_message_of_a_failure(tmp_path):
    def broken(config, progress):
        raise DataError("pairs file 'x.csv' is empty")

    def crashed(config, progress):
        raise ZeroDivisionError("division by zero")

    config = RunConfig(pairs=PAIRS, out=tmp_path / "run")
    failed = jobs.Job(config, broken).start()
    assert failed.wait(10) and failed.error == "pairs file 'x.csv' is empty"
    assert failed.progress().state == "failed"
    crash = jobs.Job(config, crashed).start()
    assert crash.wait(10)
    assert crash.error == ("the run stopped with an unexpected ZeroDivisionError: division by zero; "
                           "the server log has the details")


def test_progress_never_moves_back():
    job = jobs.Job(RunConfig(pairs=PAIRS, out=Path("unused")))
    fractions = []
    for stage, done, total in [("data", 0, 1), ("data", 1, 1), ("models", 0, 1), ("models", 1, 1),
                               ("encode base", 128, 256), ("train", 0, 1), ("guide", 1, 4), ("guide", 4, 4),
                               ("train", 5, 10), ("train", 10, 10), ("evaluate", 0, 1), ("report", 1, 1)]:
        job._tell(stage, done, total)
        fractions.append(job.progress().fraction)
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)


# ----------------------------------------------------------------------------------------------
# 3. Results


def test_results_lead_with_the_test_change_then_the_pick_table_and_chart(app_dir, finished_run):
    at = open_run_page(finished_run)
    report = json.loads((finished_run / "report.json").read_text())
    results = tab(at, "3. Results")

    said = interpret_change(report)
    s = report["comparisons"][said.system]["ndcg@10"]
    headline = results.get("metric")[0]
    assert (headline.label, headline.value) == (f"{SYSTEMS[said.system]}: test NDCG@10 change", f"{s['change']:+.4f}")
    assert headline.proto.delta == f"95% interval {s['low']:+.4f} to {s['high']:+.4f}"
    lines = texts(results.markdown)
    sentence = said.sentence
    assert sentence.startswith("Recommended: ") and f"{report['data']['test_questions']} held-out test" in sentence
    assert any(plain(sentence) in line for line in lines[:2])  # first, before the dev-based pick
    assert lines.index(next(line for line in lines if plain(sentence) in line)) < lines.index(
        f"**Which model to use** (judged on the dev set, which picked the checkpoint): {plain(report['verdict'])}")
    assert not results.success  # the pick is not a green box of its own
    assert texts(results.warning) == [plain(w) for w in report["warnings"] if w != report["verdict"]]

    table = results.dataframe[0].value
    expected = metrics_table(report)
    assert list(table.columns) == ["Base", "Fine-tuned", "Change", "Hybrid", "BM25"]
    assert list(table.index) == list(expected.index)
    assert np.allclose(table.to_numpy(dtype=float), expected.to_numpy(dtype=float))
    assert len(results.get("vega_lite_chart")) == 1


def test_the_chart_draws_each_system_s_change_against_base(finished_run):
    from app.charts import metrics_chart

    report = json.loads((finished_run / "report.json").read_text())
    chart = metrics_chart(report).to_dict()
    rows = next(iter(chart["datasets"].values()))
    metrics, base = report["metrics"], report["metrics"]["base"]
    expected = {(SYSTEMS[s], key): metrics[s][key] - base[key] for s in ("finetuned", "hybrid", "bm25")
                for key in base if key.split("@")[0] in ("accuracy", "precision", "recall", "mrr", "ndcg", "map")}
    assert {(r["system"], f"{r['metric'][:-2].lower()}@{r['k']}"): r["change"] for r in rows} == expected
    line = chart["spec"]["layer"][1]["encoding"]
    assert line["x"]["axis"]["labelAngle"] == 0  # k labels read horizontally
    assert line["y"]["field"] == "change" and "domain" not in line["y"].get("scale", {})  # no fixed 0-1 axis
    assert chart["spec"]["layer"][0]["encoding"]["y"] == {"datum": 0}  # the base line
    assert line["color"]["legend"]["symbolType"] == "stroke"  # a line in the legend, not a dot
    assert line["strokeDash"]["legend"] == line["color"]["legend"]  # one legend: BM25's dashes show in it
    dashes = dict(zip(line["strokeDash"]["scale"]["domain"], line["strokeDash"]["scale"]["range"]))
    assert dashes == {"Fine-tuned": [1, 0], "Hybrid": [1, 0], "BM25": [4, 3]}


@pytest.mark.parametrize("low, high, colour", [(0.01, 0.05, "green"), (-0.05, -0.01, "red"), (-0.01, 0.02, "gray")])
def test_the_headline_is_coloured_only_where_the_interval_is_wholly_on_one_side(low, high, colour, app_dir,
                                                                                finished_run, tmp_path):
    from streamlit.proto.Metric_pb2 import Metric

    significance = {"ndcg@10": {"metric": "ndcg@10", "change": (low + high) / 2, "low": low, "high": high,
                                "p_value": 0.04}}
    run_dir = copy_run(finished_run, tmp_path / colour, significance=significance, recommended="finetuned",
                       comparisons={"finetuned": significance})
    results = tab(open_run_page(run_dir), "3. Results")
    headline = results.get("metric")[0]
    assert Metric.MetricColor.Name(headline.proto.color) == colour.upper()
    sentence = plain(interpret_change(json.loads((run_dir / "report.json").read_text())).sentence)
    assert texts(results.markdown)[0] == (f"**{sentence}**" if colour == "gray" else f":{colour}[**{sentence}**]")


def test_when_the_base_model_is_recommended_the_pick_and_warnings_follow_the_headline(app_dir, finished_run,
                                                                                     tmp_path):
    verdict = "The fine-tuned model is NOT better than the base on dev NDCG@10 (0.5000 vs 0.6000): keep using the base."
    report = json.loads((finished_run / "report.json").read_text())
    fell = {**report["models"]["base"], "requested": "BAAI/bge-small-en-v1.5",
            "resolved": "sentence-transformers/all-MiniLM-L6-v2",
            "fallback_reason": "cannot load 'BAAI/bge-small-en-v1.5': the hub is unreachable ([Errno -2] Name or "
                               "service not known); using the bundled sentence-transformers/all-MiniLM-L6-v2 instead"}
    run_dir = copy_run(finished_run, tmp_path / "base-wins", recommended="base", verdict=verdict,
                       models={"base": fell},
                       warnings=["Only 3 test questions.", verdict, fell["fallback_reason"]])  # as older runs wrote
    at = open_run_page(run_dir)
    results = tab(at, "3. Results")
    assert texts(results.warning) == [plain("Only 3 test questions."),
                                      plain("offline: using bundled all-MiniLM-L6-v2 for bge-small-en-v1.5")]
    assert f"**Which model to use** (judged on the dev set, which picked the checkpoint): {plain(verdict)}" in texts(
        results.markdown)
    assert not results.success
    about = next(m for m in texts(results.markdown) if m.startswith("- **Base model:**"))
    assert about.startswith("- **Base model:** " + plain("sentence-transformers/all-MiniLM-L6-v2 (in place of "
                                                         "BAAI/bge-small-en-v1.5), "))
    assert "Errno" not in " ".join(texts(at.markdown) + texts(at.warning) + texts(at.caption))


# ----------------------------------------------------------------------------------------------
# 4. Compare search


HEAD = re.compile(r"\*\*(\d+)\.\*\* score [0-9.]+ · `(d\d+)`( :green-badge\[✓ relevant\])?( :\w+-badge\[(.+)\])?$")


def expected_badge(rank: int, base_ranks: dict[str, int], pid: str) -> str:
    was = base_ranks.get(pid)
    if was is None:
        return "new"
    if was == rank:
        return "= same"
    return f"{'▲ up' if was > rank else '▼ down'} {abs(was - rank)} · was #{was}"


def pinned_rank(which: str, pid: str, ranks: dict[str, dict[str, int]]) -> str:
    rank = ranks[which].get(pid)
    if rank is None:
        return "**not in the top 100**"
    return f"**#{rank}**" if which == "base" else f"**#{rank}** [{expected_badge(rank, ranks['base'], pid)}]"


def test_compare_search_shows_every_system_as_a_diff_and_never_reencodes(app_dir, finished_run, monkeypatch):
    import adapt.index
    import adapt.models
    import adapt.pipeline

    from adapt.runs import open_run

    per_query = pd.read_csv(finished_run / "per_query.csv")
    found = per_query[(per_query["base_rank"] <= 50) & (per_query["finetuned_rank"] <= 50)].iloc[0]
    run = open_run(finished_run)
    assert run.systems() == ["base", "finetuned", "hybrid"]
    relevant = run.test.relevant_docs[found["query_id"]]
    expected = {which: [(h.rank, h.passage_id) for h in run.retriever(which).search(found["question"], 50)]
                for which in run.systems()}
    full = {which: {h.passage_id: h.rank for h in run.retriever(which).search(found["question"], 100)}
            for which in run.systems()}
    base_ranks = full["base"]

    calls = {"load model": 0, "load index": 0, "encode passages": 0}

    def counting(name, function):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(adapt.models, "load", counting("load model", adapt.models.load))
    monkeypatch.setattr(adapt.index.PassageIndex, "load",
                        classmethod(counting("load index", adapt.index.PassageIndex.load.__func__)))
    for module in (adapt.index, adapt.pipeline):
        monkeypatch.setattr(module, "encode_passages", counting("encode passages", module.encode_passages))

    at = open_run_page(finished_run)
    compare = tab(at, "4. Compare search")
    compare.number_input(key="k").set_value(50).run()
    compare = tab(at, "4. Compare search")
    compare.selectbox(key=f"pick:{finished_run}").set_value(found["query_id"]).run()
    no_problems(at)
    compare = tab(at, "4. Compare search")
    assert compare.text_input(key="query").value == found["question"]

    one = len(relevant) == 1
    assert ("This is a test question: " + ("its relevant passage comes" if one else
                                           f"its {len(relevant)} relevant passages come")
            + f" first, with {'its' if one else 'their'} rank under each system. Below, ✓ marks "
            f"{'it' if one else 'them'} and a badge says how far each result moved against base.") in texts(
        compare.caption)
    assert {e.label for e in compare.expander} <= {"Whole passage"}  # nothing folded but long results
    words = query_words(found["question"])
    pinned = [m for m in texts(compare.markdown) if m.startswith(":green-badge[✓ relevant] `")]
    order = sorted(relevant, key=lambda pid: (min(r.get(pid, 101) for r in full.values()), pid))
    assert pinned == [f":green-badge[✓ relevant] `{pid}` {highlighted(run.test.corpus[pid], words)}"
                      for pid in order]  # the relevant passages first, best placed first
    said = [re.sub(r" :\w+-badge\[(.+)\]$", r" [\1]", m) for m in texts(compare.markdown)
            if re.match(r"(Base|Fine-tuned|Hybrid): \*\*", m)]  # each relevant passage's rank under each system
    assert said == [f"{SYSTEMS[which]}: " + pinned_rank(which, pid, full) for pid in order for which in run.systems()]
    titles = ("Base", "Fine-tuned", "Hybrid")
    columns = [c for c in compare.columns if c.subheader and c.subheader[0].value in titles]
    assert [c.subheader[0].value for c in columns] == list(titles)
    base_model = run.report["models"]["base"]["resolved"]  # the model that ran (a tiny one's folder here)
    fusion = run.report["hybrid"]["fusion"]
    dense = plain(base_model if fusion["dense_system"] == "base" else f"{base_model}, fine-tuned on your pairs")
    how = "reciprocal rank fusion" if fusion["method"] == "rrf" else f"weight {fusion['alpha']:.1f} on the model"
    tuned = plain(f"{base_model}, fine-tuned on your pairs")
    assert [c.caption[0].value for c in columns] == [plain(base_model), tuned,
                                                     plain("BM25 + ") + dense + plain(f" ({how}, chosen on dev)")]
    for column, which in zip(columns, run.systems()):
        lines = texts(column.markdown)
        heads = [HEAD.match(line) for line in lines if line.startswith("**")]
        assert [(int(h[1]), h[2]) for h in heads] == expected[which]
        passages = [lines[i + 1] for i, line in enumerate(lines) if HEAD.match(line)]
        assert passages == [shown(run.test.corpus[pid], words) for _, pid in expected[which]]
        long = [pid for _, pid in expected[which] if clipped(run.test.corpus[pid]) is not None]
        assert [e.label for e in column.expander] == ["Whole passage"] * len(long)
        assert [texts(e.markdown) for e in column.expander] == [
            [highlighted(run.test.corpus[pid], words)] for pid in long]  # the whole passage one click away
        assert [h[2] for h in heads if h[3]] == [pid for _, pid in expected[which] if pid in relevant]
        badges = [h[5] for h in heads]
        if which == "base":
            assert badges == [None] * 50
        else:
            assert badges == [expected_badge(r, base_ranks, pid) for r, pid in expected[which]]
    assert any(h[3] for h in heads)

    compare.text_input(key="query").set_value("how do I keep deer out of my garden").run()
    compare = tab(at, "4. Compare search")
    no_problems(at)
    for column in [c for c in compare.columns if c.subheader and c.subheader[0].value in titles]:
        lines = texts(column.markdown)
        assert len([line for line in lines if re.match(r"\*\*\d+\.\*\* score ", line)]) == 50
        assert not any("✓ relevant" in line for line in lines)
    assert any(c.startswith("Your own query: no passage is known to be relevant to it.") for c in texts(
        compare.caption)) and not [m for m in texts(compare.markdown) if m.startswith(":green-badge[✓ relevant]")]
    assert calls == {"load model": 2, "load index": 2, "encode passages": 0}  # cached across reruns, shared by hybrid


def shown(text: str, words: set[str]) -> str:
    """What a Compare result shows of a passage before it is expanded."""
    head = clipped(text)
    return highlighted(text, words) if head is None else highlighted(head, words) + " …"


def test_a_long_passage_is_clipped_at_a_word_boundary_and_a_short_one_shown_whole():
    short = "word " * ((CLIP + SLACK) // 5)
    assert clipped(short.strip()) is None and clipped("") is None
    long = "aphids " * 100
    head = clipped(long)
    assert head is not None and len(head) <= CLIP and long.startswith(head) and head.endswith("aphids")
    assert len(clipped("x" * 1000)) == CLIP  # one endless word is cut where it must be
    assert shown(long, {"aphid"}).endswith(":orange-background[aphids] …")


def test_query_words_are_highlighted_and_a_passage_shows_as_typed():
    words = query_words("How do I get rid of tiny green bugs on my roses?")
    assert words == {"rid", "tiny", "green", "bug", "rose"}  # no stop words or question words; no plural s
    passage = "Aphids: tiny <b>bugs</b> [click](http://x) on a **Rose**; grass_roots $x$"
    assert highlighted(passage, words) == (
        "Aphids\\: :orange-background[tiny] \\<b\\>:orange-background[bugs]\\</b\\> \\[click\\]\\(http\\://x\\) "
        "on a \\*\\*:orange-background[Rose]\\*\\*; grass\\_roots \\$x\\$")
    assert highlighted("nothing to see", words) == "nothing to see"
    assert query_words("pigweed that roundup won't kill") == {"pigweed", "roundup", "kill"}
    assert highlighted("it won't kill pigweeds", {"won", "kill", "pigweed"}) == (
        "it won't :orange-background[kill] :orange-background[pigweeds]")


def test_the_question_picker_puts_the_worst_or_the_best_first(app_dir, finished_run):
    from adapt.runs import open_run

    run = open_run(finished_run)
    per_query = run.per_query.drop_duplicates("query_id").set_index("query_id")
    by = run.report["recommended"] if run.report["recommended"] != "base" else "finetuned"
    change = per_query["hybrid_rank_change" if by == "hybrid" else "rank_change"].fillna(0)
    at = open_run_page(finished_run)
    compare = tab(at, "4. Compare search")
    picker = compare.selectbox(key=f"pick:{finished_run}")
    shown = picker.options  # the labels a person reads
    order = compare.radio(key="pick_order")
    assert order.label == f"Order by {SYSTEMS[by].lower()} change" and order.value == "Worst first"
    ids = sorted(run.test.queries, key=lambda q: change.get(q, 0))  # stable: test-set order among equals
    first = run.test.queries[ids[0]]
    assert shown[0].startswith(first)
    qid = ids[0]
    words = ", ".join(f"{SYSTEMS[s].lower()} {arrow(per_query.loc[qid, c])}"
                      for s, c in (("finetuned", "rank_change"), ("hybrid", "hybrid_rank_change")))
    assert shown[0] == f"{first}  ({words})"
    order.set_value("Best first").run()
    shown = tab(at, "4. Compare search").selectbox(key=f"pick:{finished_run}").options
    best = sorted(run.test.queries, key=lambda q: -change.get(q, 0))
    assert shown[0].startswith(run.test.queries[best[0]])
    assert change[best[0]] == change.max() and change[ids[0]] == change.min()


def test_a_run_finds_the_id_of_a_test_question_by_its_text(finished_run):
    from adapt.runs import open_run

    run = open_run(finished_run)
    qid, text = next(iter(run.test.queries.items()))
    assert run.question_id(text) == qid and run.question_id(f"  {text}\n") == qid
    assert run.question_id("how do I keep deer out of my garden") is None


def test_compare_search_refuses_runs_that_need_remote_code(app_dir, finished_run, tmp_path, monkeypatch):
    import adapt.models

    monkeypatch.setattr(adapt.models, "load", lambda *a, **k: pytest.fail("a model was loaded"))
    run_dir = copy_run(finished_run, tmp_path / "remote", config={"trust_remote_code": True})
    at = AppTest.from_file(str(APP), default_timeout=90).run()
    at.sidebar.radio(key="mode").set_value("Open an earlier run").run()
    at.text_input(key="open_path").set_value(str(run_dir)).run()
    compare = tab(at, "4. Compare search")
    assert len(compare.error) == 1 and "never loads models that ship their own code" in compare.error[0].value


# ----------------------------------------------------------------------------------------------
# 5. Per question


def test_per_question_view_counts_and_filters_by_outcome(app_dir, finished_run):
    per_query = pd.read_csv(finished_run / "per_query.csv")
    outcomes = per_query["rank_change"].map(outcome).value_counts()
    at = open_run_page(finished_run)
    view = tab(at, "5. Per question")
    assert {m.label: m.value for m in view.metric} == {
        "Improved": str(outcomes.get("improved", 0)), "Got worse": str(outcomes.get("worse", 0)),
        "Same": str(outcomes.get("same", 0))}

    table = view.dataframe[0].value
    assert list(table.columns) == ["question", "base_rank", "finetuned_rank", "rank_change", "hybrid_rank",
                                   "hybrid_rank_change"]
    assert len(table) == outcomes.get("improved", 0) and (table["rank_change"] > 0).all()
    assert list(table["rank_change"]) == sorted(table["rank_change"], reverse=True)

    view.radio(key="pq_filter").set_value("Got worse").run()
    table = tab(at, "5. Per question").dataframe[0].value
    assert len(table) == outcomes.get("worse", 0) and (table["rank_change"] < 0).all()
    tab(at, "5. Per question").radio(key="pq_filter").set_value("All").run()
    assert len(tab(at, "5. Per question").dataframe[0].value) == len(per_query)


def test_a_selected_per_question_row_opens_that_question_in_compare(app_dir, finished_run):
    from adapt.runs import open_run

    run = open_run(finished_run)
    at = open_run_page(finished_run)
    assert at.session_state["run_tab"] == "3. Results"
    view = tab(at, "5. Per question")
    view.radio(key="pq_filter").set_value("All").run()
    table = tab(at, "5. Per question").dataframe[0].value
    assert texts(tab(at, "5. Per question").caption)[-1].endswith(
        "Select a row (the box at its left) to open that question in Compare search.")
    row = 2
    question = table["question"].iloc[row]
    qid = run.question_id(question)

    at.session_state[f"per_query:{finished_run}"] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    at.run()  # as a click on the row's box in a browser
    no_problems(at)
    assert at.session_state["run_tab"] == "4. Compare search"
    compare = tab(at, "4. Compare search")
    assert compare.selectbox(key=f"pick:{finished_run}").value == qid
    assert compare.text_input(key="query").value == question
    assert any(c.startswith("This is a test question: ") for c in texts(compare.caption))
    assert not compare.warning and not any("Session State" in w for w in texts(at.warning))

    other = next(q for q in run.test.queries if q != qid)  # the row stays selected; it no longer steers
    compare.selectbox(key=f"pick:{finished_run}").set_value(other).run()
    assert tab(at, "4. Compare search").text_input(key="query").value == run.test.queries[other]
    assert at.session_state["run_tab"] == "4. Compare search"


# ----------------------------------------------------------------------------------------------
# 6. Open an earlier run


def test_open_lists_runs_in_the_working_directory(app_dir, finished_run):
    copy_run(finished_run, app_dir / "runs" / "20250101-120000-abcdef")
    (app_dir / "runs" / "unfinished").mkdir()
    at = start_app()
    at.sidebar.radio(key="mode").set_value("Open an earlier run").run()
    picker = at.selectbox(key="open_pick")
    report = json.loads((finished_run / "report.json").read_text())
    assert picker.options == [
        f"20250101-120000-abcdef: made {report['created'][:16].replace('T', ' ')} UTC, base model "
        f"{report['models']['base']['resolved']}, NDCG@10 {report['metrics']['base']['ndcg@10']:.3f} → "
        f"{report['metrics']['finetuned']['ndcg@10']:.3f}"]
    picker.set_value(str(app_dir / "runs" / "20250101-120000-abcdef")).run()
    no_problems(at)
    assert [t.label for t in at.tabs] == ["3. Results", "4. Compare search", "5. Per question"]


@pytest.mark.parametrize("what", ["missing", "not a run"])
def test_open_explains_a_folder_that_is_not_a_run(what, app_dir, tmp_path):
    folder = tmp_path / what
    if what == "not a run":
        folder.mkdir()
    at = start_app()
    at.sidebar.radio(key="mode").set_value("Open an earlier run").run()
    at.text_input(key="open_path").set_value(str(folder)).run()
    assert not at.exception and not at.tabs
    expected = (f"run directory '{folder}' not found; pass the --out folder of a finished adapt.run"
                if what == "missing" else
                f"'{folder}' holds no finished run (no report.json); run: python -m adapt.run PAIRS --out {folder}")
    assert texts(at.error) == [f"Error: {expected}"]


# ----------------------------------------------------------------------------------------------
# The app's boundary with the library


def test_the_library_never_imports_streamlit():
    import ast

    for path in sorted((ROOT / "adapt").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] == "streamlit" for n in names), f"{path.name} imports streamlit"


def test_the_progress_words_cover_exactly_the_pipeline_s_stages():
    assert set(jobs.STAGE_VIEW) == set(pipeline.STAGES)
    job = jobs.Job(RunConfig(pairs=PAIRS, out=Path("unused")))
    job._tell("guide", 2, 4)  # half way through the guide pass, which comes right before training
    before = sum(weight for name, (_, weight) in jobs.STAGE_VIEW.items()
                 if pipeline.STAGES.index(name) < pipeline.STAGES.index("guide"))
    total = sum(weight for _, weight in jobs.STAGE_VIEW.values())
    assert job.progress().fraction == pytest.approx((before + jobs.STAGE_VIEW["guide"][1] / 2) / total)
    assert job.progress().label.startswith("Scoring training pairs with the guide model: 2 of 4 · ")


def test_the_page_imports_as_streamlit_runs_it(tmp_path):
    """`streamlit run app/streamlit_app.py` puts app/ first on sys.path, not the project: the page's
    absolute imports come from the installed package (here PYTHONPATH stands in for it)."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(ROOT), "ADAPT_APP_DIR": str(tmp_path / "app"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, str(APP)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    source = APP.read_text()
    assert "sys.path" not in source and "noqa" not in source
