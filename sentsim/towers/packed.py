"""Packed (unpadded) forward of BERT-family encoders with variable-length attention.

The texts of a batch are laid end to end in one ``(T,)`` token sequence; ``cu_seqlens``
``(N+1,)`` marks where each text starts. Position ids restart at every text, and attention
stays inside a text: on CUDA in bf16/fp16 through ``torch.nn.attention.varlen.varlen_attn``
(FlashAttention, torch >= 2.10), elsewhere by scattering into a padded batch for
``scaled_dot_product_attention``. No compute goes to padding, and the results equal the
padded forward (to 1e-5 in fp32).

In training mode the model's dropout applies as in its padded forward (embeddings, attention
output, feed-forward output), and on attention probabilities in the padded fallback; the
FlashAttention varlen kernel has no attention dropout, so packed CUDA training runs without it.

Supported: ``bert``, ``roberta`` and ``xlm-roberta`` models with absolute positions, which
covers most sentence-embedding checkpoints (MiniLM, BGE, E5, GTE, multilingual MiniLM).
Other models (MPNet, for one) take the padded path.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

try:  # torch >= 2.10
    from torch.nn.attention.varlen import varlen_attn
except ImportError:  # pragma: no cover - older torch
    varlen_attn = None

PACKABLE_MODEL_TYPES = {"bert", "roberta", "xlm-roberta"}


@dataclass
class PackedLayout:
    """Where each text lies in a packed batch.

    Attributes:
        cu_seqlens: ``(N+1,)`` int32 offsets of the texts, starting at 0.
        positions: ``(T,)`` int64 position of each token inside its text.
        sequence_ids: ``(T,)`` int64 index of the text each token belongs to.
        max_length: tokens in the longest text.
    """

    cu_seqlens: Tensor
    positions: Tensor
    sequence_ids: Tensor
    max_length: int

    @classmethod
    def from_offsets(cls, cu_seqlens: Tensor, max_length: int, total: int) -> PackedLayout:
        """The layout of texts starting at ``cu_seqlens``, built on its device (``total``: the
        tokens in all, given so that nothing waits for a GPU)."""
        starts = cu_seqlens[:-1].long()
        lengths = cu_seqlens[1:].long() - starts
        texts = torch.arange(len(lengths), device=cu_seqlens.device)
        sequence_ids = torch.repeat_interleave(texts, lengths, output_size=total)
        positions = torch.arange(total, device=cu_seqlens.device) - starts[sequence_ids]
        return cls(cu_seqlens, positions, sequence_ids, max_length)

    @property
    def size(self) -> int:
        return self.cu_seqlens.numel() - 1

    @property
    def lengths(self) -> Tensor:
        return self.cu_seqlens[1:] - self.cu_seqlens[:-1]


def supports_packing(model: nn.Module) -> bool:
    """Whether :func:`packed_forward` can run ``model`` (else use the padded forward)."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "model_type", None) not in PACKABLE_MODEL_TYPES:
        return False
    if getattr(config, "position_embedding_type", "absolute") not in (None, "absolute"):
        return False
    if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False):
        return False
    embeddings = getattr(model, "embeddings", None)
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    if embeddings is None or layers is None:
        return False
    names = ("word_embeddings", "position_embeddings", "token_type_embeddings", "LayerNorm", "dropout")
    return all(hasattr(embeddings, name) for name in names) and all(_is_bert_layer(layer) for layer in layers)


def use_packing(tower: nn.Module, packed: bool | None, device: torch.device, autocast: torch.dtype | None) -> bool:
    """Whether encode and training run ``tower`` on packed batches: as asked (refused for a tower
    without a packed forward), or by default on CUDA in bf16/fp16 where the tower supports it."""
    supported = bool(getattr(tower, "supports_packing", False))
    if packed is None:
        return supported and device.type == "cuda" and autocast is not None
    if packed and not supported:
        raise ValueError(
            f"packed=True needs a BERT/RoBERTa-family transformer tower; this {tower.kind} tower "
            f"({type(getattr(tower, 'model', tower)).__name__}) has no packed forward"
        )
    return bool(packed)


def packed_forward(model: nn.Module, input_ids: Tensor, layout: PackedLayout) -> Tensor:
    """Last hidden states ``(T, D)`` of the packed tokens ``input_ids`` ``(T,)``."""
    hidden = _embed(model, input_ids, layout.positions)
    for layer in model.encoder.layer:
        hidden = _layer(layer, hidden, layout)
    return hidden


def _embed(model: nn.Module, input_ids: Tensor, positions: Tensor) -> Tensor:
    embeddings = model.embeddings
    padding_idx = getattr(embeddings, "padding_idx", None)  # RoBERTa counts positions from padding_idx + 1
    first = 0 if model.config.model_type == "bert" or padding_idx is None else padding_idx + 1
    hidden = (
        embeddings.word_embeddings(input_ids)
        + embeddings.position_embeddings(positions + first)
        + embeddings.token_type_embeddings.weight[0]
    )
    return embeddings.dropout(embeddings.LayerNorm(hidden))


def _layer(layer: nn.Module, hidden: Tensor, layout: PackedLayout) -> Tensor:
    attention = layer.attention.self
    heads, head_size = attention.num_attention_heads, attention.attention_head_size
    shape = (hidden.shape[0], heads, head_size)
    context = variable_length_attention(
        attention.query(hidden).view(shape),
        attention.key(hidden).view(shape),
        attention.value(hidden).view(shape),
        layout,
        dropout=attention.dropout.p if attention.training else 0.0,
    ).reshape(hidden.shape[0], heads * head_size)
    output = layer.attention.output
    hidden = output.LayerNorm(output.dropout(output.dense(context)) + hidden)
    intermediate = layer.intermediate.intermediate_act_fn(layer.intermediate.dense(hidden))
    return layer.output.LayerNorm(layer.output.dropout(layer.output.dense(intermediate)) + hidden)


def variable_length_attention(
    query: Tensor, key: Tensor, value: Tensor, layout: PackedLayout, *, dropout: float = 0.0
) -> Tensor:
    """Attention within each text of ``(T, heads, head_size)`` packed tensors (``dropout`` on the
    attention probabilities where the kernel has it: not in FlashAttention varlen)."""
    if varlen_attn is not None and query.is_cuda and query.dtype in (torch.float16, torch.bfloat16):
        cu_seqlens, length = layout.cu_seqlens, layout.max_length
        return varlen_attn(query, key, value, cu_seqlens, cu_seqlens, length, length)
    return _padded_attention(query, key, value, layout, dropout)


def _padded_attention(query: Tensor, key: Tensor, value: Tensor, layout: PackedLayout, dropout: float) -> Tensor:
    """The fallback: scatter into ``(N, heads, L, head_size)``, masked SDPA, gather back."""
    index = (layout.sequence_ids, layout.positions)

    def padded(packed: Tensor) -> Tensor:
        out = packed.new_zeros((layout.size, layout.max_length, *packed.shape[1:]))
        out[index] = packed
        return out.transpose(1, 2)

    valid = torch.arange(layout.max_length, device=query.device) < layout.lengths[:, None].to(query.device)
    context = F.scaled_dot_product_attention(
        padded(query), padded(key), padded(value), attn_mask=valid[:, None, None, :], dropout_p=dropout
    )
    return context.transpose(1, 2)[index]


def _is_bert_layer(layer: nn.Module) -> bool:
    attention = getattr(layer, "attention", None)
    own = getattr(attention, "self", None)
    return (
        own is not None
        and all(
            hasattr(own, name)
            for name in ("query", "key", "value", "num_attention_heads", "attention_head_size", "dropout")
        )
        and all(hasattr(getattr(attention, "output", None), name) for name in ("dense", "dropout", "LayerNorm"))
        and hasattr(getattr(layer, "intermediate", None), "intermediate_act_fn")
        and all(hasattr(getattr(layer, "output", None), name) for name in ("dense", "dropout", "LayerNorm"))
    )
