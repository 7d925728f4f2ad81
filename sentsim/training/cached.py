"""Cached large-batch training (GradCache; Gao et al., 2021): the loss and gradients of a large
batch with the activation memory of a mini-batch.

A loss that compares every example with every other (in-batch negatives) gets better with the
batch size, but the activations of a 1,024-example batch do not fit a GPU. The loss only needs
the embeddings, so the step runs in three passes:

1. embed each mini-batch without gradients (remembering the RNG state before each);
2. compute the loss on the embeddings of the whole batch and its gradient with respect to them;
3. embed each mini-batch again, with gradients and the same RNG state (so the same dropout), and
   backpropagate the cached gradient of its embeddings into the model.

The parameters then hold the gradient of the whole batch's loss, as one large forward would
give, at the cost of a second forward pass.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import Tensor

from sentsim.training.features import embed_inputs, text_inputs

__all__ = ["cached_backward", "check_mini_batch"]


def check_mini_batch(loss, batch_size: int) -> int | None:
    """The loss's ``mini_batch_size`` (None: an ordinary step), or a ValueError if it exceeds ``batch_size``."""
    mini_batch_size = getattr(loss, "mini_batch_size", None)
    if mini_batch_size is not None and mini_batch_size > batch_size:
        raise ValueError(
            f"mini_batch_size {mini_batch_size} is larger than batch_size {batch_size}: the cached step splits "
            "each batch into mini-batches; use a mini-batch of at most the batch size"
        )
    return mini_batch_size


def cached_backward(
    model,
    encoder,
    loss,
    columns: list[list[str]],
    targets: dict[str, Tensor],
    *,
    mini_batch_size: int,
    device: torch.device,
    autocast_dtype: torch.dtype | None,
    scaler: torch.amp.GradScaler,
    accumulation: int = 1,
    packed: bool = False,
) -> Tensor:
    """Backpropagate ``loss`` of the batch whose texts are ``columns`` (one list per loss column)
    and whose ``targets`` are the loss's keyword inputs (``labels``, ...) through ``model`` (the
    encoder, or its DDP wrapper) one mini-batch of rows at a time; the gradients accumulate in the
    parameters, scaled as ``scaler.scale(loss / accumulation)``. Returns the (detached) loss of
    the whole batch."""
    rows = len(columns[0])
    widths = [len(column) // rows for column in columns]  # texts a row: n for numbered negatives, else 1
    starts = range(0, rows, mini_batch_size)
    spans = [[(s * w, min(s + mini_batch_size, rows) * w) for w in widths] for s in starts]  # per column
    features = [
        text_inputs(
            encoder,
            [text for column, (a, b) in zip(columns, span, strict=True) for text in column[a:b]],
            device,
            packed=packed,
        )
        for span in spans
    ]
    autocast = {"device_type": device.type, "dtype": autocast_dtype, "enabled": autocast_dtype is not None}

    states, pieces = [], []
    with torch.no_grad(), torch.autocast(**autocast):
        for feature in features:
            states.append(_rng_state(device))
            pieces.append(embed_inputs(encoder, feature))  # (texts of the mini-batch, dim)
    split = [piece.split([b - a for a, b in span]) for piece, span in zip(pieces, spans, strict=True)]
    embeddings = [torch.cat([parts[c] for parts in split]).requires_grad_() for c in range(len(columns))]  # (B*w, dim)

    with torch.autocast(**autocast):
        value = loss(*embeddings, *[None] * (3 - len(embeddings)), **targets)
    scaler.scale(value / accumulation).backward()  # gradients of the loss w.r.t. the embeddings only
    gradients = [embedding.grad for embedding in embeddings]

    for index, (span, feature, state) in enumerate(zip(spans, features, states, strict=True)):
        cached = torch.cat([gradient[a:b] for gradient, (a, b) in zip(gradients, span, strict=True)])  # (texts, dim)
        last = index == len(features) - 1
        sync = nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync()  # DDP: reduce once
        _set_rng_state(state, device)
        with sync:
            with torch.autocast(**autocast):
                output = embed_inputs(model, feature)  # the same dropout as in pass 1
            output.backward(cached.to(output.dtype))
    return value.detach()


def _rng_state(device: torch.device) -> tuple[Tensor, Tensor | None]:
    """The CPU generator's state, and the GPU's where ``device`` is one (dropout draws from it)."""
    return torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None


def _set_rng_state(state: tuple[Tensor, Tensor | None], device: torch.device) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)
