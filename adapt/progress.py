"""Progress bars on a terminal: one tqdm bar per pipeline stage, with elapsed time and an ETA.

``StageBars`` is the pipeline's progress callback, ``progress(stage, done, total)``. A stage
announces itself with (0, 1) and its end with (1, 1); long stages (encoding, the guide pass,
training) report their steps in between, and their bar shows steps done, elapsed time and the time
left. A stage that reports inside another (the guide pass inside training) gets its own bar; the
outer stage's unfinished bar is removed and drawn again when it reports its next step. Log lines
printed while a bar is drawn go above it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import TextIO

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

STEPS = "{desc} {percentage:3.0f}%|{bar:24}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]"
ONE_STEP = "{desc} {elapsed}"  # a stage with no steps to count: how long it has taken
NAME_WIDTH = 17  # "encode fine-tuned"


class StageBars(contextlib.AbstractContextManager):
    def __init__(self, stream: TextIO | None = None, disable: bool = False):
        self.stream, self.disable = stream or sys.stderr, disable
        self.stage: str | None = None
        self.bar: tqdm | None = None
        self._logs = contextlib.ExitStack()

    def __enter__(self):
        if not self.disable:
            self._logs.enter_context(logging_redirect_tqdm([logging.getLogger("adapt")]))
        return self

    def __exit__(self, *exc):
        self._finish()
        self._logs.close()
        return False

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.disable:
            return
        if stage != self.stage:
            self._finish()
            self.stage = stage
            self.bar = tqdm(total=total, desc=f"{stage:<{NAME_WIDTH}}", file=self.stream, mininterval=0.5,
                            bar_format=STEPS if total > 1 else ONE_STEP, unit="step", dynamic_ncols=True)
        bar = self.bar
        if (done, total) == (1, 1) and bar.total > 1:  # the end of a stage that counted its steps
            done = total = bar.total
        if total != bar.total:
            bar.total = total
            bar.bar_format = STEPS if total > 1 else ONE_STEP
        bar.update(done - bar.n)

    def _finish(self) -> None:
        """Close the current bar: kept on screen when its stage finished, removed when another began inside it."""
        if self.bar is not None:
            self.bar.leave = self.bar.n >= self.bar.total
            self.bar.close()
        self.bar, self.stage = None, None
