"""Fault injection, for the tests that kill a run on purpose.

Set ``ADAPT_KILL_AT=<point>`` and the run sends itself SIGKILL when it reaches that point: no
cleanup, no ``finally``, as a power cut or an out-of-memory kill would stop it. The points are

- ``<stage>@<done>``: a progress tick, e.g. ``encode base@0`` or ``train@5`` (the stage names are
  ``adapt.pipeline.STAGES``; ``done`` is 0 when a stage starts and the step or item count after);
- ``publish:<name>``: right after ``<name>`` (``model``, ``index``, ``report.json`` ...) was moved
  into the run folder while publishing.

With the variable unset, ``failpoint`` is one dictionary lookup.
"""

from __future__ import annotations

import logging
import os
import signal

ENV = "ADAPT_KILL_AT"

logger = logging.getLogger(__name__)


def failpoint(point: str) -> None:
    """Kill this process here when ``$ADAPT_KILL_AT`` names ``point``."""
    if os.environ.get(ENV) == point:
        logger.warning("%s=%s: killing the run here", ENV, point)
        os.kill(os.getpid(), signal.SIGKILL)
