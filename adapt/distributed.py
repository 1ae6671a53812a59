"""One run over several processes: ``torchrun`` or ``accelerate launch`` train with DDP through the trainer.

A launcher starts N copies of ``python -m adapt.run`` with ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``
in their environment. Rank 0, the main process, does every one-off piece of work and writes every
output: data split, leak check, encodings, mined negatives, the guide cache, evaluation, hybrid,
reports and the atomic publish, under the run lock. The other ranks only train: they wait for rank 0
to hand over the training job (``share``), train with it, and stop. Because rank 0 writes the guide
cache before the hand-over, the others read it instead of running the guide. A killed run resumes like
a single one: rank 0 finds the cached work and the last complete checkpoint, and tells the others.

One process (no ``WORLD_SIZE``, or 1) never touches ``torch.distributed``.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from datetime import timedelta

import torch

from adapt.errors import RunError

logger = logging.getLogger(__name__)

# The other ranks wait for rank 0 to encode, index and mine before training starts: at millions of
# passages that is hours, not the 30 minutes torch.distributed waits by default.
WAIT = timedelta(hours=12)


@dataclass(frozen=True)
class World:
    rank: int
    size: int
    local_rank: int

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def several(self) -> bool:
        return self.size > 1


@dataclass(frozen=True)
class Stopped:
    """What rank 0 hands over instead of a job when it stopped before training."""

    reason: str


def world() -> World:
    """This process's place, from the launcher's environment (rank 0 of 1 when not launched by one)."""
    env = os.environ
    return World(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))


def start() -> World:
    """Join the process group when launched as one of several (NCCL on GPUs, gloo on CPU); the trainer
    reuses it. accelerate's ``PartialState`` is the trainer's own, so both agree on backend and device."""
    place = world()
    if place.several and not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        from accelerate import PartialState

        PartialState(cpu=not torch.cuda.is_available(), timeout=WAIT)  # cpu: gloo, not a lone process
        logger.info("Process %d of %d (%s, %s)", place.rank, place.size, torch.distributed.get_backend(),
                    device_name(place))
    return place


def finish() -> None:
    """Leave the process group (torch asks every rank to, once its collectives are done)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def exit_process(code: int) -> None:
    """End the process with ``code``; one of several skips the interpreter's shutdown.

    torch lacks a safe exit for gloo: its worker threads drop their last reference to a finished
    collective's tensors a moment after the caller's ``wait()`` returns, and when that moment falls in
    Python's shutdown the thread cannot take the GIL and the rank dies with SIGABRT ("terminate called
    without an active exception") after its work is done, failing the whole launch (seen about once in
    15 two-rank runs on 2 cores; ``destroy_process_group`` does not join those threads). By the time this
    runs every output is written and closed and the pipeline has left the process group (``finish``), so
    a rank flushes its streams and leaves with ``os._exit``.
    """
    if not world().several:
        sys.exit(code)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


def share(value=None):
    """Rank 0's ``value`` on every rank (a pickled broadcast); ``value`` itself in a single process."""
    if not world().several:
        return value
    box = [value]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def main_only(work):
    """``work()`` run on rank 0 alone and its result handed to every rank (a failure too: each rank raises)."""
    place = world()
    if not place.several:
        return work()
    result = None
    if place.main:
        try:
            result = work()
        except Exception as exc:
            share(Stopped(f"{type(exc).__name__}: {exc}"))
            raise
    result = share(result)
    if isinstance(result, Stopped):
        raise RunError(f"the main process (rank 0) stopped: {result.reason}")
    return result


class Handoff:
    """Rank 0's one hand-over to the other ranks: the training job, ``None`` when there is nothing to
    train (a finished training is reused), or ``Stopped`` when rank 0 failed first. Later calls do nothing,
    so the pipeline can hand over ``None`` on every way out and the others never wait in vain."""

    def __init__(self):
        self.done = not world().several

    def give(self, value) -> None:
        if not self.done:
            self.done = True
            share(value)


def receive():
    """On a rank other than 0: what rank 0's ``Handoff`` gives; raises when rank 0 stopped before training."""
    value = share()
    if isinstance(value, Stopped):
        raise RunError(f"the main process (rank 0) stopped before training: {value.reason}")
    return value


def device_name(place: World | None = None) -> str:
    place = place or world()
    if torch.cuda.is_available():
        index = place.local_rank % torch.cuda.device_count()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return "cpu"


def describe() -> dict:
    """World size, backend and every rank's device, for report.json (a collective: every rank calls it)."""
    place = world()
    if not place.several:
        return {"world_size": 1, "backend": None, "devices": [device_name(place)]}
    devices = [None] * place.size
    torch.distributed.all_gather_object(devices, device_name(place))
    return {"world_size": place.size, "backend": torch.distributed.get_backend(), "devices": devices}
