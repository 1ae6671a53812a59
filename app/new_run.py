"""Step 2 of a new run: models and settings (defaults and help from ``RunConfig``), the Run button and
its progress while ``app.jobs`` runs the pipeline in the background."""

from __future__ import annotations

import streamlit as st

from adapt import models
from adapt.config import RunConfig
from adapt.errors import AdaptError
from adapt.explain import fallback_text
from app import jobs, workspace
from app.ui import default, help_for, kept, model_plan, plain, shown_path
from app.upload import chosen_columns

POLL_S = 1.0
WHERE = {"bundled": "bundled with adapt", "local": "a local folder", "hub": "from the Hugging Face hub",
         "hub-cache": "from the local Hugging Face cache"}


def model_note(spec: str, role: str) -> bool:
    """Say which model a spec will load (in one short line when it falls back); False when it cannot load."""
    plan, error = model_plan(spec, role)
    if error:
        st.error(f"Error: {error}")
    elif plan.fallback_reason:
        st.warning(plain(fallback_text(plan.to_dict())))
    else:
        st.caption(f"Will use {plain(plan.resolved)} ({WHERE[plan.source]}).")
    return error is None


def settings_ui() -> tuple[dict, bool]:
    """The run settings, and whether both models can load."""
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
    epochs = cols[0].number_input("Epochs", 1, 100, default("epochs"), placeholder="auto", **kept("epochs"),
                                  help=help_for("epochs") + " Leave empty for the default.")
    settings["epochs"] = None if epochs is None else int(epochs)
    settings["batch_size"] = int(cols[1].number_input("Batch size", 2, 1024, default("batch_size"),
                                                      **kept("batch_size"), help=help_for("batch_size")))
    settings["learning_rate"] = float(cols[2].number_input("Learning rate", 1e-7, 1e-2, default("learning_rate"),
                                                           step=1e-5, format="%.1e", **kept("learning_rate"),
                                                           help=help_for("learning_rate")))
    settings["eval_fraction"] = float(cols[3].slider("Test fraction", 0.05, 0.5, default("eval_fraction"), 0.05,
                                                     **kept("eval_fraction"), help=help_for("eval_fraction")))
    with st.expander("More settings"):
        cols = st.columns(3)
        dev = cols[0].select_slider("Dev fraction", DEV_CHOICES, "auto", **kept("dev_fraction"),
                                    help=help_for("dev_fraction"))
        settings["dev_fraction"] = None if dev == "auto" else float(dev)
        settings["seed"] = int(cols[1].number_input("Random seed", 0, 2**31 - 1, default("seed"), **kept("seed"),
                                                    help=help_for("seed")))
        settings["drop_leaks"] = cols[2].checkbox("Drop leaked test questions", default("drop_leaks"),
                                                  **kept("drop_leaks"), help=help_for("drop_leaks"))
    return settings, models_ok


DEV_CHOICES = ("auto", 0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)  # auto: enough dev questions to decide


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
    status = job.progress()
    st.progress(status.fraction, text=status.label)
    st.caption("Working in the background: you can look around the page meanwhile. "
               f"Results go to `{shown_path(job.out)}`.")


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
