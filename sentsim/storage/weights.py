"""Safetensors weights: found, checked and loaded with errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

PICKLE_WEIGHTS = ("pytorch_model.bin", "model.pt", "model.pth", "pytorch_model.bin.index.json")


class WeightsError(OSError):
    """Weights are missing, pickled, truncated or corrupted."""


def safetensors_files(folder: str | Path) -> list[Path]:
    """The safetensors weight files of a model folder, each checked to open; else a WeightsError."""
    folder = Path(folder)
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        pickled = [name for name in PICKLE_WEIGHTS if (folder / name).exists()]
        if pickled:
            raise WeightsError(
                f"{folder} holds only pickled weights ({', '.join(pickled)}); sentsim loads safetensors only, "
                "since unpickling can run arbitrary code. Convert the model to safetensors first."
            )
        raise WeightsError(f"no weights in {folder}: expected model.safetensors")
    for file in files:
        check_safetensors(file)
    index = folder / "model.safetensors.index.json"
    if index.exists():  # sharded weights: every shard must lie in this folder
        try:
            shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise WeightsError(f"{index} is not a safetensors shard index: {error!r}") from None
        for shard in shards:
            if not isinstance(shard, str) or not inside(folder, shard):
                raise WeightsError(f"{index} names the shard {shard!r}, which is not a file of {folder}")
    return files


def inside(folder: Path, name: str) -> bool:
    """Whether the relative name ``name`` stays inside ``folder``: no absolute path, no ``..``.
    (Links are not followed: the Hugging Face cache links a snapshot's files to its blobs.)"""
    path = Path(name)
    return not path.is_absolute() and not path.drive and ".." not in path.parts


def check_safetensors(file: str | Path) -> None:
    """Open the header of ``file``; a truncated or corrupted file raises a WeightsError naming it."""
    try:
        with safe_open(str(file), framework="pt") as handle:
            handle.keys()
    except (SafetensorError, OSError, ValueError) as error:
        raise WeightsError(f"corrupted or truncated safetensors file {file}: {error}") from error


def tensor_shapes(file: str | Path) -> dict[str, tuple[int, ...]]:
    """The name and shape of every tensor in ``file``, read from its header (nothing is loaded)."""
    check_safetensors(file)
    with safe_open(str(file), framework="pt") as handle:
        return {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}


def load_safetensors(file: str | Path) -> dict[str, Tensor]:
    """Load a state dict from ``file`` after checking it."""
    file = Path(file)
    if not file.exists():
        raise WeightsError(f"missing weights file {file}")
    check_safetensors(file)
    return load_file(str(file))


def save_safetensors(state: dict[str, Tensor], file: str | Path) -> None:
    """Save a state dict (contiguous copies, so shared or strided tensors save too)."""
    save_file({name: tensor.detach().contiguous().cpu() for name, tensor in state.items()}, str(file))
