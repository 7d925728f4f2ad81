"""Safetensors weights: found, checked and loaded with errors that name the file."""

from __future__ import annotations

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
    return files


def check_safetensors(file: str | Path) -> None:
    """Open the header of ``file``; a truncated or corrupted file raises a WeightsError naming it."""
    try:
        with safe_open(str(file), framework="pt") as handle:
            handle.keys()
    except (SafetensorError, OSError, ValueError) as error:
        raise WeightsError(f"corrupted or truncated safetensors file {file}: {error}") from error


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
