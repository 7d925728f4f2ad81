"""Options shared by the subcommands."""

from __future__ import annotations

import argparse

from sentsim.encoder import SentenceEncoder
from sentsim.hub import DEFAULT_MODEL


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, help=f"model folder, short name or Hub id (default: {DEFAULT_MODEL})"
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    parser.add_argument("--batch-size", type=int, default=64, help="texts per forward pass (default: 64)")
    parser.add_argument("--max-seq-length", type=int, default=None, help="truncate texts to this many tokens")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow the model's own code to run")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def load_encoder(args: argparse.Namespace) -> SentenceEncoder:
    return SentenceEncoder.from_pretrained(
        args.model, device=args.device, max_seq_length=args.max_seq_length, trust_remote_code=args.trust_remote_code
    )
