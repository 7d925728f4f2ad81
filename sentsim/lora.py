"""LoRA adapters (PEFT) on a transformer tower: low-rank updates of chosen linear layers, trained
while every other weight stays frozen, saved apart from the base model, or merged into it.

``pip install 'sentsim[lora]'`` (peft). :func:`add_lora` puts an adapter on an encoder in place;
the training loop then trains only the adapter (the optimizer gets the parameters that require
gradients). ``save_pretrained`` writes the adapter with its base's name and fingerprint
(:mod:`sentsim.storage.adapter_folder`); :func:`merge_lora` folds it into a plain encoder.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from sentsim.fingerprint import model_fingerprint
from sentsim.validation import check_int, finite_or_none, positive_number

logger = logging.getLogger(__name__)

ADAPTER_NAME = "default"  # PEFT's name of the one adapter
INIT_SEED = 0  # draws the adapter's initial A (B starts at zero), so that runs are reproducible

__all__ = ["Adapter", "LoraSettings", "add_lora", "adapter_weights", "merge_lora", "trainable_parameters"]


@dataclass(frozen=True, kw_only=True)
class LoraSettings:
    """A LoRA adapter's shape.

    Attributes:
        rank: the rank of each update (``B @ A``, ``A``: ``rank x in``, ``B``: ``out x rank``).
        alpha: scales the update by ``alpha / rank`` (default ``2 * rank``).
        targets: the linear layers adapted, by their last name (``query``, ``value``); None: the
            architecture's usual ones (PEFT's table: ``query, value`` for BERT).
        dropout: dropout on the adapter's input while training.
    """

    rank: int = 16
    alpha: float | None = None
    targets: tuple[str, ...] | None = None
    dropout: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "rank", check_int("LoRA rank", self.rank, minimum=1))
        alpha = 2 * self.rank if self.alpha is None else positive_number("LoRA alpha", self.alpha)
        object.__setattr__(self, "alpha", float(alpha))
        dropout = finite_or_none("LoRA dropout", self.dropout)
        if dropout is None or not 0 <= dropout < 1:
            raise ValueError(f"LoRA dropout must be a number in [0, 1), got {self.dropout!r}")
        object.__setattr__(self, "dropout", dropout)
        if self.targets is not None:
            targets = [self.targets] if isinstance(self.targets, str) else list(self.targets)
            if not targets or not all(isinstance(t, str) and t.strip() for t in targets):
                raise ValueError(f"LoRA targets must be module names such as 'query', got {self.targets!r}")
            object.__setattr__(self, "targets", tuple(dict.fromkeys(t.strip() for t in targets)))

    def to_dict(self) -> dict:
        return {**asdict(self), "targets": list(self.targets) if self.targets is not None else None}

    @classmethod
    def from_dict(cls, data: dict) -> LoraSettings:
        targets = data.get("targets")
        return cls(rank=data["rank"], alpha=data["alpha"], targets=tuple(targets) if targets else None,
                   dropout=data.get("dropout", 0.0))  # fmt: skip


@dataclass(frozen=True)
class Adapter:
    """The adapter on an encoder: its settings (targets resolved), and the base it was put on."""

    settings: LoraSettings
    base: str | None  # the base model's name or folder (what from_pretrained loaded), if any
    base_fingerprint: dict


def add_lora(encoder, settings: LoraSettings | None = None) -> Adapter:
    """Put a LoRA adapter on ``encoder``'s transformer, in place; freeze every other weight.

    The adapter starts as a no-op (``B = 0``; ``A`` drawn from a fixed seed): the embeddings are
    the base model's until it trains. Raises before changing anything: a TypeError for an LSTM tower, a ValueError for a
    target that names no linear layer of the model (listing the ones it has).
    """
    settings = settings or LoraSettings()
    if getattr(encoder, "adapter", None) is not None:
        raise ValueError("this encoder already has a LoRA adapter; merge it first (merge_lora) to add another")
    if encoder.tower.kind != "transformer":
        raise TypeError(f"LoRA adapters go on a transformer tower; this one is a {encoder.tower.kind} tower")
    peft = _peft()
    model = encoder.tower.model
    targets = _resolve_targets(model, settings.targets)
    settings = LoraSettings(rank=settings.rank, alpha=settings.alpha, targets=targets, dropout=settings.dropout)
    adapter = Adapter(settings, encoder.name_or_path, model_fingerprint(encoder, encoder.name_or_path))
    config = peft.LoraConfig(
        r=settings.rank, lora_alpha=settings.alpha, target_modules=list(targets), lora_dropout=settings.dropout
    )
    with torch.random.fork_rng(devices=[]):  # the same initial adapter every time, the caller's RNG untouched
        torch.manual_seed(INIT_SEED)
        peft.inject_adapter_in_model(config, model, adapter_name=ADAPTER_NAME)
    for name, parameter in encoder.named_parameters():
        parameter.requires_grad_(".lora_" in name)
    encoder.adapter = adapter
    trainable, total = trainable_parameters(encoder)
    logger.info("LoRA rank %d on %s: %d of %d parameters train", settings.rank, ", ".join(targets), trainable, total)
    return adapter


def trainable_parameters(encoder) -> tuple[int, int]:
    """``(parameters that train, all parameters)`` of ``encoder``."""
    parameters = list(encoder.parameters())
    return sum(p.numel() for p in parameters if p.requires_grad), sum(p.numel() for p in parameters)


def adapter_weights(encoder) -> dict[str, Tensor]:
    """The adapter's tensors under the tower model's parameter names, without PEFT's adapter name
    (``encoder.layer.0.attention.self.query.lora_A.weight``)."""
    marker = f".{ADAPTER_NAME}."
    return {
        name.replace(marker, "."): parameter
        for name, parameter in encoder.tower.model.named_parameters()
        if ".lora_" in name
    }


def load_adapter_weights(encoder, weights: dict[str, Tensor], source: str) -> None:
    """Copy ``weights`` (as :func:`adapter_weights` names them) into ``encoder``'s adapter; a
    missing, extra or misshapen tensor is a ValueError naming ``source``."""
    expected = adapter_weights(encoder)
    missing, extra = sorted(set(expected) - set(weights)), sorted(set(weights) - set(expected))
    if missing or extra:
        raise ValueError(
            f"{source} does not fit this adapter: missing {missing[:3]}{'...' if len(missing) > 3 else ''}, "
            f"unexpected {extra[:3]}{'...' if len(extra) > 3 else ''}"
        )
    for name, tensor in weights.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise ValueError(
                f"{source}: {name} has shape {tuple(tensor.shape)}, expected {tuple(expected[name].shape)}"
            )
        expected[name].data.copy_(tensor.to(expected[name].device, expected[name].dtype))


def merge_lora(encoder):
    """A new encoder with the adapter folded into its weights (``W + alpha / rank * B @ A``): no
    adapter, nothing frozen, the same embeddings; ``encoder`` itself is left as it is."""
    if getattr(encoder, "adapter", None) is None:
        raise ValueError("this encoder has no LoRA adapter to merge")
    from peft.tuners.lora import LoraLayer

    from sentsim.towers import TransformerTower

    tower = encoder.tower
    model = copy.deepcopy(tower.model)
    for name, module in list(model.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge(safe_merge=True)  # refuses a merge that would put NaN or infinity in the weights
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, module.get_base_layer())
    if hasattr(model, "peft_config"):
        del model.peft_config
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    merged = TransformerTower(
        model, tower.hf_tokenizer, max_seq_length=tower.max_seq_length, do_lower_case=tower.do_lower_case
    )
    result = type(encoder)(
        merged,
        pooling=encoder.pooling,
        normalize=encoder.normalize,
        dense=copy.deepcopy(encoder.dense),
        prompts=dict(encoder.prompts),
        default_prompt_name=encoder.default_prompt_name,
        include_prompt=encoder.include_prompt,
        matryoshka_dims=encoder.matryoshka_dims,
        truncate_dim=encoder.truncate_dim,
    )
    if result.dense is not None:
        result.dense.requires_grad_(True)
    return result.to(encoder.device).train(encoder.training)


def _resolve_targets(model: nn.Module, targets: tuple[str, ...] | None) -> tuple[str, ...]:
    """``targets``, or the architecture's usual ones; each must be the last name of a linear layer."""
    linear = sorted(
        {name.rpartition(".")[2] for name, module in model.named_modules() if isinstance(module, nn.Linear)}
    )
    model_type = getattr(model.config, "model_type", None)
    if targets is None:
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS

        if model_type not in DEFAULTS:
            raise ValueError(
                f"no default LoRA targets for a {model_type!r} model; name them (its linear layers: {', '.join(linear)})"
            )
        targets = tuple(DEFAULTS[model_type])
    unknown = [target for target in targets if target not in linear]
    if unknown:
        raise ValueError(
            f"unknown LoRA target module(s) {', '.join(map(repr, unknown))}: no linear layer of this {model_type} "
            f"model has that name (its linear layers: {', '.join(linear)})"
        )
    return tuple(targets)


def _peft():
    try:
        import peft
    except ImportError:
        raise ImportError("LoRA adapters need peft: pip install 'sentsim[lora]'") from None
    return peft
