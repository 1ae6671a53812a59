"""Step 1 of a new run: upload the pairs (and extra passages), pick their columns, see the data summary."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from adapt.errors import AdaptError
from adapt.readers import describe_formats
from app import preflight, workspace
from app.ui import AUTO, data_summary, file_columns, kept, plain

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = {"pairs": ROOT / "sample_data" / "agriculture_pairs.csv",
          "corpus": ROOT / "sample_data" / "agriculture_corpus.csv"}
UPLOAD_TYPES = sorted(ext.lstrip(".") for ext in workspace.FORMATS)
DATA_SETTINGS = ("eval_fraction", "dev_fraction", "seed", "drop_leaks")  # the ones the data summary depends on


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
              "out": str(workspace.runs_dir(workdir) / "preview")}
    summary, error = data_summary(tuple(sorted(wanted.items())))
    if error:
        st.error(f"Error: {workspace.shown(error, list(uploads.values()))}")
    with st.expander("Columns", expanded=bool(error and "column" in error)):
        st.caption(plain("Which columns hold the questions and the passages. adapt reads "
                         + workspace.shown(describe_formats(), [])))
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
    # a static table wraps long passages instead of cutting them off at the edge (cells are markdown: escaped)
    preview = summary.preview.map(plain).rename(columns=plain)
    st.table(preview, hide_index=True)
