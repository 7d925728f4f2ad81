"""A model's fingerprint: what must match for stored vectors to stay meaningful."""

from __future__ import annotations

import hashlib

import torch


def model_fingerprint(encoder, name: str | None = None) -> dict:
    """Name, a hash of the weights, tower, pooling, normalization, dimension and max length."""
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
    }


def fingerprint_mismatch(stored: dict, current: dict) -> list[str]:
    """The fields (all but the name) on which two fingerprints differ."""
    return [key for key in stored if key != "name" and stored.get(key) != current.get(key)]
