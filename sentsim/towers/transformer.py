"""Transformer tower: a Hugging Face ``AutoModel`` with its fast tokenizer."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import torch
from tokenizers import Tokenizer
from torch import Tensor, nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)
from transformers.utils import logging as hf_logging

from sentsim.storage.weights import safetensors_files
from sentsim.tokenization import TextTokenizer
from sentsim.towers.packed import PackedLayout, packed_forward, supports_packing
from sentsim.validation import check_int

logger = logging.getLogger(__name__)

DEFAULT_MAX_SEQ_LENGTH = 512


class TransformerTower(nn.Module):
    """A pretrained (or freshly configured) transformer: token ids -> last hidden states.

    Args:
        model: the transformer, e.g. from ``AutoModel.from_pretrained``.
        tokenizer: its fast tokenizer (one backed by ``tokenizer.json``).
        max_seq_length: tokens kept per text; defaults to what the model and tokenizer allow, at most 512.
        do_lower_case: lowercase texts before tokenizing.
    """

    kind = "transformer"

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerFast,
        *,
        max_seq_length: int | None = None,
        do_lower_case: bool = False,
    ) -> None:
        super().__init__()
        if getattr(tokenizer, "backend_tokenizer", None) is None:
            raise TypeError(
                f"{type(tokenizer).__name__} is not a fast tokenizer; sentsim needs one backed by tokenizer.json"
            )
        self.model = model
        self.hf_tokenizer = tokenizer
        self.do_lower_case = do_lower_case
        self.max_seq_length = self._length_limit() if max_seq_length is None else max_seq_length  # builds the tokenizer

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        max_seq_length: int | None = None,
        do_lower_case: bool = False,
        trust_remote_code: bool = False,
    ) -> TransformerTower:
        """Load model and tokenizer from a local folder (safetensors weights only)."""
        safetensors_files(path)
        options = {"dtype": torch.float32, "use_safetensors": True, "trust_remote_code": trust_remote_code}
        with _quiet_transformers():
            config = AutoConfig.from_pretrained(str(path), trust_remote_code=trust_remote_code)
            requested = getattr(config, "_attn_implementation_internal", None)
            if isinstance(requested, str) and "/" in requested and not trust_remote_code:
                # a Hub kernel: compiled code downloaded and run, which only trust_remote_code allows here
                logger.warning("%s asks for the attention kernel %s; using sdpa instead", path, requested)
                options["attn_implementation"] = "sdpa"
            model = AutoModel.from_pretrained(str(path), **options)
        tokenizer = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
        return cls(model, tokenizer, max_seq_length=max_seq_length, do_lower_case=do_lower_case)

    @classmethod
    def from_config(
        cls,
        config: PretrainedConfig | dict,
        tokenizer: Tokenizer | PreTrainedTokenizerFast,
        *,
        max_seq_length: int | None = None,
    ) -> TransformerTower:
        """A transformer with random weights built from ``config`` (a config object, or a dict with ``model_type``)."""
        if isinstance(config, dict):
            config = AutoConfig.for_model(**config)
        if isinstance(tokenizer, Tokenizer):
            tokenizer = _wrap_tokenizer(tokenizer, DEFAULT_MAX_SEQ_LENGTH if max_seq_length is None else max_seq_length)
        model = AutoModel.from_config(config)
        return cls(model.float(), tokenizer, max_seq_length=max_seq_length)

    @property
    def dim(self) -> int:
        return int(self.model.config.get_text_config().hidden_size)

    @property
    def max_seq_length(self) -> int:
        return self.tokenizer.max_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        value = check_int("max_seq_length", value, minimum=1, maximum=self._length_limit())
        self.tokenizer = TextTokenizer(self.hf_tokenizer.backend_tokenizer, value, lowercase=self.do_lower_case)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Token embeddings ``(B, L, D)`` for ``input_ids`` and ``attention_mask`` ``(B, L)``."""
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    @property
    def supports_packing(self) -> bool:
        """Whether :meth:`forward_packed` can run this model (BERT/RoBERTa family)."""
        return supports_packing(self.model)

    def forward_packed(self, input_ids: Tensor, layout: PackedLayout) -> Tensor:
        """Token embeddings ``(T, D)`` of texts packed end to end in ``input_ids`` ``(T,)``, without padding."""
        return packed_forward(self.model, input_ids, layout)

    def save(self, folder: Path) -> None:
        """Write the model (safetensors) and tokenizer files at the root of ``folder``."""
        with _quiet_transformers():
            self.model.save_pretrained(str(folder))
        self.hf_tokenizer.model_max_length = self.max_seq_length
        self.hf_tokenizer.save_pretrained(str(folder))

    def _length_limit(self) -> int:
        limits = [DEFAULT_MAX_SEQ_LENGTH]
        positions = getattr(self.model.config.get_text_config(), "max_position_embeddings", None)
        if isinstance(positions, int) and positions > 0:
            limits.append(positions)
        model_max = getattr(self.hf_tokenizer, "model_max_length", None)
        if isinstance(model_max, int) and 0 < model_max < 1_000_000:
            limits.append(model_max)
        return min(limits)


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide transformers' per-call "Loading weights" / "Writing model shards" progress bars."""
    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def _wrap_tokenizer(tokenizer: Tokenizer, max_length: int) -> PreTrainedTokenizerFast:
    """A transformers tokenizer around a Rust one, with the special tokens it knows."""
    vocab = tokenizer.get_vocab()
    specials = {
        "pad_token": "[PAD]",
        "unk_token": "[UNK]",
        "cls_token": "[CLS]",
        "sep_token": "[SEP]",
        "mask_token": "[MASK]",
    }
    present = {name: token for name, token in specials.items() if token in vocab}
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, model_max_length=max_length, **present)
