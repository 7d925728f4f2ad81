"""A model's fingerprint: what must match for stored vectors to stay meaningful."""

from __future__ import annotations

import hashlib

import torch
from tokenizers import Tokenizer


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


def tokenizer_digest(encoder) -> str:
    """SHA-256 of the tokenizer's JSON (vocabulary, normalizer, pre-tokenizer...; truncation and
    padding left out: the max length has its own field) and of its lowercasing."""
    wrapper = encoder.tower.tokenizer
    tokenizer = Tokenizer.from_str(wrapper.tokenizer.to_str())
    tokenizer.no_truncation()
    tokenizer.no_padding()
    text = tokenizer.to_str() + f"\nlowercase={bool(getattr(wrapper, 'lowercase', False))}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fingerprint_mismatch(stored: dict, current: dict) -> list[str]:
    """The fields (all but the name) on which two fingerprints differ; a field the stored one lacks
    (written by an older sentsim) is not compared."""
    return [key for key in stored if key != "name" and stored.get(key) != current.get(key)]
