"""``sentsim eval``: evaluate a model on a benchmark task."""

from __future__ import annotations

import argparse
import json

from sentsim.cli.common import add_model_options, load_encoder
from sentsim.data.sts import read_sts
from sentsim.evaluation.sts import evaluate_sts


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="evaluate a model", description=__doc__)
    tasks = parser.add_subparsers(dest="task", required=True, metavar="TASK")
    sts = tasks.add_parser(
        "sts",
        help="Spearman/Pearson of similarity against gold scores",
        description="STS: Spearman and Pearson x 100 of cosine similarity (and dot, euclidean, manhattan) against gold scores.",
    )
    sts.add_argument(
        "--data", required=True, help="headerless sentence1,sentence2,score CSV, a data file, or a dataset name"
    )
    sts.add_argument("--split", default=None, help="split of a Hugging Face dataset (default: test)")
    sts.add_argument("--json", action="store_true", help="print one JSON object (keys: spearman, pearson, n, ...)")
    add_model_options(sts)
    sts.set_defaults(run=run_sts)


def run_sts(args: argparse.Namespace) -> int:
    pairs = read_sts(args.data, split=args.split)
    encoder = load_encoder(args)
    results = evaluate_sts(encoder, pairs, batch_size=args.batch_size, show_progress=not args.no_progress)
    if args.json:
        print(json.dumps(results))
    else:
        print(f"n={results['n']}  spearman={results['spearman']:.2f}  pearson={results['pearson']:.2f}  (cosine, x100)")
    return 0
