"""Offline, deterministic fixtures: tiny BERT models built from scratch, small pair files."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before anything imports huggingface_hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_PAIRS = ROOT / "sample_data" / "agriculture_pairs.csv"
SAMPLE_CORPUS = ROOT / "sample_data" / "agriculture_corpus.csv"
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _vocabulary(limit: int | None = None) -> list[str]:
    text = " ".join(pd.read_csv(SAMPLE_PAIRS).stack()) + " " + " ".join(pd.read_csv(SAMPLE_CORPUS).stack())
    words = sorted(set(re.findall(r"[a-z]+", text.lower())))
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    pieces = ["##" + c for c in letters] + [str(d) for d in range(10)] + list(".,;:!?'\"()-/%")
    words = words[:limit] if limit else words
    return SPECIAL + list(dict.fromkeys(letters + pieces + words))


def build_tiny_model(folder: Path, hidden: int = 32, layers: int = 2, vocab_limit: int | None = None,
                     seed: int = 0, max_seq_length: int = 64) -> Path:
    """A randomly initialised BERT sentence-transformer, saved as a normal model directory."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    raw = folder / "_raw"
    raw.mkdir(exist_ok=True)
    vocab = _vocabulary(vocab_limit)
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True)
    assert len(tokenizer.get_vocab()) == len(vocab), "the tokenizer ignored the vocabulary"
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=hidden * 2, max_position_embeddings=128)
    BertModel(config).save_pretrained(raw)
    tokenizer.save_pretrained(raw)
    transformer = Transformer(str(raw), max_seq_length=max_seq_length)
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    model = SentenceTransformer(modules=[transformer, pooling], device="cpu")
    out = folder / "model"
    model.save(str(out))
    shutil.rmtree(raw)
    return out


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-models")
    return {
        "student": build_tiny_model(root / "student", hidden=32, seed=0),
        "guide": build_tiny_model(root / "guide", hidden=48, seed=1),  # same vocabulary, bigger
        "other_vocab": build_tiny_model(root / "other", hidden=40, seed=2, vocab_limit=400),  # different vocabulary
    }


@pytest.fixture
def tiny(tiny_models, tmp_path) -> dict[str, Path]:
    """A fresh copy of each tiny model per test, so no test can change another's."""
    copies = {}
    for name, path in tiny_models.items():
        copies[name] = tmp_path / "models" / name
        shutil.copytree(path, copies[name])
    return copies


@pytest.fixture
def sample_pairs() -> Path:
    return SAMPLE_PAIRS


@pytest.fixture
def sample_corpus() -> Path:
    return SAMPLE_CORPUS


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("ADAPT_CACHE", str(folder))
    return folder
