"""``sentsim similarity``: the similarity score of two texts."""

from __future__ import annotations

import argparse

from sentsim.cli.common import add_model_options, load_encoder
from sentsim.similarity import Metric


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("similarity", help="score two texts", description=__doc__)
    parser.add_argument("text_a")
    parser.add_argument("text_b")
    parser.add_argument("--metric", default="cosine", choices=[m.value for m in Metric], help="(default: cosine; distances are negated)")
    add_model_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    encoder = load_encoder(args)
    score = encoder.similarity(args.text_a, args.text_b, metric=args.metric)
    print(f"{score:.6f}")
    return 0
