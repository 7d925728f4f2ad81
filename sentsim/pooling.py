"""Pooling: token embeddings ``(batch, seq, dim)`` -> one sentence embedding ``(batch, dim)``."""

from __future__ import annotations

import torch
from torch import Tensor

from sentsim.validation import Choice


class Pooling(Choice):
    """How token embeddings become one sentence embedding.

    - ``mean``: average of the non-padding tokens (the default; what most sentence models use);
    - ``cls``: the first token (``[CLS]`` for BERT-like towers);
    - ``max``: element-wise maximum over the non-padding tokens.
    """

    MEAN = "mean"
    CLS = "cls"
    MAX = "max"


def pool(token_embeddings: Tensor, attention_mask: Tensor, mode: str | Pooling = Pooling.MEAN) -> Tensor:
    """Pool ``token_embeddings`` (B, L, D) over the tokens where ``attention_mask`` (B, L) is 1.

    Sums run in float32 whatever the input dtype, so bf16/fp16 towers pool exactly; the result
    has the dtype of ``token_embeddings``. A row without any token pools to zeros.
    """
    mode = Pooling.parse(mode)
    if mode is Pooling.CLS:
        return token_embeddings[:, 0]  # (B, D)
    mask = attention_mask.unsqueeze(-1).to(torch.bool)  # (B, L, 1)
    if mode is Pooling.MAX:
        filled = token_embeddings.masked_fill(~mask, float("-inf"))
        pooled = filled.max(dim=1).values  # (B, D)
        return torch.where(torch.isinf(pooled), torch.zeros_like(pooled), pooled)
    summed = (token_embeddings * mask).sum(dim=1, dtype=torch.float32)  # (B, D)
    counts = mask.sum(dim=1, dtype=torch.float32).clamp(min=1e-9)  # (B, 1)
    return (summed / counts).to(token_embeddings.dtype)


def pool_packed(token_embeddings: Tensor, cu_seqlens: Tensor, sequence_ids: Tensor, mode: str | Pooling) -> Tensor:
    """Pool packed ``token_embeddings`` ``(T, D)`` per text: text ``i`` holds tokens
    ``cu_seqlens[i]:cu_seqlens[i+1]`` and ``sequence_ids`` ``(T,)`` names each token's text.

    Equals :func:`pool` on the padded batch; sums run in float32.
    """
    mode = Pooling.parse(mode)
    starts = cu_seqlens[:-1].long()
    if mode is Pooling.CLS:
        return token_embeddings[starts]  # (N, D)
    shape = (starts.numel(), token_embeddings.shape[-1])
    if mode is Pooling.MAX:
        pooled = token_embeddings.new_full(shape, float("-inf"))
        index = sequence_ids[:, None].expand_as(token_embeddings)
        return pooled.scatter_reduce(0, index, token_embeddings, "amax", include_self=True)
    summed = torch.zeros(shape, dtype=torch.float32, device=token_embeddings.device)
    summed.index_add_(0, sequence_ids, token_embeddings.float())
    counts = (cu_seqlens[1:] - cu_seqlens[:-1]).float().clamp(min=1)[:, None]  # (N, 1)
    return (summed / counts).to(token_embeddings.dtype)
