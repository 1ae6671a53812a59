"""Writing run outputs safely: atomic files and folders, whose folder a run may write to, one writer
per run folder, and publishing a finished run whole.

A run folder holds a marker file (``.adapt-run``) from the moment a run claims it. adapt writes only
into a new or empty folder, one that carries the marker, or one an older adapt made (it has adapt's
report.json); anything else may be a person's own files, and publishing a run replaces ``model/``,
``index/`` and ``data/``, so it is refused before any work starts.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

from adapt.errors import RunError
from adapt.faults import failpoint

MARKER = ".adapt-run"  # written when a run claims its folder
LOCK = ".lock"
WORK = ".work"  # encodings and training checkpoints, kept for a resume
STAGING = ".staging"  # the next run's outputs, assembled before they are published
JOURNAL = ".publishing"  # present while a publish is swapping outputs in
REPORT = "report.json"  # published last: its presence marks a complete run
INTERNAL = {MARKER, LOCK, WORK, STAGING, JOURNAL}
REPORT_KEYS = {"adapt_version", "metrics", "config"}

logger = logging.getLogger(__name__)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


@contextmanager
def atomic_dir(path: Path):
    """Yield a temporary folder; on success it replaces ``path`` whole, on failure it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def replace_dir(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``, replacing an existing ``dst`` with as small a window as rename allows."""
    old = None
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(dst, old)
    os.replace(src, dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# Whose folder: only a run folder adapt made, or a new or empty one


def check_run_dir(out: Path) -> None:
    """Refuse ``out`` unless adapt may write there (see the module docstring); writes nothing."""
    out = Path(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise RunError(f"--out '{out}' is a file, not a folder; pass a folder for the run, e.g. --out runs/my-run")
    if (out / MARKER).is_file() or (out / JOURNAL).is_file() or _has_adapt_report(out):
        return  # marked, mid-publish (an older run killed while publishing its first outputs), or older
    try:
        foreign = sorted(p.name + "/" * p.is_dir() for p in out.iterdir() if p.name not in INTERNAL)
    except OSError as exc:
        raise RunError(f"cannot read --out '{out}' ({exc.strerror}); pass a folder you can write to") from None
    if foreign:
        shown = ", ".join(foreign[:4]) + (f" and {len(foreign) - 4} more" if len(foreign) > 4 else "")
        raise RunError(
            f"--out '{out}' holds files adapt did not make ({shown}); a run replaces model/, index/ and data/ "
            f"in its folder, so adapt writes only into a new or empty folder or one made by adapt; "
            f"pass a new folder, e.g. --out {out / 'adapt-run'}")


def claim_run_dir(out: Path) -> None:
    """Check ``out`` and mark it as a run folder (call with the run lock held)."""
    check_run_dir(out)
    if not (Path(out) / MARKER).is_file():
        atomic_write_text(Path(out) / MARKER, "A run folder of adapt (python -m adapt.run); adapt may replace "
                                              "its contents.\n")


def _has_adapt_report(out: Path) -> bool:
    try:
        report = json.loads((out / REPORT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(report, dict) and REPORT_KEYS <= set(report)


# ----------------------------------------------------------------------------------------------
# One writer per run folder


class RunLock:
    """An exclusive ``flock`` on ``<folder>/.lock``, so two runs never interleave their writes.

    The kernel takes the lock atomically and drops it when its holder exits, however it exits: a
    killed run never leaves a lock that blocks, and a ``.lock`` file nobody holds (empty, or naming
    a dead process) is simply taken over. The holder writes its process id and host into the file,
    only so that the message can name it. On release the file is removed while still locked; a
    process that locked a file removed meanwhile sees that the path no longer leads to it and tries
    again, so two holders never overlap.
    """

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK
        self._fd: int | None = None

    def __enter__(self) -> "RunLock":
        for _ in range(100):
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
            except OSError as exc:
                if self.path.is_symlink():  # never write through a link a crafted folder planted
                    raise RunError(f"'{self.path}' is a symbolic link, not adapt's lock file; remove it and run "
                                   "again") from None
                raise RunError(f"cannot write to '{self.path.parent}' ({exc.strerror}); pass an --out folder you "
                               "can write to") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise RunError(self._busy()) from None
            except OSError as exc:
                os.close(fd)
                raise RunError(f"cannot lock '{self.path}' ({exc.strerror}); pass an --out folder on a local "
                               "disk") from None
            if _same_file(fd, self.path):
                os.ftruncate(fd, 0)
                os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
                self._fd = fd
                return self
            os.close(fd)  # its holder finished and removed it: lock the current file
        raise RunError(f"could not lock '{self.path.parent}'; other runs keep taking it; try again")

    def __exit__(self, *exc) -> None:
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None

    def _busy(self) -> str:
        holder = self._holder()
        if holder is not None and _alive(holder):
            return (f"another run is writing to '{self.path.parent}' (process {holder['pid']}); wait for it to "
                    "finish, or pass a different --out")
        which = f"run {holder['pid']} has ended but " if holder else ""
        return (f"another run is writing to '{self.path.parent}': {which}a process still holds '{self.path}'; "
                f"find it with: fuser -v '{self.path}', stop it, then run again (or pass a different --out)")

    def _holder(self) -> dict | None:
        try:
            holder = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return holder if isinstance(holder, dict) and "pid" in holder else None


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _alive(holder: dict) -> bool:
    if holder.get("host") != socket.gethostname():
        return True  # cannot tell for another machine: assume it is running
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, KeyError, TypeError, OverflowError):
        return True
    return True


# ----------------------------------------------------------------------------------------------
# Publishing a finished run, and finishing one a killed run started


def publish(staging: Path, out: Path, names: Iterable[str]) -> None:
    """Move the finished outputs ``names`` from ``staging`` into ``out``, replacing the old ones.

    A journal file marks the swap; if the process dies during it, ``recover`` finishes it (the staged
    run is complete by then). report.json moves last, so a half-published run never looks complete.
    """
    names = list(names)
    atomic_write_text(Path(out) / JOURNAL, "\n".join(names) + "\n")
    _finish_publish(Path(staging), Path(out), names)


def recover(out: Path) -> None:
    """Finish a publish that a killed run started (call with the run lock held)."""
    out = Path(out)
    journal = out / JOURNAL
    if journal.exists() and (out / STAGING).is_dir():
        logger.warning("Finishing the publication of a run that was interrupted while saving its outputs")
        names = [n for n in journal.read_text().splitlines() if n and n not in (".", "..") and "/" not in n]
        _finish_publish(out / STAGING, out, names)
    journal.unlink(missing_ok=True)


def tidy(work: Path, keep: set[str]) -> None:
    """Remove the work folders of inputs and settings no longer in use."""
    for child in Path(work).iterdir() if Path(work).is_dir() else []:
        if child.name not in keep:
            shutil.rmtree(child, ignore_errors=True)


def _finish_publish(staging: Path, out: Path, names: list[str]) -> None:
    if (staging / REPORT).exists():
        (out / REPORT).unlink(missing_ok=True)
    for name in [n for n in names if n != REPORT] + [REPORT]:
        src, dst = staging / name, out / name
        if src.is_dir():
            replace_dir(src, dst)
        elif src.exists():
            os.replace(src, dst)
        failpoint(f"publish:{name}")
    (out / JOURNAL).unlink(missing_ok=True)
    shutil.rmtree(staging, ignore_errors=True)
