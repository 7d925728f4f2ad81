"""A few-shot classifier on disk: ``few_shot.json`` (settings, texts, labels, label texts) and
``support.safetensors`` (the embeddings of the examples and of the label texts).

This module reads and writes the files and checks their format; what goes in them is
:class:`sentsim.decisions.FewShotClassifier`'s (``save`` / ``load``). Labels are JSON values, so a
str label stays a str and an int an int; label-keyed dicts are written as ``[label, value]`` pairs.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from sentsim._version import __version__
from sentsim.decisions.model_check import fitted_with_another_model
from sentsim.storage.atomic import atomic_folder, check_replaceable, recover_folder
from sentsim.storage.formats import check_format, read_json_object
from sentsim.storage.weights import load_safetensors, save_safetensors

__all__ = ["FEW_SHOT_FORMAT", "read_classifier", "stale", "write_classifier"]

logger = logging.getLogger(__name__)

CONFIG_NAME, EMBEDDINGS_NAME = "few_shot.json", "support.safetensors"
FEW_SHOT_FORMAT = 2  # of few_shot.json; any other is refused
SETTINGS = (  # saved, passed to FewShotClassifier()
    "strategy",
    "k",
    "threshold",
    "unknown_label",
    "temperature",
    "logistic_c",
    "label_weight",
    "multi_label",
)
STATE = ("labels", "label_text", "texts", "example_labels", "class_thresholds", "label_prompt", "embedded_label_texts")
SAVED_KEYS = ("format", *SETTINGS, *STATE, "model_sha256")  # what load needs
ARRAYS = ("embeddings", "label_embeddings")


def write_classifier(folder: str | Path, config: dict, arrays: dict[str, np.ndarray], *, overwrite: bool) -> None:
    """Write ``config`` (every key of ``SAVED_KEYS`` but ``format``) and ``arrays`` to ``folder``, atomically.

    It replaces the whole folder, so a non-empty folder that holds no saved classifier is refused
    unless ``overwrite``.
    """
    check_replaceable(folder, (CONFIG_NAME,), "few-shot classifier", overwrite=overwrite)
    document = {"format": FEW_SHOT_FORMAT, "sentsim_version": __version__, **config}
    tensors = {name: torch.from_numpy(np.ascontiguousarray(arrays[name], dtype=np.float32)) for name in ARRAYS}
    with atomic_folder(folder) as staging:
        (staging / CONFIG_NAME).write_text(json.dumps(document, ensure_ascii=False) + "\n", encoding="utf-8")
        save_safetensors(tensors, staging / EMBEDDINGS_NAME)


def read_classifier(folder: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """``(config, arrays)`` of a classifier written by :func:`write_classifier`; a ValueError naming
    the file when it is not one, or of another format."""
    folder = Path(folder)
    path = folder / CONFIG_NAME
    recover_folder(folder)  # a save that a crash interrupted between its two renames
    config = read_json_object(path, "saved few-shot classifier")
    if "format" in config:  # before the other keys: another format may lack them
        check_format(path, config, FEW_SHOT_FORMAT, "few-shot classifier")
    missing = [key for key in SAVED_KEYS if key not in config]
    if missing:
        raise ValueError(f"{path} is not a saved few-shot classifier (no {', '.join(missing)})")
    tensors = load_safetensors(folder / EMBEDDINGS_NAME)
    return config, {name: tensors[name].numpy() for name in ARRAYS}


def pairs_to_dict(pairs: object, name: str, path: Path) -> dict:
    """A saved list of ``[label, value]`` pairs as a dict (labels keep their JSON type)."""
    if not isinstance(pairs, list) or not all(isinstance(pair, list) and len(pair) == 2 for pair in pairs):
        raise ValueError(f"{path}: {name} must be a list of [label, value] pairs, got {pairs!r}")
    return {label: value for label, value in pairs}


def stale(folder: str | Path, config: dict, dim: int, encoder, prompt: str | None) -> bool:
    """Whether the saved embeddings do not fit ``encoder`` (another model, dimension or label prompt),
    so the classifier must embed its support set and label texts again; logged as a warning."""
    reason = None
    if fitted_with_another_model(config["model_sha256"], encoder):
        reason = "was saved with another model"
    elif dim != encoder.dim:
        reason = f"was saved with {dim}-dimensional embeddings; the encoder gives {encoder.dim}"
    elif config["label_prompt"] != prompt:
        reason = "embedded its label texts with another prompt"
    if reason:
        logger.warning(
            "%s %s: the support set is embedded again (label texts too), and a saved threshold may no longer fit",
            folder,
            reason,
        )
    return reason is not None
