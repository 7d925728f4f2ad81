"""A LoRA adapter's folder: the adapter alone, beside the name and fingerprint of its base model.

- ``adapter_model.safetensors`` and ``adapter_config.json``: PEFT's files (``PeftModel.from_pretrained``
  reads them onto the base transformer);
- ``adapter_sentsim.json``: its ``format``, the sentsim version, the LoRA settings, and the base
  model's name or folder and fingerprint (:mod:`sentsim.fingerprint`).

Loading applies the adapter to that base only: a model whose fingerprint differs is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

from sentsim._version import __version__
from sentsim.fingerprint import fingerprint_mismatch, model_fingerprint
from sentsim.lora import Adapter, LoraSettings, adapter_weights, add_lora, load_adapter_weights
from sentsim.storage.atomic import atomic_folder, check_replaceable
from sentsim.storage.formats import read_versioned
from sentsim.storage.weights import load_safetensors, save_safetensors

ADAPTER_CONFIG = "adapter_sentsim.json"
ADAPTER_FORMAT = 1  # of adapter_sentsim.json; any other is refused
PEFT_WEIGHTS, PEFT_CONFIG = "adapter_model.safetensors", "adapter_config.json"
PEFT_PREFIX = "base_model.model."  # PEFT's name of the base model inside its wrapper

__all__ = ["ADAPTER_CONFIG", "is_adapter_folder", "load_adapter", "read_adapter", "save_adapter"]


def is_adapter_folder(folder: Path) -> bool:
    return (Path(folder) / ADAPTER_CONFIG).is_file()


def save_adapter(encoder, folder: Path, *, markers: tuple[str, ...], overwrite: bool = False) -> None:
    """Write ``encoder``'s adapter to ``folder`` atomically (``markers``: the files that show a folder
    holds a model, which a save may replace)."""
    adapter: Adapter = encoder.adapter
    if adapter.base is None:
        raise ValueError(
            "the adapter's base model was not loaded by name or from a folder (its name_or_path is None), so the "
            "adapter cannot point to it: save the base model, load it with from_pretrained and add the adapter "
            "to that, or save with merge=True"
        )
    check_replaceable(folder, markers, "model", overwrite=overwrite)
    settings = adapter.settings
    peft_config = {
        "peft_type": "LORA",
        "task_type": "FEATURE_EXTRACTION",
        "base_model_name_or_path": adapter.base,
        "r": settings.rank,
        "lora_alpha": settings.alpha,
        "lora_dropout": settings.dropout,
        "target_modules": list(settings.targets),
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
    }
    record = {
        "format": ADAPTER_FORMAT,
        "sentsim_version": __version__,
        "lora": settings.to_dict(),
        "base": adapter.base,
        "base_fingerprint": adapter.base_fingerprint,
    }
    with atomic_folder(folder) as staging:
        weights = {PEFT_PREFIX + name: tensor for name, tensor in adapter_weights(encoder).items()}
        save_safetensors(weights, staging / PEFT_WEIGHTS)
        (staging / PEFT_CONFIG).write_text(json.dumps(peft_config, indent=2) + "\n", encoding="utf-8")
        (staging / ADAPTER_CONFIG).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def read_adapter(folder: Path) -> dict:
    """``adapter_sentsim.json`` of ``folder``, checked."""
    path = Path(folder) / ADAPTER_CONFIG
    record = read_versioned(path, ADAPTER_FORMAT, "adapter")
    missing = [key for key in ("lora", "base", "base_fingerprint") if key not in record]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(map(repr, missing))}")
    return record


def load_adapter(encoder, folder: str | Path):
    """Apply the adapter saved in ``folder`` to ``encoder`` (in place; returned), which must be the
    base model it was trained on: a model whose fingerprint differs is refused, naming the fields."""
    folder = Path(folder)
    record = read_adapter(folder)
    if getattr(encoder, "adapter", None) is not None:
        raise ValueError("this encoder already has a LoRA adapter; load the adapter onto its base model")
    found = model_fingerprint(encoder)
    differ = fingerprint_mismatch(record["base_fingerprint"], found)
    if differ:
        raise ValueError(
            f"{folder} is an adapter for another base model ({record['base']}); this model differs in "
            f"{', '.join(differ)}. Load the adapter onto the model it was trained on"
        )
    weights = load_safetensors(folder / PEFT_WEIGHTS)
    add_lora(encoder, LoraSettings.from_dict(record["lora"]))
    weights = {name.removeprefix(PEFT_PREFIX): tensor for name, tensor in weights.items()}
    load_adapter_weights(encoder, weights, str(folder / PEFT_WEIGHTS))
    encoder.adapter = Adapter(encoder.adapter.settings, record["base"], record["base_fingerprint"])
    return encoder
