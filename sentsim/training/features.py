"""The texts of a training step as model inputs: padded ``(B, L)``, or packed end to end ``(T,)``.

Packed inputs spend no compute on padding (variable-length attention keeps each text to
itself, see ``sentsim.towers.packed``). On CUDA, host tensors are pinned and copied without
blocking, so the host tokenizes the next batch while the GPU still runs this one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from sentsim.encode.batches import packed_batch
from sentsim.towers.packed import PackedLayout


@dataclass
class TextInputs:
    """Token ids on the training device, with their ``attention_mask`` (padded) or ``layout`` (packed)."""

    input_ids: Tensor  # (B, L) padded, (T,) packed
    attention_mask: Tensor | None = None  # (B, L)
    layout: PackedLayout | None = None


def text_inputs(encoder, texts: Sequence[str], device: torch.device, *, packed: bool) -> TextInputs:
    """Tokenize ``texts`` with ``encoder``'s tokenizer into padded or packed inputs on ``device``."""
    tokens = encoder.tower.tokenizer.encode(texts)
    if not packed:
        input_ids, attention_mask = encoder.tower.tokenizer.pad(tokens)
        return TextInputs(to_device(input_ids, device), to_device(attention_mask, device))
    batch = packed_batch(tokens, slice(0, len(tokens))).apply(lambda tensor: to_device(tensor, device))
    return TextInputs(batch.input_ids, layout=batch.layout)  # the layout built once, on the device


def embed_inputs(model, inputs: TextInputs) -> Tensor:
    """Embeddings ``(B, dim)`` with gradients from ``model`` (a ``SentenceEncoder`` or its DDP wrapper)."""
    if inputs.layout is not None:
        return model(inputs.input_ids, layout=inputs.layout)
    return model(inputs.input_ids, inputs.attention_mask)


def to_device(tensor: Tensor, device: torch.device) -> Tensor:
    """``tensor`` on ``device``; to a GPU through pinned memory, without waiting for the copy."""
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)
