"""The adapt app: upload pairs, fine-tune, and compare base and fine-tuned retrieval side by side.

    streamlit run app/streamlit_app.py

This module only routes: a new run (``app.upload``, ``app.new_run``) or an earlier one, then a run's
tabs (``app.results``, ``app.compare``; ``app.navigate`` moves between them). Every step is a library
call; ``app.ui`` holds the caches.
The ``app`` package is installed with ``adapt`` (``pip install -e .``), so ``streamlit run`` finds it.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from adapt.errors import AdaptError
from app import navigate, workspace
from app.compare import compare_ui
from app.new_run import collect, run_ui, settings_ui
from app.results import per_query_ui, results_ui
from app.ui import job_board, kept, load_run, plain, shown_path, stamp_of
from app.upload import data_ui, upload_ui

NEW, OPEN = "New run", "Open an earlier run"


def run_tabs(run_dir: str) -> None:
    stamp = stamp_of(run_dir)
    try:
        run = load_run(run_dir, stamp)
    except AdaptError as exc:
        st.error(f"Error: {exc}")
        return
    navigate.open_selected_row(run, run_dir)
    with st.container(key=navigate.RESULTS_KEY):
        st.caption(f"Run folder `{shown_path(run_dir)}`: {plain(workspace.describe_run(Path(run_dir)))}")
        results, compare, per_question = st.tabs(navigate.TABS, key=navigate.TAB_KEY, on_change="rerun")
    with results:
        results_ui(run)
    with compare:
        if run.report["config"].get("trust_remote_code"):
            st.error("Error: this run was made with --trust-remote-code, and the app never loads models that "
                     "ship their own code; search it from a terminal: "
                     f"python -m adapt.search {shown_path(run_dir)} \"QUERY\"")
        else:
            compare_ui(run, run_dir, stamp)
    with per_question:
        per_query_ui(run, run_dir)


def open_ui(workdir: Path) -> str | None:
    st.header("Open an earlier run")
    st.markdown("A run folder written by this app or by `python -m adapt.run PAIRS --out FOLDER`: "
                "its results, search and per-question view, without training again.")
    found = {str(p): f"{p.name}: {workspace.describe_run(p)}" for p in workspace.finished_runs(workdir)}
    left, right = st.columns(2)
    picked = left.selectbox(f"Runs in {plain(shown_path(workspace.runs_dir(workdir)))}", list(found), index=None,
                            **kept("open_pick"), format_func=found.get,
                            placeholder="Choose a run" if found else "No runs here yet")
    typed = right.text_input("... or the path of a run folder", **kept("open_path")).strip()
    return typed or picked


def main() -> None:
    st.set_page_config(page_title="adapt: fine-tune an embedding model", page_icon="🔎", layout="wide")
    st.title("adapt: tune an embedding model to your questions")
    st.caption("adapt fine-tunes a small embedding model on your question/passage pairs (GISTEmbed), then "
               "shows whether it finds the right passage more often than the model you started from.")
    try:
        workdir, limit_mb = workspace.app_dir(), workspace.max_upload_mb()
    except AdaptError as exc:
        st.error(f"Error: {exc}")
        st.stop()
    board = job_board(str(workdir))
    busy = board.active()  # before collect, so a run that ends in between is still watched, then collected
    collect(board)
    with st.sidebar:
        mode = st.radio("Start", [NEW, OPEN], key="mode",
                        captions=["Upload pairs and fine-tune", "See the results of a finished run"])
        st.caption(f"Files go to `{shown_path(workdir)}` (set ADAPT_APP_DIR to change it). "
                   f"Uploads up to {limit_mb} MB.")
    if mode == OPEN:
        run_dir = open_ui(workdir)
        if run_dir:
            run_tabs(run_dir)
        return

    uploads = upload_ui(limit_mb)
    summary_box = st.container()
    settings, models_ok = settings_ui()
    summary = None
    if "pairs" in uploads:
        with summary_box:
            summary = data_ui(uploads, settings, workdir)
    ready = summary is not None and models_ok and not st.session_state.get("upload_errors")
    run_ui(board, busy, uploads, settings, ready)
    if st.session_state.get("new_run"):
        st.divider()
        jump = navigate.just_finished(st.session_state["new_run"])
        run_tabs(st.session_state["new_run"])
        if jump:
            navigate.scroll_to_results()


main()
