"""``sentsim similarity``: the similarity of two texts, or of every pair in a file."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from sentsim.cli.common import add_model_options, load_encoder, tsv_field
from sentsim.data.lines import iter_lines
from sentsim.similarity import Metric


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "similarity",
        help="score two texts, or the pairs of a TSV file",
        description="Print the similarity of TEXT_A and TEXT_B, or with --pairs one score per line of a "
        "two-column TSV file (text_a<TAB>text_b), followed by the pair.",
    )
    parser.add_argument("text_a", nargs="?")
    parser.add_argument("text_b", nargs="?")
    parser.add_argument("--pairs", help="a TSV file of text_a<TAB>text_b lines, or - for stdin")
    parser.add_argument(
        "--metric", default="cosine", choices=[m.value for m in Metric], help="(default: cosine; distances are negated)"
    )
    add_model_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if (args.pairs is None) == (args.text_a is None or args.text_b is None):
        raise ValueError("give either two texts or --pairs FILE")
    left, right = ([args.text_a], [args.text_b]) if args.pairs is None else _read_pairs(args.pairs)
    encoder = load_encoder(args)
    show = not args.no_progress and len(left) > 10 * args.batch_size
    embeddings = encoder.encode(left + right, batch_size=args.batch_size, show_progress=show)
    scores = np.atleast_1d(
        encoder.similarity(embeddings[: len(left)], embeddings[len(left) :], args.metric, pairwise=True)
    )
    if args.pairs is None:
        print(f"{scores[0]:.6f}")
    else:
        for score, a, b in zip(scores, left, right, strict=True):
            print(f"{score:.6f}\t{tsv_field(a)}\t{tsv_field(b)}")
    return 0


def _read_pairs(source: str) -> tuple[list[str], list[str]]:
    """The text_a<TAB>text_b lines of ``source`` (``-``: standard input); blank lines are skipped."""
    name = "standard input" if source == "-" else source
    if source != "-" and not Path(source).is_file():
        raise FileNotFoundError(f"{source}: no such file")
    left, right = [], []
    for number, line in enumerate(iter_lines(source), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise ValueError(f"{name}:{number}: expected text_a<TAB>text_b, got {len(fields)} field(s)")
        left.append(fields[0])
        right.append(fields[1])
    if not left:
        raise ValueError(f"{name}: no pairs")
    return left, right
