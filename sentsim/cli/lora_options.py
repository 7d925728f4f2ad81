"""``--lora-rank``, ``--lora-alpha``, ``--lora-targets``, ``--lora-dropout``: train a LoRA adapter."""

from __future__ import annotations

import argparse

from sentsim.lora import LoraSettings

FLAGS = ("--lora-alpha", "--lora-targets", "--lora-dropout")


def add_lora_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lora-rank",
        type=int,
        help="train a LoRA adapter of this rank instead of every weight; the model is saved as the adapter "
        "beside its base model's name (pip install 'sentsim[lora]')",
    )
    parser.add_argument(
        "--lora-alpha", type=float, help="LoRA scale: updates are multiplied by alpha / rank (default 2 x rank)"
    )
    parser.add_argument(
        "--lora-targets",
        type=lambda text: tuple(name.strip() for name in text.split(",")),
        help="the linear layers to adapt, by name, e.g. query,value (default: the architecture's usual ones)",
    )
    parser.add_argument("--lora-dropout", type=float, help="dropout on the adapter's input (default 0)")


def lora_settings(args: argparse.Namespace) -> LoraSettings | None:
    """The adapter the options ask for (checked before anything loads), or None."""
    given = [flag for flag in FLAGS if getattr(args, flag[2:].replace("-", "_")) is not None]
    if args.lora_rank is None:
        if given:
            raise ValueError(f"{', '.join(given)} shape a LoRA adapter: add --lora-rank")
        return None
    if getattr(args, "lstm_from", None):
        raise ValueError("--lora-rank adapts a transformer; --lstm-from builds an LSTM tower")
    if args.lora_rank < 1:
        raise ValueError(f"--lora-rank must be >= 1, got {args.lora_rank}")
    return LoraSettings(
        rank=args.lora_rank,
        alpha=args.lora_alpha,
        targets=args.lora_targets,
        dropout=0.0 if args.lora_dropout is None else args.lora_dropout,
    )
