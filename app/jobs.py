"""The pipeline in a background thread, so the page stays responsive while it works.

``run_pipeline``'s progress callback writes into the job under a lock; the page polls
``Job.progress()`` and draws its own bar. A ``JobBoard`` holds the runs of one app working
directory and refuses to start a second while one is running.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from adapt.config import RunConfig
from adapt.errors import AdaptError, RunError
from adapt.pipeline import STAGES

logger = logging.getLogger(__name__)

# What a person sees for each of adapt.pipeline's STAGES, and the stage's rough share of the time.
STAGE_VIEW = {
    "data": ("Reading the data", 1),
    "models": ("Loading the models", 4),
    "leakage": ("Checking for test questions that repeat training ones", 3),
    "encode base": ("Encoding passages with the base model", 8),
    "index base": ("Indexing passages (base)", 1),
    "evaluate base": ("Evaluating the base model", 2),
    "guide": ("Scoring training pairs with the guide model", 8),
    "train": ("Training", 50),
    "encode fine-tuned": ("Encoding passages with the fine-tuned model", 8),
    "index fine-tuned": ("Indexing passages (fine-tuned)", 1),
    "evaluate": ("Evaluating", 12),
    "report": ("Writing the report", 5),
}
# tests/test_app.py checks that STAGE_VIEW has words for exactly the pipeline's stages; the bar follows
# the pipeline's order, and a stage it does not know yet moves it by the smallest step.
_WEIGHTS = [STAGE_VIEW.get(name, ("", 1))[1] for name in STAGES]
_TOTAL_WEIGHT = sum(_WEIGHTS)
_WEIGHT_BEFORE = {name: sum(_WEIGHTS[:i]) for i, name in enumerate(STAGES)}

Pipeline = Callable[..., object]  # run_pipeline(config, progress=...) -> RunResult


@dataclass(frozen=True)
class JobStatus:
    """Where a job is: its stage, the step within it, the share of the whole run done, and the time."""

    state: str  # "running", "finished" or "failed"
    stage: str
    done: int
    total: int
    fraction: float
    elapsed: float

    @property
    def label(self) -> str:
        name = STAGE_VIEW.get(self.stage, (self.stage.capitalize(), 0))[0]
        if self.state == "finished":
            name = "Finished"
        elif self.state == "failed":
            name = f"Failed while: {name.lower()}"
        elif self.stage == "train" and self.total > 1:
            name = f"Training: step {self.done} of {self.total}"
        elif self.total > 1:
            name = f"{name}: {self.done:,} of {self.total:,}"
        return f"{name} · {clock(self.elapsed)} elapsed"


def clock(seconds: float) -> str:
    """0:07, 1:42, 1:02:03."""
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class Job:
    """One pipeline run in a daemon thread. ``error`` holds the message to show when it failed."""

    def __init__(self, config: RunConfig, pipeline: Pipeline | None = None):
        self.id = uuid.uuid4().hex
        self.config = config
        self.out: Path = config.out
        self.error: str | None = None
        self.result = None
        self._pipeline = pipeline
        self._lock = threading.Lock()
        self._stage, self._done, self._total, self._fraction = "data", 0, 1, 0.0
        self._started = time.monotonic()
        self._ended: float | None = None
        self._thread = threading.Thread(target=self._work, name=f"adapt-run-{self.id[:8]}", daemon=True)

    def start(self) -> "Job":
        self._started = time.monotonic()
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._ended is None

    def wait(self, timeout: float | None = None) -> bool:
        """True when the job has ended within ``timeout`` seconds."""
        self._thread.join(timeout)
        return not self.running

    def progress(self) -> JobStatus:
        with self._lock:
            stage, done, total, fraction, ended = self._stage, self._done, self._total, self._fraction, self._ended
        state = "running" if ended is None else "failed" if self.error is not None else "finished"
        elapsed = (ended or time.monotonic()) - self._started
        return JobStatus(state, stage, done, total, 1.0 if state == "finished" else fraction, elapsed)

    def _tell(self, stage: str, done: int, total: int) -> None:
        _, weight = STAGE_VIEW.get(stage, ("", 1))
        within = min(1.0, done / total) if total > 0 else 0.0
        # training opens by scoring the pairs with the guide, so its start is where "guide" starts
        position = "guide" if stage == "train" and done == 0 else stage
        fraction = (_WEIGHT_BEFORE.get(position, 0) + weight * within) / _TOTAL_WEIGHT
        with self._lock:
            self._stage, self._done, self._total = stage, int(done), int(total)
            self._fraction = min(1.0, max(self._fraction, fraction))  # never moves back

    def _work(self) -> None:
        pipeline = self._pipeline
        if pipeline is None:
            from adapt.pipeline import run_pipeline as pipeline
        try:
            self.result = pipeline(self.config, progress=self._tell)
        except AdaptError as exc:
            self.error = str(exc)
        except Exception as exc:  # shown in the page, traceback in the server log
            logger.exception("The run writing to %s failed", self.out)
            self.error = (f"the run stopped with an unexpected {type(exc).__name__}: {exc}; "
                          "the server log has the details")
        finally:
            with self._lock:
                self._ended = time.monotonic()


class JobBoard:
    """The runs started from one app working directory; at most one runs at a time."""

    def __init__(self):
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}

    def get(self, job_id: str | None) -> Job | None:
        return self._jobs.get(job_id) if job_id else None

    def active(self) -> Job | None:
        return next((job for job in self._jobs.values() if job.running), None)

    def start(self, config: RunConfig, pipeline: Pipeline | None = None) -> Job:
        """Start a run, or raise ``RunError`` while another is still running."""
        with self._lock:
            busy = self.active()
            if busy is not None:
                raise RunError(
                    f"a run is already in progress (started {clock(busy.progress().elapsed)} ago); "
                    "wait for it to finish before starting another"
                )
            job = Job(config, pipeline)
            self._jobs[job.id] = job
            return job.start()
