"""What identifies a model's embeddings: a fingerprint of its weights, tokenizer, pooling,
normalization, dimension and max length. An index and a saved classifier record it, and refuse a
model whose fingerprint differs."""

from __future__ import annotations

import hashlib
import json

import torch

from sentsim.tokenization import untruncated


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
    """The fields (all but the name) on which two fingerprints differ; a field only one has differs."""
    return [key for key in stored | current if key != "name" and stored.get(key) != current.get(key)]
