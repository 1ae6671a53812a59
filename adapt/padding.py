"""Less padding in training: the student's forward pass over a batch, in length-sorted slices.

A training batch is padded to its longest text, and sentence-transformers merges the positive and
negative columns into one forward padded to the longest of both. On the bundled sample, 56% of the
passage tokens the student computed in training were padding (``python -m bench.step_profile``,
bench/RESULTS.md). On a GPU that padding mostly hides in idle lanes; on a CPU every padded token is
arithmetic done for nothing.

``sorted_slices`` runs the student's transformer over the batch's rows sorted by length, a few rows at a
time, each slice trimmed to its own longest text, and puts the token embeddings back in the batch's
order and width. The rows, the loss and the in-batch negatives are unchanged: with attention masks,
a row's embedding does not depend on how much padding sits beside it, so this computes the same
embeddings (to float rounding) with fewer tokens, and autograd carries the gradients through the
slices. Dropout draws differ from one unsliced pass, as they differ between any two steps.

Why this is adapt's: sentence-transformers sorts by length when it encodes (``encode``) but not in a
training step; its ``chunked_padded_forward`` re-trims chunks for multi-vector models, in the batch's
order, not sorted, and only where a loss asks for it. Its ``GISTEmbedLoss`` calls the model through
``embed_columns``, so the place to slice is the model's first module, for the duration of training.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager

import torch

SLICE_ROWS = 16  # rows a slice: a 32-pair batch gives two anchor slices and four candidate slices


def _take(features: dict, order: torch.Tensor, width: int, rows: int) -> dict:
    """Rows ``order`` of a feature batch, token tensors trimmed to ``width`` columns."""
    part = {}
    for key, value in features.items():
        if isinstance(value, torch.Tensor) and key != "prompt_length" and value.ndim >= 1 and value.shape[0] == rows:
            value = value[order]
            if value.ndim == 2:
                value = value[:, :width]
        part[key] = value
    return part


def sliced_forward(forward, features: dict, slice_rows: int | None = None) -> dict:
    """``forward`` (a transformer module's) over ``features`` in length-sorted slices of ``slice_rows`` rows.

    Returns what ``forward(features)`` returns, with ``token_embeddings`` in the batch's order and width
    (zeros where a row is padding). Falls back to one pass where slicing cannot apply (no attention mask,
    a flattened batch, one slice's worth of rows). ``slice_rows`` defaults to ``SLICE_ROWS``.
    """
    slice_rows = slice_rows or SLICE_ROWS
    mask = features.get("attention_mask")
    if (not isinstance(mask, torch.Tensor) or mask.ndim != 2 or "cu_seq_lens_q" in features
            or mask.shape[0] <= slice_rows):
        return forward(features)
    rows, width = mask.shape
    lengths = mask.sum(dim=1)
    order = torch.argsort(lengths, descending=True, stable=True)
    pieces = []
    for start in range(0, rows, slice_rows):
        chosen = order[start:start + slice_rows]
        part_width = max(1, int(lengths[chosen].max()))
        out = forward(_take(features, chosen, part_width, rows))
        tokens = out["token_embeddings"]
        if tokens.shape[1] < width:
            tokens = torch.nn.functional.pad(tokens, (0, 0, 0, width - tokens.shape[1]))
        pieces.append(tokens)
    features["token_embeddings"] = torch.cat(pieces)[torch.argsort(order)]  # in place, as the module's own does
    return features


def pays() -> bool:
    """Slice where padding costs arithmetic: on a CPU. On a GPU (not measured here) training runs as it did."""
    return not torch.cuda.is_available()


@contextmanager
def sorted_slices(model, slice_rows: int | None = None):
    """While the block runs, ``model``'s first module (its transformer) runs training passes sliced
    (``slice_rows`` rows a slice, default ``SLICE_ROWS``).

    Yields the rows a slice, or None where slicing does not pay (``pays``) and nothing changes.
    Only passes in training mode with gradients on are sliced (the trainer's steps); the dev evaluations
    inside training, which sentence-transformers already sorts by length, run as before. The module's own
    forward comes back when the block ends, so the saved model is untouched.
    """
    if not pays():
        yield None
        return
    slice_rows = slice_rows or SLICE_ROWS
    first = model[0]
    own = first.__dict__.get("forward")  # an instance-level forward someone set before, kept
    stock = first.forward

    @functools.wraps(stock)
    def forward(features, *args, **kwargs):
        if args or kwargs or not (first.training and torch.is_grad_enabled()):
            return stock(features, *args, **kwargs)
        return sliced_forward(stock, features, slice_rows)

    first.forward = forward
    try:
        yield slice_rows
    finally:
        if own is None:
            del first.forward  # the class's forward shows through again
        else:
            first.forward = own
