"""``sentsim mine``: hard negatives for (anchor, positive) pairs, written for training."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from sentsim.cli.common import (
    add_model_options,
    load_encoder,
    named_set,
    read_scored_pairs,
    read_texts_with_labels,
)
from sentsim.data.columns import require_columns, text_column
from sentsim.data.documents import read_documents
from sentsim.data.tables import read_table
from sentsim.search.manifest import MANIFEST
from sentsim.training.mining import check_corpus_holds, check_rank_range, mine_hard_negatives


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "mine",
        help="mine hard negatives for (anchor, positive) pairs",
        description="For each (anchor, positive) pair of PAIRS, find corpus texts close to the anchor that are not "
        "its positive (nor a copy of it or of the anchor, up to case and whitespace, nor within --margin of the "
        "positive's score), and write anchor, positive, negative_1 ... negative_N to a Parquet file that "
        "`sentsim train --loss mnrl` (or triplet) reads.",
    )
    parser.add_argument(
        "--data", required=True, help="the pairs: a csv/tsv/json/jsonl/parquet file with anchor, positive"
    )
    parser.add_argument(
        "--corpus",
        required=True,
        nargs="+",
        help="texts to mine from (must hold every positive): documents files (.txt one a line, .jsonl/.csv/"
        ".parquet with a text column), named sets (stsb:train, clinc150:train), or one index folder "
        "(searched with its own model)",
    )
    parser.add_argument("--output", required=True, help="the .parquet file to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--negatives", type=int, default=3, help="negatives per pair (default 3)")
    parser.add_argument(
        "--range",
        default="10:50",
        type=_rank_range,
        metavar="START:END",
        help="ranks to take negatives from, 0-based, END excluded (default 10:50: skip the 10 closest)",
    )
    parser.add_argument(
        "--margin",
        default=0.05,
        type=_margin,
        help="skip candidates scoring above the positive's score minus this (default 0.05; 'none': keep them)",
    )
    parser.add_argument("--columns", type=json.loads, default=None, help='rename columns, e.g. \'{"query": "anchor"}\'')
    parser.add_argument("--split", help="split of a Hub dataset or saved DatasetDict (default: train)")
    parser.add_argument(
        "--data-dir", default=None, help="local folder of the named sets (default: $SENTSIM_DATA_DIR, else the Hub)"
    )
    add_model_options(parser)
    parser.set_defaults(run=run)


def _rank_range(text: str) -> tuple[int, int]:
    try:
        start, end = (int(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:END, two integers such as 10:50, got {text!r}") from None
    return start, end


def _margin(text: str) -> float | None:
    if text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'none', got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if output.suffix.lower() != ".parquet":
        raise ValueError(f"--output {output}: expected a .parquet file")
    if output.is_dir() or (output.exists() and not args.overwrite):
        raise ValueError(f"--output {output} exists; choose a new file or pass --overwrite")
    if not output.parent.is_dir():
        raise ValueError(f"--output {output}: the folder {output.parent} does not exist")
    if args.negatives < 1:
        raise ValueError(f"--negatives must be >= 1, got {args.negatives}")
    check_rank_range(args.range, args.negatives)
    if args.margin is not None and args.margin < 0:
        raise ValueError(f"--margin must be >= 0 (or none), got {args.margin}")
    anchors, positives = _read_pairs(args)
    index_folder = _index_folder(args.corpus)
    start = time.perf_counter()
    options = {
        "negatives": args.negatives,
        "rank_range": args.range,
        "margin": args.margin,
        "batch_size": args.batch_size,
        "show_progress": not args.no_progress,
    }
    if index_folder is not None:
        from sentsim.search.index import DocumentIndex

        if args.max_seq_length is not None:
            raise ValueError("--max-seq-length: an index corpus is searched with its model as it was built")

        with DocumentIndex.open(
            index_folder, args.model, device=args.device, trust_remote_code=args.trust_remote_code
        ) as index:
            mined = mine_hard_negatives(anchors, positives, index, **options)
    else:
        corpus = [text for source in args.corpus for text in _read_corpus(source, args)]
        check_corpus_holds(positives, corpus)  # before the model loads
        encoder = load_encoder(args)
        mined = mine_hard_negatives(anchors, positives, corpus, encoder=encoder, **options)
    if not len(mined):
        raise ValueError(
            f"no pair kept {args.negatives} negatives in ranks {args.range[0]}:{args.range[1]}; widen --range, "
            "lower --negatives or --margin, or give a larger corpus"
        )
    mined.save(output)
    summary = {
        "output": str(output),
        "pairs": len(anchors),
        "rows": len(mined),
        "dropped": len(mined.dropped),
        "negatives": args.negatives,
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(summary))
    return 0


def _read_pairs(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    if named_set(args.data):
        raise ValueError(f"{args.data}: --data takes a file of anchor, positive pairs (a named set has none)")
    table, name = read_table(args.data, split=args.split or "train", columns=args.columns)
    require_columns(list(table), ["anchor", "positive"], name)
    anchors, positives = text_column(table["anchor"], "anchor", name), text_column(table["positive"], "positive", name)
    if not anchors:
        raise ValueError(f"{name}: no pairs")
    return anchors, positives


def _index_folder(sources: list[str]) -> str | None:
    """The index folder among ``sources`` (then the only source), else None."""
    indexes = [source for source in sources if (Path(source) / MANIFEST).is_file()]
    if indexes and len(sources) > 1:
        raise ValueError(f"--corpus {indexes[0]} is an index: give it alone")
    return indexes[0] if indexes else None


def _read_corpus(source: str, args: argparse.Namespace) -> list[str]:
    named = named_set(source)
    if named and named[0] == "stsb":
        pairs = read_scored_pairs(source, args)
        return pairs.sentences1 + pairs.sentences2
    if named:
        return read_texts_with_labels(source, args).texts
    return read_documents(source, split=args.split or "train").texts
