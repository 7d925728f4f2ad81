"""``sentsim classify``: label texts by their nearest classes in a few labelled examples, or zero-shot
from label texts alone."""

from __future__ import annotations

import argparse

from sentsim.cli.common import (
    add_fine_tune_options,
    add_label_options,
    add_model_options,
    few_shot_classifier,
    read_texts_with_labels,
    tsv_field,
)
from sentsim.data.columns import LABEL_SEPARATOR
from sentsim.data.texts import read_texts


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "classify",
        help="few-shot or zero-shot classification of texts",
        description="Print label<TAB>score<TAB>text for each input text, using a support set of labelled examples "
        "(a text,label file; as few as one example per class), label texts (--label-text), or both. "
        "With --multi-label: labels<TAB>scores<TAB>text, each joined by |.",
    )
    parser.add_argument(
        "--support", help="labelled examples: csv/tsv/json/jsonl/parquet with text,label columns (or text,labels)"
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
        help="answer 'none' when the best score is below this (a cosine; a probability with --strategy logistic); "
        "with --multi-label, the threshold of every class",
    )
    parser.add_argument(
        "--unknown-label", default="none", help="the answer below --threshold (default: none); no class may use it"
    )
    parser.add_argument(
        "--tune-data", help="--multi-label: tune a threshold per class on these labelled texts (text,labels)"
    )
    parser.add_argument("--data-dir", default=None, help="local folder of named sets such as clinc150:train")
    add_label_options(parser)
    add_fine_tune_options(parser)
    add_model_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.tune_data is not None and not args.multi_label:
        raise ValueError("--tune-data tunes the per-class thresholds of --multi-label")
    if args.multi_label and args.threshold is None and args.tune_data is None:
        raise ValueError("--multi-label needs --tune-data (a threshold per class) or --threshold (one for all)")
    support = read_texts_with_labels(args.support, args) if args.support else None
    texts = read_texts(args.input)
    classifier = few_shot_classifier(args, support)
    if args.tune_data is not None:
        tune = read_texts_with_labels(args.tune_data, args)
        classifier.fit_class_thresholds(tune.texts, tune.labels)
    if not texts:
        return 0
    embeddings = classifier.encoder.encode(
        texts, normalize=True, batch_size=args.batch_size, show_progress=classifier.show_progress
    )
    scores = classifier.scores(embeddings)
    index = {label: c for c, label in enumerate(classifier.classes)}
    for text, answer, row in zip(texts, classifier.predict(embeddings), scores, strict=True):
        if args.multi_label:
            labels = LABEL_SEPARATOR.join(tsv_field(label) for label in answer)
            values = LABEL_SEPARATOR.join(f"{row[index[label]]:.4f}" for label in answer)
            print(f"{labels}\t{values}\t{tsv_field(text)}")
        else:
            print(f"{tsv_field(answer)}\t{row.max():.4f}\t{tsv_field(text)}")
    return 0
