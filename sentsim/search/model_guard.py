"""The model guard of an index: the model loaded and named for the manifest, and refused when its
fingerprint differs from the recorded one (stored vectors would lose their meaning)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from sentsim.encode.devices import resolve_device
from sentsim.encoder import SentenceEncoder
from sentsim.fingerprint import fingerprint_mismatch, model_fingerprint
from sentsim.storage.hub import ModelNotFoundError
from sentsim.validation import is_integer


def index_encoder(encoder, name: str | None, device: str | None = None, trust_remote_code: bool = False):
    """``(encoder, name to record)``: a model name or folder is loaded (running its own code only with
    ``trust_remote_code``); a local folder is named by its absolute path, so the index opens from any
    working directory."""
    if name is not None and not isinstance(name, (str, os.PathLike)):
        raise TypeError(f"model_name must be a str, a path or None, got {type(name).__name__}")
    if isinstance(encoder, (str, os.PathLike)):
        name = name or str(encoder)
        encoder = SentenceEncoder.from_pretrained(encoder, device=device, trust_remote_code=trust_remote_code)
    elif isinstance(encoder, SentenceEncoder):
        name = name or getattr(encoder, "name_or_path", None)  # where from_pretrained loaded it
        if device is not None:
            encoder.to(resolve_device(device))
    else:
        raise TypeError(f"encoder must be a SentenceEncoder, or a model name or folder, got {type(encoder).__name__}")
    if name and Path(name).is_dir():
        name = str(Path(name).resolve())
    return encoder, str(name) if name else name


class ModelMismatchError(ValueError):
    """The index was built with another model than the one given."""


def manifest_encoder(
    folder: Path, recorded: dict, encoder=None, device: str | None = None, trust_remote_code: bool = False
):
    """The encoder of the index in ``folder``, whose manifest ``recorded`` this model: ``encoder``
    (an encoder, name or folder), else the recorded name; any other model is refused. A model
    loaded here then reads as many tokens as it did when the index was built."""
    recorded_model = encoder is None
    if recorded_model:
        if not recorded.get("name"):
            raise ValueError(f"{folder} does not name its model; pass the encoder (--model on the command line)")
        encoder = recorded["name"]
    loaded_here = isinstance(encoder, (str, os.PathLike))
    try:
        encoder, _ = index_encoder(encoder, recorded.get("name"), device, trust_remote_code)
    except ModelNotFoundError as error:
        if not recorded_model:
            raise
        raise ModelNotFoundError(
            f"{error}. {folder} was built with this model; if its folder moved, pass the model "
            "(DocumentIndex.open(folder, encoder), or --model on the command line)"
        ) from None
    truncated = recorded.get("dim") if is_integer(recorded.get("dim")) and recorded["dim"] < encoder.full_dim else None
    if loaded_here and truncated:  # an index of truncated (Matryoshka) embeddings: the model loaded here truncates too
        with warnings.catch_warnings():  # whether the model was trained for it was told when the index was built
            warnings.simplefilter("ignore")
            encoder.truncate_dim = truncated
    different = fingerprint_mismatch(recorded, model_fingerprint(encoder))
    if loaded_here:  # its length is the index's to set, once it is the same model (another may read fewer)
        different = [field for field in different if field != "max_seq_length"]
    if different and recorded_model:
        raise ModelMismatchError(
            f"{folder} was built with model {recorded['name']}, which now differs in {', '.join(different)} "
            "(changed, or fine-tuned after it was loaded); pass the encoder the index was built with"
        )
    if different:
        hint = f" (the index holds embeddings truncated to {truncated}: truncate_dim={truncated})" if truncated else ""
        raise ModelMismatchError(
            f"{folder} was built with model {recorded.get('name') or '(unnamed)'}; the given encoder "
            f"differs in {', '.join(different)}{hint}. Open it with the same model, or build a new index."
        )
    if loaded_here and recorded.get("max_seq_length") is not None:
        encoder.max_seq_length = recorded["max_seq_length"]
    return encoder
