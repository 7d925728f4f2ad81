"""The model of an index: loaded and named for the manifest, and fingerprinted (what must match
for stored vectors to stay meaningful)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from sentsim.devices import resolve_device
from sentsim.hub import ModelNotFoundError
from sentsim.search.chunking import untruncated


def index_encoder(encoder, name: str | None, device: str | None = None, trust_remote_code: bool = False):
    """``(encoder, name to record)``: a model name or folder is loaded (running its own code only with
    ``trust_remote_code``); a local folder is named by its absolute path, so the index opens from any
    working directory."""
    from sentsim.encoder import SentenceEncoder

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
    different = fingerprint_mismatch(recorded, model_fingerprint(encoder))
    if loaded_here:  # its length is the index's to set, once it is the same model (another may read fewer)
        different = [field for field in different if field != "max_seq_length"]
    if different and recorded_model:
        raise ModelMismatchError(
            f"{folder} was built with model {recorded['name']}, which now differs in {', '.join(different)} "
            "(changed, or fine-tuned after it was loaded); pass the encoder the index was built with"
        )
    if different:
        raise ModelMismatchError(
            f"{folder} was built with model {recorded.get('name') or '(unnamed)'}; the given encoder "
            f"differs in {', '.join(different)}. Open it with the same model, or build a new index."
        )
    if loaded_here and recorded.get("max_seq_length") is not None:
        encoder.max_seq_length = recorded["max_seq_length"]
    return encoder


def model_fingerprint(encoder, name: str | None = None) -> dict:
    """Name, hashes of the weights and the tokenizer, tower, pooling, normalization, dimension and max length."""
    digest = hashlib.sha256()
    for key, tensor in sorted(encoder.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return {
        "name": name or "",
        "weights_sha256": digest.hexdigest(),
        "tower": encoder.tower.kind,
        "pooling": encoder.pooling.value,
        "normalize": bool(encoder.normalize),
        "dim": encoder.dim,
        "max_seq_length": encoder.max_seq_length,
        "tokenizer_sha256": tokenizer_digest(encoder),
    }


# Texts whose token ids show the normalizer, pre-tokenizer, merges and special tokens at work.
PROBE_TEXTS = (
    "Hello World! The QUICK brown fox, don't re-encode it.",
    "Café naïve façade — Zürich 3.14 ＡＢＣ 東京 2024 🙂 tab\there",
    "   leading spaces, trailing spaces   ",
)


def tokenizer_digest(encoder) -> str:
    """SHA-256 of what the tokenizer does: its vocabulary (by id) and the ids it gives the probe
    texts (with special tokens, without truncation: the max length has its own field), and its
    lowercasing. Behaviour, not the JSON that ``tokenizers`` writes, which changes between versions."""
    wrapper = encoder.tower.tokenizer
    tokenizer = untruncated(wrapper.tokenizer)
    vocabulary = sorted(tokenizer.get_vocab(with_added_tokens=True).items(), key=lambda item: item[1])
    probes = [
        tokenizer.encode(text.lower() if getattr(wrapper, "lowercase", False) else text).ids for text in PROBE_TEXTS
    ]
    text = json.dumps([vocabulary, probes, bool(getattr(wrapper, "lowercase", False))], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fingerprint_mismatch(stored: dict, current: dict) -> list[str]:
    """The fields (all but the name) on which two fingerprints differ; a field the stored one lacks
    (written by an older sentsim) is not compared."""
    return [key for key in stored if key != "name" and stored.get(key) != current.get(key)]
