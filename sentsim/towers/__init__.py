"""Towers: the shared network that turns token ids into token embeddings ``(B, L, D)``."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from torch import Tensor

from sentsim.tokenization import TextTokenizer
from sentsim.towers.lstm import LSTMConfig, LSTMTower
from sentsim.towers.transformer import TransformerTower


class Tower(Protocol):
    """What ``SentenceEncoder`` needs of a tower (both towers are ``torch.nn.Module``)."""

    kind: str
    tokenizer: TextTokenizer
    supports_packing: bool  # has forward_packed(input_ids (T,), layout) -> (T, D)

    @property
    def dim(self) -> int: ...

    @property
    def max_seq_length(self) -> int: ...

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor: ...

    def save(self, folder: Path) -> None: ...


__all__ = ["LSTMConfig", "LSTMTower", "Tower", "TransformerTower"]
