"""Where the app keeps its files, and what it accepts from a browser.

Everything the app writes lives under one working directory (``$ADAPT_APP_DIR``, default
``./adapt_app_runs``): uploads as ``uploads/<random>.csv`` and runs as ``runs/<time>-<random>`` (or
straight in the working directory when it is itself named ``runs``, never ``runs/runs/``).
A person's file name is only ever shown, never used as a path; its extension only picks the reader
from a fixed list. Uploads are capped at ``$ADAPT_MAX_UPLOAD_MB`` megabytes.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from adapt import readers
from adapt.errors import ConfigError, DataError
from adapt.files import atomic_write_bytes

DEFAULT_DIR = "adapt_app_runs"
DEFAULT_MAX_UPLOAD_MB = 50
MB = 1024 * 1024
# the extensions adapt.readers reads, and the one we store each under
FORMATS = {suffix: f.suffixes[0] for f in readers.FORMATS for suffix in f.suffixes}


@dataclass(frozen=True)
class Upload:
    """A file a person uploaded: its name (for display only) and where the app stored it."""

    name: str
    path: Path
    size: int


def app_dir() -> Path:
    return Path(os.environ.get("ADAPT_APP_DIR") or DEFAULT_DIR).expanduser().resolve()


def max_upload_mb() -> int:
    text = os.environ.get("ADAPT_MAX_UPLOAD_MB", "").strip()
    if not text:
        return DEFAULT_MAX_UPLOAD_MB
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"ADAPT_MAX_UPLOAD_MB must be a whole number of megabytes, at least 1; got {text!r}")
    return value


def save_upload(data: bytes, name: str, workdir: Path, limit_mb: int, role: str = "pairs") -> Upload:
    """Check an upload's type and size and store it under a generated name; raises ``DataError``."""
    suffix = Path(name).suffix.lower()
    if suffix not in FORMATS:
        raise DataError(f"{role} file '{name}' is not {readers.suffix_list()}; "
                        "save it as CSV (in Excel: 'CSV UTF-8') and upload that")
    if len(data) > limit_mb * MB:
        raise DataError(f"{role} file '{name}' is {len(data) / MB:.1f} MB, over the {limit_mb} MB upload limit; "
                        "upload a smaller file, or start the app with ADAPT_MAX_UPLOAD_MB set higher")
    path = workdir / "uploads" / f"{uuid.uuid4().hex}{FORMATS[suffix]}"
    atomic_write_bytes(path, data)
    return Upload(name, path, len(data))


def shown(message: str, uploads: list[Upload]) -> str:
    """An error message as the page says it: the stored paths of uploads replaced by the names the
    person knows, and the CLI's column options by the page's column pickers."""
    for upload in uploads:
        message = message.replace(str(upload.path), upload.name)
    message = re.sub(r"\(given by --(question|passage)-col\)", "(chosen below)", message)
    message = message.replace("name them with --question-col and --passage-col", "pick them below")
    return re.sub(r"\bpass --(question|passage)-col\b", "choose the column below", message)


def runs_dir(workdir: Path) -> Path:
    """Where runs go: ``<workdir>/runs``, or the working directory itself when it is already named runs."""
    return workdir if workdir.name == "runs" else workdir / "runs"


def new_run_dir(workdir: Path) -> Path:
    return runs_dir(workdir) / f"{datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def finished_runs(workdir: Path) -> list[Path]:
    """Run directories under the working directory that hold a finished run, newest first."""
    folder = runs_dir(workdir)
    found = [p for p in folder.iterdir() if (p / "report.json").is_file()] if folder.is_dir() else []
    return sorted(found, key=lambda p: (p / "report.json").stat().st_mtime, reverse=True)


def describe_run(run_dir: Path) -> str:
    """When a finished run was made, from which base model, and its NDCG@10 before and after."""
    try:
        report = json.loads((Path(run_dir) / "report.json").read_text())
        created = report["created"][:16].replace("T", " ")
        base = report["models"]["base"]["resolved"]
        before, after = report["metrics"]["base"]["ndcg@10"], report["metrics"]["finetuned"]["ndcg@10"]
    except (OSError, ValueError, KeyError, TypeError):
        return "no readable report.json"
    return f"made {created} UTC, base model {base}, NDCG@10 {before:.3f} → {after:.3f}"
