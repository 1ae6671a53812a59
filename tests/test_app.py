"""The Streamlit app through streamlit's AppTest (no browser), with the tiny models.

One test per step of the page: upload, bad upload, run, results, compare search, per question, and
open an earlier run; plus the app's own glue (background jobs, where uploads are stored).
"""

from __future__ import annotations

import json
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

from adapt.config import RunConfig
from adapt.errors import DataError, RunError
from adapt.pipeline import prepare_data, run_pipeline
from adapt.report import metrics_table, outcome
from app import jobs, workspace

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
    preview = at.dataframe[0].value
    assert list(preview.columns) == ["question", "passage"]
    assert preview.equals(pd.read_csv(PAIRS, dtype=str).head(len(preview)))
    assert not at.button(key="run").disabled

    stored = sorted((app_dir / "uploads").iterdir())
    assert len(stored) == 2 and all(re.fullmatch(r"[0-9a-f]{32}\.csv", p.name) for p in stored)
    assert {p.read_bytes() for p in stored} == {PAIRS.read_bytes(), CORPUS.read_bytes()}
    assert not list(app_dir.rglob("agriculture_*"))  # the person's file name is never a path


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
    assert texts(at.error) == [said]  # word for word what the CLI says, with the name the person knows
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
    assert expected.fallback_reason
    assert f"Fallback: {expected.fallback_reason}." in [w.value.replace("\\", "") for w in at.warning]
    assert at.text_input(key="base").value == "BAAI/bge-small-en-v1.5"
    assert at.text_input(key="guide").placeholder == models.default_guide("BAAI/bge-small-en-v1.5")


def wait_for_results(at: AppTest) -> AppTest:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        time.sleep(1)
        at.run()
        if "job_seen" in at.session_state and not at.get("progress"):  # the page has taken the result
            return at
    pytest.fail(f"the run did not finish within {RUN_TIMEOUT_S} s")


def with_tiny_models(at: AppTest, tiny) -> AppTest:
    at.button(key="sample").click().run()
    at.text_input(key="base").set_value(str(tiny["student"]))
    at.text_input(key="guide").set_value(str(tiny["guide"]))
    at.number_input(key="epochs").set_value(1)
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
    at = with_tiny_models(start_app(), tiny)
    other = with_tiny_models(start_app(), tiny)  # a second tab, drawn before the run starts
    no_problems(at)
    assert [c.endswith("(a local folder).") for c in texts(at.caption) if c.startswith("Will use")] == [True, True]
    assert not other.button(key="run").disabled

    at.button(key="run").click().run()
    assert re.search(r" · \d+:\d\d elapsed$", progress_text(at)) and at.button(key="run").disabled
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not progress_text(at).startswith("Training: step 1 of ") and time.monotonic() < deadline:
        time.sleep(0.5)
        at.run()  # the page stays usable: each rerun returns while the run works on
    assert re.fullmatch(r"Training: step 1 of \d+ · \d+:\d\d elapsed", progress_text(at)), progress_text(at)

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
    assert [t.label for t in at.tabs] == ["3. Results", "4. Compare search", "5. Per question"]
    run_dir = next((app_dir / "runs").iterdir())
    report = json.loads((run_dir / "report.json").read_text())
    assert report["models"]["base"]["path"] == str(Path(tiny["student"]).resolve())
    assert report["config"]["epochs"] == 1 and report["config"]["batch_size"] == 16
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


def test_results_show_the_metrics_table_chart_verdict_warnings_and_significance(app_dir, finished_run):
    at = open_run_page(finished_run)
    report = json.loads((finished_run / "report.json").read_text())
    results = tab(at, "3. Results")

    table = results.dataframe[0].value
    expected = metrics_table(report)
    assert list(table.columns) == ["Base", "Fine-tuned", "Change", "BM25"]
    assert list(table.index) == list(expected.index)
    assert np.allclose(table.to_numpy(dtype=float), expected.to_numpy(dtype=float))
    assert len(results.get("vega_lite_chart")) == 1

    shown = texts(results.warning) + texts(results.success)
    assert report["verdict"] in (texts(results.warning) if report["recommended"] == "base" else texts(results.success))
    assert all(w in shown for w in report["warnings"])

    s = report["significance"]["ndcg@10"]
    assert results.metric[0].label == "NDCG@10 change" and results.metric[0].value == f"{s['change']:+.4f}"
    assert any(f"95% interval [{s['low']:+.4f}, {s['high']:+.4f}], p = {s['p_value']:.3f}" in m
               for m in texts(results.markdown))


def test_when_the_base_model_is_recommended_the_verdict_is_a_warning(app_dir, finished_run, tmp_path):
    verdict = "The fine-tuned model is NOT better than the base on dev NDCG@10 (0.5000 vs 0.6000): keep using the base."
    run_dir = copy_run(finished_run, tmp_path / "base-wins", recommended="base", verdict=verdict,
                       warnings=["Only 3 test questions.", verdict, "cannot load 'x': using the bundled y instead"])
    results = tab(open_run_page(run_dir), "3. Results")
    assert texts(results.warning) == [verdict, "Only 3 test questions.", "cannot load 'x': using the bundled y instead"]
    assert not results.success


# ----------------------------------------------------------------------------------------------
# 4. Compare search


def test_compare_search_marks_the_relevant_passage_and_never_reencodes(app_dir, finished_run, monkeypatch):
    import adapt.index
    import adapt.models
    import adapt.pipeline

    from adapt.runs import open_run

    per_query = pd.read_csv(finished_run / "per_query.csv")
    found = per_query[(per_query["base_rank"] <= 50) & (per_query["finetuned_rank"] <= 50)].iloc[0]
    run = open_run(finished_run)
    relevant = run.test.relevant_docs[found["query_id"]]
    expected = {which: [(h.rank, h.passage_id) for h in run.retriever(which).search(found["question"], 50)]
                for which in ("base", "finetuned")}

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

    columns = [c for c in compare.columns if c.subheader and c.subheader[0].value in ("Base", "Fine-tuned")]
    assert [c.subheader[0].value for c in columns] == ["Base", "Fine-tuned"]
    for column, which in zip(columns, ("base", "finetuned")):
        rank = int(found[f"{which}_rank"])
        lines = texts(column.markdown)
        assert f"Relevant passage at **rank {rank}**" in lines
        heads = [re.match(r"\*\*(\d+)\.\*\* score [0-9.]+ · `(d\d+)`( :green-badge\[✓ relevant\])?$", line)
                 for line in lines if line.startswith("**")]
        assert [(int(h[1]), h[2]) for h in heads] == expected[which]
        assert [h[2] for h in heads if h[3]] == [pid for _, pid in expected[which] if pid in relevant]
        assert any(h[3] for h in heads)

    compare.text_input(key="query").set_value("how do I keep deer out of my garden").run()
    compare = tab(at, "4. Compare search")
    no_problems(at)
    for column in [c for c in compare.columns if c.subheader and c.subheader[0].value in ("Base", "Fine-tuned")]:
        lines = texts(column.markdown)
        assert len([line for line in lines if re.match(r"\*\*\d+\.\*\* score ", line)]) == 50
        assert not any("✓ relevant" in line or line.startswith("Relevant passage") for line in lines)
    assert calls == {"load model": 2, "load index": 2, "encode passages": 0}  # cached across reruns


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
    assert list(table.columns) == ["question", "base_rank", "finetuned_rank", "rank_change"]
    assert len(table) == outcomes.get("improved", 0) and (table["rank_change"] > 0).all()
    assert list(table["rank_change"]) == sorted(table["rank_change"], reverse=True)

    view.radio(key="pq_filter").set_value("Got worse").run()
    table = tab(at, "5. Per question").dataframe[0].value
    assert len(table) == outcomes.get("worse", 0) and (table["rank_change"] < 0).all()
    tab(at, "5. Per question").radio(key="pq_filter").set_value("All").run()
    assert len(tab(at, "5. Per question").dataframe[0].value) == len(per_query)


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
