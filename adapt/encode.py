"""Corpus encoding at scale: in chunks saved as they finish, resumed after a stop, spread over GPUs.

Each chunk's embeddings are written to ``<folder>/chunk-NNNNNN.npy`` (atomically) the moment they are
done, so a run stopped halfway through ten million passages starts again at the first missing chunk.
Chunk boundaries depend only on the number of passages, and the folder is keyed by a fingerprint of
data and model (adapt.work), so a saved chunk is always the one a re-run would compute.

With more than one GPU the chunks go through sentence-transformers' multi-process pool, one process
per GPU. On a CPU one process already keeps every core busy through torch's threads, and a pool would
split the same cores, so none is started.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from adapt.files import atomic_write_bytes

logger = logging.getLogger(__name__)

ENCODE_CHUNK = 256  # the smallest chunk: progress and a failpoint after each
SAVED_CHUNK_MAX = 16_384  # at millions of passages, about 100 chunks, and never more than 16k rows lost


def chunk_rows(n: int) -> int:
    """Rows a chunk holds for a corpus of ``n``: about a hundredth of it, from 256 to 16,384."""
    return min(SAVED_CHUNK_MAX, max(ENCODE_CHUNK, n // 100))


def pool_devices() -> list[str] | None:
    """The GPUs to spread encoding over, when there are several; None otherwise."""
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return [f"cuda:{i}" for i in range(count)] if count > 1 else None


def encode_corpus(model, texts: list[str], encoder, folder: Path | None = None,
                  tell: Callable[[int, int], None] | None = None) -> np.ndarray:
    """``encoder(model, texts, pool=...)`` over ``texts`` chunk by chunk; chunks in ``folder`` are reused.

    ``tell(done, total)`` is called after each chunk.
    """
    n, size = len(texts), chunk_rows(len(texts))
    devices = pool_devices()
    pool = model.start_multi_process_pool(devices) if devices and n > size else None
    out = None
    try:
        for number, start in enumerate(range(0, n, size)):
            path = Path(folder) / f"chunk-{number:06d}.npy" if folder is not None else None
            if path is not None and path.exists():
                part = np.load(path)
            else:
                part = encoder(model, texts[start:start + size], pool=pool)
                if path is not None:
                    buffer = io.BytesIO()
                    np.save(buffer, part)
                    atomic_write_bytes(path, buffer.getvalue())
            if out is None:  # filled in place: the corpus's embeddings are never held twice
                out = np.empty((n, part.shape[1]), dtype=np.float32)
            out[start:start + len(part)] = part
            if tell is not None:
                tell(min(start + size, n), n)
    finally:
        if pool is not None:
            model.stop_multi_process_pool(pool)
    return out if out is not None else np.zeros((0, model.get_embedding_dimension()), np.float32)
