"""Which model a saved classifier was fitted with: a digest written on save, compared on load."""

from __future__ import annotations

import hashlib
import json

from sentsim.encoder import SentenceEncoder
from sentsim.fingerprint import model_fingerprint


def model_digest(encoder) -> str | None:
    """SHA-256 of the model's fingerprint (weights, tokenizer, pooling, normalization, dimension,
    max length, and the default prompt: "" without one), or None for an encoder that is not a ``SentenceEncoder``."""
    if not isinstance(encoder, SentenceEncoder):
        return None
    fingerprint = {key: value for key, value in model_fingerprint(encoder).items() if key != "name"}
    name = encoder.default_prompt_name  # its prompt is what encode() prepends
    fingerprint["default_prompt"] = encoder.prompts.get(name, "") if name else ""
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()


def fitted_with_another_model(saved: str | None, encoder) -> bool:
    """True when a saved digest names another model than ``encoder`` (unknown on either side: False)."""
    current = model_digest(encoder) if saved is not None else None
    return saved is not None and current is not None and saved != current
