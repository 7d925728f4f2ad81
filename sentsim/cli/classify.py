"""``sentsim classify``: label texts by their nearest classes in a few labelled examples."""

from __future__ import annotations

import argparse

from sentsim.cli.common import (
    add_fine_tune_options,
    add_model_options,
    few_shot_classifier,
    read_texts_with_labels,
    tsv_field,
)
from sentsim.data.texts import read_texts


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "classify",
        help="few-shot classification of texts",
        description="Print label<TAB>score<TAB>text for each input text, using a support set of labelled examples "
        "(a text,label file; as few as one example per class).",
    )
    parser.add_argument(
        "--support", required=True, help="labelled examples: csv/tsv/json/jsonl/parquet with text,label columns"
    )
    parser.add_argument(
        "--input",
        required=True,
        help="texts to label: one a line, .jsonl or a .csv/.tsv/.json/.parquet table with a 'text' field, or - for stdin",
    )
    parser.add_argument("--strategy", choices=["prototype", "knn", "logistic"], default="prototype")
    parser.add_argument("--k", type=int, help="neighbours per class for --strategy knn (default 3)")
    parser.add_argument(
        "--threshold",
        type=float,
        help="answer 'none' when the best score is below this (a cosine; a probability with --strategy logistic)",
    )
    parser.add_argument(
        "--unknown-label", default="none", help="the answer below --threshold (default: none); no class may use it"
    )
    parser.add_argument("--data-dir", default=None, help="local folder of named sets such as clinc150:train")
    add_fine_tune_options(parser)
    add_model_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    support = read_texts_with_labels(args.support, args)
    texts = read_texts(args.input)
    classifier = few_shot_classifier(args, support)
    if not texts:
        return 0
    embeddings = classifier.encoder.encode(
        texts, normalize=True, batch_size=args.batch_size, show_progress=classifier.show_progress
    )
    scores = classifier.scores(embeddings)
    for text, label, row in zip(texts, classifier.predict(embeddings), scores, strict=True):
        print(f"{tsv_field(label)}\t{row.max():.4f}\t{tsv_field(text)}")
    return 0
