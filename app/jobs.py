"""The pipeline in a background thread, so the page stays responsive while it works.

``run_pipeline``'s progress callback writes into the job under a lock; the page polls
``Job.progress()`` and draws its own bar. A ``JobBoard`` holds the runs of one app working
directory and refuses to start a second while one is running.

The time left comes from time measured in the run itself (``Estimate``): once training has
reported two steps, the seconds per step times the steps left, plus the stages after training at
the pace their counterparts before it kept. Until then nothing is promised, and the bar moves by
each stage's rough share of the time.
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

# What a person sees for each of adapt.pipeline's STAGES, and the stage's rough share of the time (in
# percent; training took about 85% of a run on the sample, the guide pass included), used for the bar
# until the run has measured its own pace.
STAGE_VIEW = {
    "data": ("Reading the data", 1),
    "models": ("Loading the models", 3),
    "leakage": ("Checking for test questions that repeat training ones", 1),
    "encode base": ("Encoding passages with the base model", 3),
    "index base": ("Indexing passages (base)", 1),
    "evaluate base": ("Evaluating the base model", 1),
    "negatives": ("Mining hard negatives (the guide removes likely false ones)", 2),
    "guide": ("Scoring training pairs with the guide model", 5),
    "train": ("Training", 75),
    "encode fine-tuned": ("Encoding passages with the fine-tuned model", 3),
    "index fine-tuned": ("Indexing passages (fine-tuned)", 1),
    "evaluate": ("Evaluating", 2),
    "hybrid": ("Choosing the hybrid (BM25 + dense) fusion on dev", 1),
    "report": ("Writing the report", 1),
}
# The stages after training, in order, each expected to take as long as its counterpart took earlier in
# the same run: the fine-tuned model encodes the same passages at about the base model's rate, and so on.
AFTER_TRAINING = {"encode fine-tuned": "encode base", "index fine-tuned": "index base", "evaluate": "evaluate base",
                  "hybrid": "evaluate base", "report": "index base"}
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
    remaining: float | None = None  # seconds, once the run has measured its pace

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
        if self.state == "running" and self.remaining is not None:
            name = f"{name} · about {about(self.remaining)} left"
        return f"{name} · {clock(self.elapsed)} elapsed"


def clock(seconds: float) -> str:
    """0:07, 1:42, 1:02:03."""
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def about(seconds: float) -> str:
    """Time left, no more precise than an estimate is: 5 s steps under a minute (45 s), then 10 s steps
    (2 min 10 s), then whole minutes (1 h 5 min); never less than 5 s."""
    step = 5 if seconds < 57.5 else 10 if seconds < 3595 else 60
    total = max(step, int(seconds / step + 0.5) * step)
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    return " ".join(f"{n} {unit}" for n, unit in ((hours, "h"), (minutes, "min"), (seconds, "s")) if n)


class Estimate:
    """The time left in a run, from the time measured in it (all times in seconds on one clock).

    Training: the seconds per step between the first step reported and the latest (the first step also
    pays for setting up, so it is the start line, not a sample), times the steps left, counted down
    between reports. After training: each stage of ``AFTER_TRAINING`` takes as long as its counterpart
    took. Before two training steps there is nothing measured to go on: ``remaining`` is None.
    """

    def __init__(self):
        self.began: dict[str, float] = {}  # stage -> when it first reported
        self.took: dict[str, float] = {}  # stage -> from its first report to its last "done"
        self.stage, self.over = "", False  # the stage reported last, and whether that report was its end
        self.first_step: tuple[int, float] | None = None  # (step, time) of the first training step seen
        self.last_step: tuple[int, int, float] | None = None  # (step, total, time) of the latest one

    def tell(self, stage: str, done: int, total: int, now: float) -> None:
        began = self.began.setdefault(stage, now)
        self.stage, self.over = stage, done >= total
        if self.over:
            self.took[stage] = now - began
        if stage == "train" and total > 1 and done > 0:
            if self.first_step is None:
                self.first_step = (done, now)
            self.last_step = (done, total, now)

    def per_step(self) -> float | None:
        """Measured seconds per training step; None before two steps have been reported."""
        if self.first_step is None or self.last_step[0] <= self.first_step[0]:
            return None
        return (self.last_step[2] - self.first_step[1]) / (self.last_step[0] - self.first_step[0])

    def remaining(self, now: float) -> float | None:
        if self.stage in AFTER_TRAINING or "train" in self.took:
            return self._after(now)
        rate = self.per_step()
        if self.stage != "train" or rate is None:
            return None
        step, total, at = self.last_step
        return max(0.0, rate * (total - step) - (now - at)) + self._after(now)

    def _after(self, now: float) -> float:
        """The stages after training still to come (the current one less the time it has taken so far)."""
        names = list(AFTER_TRAINING)
        if self.stage not in names:
            return sum(self._guess(name) for name in names)
        current = 0.0 if self.over else max(0.0, self._guess(self.stage) - (now - self.began[self.stage]))
        return current + sum(self._guess(name) for name in names[names.index(self.stage) + 1:])

    def _guess(self, stage: str) -> float:
        return self.took.get(AFTER_TRAINING[stage], 0.0)


class Job:
    """One pipeline run in a daemon thread. ``error`` holds the message to show when it failed.

    ``clock`` (seconds, monotonic) is there for tests; the run's pace is measured on it."""

    def __init__(self, config: RunConfig, pipeline: Pipeline | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.id = uuid.uuid4().hex
        self.config = config
        self.out: Path = config.out
        self.error: str | None = None
        self.result = None
        self._pipeline = pipeline
        self._clock = clock
        self._lock = threading.Lock()
        self._stage, self._done, self._total, self._position, self._shown = "data", 0, 1, 0.0, 0.0
        self._estimate = Estimate()
        self._started = clock()
        self._ended: float | None = None
        self._thread = threading.Thread(target=self._work, name=f"adapt-run-{self.id[:8]}", daemon=True)

    def start(self) -> "Job":
        self._started = self._clock()
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
        """The bar is the share of the expected time gone by, elapsed / (elapsed + remaining), once there is
        an estimate, and the stage's place by STAGE_VIEW's shares before; it never moves back."""
        with self._lock:
            now = self._clock() if self._ended is None else self._ended
            state = "running" if self._ended is None else "failed" if self.error is not None else "finished"
            elapsed = now - self._started
            remaining = self._estimate.remaining(now) if state == "running" else None
            timed = elapsed / (elapsed + remaining) if remaining is not None and elapsed + remaining > 0 else None
            self._shown = min(1.0, max(self._shown, self._position if timed is None else timed))
            fraction = 1.0 if state == "finished" else self._shown
            return JobStatus(state, self._stage, self._done, self._total, fraction, elapsed, remaining)

    def _tell(self, stage: str, done: int, total: int) -> None:
        _, weight = STAGE_VIEW.get(stage, ("", 1))
        within = min(1.0, done / total) if total > 0 else 0.0
        # training opens by scoring the pairs with the guide, so its start is where "guide" starts
        position = "guide" if stage == "train" and done == 0 else stage
        fraction = (_WEIGHT_BEFORE.get(position, 0) + weight * within) / _TOTAL_WEIGHT
        with self._lock:
            self._estimate.tell(stage, int(done), int(total), self._clock())
            self._stage, self._done, self._total = stage, int(done), int(total)
            self._position = min(1.0, max(self._position, fraction))

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
                self._ended = self._clock()


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
