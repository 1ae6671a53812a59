"""The app's time left: measured seconds per training step times the steps left, plus the stages after
training at their counterparts' pace, all on a fake clock so every value is exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapt.config import RunConfig
from app import jobs
from tests.conftest import SAMPLE_PAIRS


class Clock:
    """A monotonic clock that moves only when told to."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def timed():
    """A job on a fake clock, and a way to report a step at a given time."""
    clock = Clock()
    job = jobs.Job(RunConfig(pairs=SAMPLE_PAIRS, out=Path("unused")), clock=clock)

    def tell(at: float, stage: str, done: int, total: int) -> jobs.JobStatus:
        clock.now = at
        job._tell(stage, done, total)
        return job.progress()

    def look(at: float) -> jobs.JobStatus:
        clock.now = at
        return job.progress()

    return job, tell, look


def before_training(tell) -> None:
    """encode base takes 6 s, index base 1 s, evaluate base 2 s: after training, 6+1+2+2+1 = 12 s."""
    for at, stage, done, total in [(0, "data", 0, 1), (2, "data", 1, 1), (2, "models", 0, 1), (8, "models", 1, 1),
                                   (10, "encode base", 0, 1), (13, "encode base", 128, 256),
                                   (16, "encode base", 256, 256), (16, "encode base", 1, 1),
                                   (16, "index base", 0, 1), (17, "index base", 1, 1), (17, "evaluate base", 0, 1),
                                   (19, "evaluate base", 1, 1), (20, "train", 0, 1), (20, "guide", 0, 1),
                                   (24, "guide", 4, 4)]:
        status = tell(at, stage, done, total)
        assert status.remaining is None  # nothing measured to go on yet


@pytest.mark.parametrize("seconds, words", [
    (0, "5 s"), (3, "5 s"), (7.4, "5 s"), (7.5, "10 s"), (44, "45 s"), (57.4, "55 s"), (57.5, "1 min"),
    (96, "1 min 40 s"), (130, "2 min 10 s"), (3594, "59 min 50 s"), (3595, "1 h"), (3929, "1 h 5 min"),
    (7260, "2 h 1 min"),
])
def test_time_left_reads_no_more_precise_than_an_estimate(seconds, words):
    assert jobs.about(seconds) == words


def test_no_estimate_until_two_training_steps(timed):
    job, tell, look = timed
    before_training(tell)
    first = tell(30, "train", 1, 45)
    assert (first.remaining, first.label) == (None, "Training: step 1 of 45 · 0:30 elapsed")
    # the bar goes by the stages' shares: all before training (17 of 100), and 1 of 45 steps of its 75
    assert first.fraction == pytest.approx((17 + 75 / 45) / 100)


def test_time_left_is_seconds_per_step_times_steps_left_plus_the_stages_after(timed):
    job, tell, look = timed
    before_training(tell)
    tell(30, "train", 1, 45)
    third = tell(34, "train", 3, 45)  # 2 steps in 4 s: 2 s a step, 42 steps left, then 12 s after training
    assert third.remaining == pytest.approx(2 * 42 + 12)
    assert third.label == "Training: step 3 of 45 · about 1 min 40 s left · 0:34 elapsed"
    assert third.fraction == pytest.approx(34 / (34 + 96))
    later = look(40)  # no step since: the count goes down with the clock
    assert later.remaining == pytest.approx(96 - 6)
    assert later.label == "Training: step 3 of 45 · about 1 min 30 s left · 0:40 elapsed"
    assert later.fraction == pytest.approx(40 / 130)
    step = tell(107, "train", 36, 45)  # 35 steps in 77 s: 2.2 s a step
    assert step.remaining == pytest.approx(2.2 * 9 + 12)
    assert step.label == "Training: step 36 of 45 · about 30 s left · 1:47 elapsed"


def test_after_training_each_stage_takes_as_long_as_its_counterpart(timed):
    job, tell, look = timed
    before_training(tell)
    tell(30, "train", 1, 45)
    tell(127, "train", 45, 45)
    assert tell(128, "train", 1, 1).remaining == pytest.approx(12)  # loading the fine-tuned model: not counted
    encoding = tell(130, "encode fine-tuned", 0, 1)
    assert encoding.remaining == pytest.approx(12)
    half = tell(133, "encode fine-tuned", 128, 256)
    assert half.remaining == pytest.approx(3 + 1 + 2 + 2 + 1)
    assert half.label == "Encoding passages with the fine-tuned model: 128 of 256 · about 10 s left · 2:13 elapsed"
    assert look(140).remaining == pytest.approx(0 + 6)  # slower than base: the stage's own share is spent
    assert tell(141, "encode fine-tuned", 1, 1).remaining == pytest.approx(6)
    assert tell(150, "report", 0, 1).remaining == pytest.approx(1)
    end = tell(151, "report", 1, 1)
    assert (end.remaining, end.fraction) == (0, 1.0)


def test_a_reused_training_goes_straight_to_the_stages_after(timed):
    job, tell, look = timed
    before_training(tell)
    status = tell(25, "train", 1, 1)  # the training was already there: no steps
    assert status.remaining == pytest.approx(12)
    assert status.label == "Training · about 10 s left · 0:25 elapsed"
    assert status.fraction == pytest.approx(25 / 37)


def test_the_bar_never_moves_back_when_the_estimate_grows(timed):
    job, tell, look = timed
    before_training(tell)
    tell(30, "train", 1, 45)
    quick = tell(50, "train", 20, 45)  # 20 s for 19 steps
    assert quick.fraction == pytest.approx(50 / (50 + 20 / 19 * 25 + 12))
    slow = tell(90, "train", 21, 45)  # one slow step: 3 s a step, so more time left than the bar showed
    assert slow.remaining == pytest.approx(3 * 24 + 12)
    assert 90 / (90 + 84) < quick.fraction
    assert slow.fraction == quick.fraction


def test_a_finished_or_failed_run_promises_no_time():
    clock = Clock()

    def pipeline(config, progress):
        progress("train", 1, 10)
        clock.now = 5
        progress("train", 2, 10)
        clock.now = 7
        return "done"

    def broken(config, progress):
        progress("train", 1, 10)
        clock.now = 9
        progress("train", 2, 10)
        raise ZeroDivisionError("division by zero")

    done = jobs.Job(RunConfig(pairs=SAMPLE_PAIRS, out=Path("unused")), pipeline, clock=clock).start()
    assert done.wait(10)
    status = done.progress()
    assert (status.remaining, status.fraction, status.label) == (None, 1.0, "Finished · 0:07 elapsed")
    clock.now = 0
    failed = jobs.Job(RunConfig(pairs=SAMPLE_PAIRS, out=Path("unused")), broken, clock=clock).start()
    assert failed.wait(10)
    assert failed.progress().label == "Failed while: training · 0:09 elapsed"
