"""Reduced precision where the hardware has it: bf16 autocast for the run's forward passes.

``--precision auto`` (the default) runs bf16 on a GPU that supports it (``torch.cuda.is_bf16_supported``)
and on a CPU with AVX-512 BF16 or AMX BF16 instructions (the ``avx512_bf16`` / ``amx_bf16`` flags of
/proc/cpuinfo), and fp32 everywhere else; ``fp32`` forces full precision, ``bf16`` asks for bf16 and
falls back to fp32 (with a warning) where the hardware lacks it. Detection happens when a run starts,
and one log line says what ran and why.

What bf16 touches, under ``auto`` and ``bf16`` alike: the frozen guide's pass (adapt.guide; its cache is
keyed by precision, so bf16 and fp32 guide embeddings never mix), passage encoding for the indexes
(adapt.index) and the trainer's mixed precision (adapt.train). It became the default for the student
once measured at full size against fp32 on the same data (bench/RESULTS.md, ``python -m bench.end_to_end
--commands agxqa,askextension --precisions fp32,bf16``): test NDCG@10 of the fine-tuned model within the
speed issue's 0.005 on both sets, the whole run about a quarter faster. Outputs stay float32 numpy.
Queries are encoded in fp32 in every run: they are
few and short, and so the report's numbers are exactly what a later search of the saved run (adapt.search,
the app, which run outside any run's precision) gives. A run sets the precision for its
own thread with ``use``; everything outside a run (the app's searches, tests) is fp32 unless told.
The multi-GPU encoding pool's worker processes (adapt.encode) do not inherit it and run fp32.
"""

from __future__ import annotations

import functools
import logging
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

BF16_FLAGS = ("avx512_bf16", "amx_bf16")
CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class Precision:
    requested: str
    used: str  # "fp32" or "bf16"
    why: str
    device: str = "cpu"  # the autocast device type: "cpu" or "cuda"

    @property
    def student(self) -> bool:
        """bf16 for the student too (passage encoding, training): wherever bf16 runs at all."""
        return self.used == "bf16"

    def to_dict(self) -> dict:
        return asdict(self)


FP32 = Precision("fp32", "fp32", "full precision (nothing asked for less)")
_ACTIVE: ContextVar[Precision] = ContextVar("adapt_precision", default=FP32)


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo; empty where it cannot be read (not Linux)."""
    try:
        text = CPUINFO.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def device_type() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def bf16_support(device: str) -> str | None:
    """Why bf16 pays on ``device`` ("cpu" or "cuda"), or None where the hardware lacks it."""
    if device == "cuda":
        return "the GPU supports bf16" if torch.cuda.is_bf16_supported() else None
    found = sorted(cpu_flags() & set(BF16_FLAGS))
    return f"the CPU has {' and '.join(found)}" if found else None


def resolve(requested: str, quiet: bool = False) -> Precision:
    """What ``requested`` (one of ``adapt.config.PRECISIONS``) means on this machine; one log line says it."""
    device = device_type()
    support = bf16_support(device) if requested != "fp32" else None
    if requested == "fp32":
        chosen = Precision(requested, "fp32", "fp32 was asked for", device)
    elif support:
        chosen = Precision(requested, "bf16", support, device)
    else:
        lacks = "this GPU does not support bf16" if device == "cuda" else \
            f"the CPU has neither {' nor '.join(BF16_FLAGS)}"
        chosen = Precision(requested, "fp32", f"{lacks}, so fp32 ran", device)
    if not quiet:
        log = logger.warning if requested == "bf16" and chosen.used == "fp32" else logger.info
        log("Precision: %s on %s (asked for %s: %s)", chosen.used, device, requested, chosen.why)
    return chosen


def active() -> Precision:
    """The precision the current run set with ``use`` (fp32 outside a run)."""
    return _ACTIVE.get()


@contextmanager
def use(precision: Precision):
    """Run the block with ``precision`` as the active one (this thread and context only)."""
    token = _ACTIVE.set(precision)
    try:
        yield precision
    finally:
        _ACTIVE.reset(token)


def autocast(precision: Precision | None = None):
    """``torch.autocast`` to bf16 when ``precision`` (default: the active one) is bf16; else a no-op."""
    precision = precision or active()
    if precision.used != "bf16":
        return nullcontext()
    return torch.autocast(precision.device, dtype=torch.bfloat16)


def in_precision(function):
    """``function`` (a student's encoding) under bf16 autocast when the active run runs bf16."""
    @functools.wraps(function)
    def run(*args, **kwargs):
        precision = active()
        with autocast(precision) if precision.student else nullcontext():
            return function(*args, **kwargs)
    return run
