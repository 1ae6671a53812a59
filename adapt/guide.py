"""The GIST guide, computed once.

``GISTEmbedLoss`` runs its frozen guide on every batch of every epoch. The guide never changes, so
adapt embeds every unique training text with it once, in length-sorted batches, keeps those
embeddings on disk keyed by guide identity and guide input, and hands the loss a stand-in guide
that looks each row up by the student's tokens. The loss itself is sentence-transformers' own
``GISTEmbedLoss.forward``: same masking, margins, contrasts and temperature.

Keying by the student's token ids is exact: stock GIST feeds the guide either those very tokens
(same vocabulary) or their decoded text (different vocabulary), so two texts that tokenize alike
get one guide embedding in both.

The guide may run under bf16 autocast (adapt.precision): its embeddings only decide masks and filters
(the candidates GIST treats as likely false negatives, the mined negatives it drops, the near-duplicate
test questions), never a vector the student learns from or an index holds. The precision is part of the
cache key, so bf16 and fp32 embeddings never mix; the fp32 key is the one from before precision was a setting.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sentence_transformers.sentence_transformer.losses import GISTEmbedLoss

from adapt import precision as precisions
from adapt.files import atomic_write_bytes

logger = logging.getLogger(__name__)

ENCODE_BATCH = 64


@dataclass
class GuideStats:
    texts: int
    encoded: int  # texts the guide had to encode (0 when the disk cache had them all)
    seconds: float
    cache_hit: bool
    cache_path: str | None
    precision: str = "fp32"  # what the guide ran in (adapt.precision)


def must_retokenize(model, guide) -> bool:
    """The condition under which stock GIST decodes the student's tokens for the guide."""
    return model.tokenizer.get_vocab() != guide.tokenizer.get_vocab() or guide.max_seq_length < model.max_seq_length


def _unpadded(features: dict, row: int) -> tuple[int, ...]:
    ids = features["input_ids"][row]
    mask = features.get("attention_mask")
    if mask is not None:
        ids = ids[mask[row].bool()]
    return tuple(int(i) for i in ids.tolist())


def student_keys(model, texts: list[str], prompt: str | None = None, batch_size: int = 256) -> list[tuple[int, ...]]:
    """The token ids the trainer's collator will give the loss for each text."""
    keys = []
    for start in range(0, len(texts), batch_size):
        features = model.preprocess(texts[start:start + batch_size], prompt=prompt)
        keys.extend(_unpadded(features, row) for row in range(len(features["input_ids"])))
    return keys


class GuideTable(nn.Module):
    """Stands in for the guide inside ``GISTEmbedLoss``: student tokens in, cached embedding out."""

    def __init__(self, rows: dict[tuple[int, ...], int], embeddings: torch.Tensor, name: str):
        super().__init__()
        self.rows = rows
        self.register_buffer("embeddings", embeddings, persistent=False)
        self.name = name

    def forward(self, features: dict) -> dict:
        if "cu_seq_lens_q" in features:
            raise ValueError("the cached guide does not support flattened (unpadded) batches")
        try:
            index = [self.rows[_unpadded(features, row)] for row in range(len(features["input_ids"]))]
        except KeyError:
            raise KeyError("a training text is missing from the guide cache; build the cache from the "
                           "same dataset and prompts the trainer uses") from None
        features["sentence_embedding"] = self.embeddings[index].to(features["input_ids"].device)
        return features

    def __repr__(self) -> str:
        return f"GuideTable({self.name!r}, {len(self.rows)} texts)"


class CachedGISTEmbedLoss(GISTEmbedLoss):
    """``GISTEmbedLoss`` whose guide embeddings come from a ``GuideTable``."""

    def __init__(self, model, guide, table: GuideTable, **kwargs):
        super().__init__(model, guide, **kwargs)
        self.guide = table
        self.must_retokenize = False  # the table was built from decoded text when it had to be

    def get_config_dict(self) -> dict:
        config = super().get_config_dict()
        config["guide"] = f"{self.guide.name} (cached)"
        return config


def cache_key(guide, guide_name: str, retokenize: bool, student=None, precision: str = "fp32") -> str:
    """Identity of a guide and of what it is fed: its weights, its length limit, the input mode, and the
    precision it runs in (fp32 adds nothing, so fp32 caches from before stay valid)."""
    digest = hashlib.sha256()
    digest.update(f"{guide_name}|{guide.max_seq_length}|{retokenize}|".encode())
    if precision != "fp32":
        digest.update(f"precision={precision}|".encode())
    for name, tensor in sorted(guide.state_dict().items()):
        digest.update(name.encode())
        flat = tensor.detach().float().flatten()
        digest.update(flat[:: max(1, flat.numel() // 64)].numpy().tobytes())  # a sample of every tensor
        digest.update(str(tuple(tensor.shape)).encode())
    if not retokenize and student is not None:
        digest.update(repr(sorted(student.tokenizer.get_vocab().items())[:1000]).encode())
    return digest.hexdigest()[:20]


def _entry_key(guide_input) -> str:
    return hashlib.sha1(repr(guide_input).encode()).hexdigest()


def _load_disk(folder: Path) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    for shard in sorted(folder.glob("shard-*.npz")):
        try:
            with np.load(shard) as data:
                found.update(zip(data["keys"].tolist(), data["embeddings"]))
        except (OSError, ValueError, KeyError):
            logger.warning("Ignoring an unreadable guide cache shard %s", shard)
    return found


def _save_disk(folder: Path, keys: list[str], embeddings: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, keys=np.array(keys), embeddings=embeddings.astype(np.float32))
    name = hashlib.sha1("".join(keys).encode()).hexdigest()[:16]
    atomic_write_bytes(folder / f"shard-{name}.npz", buffer.getvalue())


@torch.no_grad()
def _encode_batch(guide, features: dict, precision: precisions.Precision) -> torch.Tensor:
    guide.eval()
    features = {k: v.to(guide.device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}
    with precisions.autocast(precision):
        return guide(features)["sentence_embedding"].float().cpu()


def build_table(model, guide, columns: dict[str, list[str]], prompts: dict[str, str] | None = None,
                guide_name: str = "guide", cache_dir: Path | None = None,
                progress=None) -> tuple[GuideTable, GuideStats]:
    """Embed every unique text of every training column once with the guide.

    ``columns`` maps a dataset column to its texts and ``prompts`` a column to the prompt the
    trainer prepends, so the keys match what the collator produces. The guide runs in the run's
    precision (``adapt.precision.active()``).
    """
    start = time.perf_counter()
    precision = precisions.active()
    prompts = prompts or {}
    retokenize = must_retokenize(model, guide)
    keys: list[tuple[int, ...]] = []
    for column, texts in columns.items():
        keys.extend(student_keys(model, list(dict.fromkeys(texts)), prompts.get(column)))
    keys = list(dict.fromkeys(keys))
    if retokenize:
        guide_inputs = model.tokenizer.batch_decode([list(k) for k in keys], skip_special_tokens=True)
    else:
        guide_inputs = keys
    entry_keys = [_entry_key(g) for g in guide_inputs]

    folder = None
    stored: dict[str, np.ndarray] = {}
    if cache_dir is not None:
        folder = Path(cache_dir) / "guide" / cache_key(guide, guide_name, retokenize, model, precision.used)
        stored = _load_disk(folder)
    todo = [i for i, key in enumerate(entry_keys) if key not in stored]
    logger.info("Guide: %d unique training texts, %d to encode, %d from the cache",
                len(keys), len(todo), len(keys) - len(todo))

    if todo:
        order = sorted(todo, key=lambda i: len(keys[i]))
        batches = []
        for s in range(0, len(order), ENCODE_BATCH):
            chunk = order[s:s + ENCODE_BATCH]
            if retokenize:
                batches.append(guide.preprocess([guide_inputs[i] for i in chunk]))
            else:
                batches.append(_pad([keys[i] for i in chunk], model))
        encoded = []
        for n, features in enumerate(batches, start=1):
            encoded.append(_encode_batch(guide, features, precision))
            if progress is not None:
                progress(n, len(batches))
        vectors = torch.cat(encoded).numpy()
        new = {entry_keys[i]: vectors[j] for j, i in enumerate(order)}
        stored.update(new)
        if folder is not None:
            _save_disk(folder, list(new), np.stack(list(new.values())))

    embeddings = torch.from_numpy(np.stack([stored[key] for key in entry_keys]))
    table = GuideTable({key: i for i, key in enumerate(keys)}, embeddings, guide_name)
    stats = GuideStats(len(keys), len(todo), time.perf_counter() - start, not todo and bool(keys),
                       str(folder) if folder else None, precision.used)
    return table, stats


def guide_vectors(model, guide, texts: list[str], prompt: str | None = None, guide_name: str = "guide",
                  cache_dir: Path | None = None) -> np.ndarray:
    """The guide's normalised embedding of each text, fed exactly as in training (and sharing its cache)."""
    table, _ = build_table(model, guide, {"anchor": texts}, {"anchor": prompt} if prompt else None,
                           guide_name, cache_dir)
    rows = [table.rows[key] for key in student_keys(model, texts, prompt)]
    vectors = table.embeddings[rows].numpy()
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _pad(keys: list[tuple[int, ...]], model) -> dict:
    """Rebuild the student's feature dict for already-tokenized rows (same vocabulary: no re-tokenizing)."""
    pad_id = model.tokenizer.pad_token_id or 0
    width = max(len(k) for k in keys)
    input_ids = torch.full((len(keys), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(keys), width), dtype=torch.long)
    for row, key in enumerate(keys):
        input_ids[row, : len(key)] = torch.tensor(key, dtype=torch.long)
        attention[row, : len(key)] = 1
    features = {"input_ids": input_ids, "attention_mask": attention}
    if "token_type_ids" in model.tokenizer.model_input_names:
        features["token_type_ids"] = torch.zeros_like(input_ids)
    return features
