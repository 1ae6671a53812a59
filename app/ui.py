"""What every page of the app shares: widget helpers, safe text, and the cached runs, models and indexes.

Models and indexes are cached with ``st.cache_resource``, so a rerun never reloads a model or
re-encodes the corpus; tables and checks with ``st.cache_data``.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import streamlit as st

from adapt import models
from adapt.config import RunConfig
from adapt.readers import read_table
from adapt.errors import AdaptError
from adapt.runs import Run, open_run
from app import jobs, preflight

FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}
AUTO = "(automatic)"


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


def shown_path(path: Path | str) -> str:
    """A path as a person reads it: relative to the current folder when it lies inside it."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# ----------------------------------------------------------------------------------------------
# Cached resources: one job board per working directory, runs, models and indexes


@st.cache_resource
def job_board(workdir: str) -> jobs.JobBoard:
    return jobs.JobBoard()


@st.cache_resource(max_entries=8, show_spinner=False)
def load_run(run_dir: str, stamp: int) -> Run:
    return open_run(run_dir)


@st.cache_resource(max_entries=6, show_spinner="Loading the model and its index ...")
def retriever(run_dir: str, stamp: int, which: str):
    """A system's model and saved indexes (FAISS, and BM25 for hybrid); cached, so searching never re-encodes
    the corpus."""
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
