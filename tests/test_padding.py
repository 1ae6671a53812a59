"""Length-sorted slices in training (adapt.padding): the same embeddings and gradients, fewer tokens."""

import contextlib

import pandas as pd
import pytest
import torch
from sentence_transformers import SentenceTransformer

from adapt import padding


def _student(path):
    model = SentenceTransformer(str(path), device="cpu")
    for module in model.modules():  # dropout off, so two passes can be compared exactly
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    model.train()
    return model


def _texts(sample_pairs, n=40):
    passages = pd.read_csv(sample_pairs)["passage"].astype(str).tolist()
    # lengths that vary a lot, as a real batch's do
    return [" ".join(p.split()[: 3 + (i * 7) % 60]) for i, p in enumerate(passages[:n])]


def _pass(model, features, sliced):
    model.zero_grad()
    features = dict(features)
    if sliced:
        with padding.sorted_slices(model, slice_rows=8):
            embeddings = model(features)["sentence_embedding"]
    else:
        embeddings = model(features)["sentence_embedding"]
    (embeddings[:, :5].sum() + (embeddings ** 2).sum()).backward()
    return embeddings.detach(), _grads(model)


def _grads(model) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def test_sliced_pass_gives_the_same_embeddings_and_gradients(tiny, sample_pairs):
    model = _student(tiny["student"])
    features = model.preprocess(_texts(sample_pairs))
    whole, whole_grads = _pass(model, features, sliced=False)
    sliced, sliced_grads = _pass(model, features, sliced=True)
    assert torch.allclose(whole, sliced, atol=1e-5)
    assert torch.allclose(whole_grads, sliced_grads, atol=1e-4 * whole_grads.abs().max().item())


def test_slices_are_sorted_and_trimmed(tiny, sample_pairs):
    model = _student(tiny["student"])
    features = model.preprocess(_texts(sample_pairs))
    widths = []

    def forward(part):
        widths.append(tuple(part["input_ids"].shape))
        return model[0].__class__.forward(model[0], part)

    out = padding.sliced_forward(forward, dict(features), slice_rows=8)
    full = features["input_ids"].shape[1]
    assert len(widths) == 5 and all(rows == 8 for rows, _ in widths)
    assert widths[0][1] == full and [w for _, w in widths] == sorted((w for _, w in widths), reverse=True)
    assert sum(rows * width for rows, width in widths) < 0.8 * 40 * full  # far fewer token positions
    assert out["token_embeddings"].shape[:2] == features["input_ids"].shape


def test_the_slice_size_is_read_when_called(tiny, sample_pairs, monkeypatch):
    model = _student(tiny["student"])
    features = model.preprocess(_texts(sample_pairs))
    rows = []
    monkeypatch.setattr(padding, "SLICE_ROWS", 10)  # what bench.step_profile --slice-rows sets

    def forward(part):
        rows.append(part["input_ids"].shape[0])
        return model[0].__class__.forward(model[0], part)

    padding.sliced_forward(forward, dict(features))
    assert rows == [10, 10, 10, 10]


def test_only_training_passes_are_sliced_and_the_module_comes_back(tiny, sample_pairs):
    model = _student(tiny["student"])
    first = model[0]
    calls = []
    stock = padding.sliced_forward
    padding.sliced_forward = lambda *a, **k: calls.append(1) or stock(*a, **k)
    try:
        features = model.preprocess(_texts(sample_pairs, 20))
        with padding.sorted_slices(model, slice_rows=8):
            model(dict(features))
            assert calls == [1]
            model.eval()
            model(dict(features))  # evaluation inside training: not sliced
            model.train()
            with torch.no_grad():
                model(dict(features))
            assert calls == [1]
    finally:
        padding.sliced_forward = stock
    assert "forward" not in first.__dict__


def test_the_cached_gist_loss_and_its_gradients_are_the_same_in_slices(tiny, sample_pairs):
    """The loss adapt trains with, on (anchor, positive, negative) batches as the trainer collates them: slicing
    the student's passes changes neither the loss nor any gradient (dropout off), so the guide's look-ups
    and masks see the batch's rows in their own order."""
    from adapt.guide import CachedGISTEmbedLoss, build_table
    from tests.test_guide import batches  # the trainer's collator, split into columns

    model, guide = _student(tiny["student"]), SentenceTransformer(str(tiny["guide"]), device="cpu")
    frame = pd.read_csv(sample_pairs).drop_duplicates("question").head(64).reset_index(drop=True)
    frame = frame.rename(columns={"question": "anchor", "passage": "positive"})
    frame["negative"] = frame["positive"].sample(frac=1.0, random_state=0).to_numpy()
    columns = ["anchor", "positive", "negative"]
    table, _ = build_table(model, guide, {c: list(frame[c]) for c in columns})
    loss = CachedGISTEmbedLoss(model, guide, table)
    for features in batches(frame, model, columns, size=32):
        found = []
        for sliced in (False, True):
            model.zero_grad()
            with padding.sorted_slices(model, slice_rows=8) if sliced else contextlib.nullcontext():
                value = loss([dict(f) for f in features], None)
                value.backward()
            found.append((value.item(), _grads(model)))
        (whole, whole_grads), (sliced, sliced_grads) = found
        assert sliced == pytest.approx(whole, abs=1e-5)
        assert torch.allclose(whole_grads, sliced_grads, atol=1e-4 * whole_grads.abs().max().item())
