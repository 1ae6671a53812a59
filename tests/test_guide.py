"""adapt's cached guide gives the same loss and the same false-negative masks as stock GISTEmbedLoss."""

import pandas as pd
import pytest
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.losses.merged_forward import embed_columns
from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator
from sentence_transformers.sentence_transformer.losses import GISTEmbedLoss
from sentence_transformers.util import batch_to_device

from adapt.config import RunConfig
from adapt.guide import CachedGISTEmbedLoss, build_table, must_retokenize
from adapt.train import make_loss, training_columns, training_prompts


def load(path):
    model = SentenceTransformer(str(path), device="cpu")
    model.eval()  # no dropout: both losses must see the same student embeddings
    return model


def batches(pairs: pd.DataFrame, model, columns, size=16, prompts=None):
    collate = SentenceTransformerDataCollator(preprocess_fn=model.preprocess, prompts=prompts or {})
    rows = pairs[columns].to_dict("records")
    for start in range(0, len(rows), size):
        batch = collate(rows[start:start + size])
        yield [{key[len(c) + 1:]: value for key, value in batch.items() if key.startswith(c + "_")}
               for c in columns]


def stock_guide_embeddings(loss: GISTEmbedLoss, features):
    """What stock GIST feeds its guide, reproduced from its forward()."""
    with torch.no_grad():
        if loss.must_retokenize:
            decoded = [loss.tokenizer.batch_decode(f["input_ids"], skip_special_tokens=True) for f in features]
            features = [batch_to_device(loss.guide.preprocess(d), "cpu") for d in decoded]
        return embed_columns(loss.guide, [dict(f) for f in features])


def masks(anchor_guide, positive_guide, margin):
    sims = torch.nn.functional.cosine_similarity(anchor_guide.unsqueeze(1), positive_guide.unsqueeze(0), dim=-1)
    return sims > sims.diagonal().view(-1, 1) - margin


@pytest.fixture
def pairs(sample_pairs):
    frame = pd.read_csv(sample_pairs).drop_duplicates("question").head(32).reset_index(drop=True)
    frame["negative"] = frame["passage"].sample(frac=1.0, random_state=0).to_numpy()
    return frame.rename(columns={"question": "anchor", "passage": "positive"})


@pytest.mark.parametrize("guide_name", ["guide", "other_vocab"])
@pytest.mark.parametrize("options", [
    dict(),
    dict(margin_strategy="relative", margin=0.05, temperature=0.05),
    dict(margin=0.1, contrast_anchors=False, contrast_positives=False),
])
@pytest.mark.parametrize("columns", [["anchor", "positive"], ["anchor", "positive", "negative"]])
def test_cached_loss_equals_stock_gist(tiny, pairs, cache_dir, guide_name, options, columns):
    model, guide = load(tiny["student"]), load(tiny[guide_name])
    assert must_retokenize(model, guide) == (guide_name == "other_vocab")
    stock = GISTEmbedLoss(model, guide, **options)
    table, stats = build_table(model, guide, {c: list(pairs[c]) for c in columns}, cache_dir=cache_dir)
    cached = CachedGISTEmbedLoss(model, guide, table, **options)
    assert stats.encoded == stats.texts > 0 and stats.precision == "fp32"  # outside a bf16 run: fp32, exact

    for features in batches(pairs, model, columns):
        expected = stock_guide_embeddings(stock, features)
        looked_up = [table(dict(f))["sentence_embedding"] for f in features]
        for e, l in zip(expected, looked_up):
            torch.testing.assert_close(l, e, atol=1e-5, rtol=1e-5)
        margin = options.get("margin", 0.0)
        assert torch.equal(masks(looked_up[0], looked_up[1], margin), masks(expected[0], expected[1], margin))
        with torch.no_grad():
            stock_value = stock([dict(f) for f in features], None)
            cached_value = cached([dict(f) for f in features], None)
        assert cached_value.item() == pytest.approx(stock_value.item(), abs=1e-5)


@pytest.mark.parametrize("guide_name", ["guide", "other_vocab"])
def test_training_loss_on_mined_triplets_equals_stock_gist(tiny, pairs, cache_dir, sample_pairs, guide_name):
    """make_loss on a train frame with a negative column: the guide table covers the negatives, prompted as
    the trainer prompts them, and the loss equals stock GIST on the same (anchor, positive, negative) batches."""
    model, guide = load(tiny["student"]), load(tiny[guide_name])
    model.prompts = {"query": "query: ", "document": "passage: "}
    prompts = training_prompts(model)
    assert prompts == {"anchor": "query: ", "positive": "passage: ", "negative": "passage: "}
    train = pairs.rename(columns={"anchor": "question", "positive": "passage"})
    assert list(training_columns(train)) == ["anchor", "positive", "negative"]
    config = RunConfig(pairs=sample_pairs, temperature=0.05, margin=0.05, margin_strategy="relative")
    cached, stats = make_loss(model, guide, guide_name, train, config, cache_dir)
    assert isinstance(cached, CachedGISTEmbedLoss)
    assert stats.texts == len(set(pairs["anchor"]) | set(pairs["positive"]) | set(pairs["negative"]))
    stock = GISTEmbedLoss(model, guide, temperature=0.05, margin=0.05, margin_strategy="relative")
    columns = ["anchor", "positive", "negative"]
    for features in batches(pairs, model, columns, prompts=prompts):
        with torch.no_grad():
            stock_value = stock([dict(f) for f in features], None)
            cached_value = cached([dict(f) for f in features], None)
        assert cached_value.item() == pytest.approx(stock_value.item(), abs=1e-5)


def test_second_build_reads_the_disk_cache(tiny, pairs, cache_dir):
    model, guide = load(tiny["student"]), load(tiny["guide"])
    columns = {"anchor": list(pairs["anchor"]), "positive": list(pairs["positive"])}
    first_table, first = build_table(model, guide, columns, cache_dir=cache_dir)
    second_table, second = build_table(model, guide, columns, cache_dir=cache_dir)
    assert not first.cache_hit and first.encoded == first.texts
    assert second.cache_hit and second.encoded == 0
    torch.testing.assert_close(second_table.embeddings, first_table.embeddings)

    # one new text: only it is encoded
    columns["anchor"].append("how deep should i plant garlic cloves")
    _, third = build_table(model, guide, columns, cache_dir=cache_dir)
    assert third.encoded == 1 and not third.cache_hit


def test_another_guide_does_not_hit_the_cache(tiny, pairs, cache_dir):
    model = load(tiny["student"])
    columns = {"anchor": list(pairs["anchor"])}
    build_table(model, load(tiny["guide"]), columns, cache_dir=cache_dir)
    _, other = build_table(model, load(tiny["other_vocab"]), columns, cache_dir=cache_dir)
    assert other.encoded == other.texts


def test_missing_text_is_a_clear_error(tiny, pairs):
    model, guide = load(tiny["student"]), load(tiny["guide"])
    table, _ = build_table(model, guide, {"anchor": list(pairs["anchor"][:4])})
    features = model.preprocess(["a text the table never saw"])
    with pytest.raises(KeyError, match="missing from the guide cache"):
        table(features)
