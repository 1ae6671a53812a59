"""The adapt app: upload pairs, fine-tune, and compare base and fine-tuned retrieval side by side.

    streamlit run app/streamlit_app.py

UI only. Every step is a library call: ``adapt.pipeline`` (in a background thread, ``app.jobs``),
``adapt.runs.open_run`` for results, ``adapt.report`` for tables. Models and indexes are cached with
``st.cache_resource``, so a rerun never reloads a model or re-encodes the corpus.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run` puts app/ on the path, not the project
    sys.path.insert(0, str(ROOT))

import altair as alt  # noqa: E402
import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from adapt import models  # noqa: E402
from adapt.config import RunConfig  # noqa: E402
from adapt.data import read_table  # noqa: E402
from adapt.errors import AdaptError  # noqa: E402
from adapt.report import metrics_table, outcome  # noqa: E402
from adapt.runs import Run, open_run  # noqa: E402
from app import jobs, preflight, workspace  # noqa: E402

SAMPLE = {"pairs": ROOT / "sample_data" / "agriculture_pairs.csv",
          "corpus": ROOT / "sample_data" / "agriculture_corpus.csv"}
UPLOAD_TYPES = sorted(ext.lstrip(".") for ext in workspace.FORMATS)
POLL_S = 1.0
NEW, OPEN = "New run", "Open an earlier run"
FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}
METRIC_NAMES = {"accuracy": "Accuracy", "precision": "Precision", "recall": "Recall", "mrr": "MRR",
                "ndcg": "NDCG", "map": "MAP"}
SYSTEMS = {"base": "Base", "finetuned": "Fine-tuned", "bm25": "BM25"}
COLOURS = {"Base": "#f58518", "Fine-tuned": "#4c78a8", "BM25": "#a0a0a0"}
AUTO = "(automatic)"
DATA_SETTINGS = ("eval_fraction", "dev_fraction", "seed", "drop_leaks")  # the ones the data summary depends on


def kept(key: str) -> dict:
    """A widget's key, and its value kept for the session while the other mode hides it."""
    return {"key": key, "persist_state": "session"}


def default(name: str):
    return FIELDS[name].default


def help_for(name: str) -> str:
    return FIELDS[name].metadata["help"].capitalize() + "."


def plain(text: str) -> str:
    """Text from a file, safe to put in markdown: no links, emphasis, badges or formulas."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$:])", r"\\\1", str(text))


# ----------------------------------------------------------------------------------------------
# Cached resources: one job board per working directory, runs, models and indexes


@st.cache_resource
def job_board(workdir: str) -> jobs.JobBoard:
    return jobs.JobBoard()


@st.cache_resource(max_entries=8, show_spinner=False)
def load_run(run_dir: str, stamp: int) -> Run:
    return open_run(run_dir)


@st.cache_resource(max_entries=4, show_spinner="Loading the model and its index ...")
def retriever(run_dir: str, stamp: int, which: str):
    """A model and its saved FAISS index; cached, so searching never re-encodes the corpus."""
    return load_run(run_dir, stamp).retriever(which)


def stamp_of(run_dir: str) -> int:
    """Changes when a run directory is rewritten, so the caches above never serve a stale run."""
    report = Path(run_dir) / "report.json"
    return report.stat().st_mtime_ns if report.exists() else 0


@st.cache_data(ttl=300, show_spinner="Checking the model ...")
def model_plan(spec: str, role: str) -> tuple[models.ResolvedModel | None, str | None]:
    try:
        return preflight.model_plan(spec, role), None
    except AdaptError as exc:
        return None, str(exc)


@st.cache_data(max_entries=32, show_spinner=False)
def data_summary(settings: tuple) -> tuple[preflight.DataSummary | None, str | None]:
    try:
        return preflight.data_summary(RunConfig(**dict(settings))), None
    except AdaptError as exc:
        return None, str(exc)


@st.cache_data(max_entries=32, show_spinner=False)
def file_columns(path: str) -> list[str]:
    try:
        return list(read_table(path).columns)
    except AdaptError:
        return []


# ----------------------------------------------------------------------------------------------
# 1. Upload


def accept_upload(role: str, data: bytes, name: str) -> None:
    """Store an upload (bytes and the person's file name) for this session, or remember why not.

    It stays the session's data until another file replaces it, also while the other mode hides the
    upload widgets (which forget their files when hidden).
    """
    uploads, errors = st.session_state.setdefault("uploads", {}), st.session_state.setdefault("upload_errors", {})
    uploads.pop(role, None)
    errors.pop(role, None)
    try:
        uploads[role] = workspace.save_upload(data, name, workspace.app_dir(), workspace.max_upload_mb(), role)
    except AdaptError as exc:
        errors[role] = str(exc)


def forget_upload(role: str) -> None:
    for key in ("uploads", "upload_errors"):
        st.session_state.get(key, {}).pop(role, None)
    clear_uploader(role)


def use_sample() -> None:
    for role, path in SAMPLE.items():
        accept_upload(role, path.read_bytes(), path.name)
        clear_uploader(role)


def clear_uploader(role: str) -> None:
    """A file uploader cannot be emptied, only replaced: a new key gives a fresh, empty one."""
    rounds = st.session_state.setdefault("uploader_rounds", {})
    rounds[role] = rounds.get(role, 0) + 1


def uploader_key(role: str) -> str:
    return f"{role}_file_{st.session_state.get('uploader_rounds', {}).get(role, 0)}"


def size_text(size: int) -> str:
    if size < 1024:
        return f"{size:,} bytes"
    return f"{size / 1024:,.0f} KB" if size < 1024**2 else f"{size / 1024**2:,.1f} MB"


def upload_ui(limit_mb: int) -> dict[str, workspace.Upload]:
    st.header("1. Upload your pairs")
    st.markdown(
        "A CSV file with a **question** and a **passage** column: each row is a question and a passage "
        "that answers it. Optionally add a second file of **extra passages** (one `passage` column); "
        "they join the search corpus as distractors, which makes the test harder and more realistic."
    )
    left, right = st.columns(2)
    files = {
        "pairs": left.file_uploader("Question/passage pairs", type=UPLOAD_TYPES, key=uploader_key("pairs"),
                                    max_upload_size=limit_mb),
        "corpus": right.file_uploader("Extra passages (optional)", type=UPLOAD_TYPES, key=uploader_key("corpus"),
                                      max_upload_size=limit_mb),
    }
    seen = st.session_state.setdefault("seen_uploads", set())
    for role, file in files.items():
        if file is not None and file.file_id not in seen:  # a new file (not one the sample data replaced)
            seen.add(file.file_id)
            accept_upload(role, file.getvalue(), file.name)
    if all(path.exists() for path in SAMPLE.values()):
        st.button("No file at hand? Use the sample data (agriculture Q&A)", on_click=use_sample, key="sample")
    uploads, errors = dict(st.session_state.get("uploads", {})), st.session_state.get("upload_errors", {})
    for role in ("pairs", "corpus"):
        if role in errors:
            st.error(f"Error: {errors[role]}")
        if role in errors or role in uploads:
            with st.container(horizontal=True, vertical_alignment="center", gap="small"):
                if role in uploads:
                    what = "pairs" if role == "pairs" else "extra passages"
                    st.caption(f"Using {what}: **{plain(uploads[role].name)}** ({size_text(uploads[role].size)})",
                               width="content")
                st.button("Remove", key=f"remove_{role}", type="tertiary", on_click=forget_upload, args=(role,))
    return uploads


def chosen_columns() -> dict:
    return {key: None if st.session_state.get(key, AUTO) == AUTO else st.session_state[key]
            for key in ("question_col", "passage_col")}


def data_ui(uploads: dict[str, workspace.Upload], settings: dict, workdir: Path) -> preflight.DataSummary | None:
    """The preview and summary of the uploaded data, read and split exactly as the run will."""
    found = file_columns(str(uploads["pairs"].path))
    for key in ("question_col", "passage_col"):
        if st.session_state.get(key) not in (AUTO, *found):
            st.session_state[key] = AUTO  # a new file without the column picked for the last one
    wanted = {**{k: settings[k] for k in DATA_SETTINGS}, **chosen_columns(), "pairs": str(uploads["pairs"].path),
              "corpus": str(uploads["corpus"].path) if "corpus" in uploads else None,
              "out": str(workdir / "runs" / "preview")}
    summary, error = data_summary(tuple(sorted(wanted.items())))
    if error:
        st.error(f"Error: {workspace.shown(error, list(uploads.values()))}")
    with st.expander("Columns", expanded=bool(error and "column" in error)):
        st.caption("Which columns hold the questions and the passages. Automatic picks a column named "
                   "question, query or anchor, and passage, context, positive, answer or document.")
        left, right = st.columns(2)
        left.selectbox("Question column", [AUTO, *found], **kept("question_col"))
        right.selectbox("Passage column", [AUTO, *found], **kept("passage_col"))
    if summary is not None:
        summary_ui(summary)
    return summary


def summary_ui(summary: preflight.DataSummary) -> None:
    tiles = summary.tiles()
    for column, (label, value) in zip(st.columns(len(tiles)), tiles):
        column.metric(label, f"{value:,}")
    st.markdown("\n".join(f"- {line}" for line in summary.lines()))  # our own words and numbers
    st.markdown("**Preview** (the first rows of the file, as uploaded)")
    st.dataframe(summary.preview, hide_index=True,
                 column_config={c: st.column_config.TextColumn(c, width="large") for c in summary.preview})


# ----------------------------------------------------------------------------------------------
# 2. Settings and run


def model_note(spec: str, role: str) -> bool:
    """Say which model a spec will load (and the fallback when it applies); False when it cannot load."""
    plan, error = model_plan(spec, role)
    if error:
        st.error(f"Error: {error}")
    elif plan.fallback_reason:
        st.warning(f"Fallback: {plain(plan.fallback_reason)}.")
    else:
        where = {"bundled": "bundled with adapt", "local": "a local folder", "hub": "from the Hugging Face hub",
                 "hub-cache": "from the local Hugging Face cache"}[plan.source]
        st.caption(f"Will use {plain(plan.resolved)} ({where}).")
    return error is None


def settings_ui() -> tuple[dict, bool]:
    """The run settings (defaults and help from ``RunConfig``), and whether both models can load."""
    st.header("2. Choose models and settings")
    left, right = st.columns(2)
    with left:
        base = st.text_input("Base model (the one to fine-tune)", value=default("base"), **kept("base"),
                             help="A Hugging Face hub id, a local model folder, or a bundled model: "
                                  + ", ".join(models.BUNDLED) + ".").strip()
        models_ok = model_note(base, "base")
    with right:
        suggested = models.default_guide(base)
        guide = st.text_input("Guide model (a stronger model that spots false negatives)", **kept("guide"),
                              placeholder=suggested, help=help_for("guide") + " Leave empty for the default.").strip()
        if not guide:
            st.caption(f"Empty: the default guide for this base, {plain(suggested)}.")
        models_ok = model_note(guide or suggested, "guide") and models_ok
    cols = st.columns(4)
    settings = {"base": base, "guide": guide or None}
    settings["epochs"] = int(cols[0].number_input("Epochs", 1, 100, default("epochs"), **kept("epochs"),
                                                  help=help_for("epochs")))
    settings["batch_size"] = int(cols[1].number_input("Batch size", 2, 1024, default("batch_size"),
                                                      **kept("batch_size"), help=help_for("batch_size")))
    settings["learning_rate"] = float(cols[2].number_input("Learning rate", 1e-7, 1e-2, default("learning_rate"),
                                                           step=1e-5, format="%.1e", **kept("learning_rate"),
                                                           help=help_for("learning_rate")))
    settings["eval_fraction"] = float(cols[3].slider("Test fraction", 0.05, 0.5, default("eval_fraction"), 0.05,
                                                     **kept("eval_fraction"), help=help_for("eval_fraction")))
    with st.expander("More settings"):
        cols = st.columns(3)
        settings["dev_fraction"] = float(cols[0].slider("Dev fraction", 0.0, 0.3, default("dev_fraction"), 0.05,
                                                        **kept("dev_fraction"), help=help_for("dev_fraction")))
        settings["seed"] = int(cols[1].number_input("Random seed", 0, 2**31 - 1, default("seed"), **kept("seed"),
                                                    help=help_for("seed")))
        settings["drop_leaks"] = cols[2].checkbox("Drop leaked test questions", default("drop_leaks"),
                                                  **kept("drop_leaks"), help=help_for("drop_leaks"))
    return settings, models_ok


def run_ui(board: jobs.JobBoard, busy: jobs.Job | None, uploads: dict[str, workspace.Upload], settings: dict,
           ready: bool) -> None:
    """The Run button and, while a run works, its progress. ``busy`` is the run seen before ``collect``."""
    pressed = st.button("Run the adaptation", type="primary", key="run", disabled=busy is not None or not ready,
                        help="Fine-tune the base model on the training split, then evaluate both models on the "
                             "test split. Each run gets its own folder; earlier runs are never changed.")
    if busy is not None:
        st.caption("One run at a time: the button comes back when this one finishes.")
    elif not ready:
        st.caption("Upload a valid pairs file (or use the sample data) and pick models that load, to run.")
    if pressed and start(board, uploads, settings):
        st.rerun()  # redraw at once: the button disabled, the progress bar showing
    if st.session_state.get("run_notice"):
        st.warning(st.session_state.pop("run_notice"))
    if busy is not None:
        watch_ui(board)  # reruns the page itself once the run has ended, even if it just did
    elif st.session_state.get("new_run"):
        st.success(f"Finished in {st.session_state.get('new_run_took', '?')}: the results are below.")
    if st.session_state.get("run_error"):
        st.error(f"Error: {st.session_state['run_error']}")


def start(board: jobs.JobBoard, uploads: dict[str, workspace.Upload], settings: dict) -> bool:
    """Start a run in the background; a second press while one works is refused with a message."""
    st.session_state.pop("run_error", None)
    try:
        config = RunConfig(pairs=uploads["pairs"].path, corpus=uploads["corpus"].path if "corpus" in uploads else None,
                           out=workspace.new_run_dir(workspace.app_dir()), **settings, **chosen_columns())
        job = board.start(config)
    except AdaptError as exc:
        message = str(exc)
        st.session_state["run_notice"] = message[:1].upper() + message[1:] + "."
        return False
    st.session_state["job_id"] = job.id
    st.session_state.pop("new_run", None)
    return True


@st.fragment(run_every=POLL_S)
def watch_ui(board: jobs.JobBoard) -> None:
    """Redrawn on its own every POLL_S seconds while the run works; the rest of the page stays usable."""
    job = board.active()
    if job is None:
        st.rerun()  # it ended since the last look: redraw the whole page with its results
    progress = job.progress()
    st.progress(progress.fraction, text=progress.label)
    st.caption("Working in the background: you can look around the page meanwhile. "
               f"Results go to `{job.out}`.")


def collect(board: jobs.JobBoard) -> None:
    """Take the result of this session's run once it has finished (or adopt a run already going)."""
    if "job_id" not in st.session_state and board.active() is not None:
        st.session_state["job_id"] = board.active().id  # e.g. the page was reloaded while a run works
    job = board.get(st.session_state.get("job_id"))
    if job is None or job.running or st.session_state.get("job_seen") == job.id:
        return
    st.session_state["job_seen"] = job.id
    if job.error is not None:
        st.session_state["run_error"] = workspace.shown(job.error, list(st.session_state.get("uploads", {}).values()))
    else:
        st.session_state["new_run"] = str(job.out)
        st.session_state["new_run_took"] = jobs.clock(job.progress().elapsed)


# ----------------------------------------------------------------------------------------------
# 3-5. Results, compare search, per question


def run_ui_tabs(run_dir: str) -> None:
    stamp = stamp_of(run_dir)
    try:
        run = load_run(run_dir, stamp)
    except AdaptError as exc:
        st.error(f"Error: {exc}")
        return
    st.caption(f"Run folder `{run_dir}`: {plain(workspace.describe_run(Path(run_dir)))}")
    results, compare, per_question = st.tabs(["3. Results", "4. Compare search", "5. Per question"])
    with results:
        results_ui(run)
    with compare:
        if run.report["config"].get("trust_remote_code"):
            st.error("Error: this run was made with --trust-remote-code, and the app never loads models that "
                     f"ship their own code; search it from a terminal: python -m adapt.search {run_dir} \"QUERY\"")
        else:
            compare_ui(run, run_dir, stamp)
    with per_question:
        per_query_ui(run)


def results_ui(run: Run) -> None:
    report = run.report
    verdict = report["verdict"]
    if report["recommended"] == "base":
        st.warning(verdict)
    else:
        st.success(verdict)
    for warning in report["warnings"]:
        if warning != verdict:
            st.warning(warning)
    significance_ui(report)
    table = metrics_table(report)
    st.dataframe(table.style.format("{:.4f}").format("{:+.4f}", subset=["Change"])
                 .map(change_colour, subset=["Change"]))
    st.caption("Test-set metrics, averaged over the held-out questions. BM25 is a keyword-search baseline.")
    st.altair_chart(metrics_chart(report), key="chart")
    about_ui(run)


def change_colour(change: float) -> str:
    """Green up, red down; nothing for a change that shows as +0.0000."""
    return "" if abs(change) < 5e-5 else "color: #1a7f37" if change > 0 else "color: #cf222e"


def significance_ui(report: dict) -> None:
    s = report["significance"].get("ndcg@10")
    if not s:
        return
    low, high = s["low"], s["high"]
    if pd.isna(low):
        reading = "too few test questions to judge how sure this is"
    elif low > 0:
        reading = "the whole interval is above zero: the gain is unlikely to be noise"
    elif high < 0:
        reading = "the whole interval is below zero: fine-tuning made retrieval worse"
    else:
        reading = "the interval includes zero: the change may be noise"
    cols = st.columns([1, 3])
    cols[0].metric("NDCG@10 change", f"{s['change']:+.4f}")
    interval = "" if pd.isna(low) else f"95% interval [{low:+.4f}, {high:+.4f}], p = {s['p_value']:.3f}: "
    cols[1].markdown(f"**Is the change real?** Paired bootstrap over the test questions: {interval}{reading}.")


def metrics_chart(report: dict) -> alt.FacetChart:
    rows = []
    for system, values in report["metrics"].items():
        for key, value in values.items():
            name, _, k = key.partition("@")
            if name in METRIC_NAMES and k.isdigit():
                rows.append({"system": SYSTEMS.get(system, system),
                             "metric": f"{METRIC_NAMES[name]}@k", "k": int(k), "value": value})
    frame = pd.DataFrame(rows)
    order = [f"{n}@k" for n in METRIC_NAMES.values()]
    return (
        alt.Chart(frame, title="Metrics at each cut-off k")
        .mark_line(point=True)
        .encode(x=alt.X("k:O", title="k"), y=alt.Y("value:Q", title=None, scale=alt.Scale(domain=[0, 1])),
                color=alt.Color("system:N", title=None,
                                scale=alt.Scale(domain=list(COLOURS), range=list(COLOURS.values()))),
                strokeDash=alt.condition(alt.datum.system == "BM25", alt.value([4, 3]), alt.value([1, 0])),
                tooltip=["system", "metric", "k", alt.Tooltip("value:Q", format=".4f")])
        .properties(width=220, height=150)
        .facet(facet=alt.Facet("metric:N", title=None, sort=order), columns=3)
    )


def about_ui(run: Run) -> None:
    report = run.report
    with st.expander("Models, data and timings"):
        for role in ("base", "guide"):
            m = report["models"][role]
            fell = m.get("fallback_reason")
            note = f" (asked for {plain(m['requested'])}: {plain(fell)})" if fell else ""
            st.markdown(f"- **{role.capitalize()} model:** {plain(m['resolved'])}{note}, "
                        f"{m['parameters'] / 1e6:.1f}M parameters, {m['dimension']}-d")
        data, training = report["data"], report["training"]
        st.markdown(f"- **Data:** {data['train_questions']:,} training questions, {data['test_questions']:,} test "
                    f"questions, {data['corpus_size']:,} passages in the search corpus")
        st.markdown(f"- **Training:** {training['steps']} steps, {training['seconds']:.1f} s")
        timings = ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in report["timings"].items())
        st.markdown(f"- **Timings:** {plain(timings)}")
        st.markdown(f"- **Run folder:** `{run.out}` (report.md, report.json, per_query.csv, model/, index/)")
    report_md = Path(run.out) / "report.md"
    if report_md.exists():
        st.download_button("Download report.md", report_md.read_text(), file_name="report.md", mime="text/markdown",
                           key="download_report")


def pick_question(key: str, questions: dict[str, str]) -> None:
    """Copy the picked test question into the query box."""
    picked = st.session_state.get(key)
    if picked:
        st.session_state["query"] = questions[picked]


def compare_ui(run: Run, run_dir: str, stamp: int) -> None:
    table = run.per_query.set_index("query_id")

    def label(qid: str) -> str:
        change = int(table.loc[qid, "rank_change"]) if qid in table.index else 0
        arrow = f"▲ {change}" if change > 0 else f"▼ {-change}" if change < 0 else "="
        return f"{run.test.queries[qid]}  ({arrow})"

    st.selectbox("Pick a test question (▲ fine-tuning moved its passage up, ▼ down) ...",
                 list(run.test.queries), index=None, format_func=label, key=f"pick:{run_dir}",
                 on_change=pick_question, args=(f"pick:{run_dir}", dict(run.test.queries)),
                 placeholder="Choose one of the held-out test questions")
    left, right = st.columns([4, 1])
    query = left.text_input("... or type your own query (press Enter to search)", **kept("query"),
                            placeholder="e.g. tiny green bugs on my roses").strip()
    k = int(right.number_input("Passages per model", 1, 50, 5, **kept("k")))
    if not query:
        st.info("Pick a test question or type a query to see what each model retrieves.")
        return
    qid = next((q for q, text in run.test.queries.items() if text.strip() == query), None)
    relevant = run.test.relevant_docs.get(qid, set()) if qid else set()
    if qid:
        st.caption("This is a test question: ✓ marks its relevant passage in both columns.")
        with st.expander("Its relevant passage"):
            for pid in sorted(relevant):
                st.markdown(f"`{pid}` {plain(run.test.corpus[pid])}")
    columns = st.columns(2)
    for column, which, title in zip(columns, ("base", "finetuned"), ("Base", "Fine-tuned")):
        with column:
            st.subheader(title)
            if qid in table.index:
                rank = table.loc[qid, f"{which}_rank"]
                shown = "" if pd.isna(rank) or rank <= k else f" (below the {k} shown)"
                st.markdown(f"Relevant passage at **rank {int(rank)}**{shown}" if pd.notna(rank)
                            else "Relevant passage **not in the top 100**")
            try:
                hits = retriever(run_dir, stamp, which).search(query, k)
            except AdaptError as exc:
                st.error(f"Error: {exc}")
                continue
            with st.container(key=f"hits_{which}"):
                for hit in hits:
                    with st.container(border=True, key=f"hit_{which}_{hit.rank}"):
                        mark = " :green-badge[✓ relevant]" if hit.passage_id in relevant else ""
                        st.markdown(f"**{hit.rank}.** score {hit.score:.3f} · `{hit.passage_id}`{mark}")
                        st.markdown(plain(hit.text))


def per_query_ui(run: Run) -> None:
    table = run.per_query.copy()
    table["outcome"] = table["rank_change"].map(outcome)
    counts = table["outcome"].value_counts()
    cols = st.columns(3)
    for col, (name, title) in zip(cols, (("improved", "Improved"), ("worse", "Got worse"), ("same", "Same"))):
        col.metric(title, int(counts.get(name, 0)))
    choice = st.radio("Show", ["Improved", "Got worse", "Same", "All"], horizontal=True, **kept("pq_filter"))
    wanted = {"Improved": "improved", "Got worse": "worse", "Same": "same"}.get(choice)
    view = table if wanted is None else table[table["outcome"] == wanted]
    view = view.sort_values("rank_change", ascending=wanted == "worse", kind="stable")
    st.dataframe(
        view[["question", "base_rank", "finetuned_rank", "rank_change"]], hide_index=True,
        column_config={
            "question": st.column_config.TextColumn("Test question", width="large"),
            "base_rank": st.column_config.NumberColumn("Base rank"),
            "finetuned_rank": st.column_config.NumberColumn("Fine-tuned rank"),
            "rank_change": st.column_config.NumberColumn("Rank change", format="%+d",
                                                         help="Places the relevant passage moved up"),
        },
    )
    st.caption("Rank of the first relevant passage under each model (1 is best; empty: not in the top 100). "
               "Pick a question in Compare search to see both result lists.")


# ----------------------------------------------------------------------------------------------
# Open an earlier run


def open_ui(workdir: Path) -> str | None:
    st.header("Open an earlier run")
    st.markdown("A run folder written by this app or by `python -m adapt.run PAIRS --out FOLDER`: "
                "its results, search and per-question view, without training again.")
    found = {str(p): f"{p.name}: {workspace.describe_run(p)}" for p in workspace.finished_runs(workdir)}
    left, right = st.columns(2)
    picked = left.selectbox(f"Runs in {plain(workdir)}", list(found), index=None, **kept("open_pick"),
                            format_func=found.get, placeholder="Choose a run" if found else "No runs here yet")
    typed = right.text_input("... or the path of a run folder", **kept("open_path")).strip()
    return typed or picked


# ----------------------------------------------------------------------------------------------


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
        st.caption(f"Files go to `{workdir}` (set ADAPT_APP_DIR to change it). Uploads up to {limit_mb} MB.")
    if mode == OPEN:
        run_dir = open_ui(workdir)
        if run_dir:
            run_ui_tabs(run_dir)
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
        run_ui_tabs(st.session_state["new_run"])


main()
