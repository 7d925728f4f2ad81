"""Options and helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

from sentsim.data import (
    LabelledTexts,
    MultiLabelTexts,
    SentencePairs,
    load_clinc150,
    load_stsb,
    read_labelled_texts,
    read_multi_label_texts,
    read_sts,
)
from sentsim.data.jsonl import read_json
from sentsim.data.lines import read_lines
from sentsim.decisions.few_shot import FewShotClassifier
from sentsim.encoder import SentenceEncoder
from sentsim.evaluation.report import check_results_path, json_safe, write_results
from sentsim.storage.atomic import holds_other_files
from sentsim.storage.hub import DEFAULT_MODEL
from sentsim.storage.model_folder import MODEL_MARKERS
from sentsim.training.config import TrainingConfig
from sentsim.training.few_shot import FEW_SHOT_CONFIG

NAMED_SETS = {"stsb": ("scored pairs", load_stsb), "clinc150": ("labelled texts", load_clinc150)}  # kind, loader
NAME_AND_SPLIT = re.compile(r"^(\w+):(\w+)$")  # Hub dataset ids have no ":", so this is never one


def add_model_options(parser: argparse.ArgumentParser, *, batch_size: bool = True, truncate: bool = False) -> None:
    """--model and friends; ``batch_size=False`` where the command has its own --batch-size;
    ``truncate``: --truncate-dim (Matryoshka truncation)."""
    parser.add_argument("--model", default=None, help=f"model folder, short name or Hub id (default: {DEFAULT_MODEL})")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    if batch_size:
        parser.add_argument("--batch-size", type=int, default=64, help="texts per forward pass (default: 64)")
    parser.add_argument("--max-seq-length", type=int, default=None, help="truncate texts to this many tokens")
    if truncate:
        parser.add_argument(
            "--truncate-dim",
            type=int,
            default=None,
            metavar="D",
            help="keep the first D dimensions of each embedding, re-normalized when the model normalizes "
            "(for a model trained with train --matryoshka; any other warns)",
        )
    parser.add_argument("--trust-remote-code", action="store_true", help="allow the model's own code to run")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def add_precision_options(parser: argparse.ArgumentParser) -> None:
    """--precision, --rescore-factor and --index-truncate-dim (index build, eval retrieval)."""
    parser.add_argument(
        "--precision",
        default=None,
        choices=["float32", "int8", "binary"],
        help="how the FAISS index holds vectors: float32 (default), int8 (4x smaller) or binary (32x smaller); "
        "candidates are rescored exactly with the stored float vectors",
    )
    parser.add_argument(
        "--rescore-factor", type=int, default=None, help="candidates rescored per hit (default 4; int8, binary)"
    )
    parser.add_argument(
        "--index-truncate-dim",
        type=int,
        default=None,
        metavar="N",
        help="the index holds the first N dimensions and rescores with whole vectors (Matryoshka models; "
        "--truncate-dim instead cuts the model's embeddings everywhere)",
    )


def precision_options(args: argparse.Namespace) -> dict:
    """The DocumentIndex.create options of --precision, --rescore-factor and --index-truncate-dim given."""
    given = {
        "precision": args.precision,
        "rescore_factor": args.rescore_factor,
        "truncate_dim": args.index_truncate_dim,
    }
    return {name: value for name, value in given.items() if value is not None}


def add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object (keys in the README)")
    parser.add_argument("--output", type=_results_path, help="also write the results to a .json or .csv file")
    parser.add_argument(
        "--data-dir",
        default=None,
        help="local folder of the named sets stsb:SPLIT, clinc150:SPLIT (default: $SENTSIM_DATA_DIR, else the Hub)",
    )


def _results_path(text: str) -> str:
    """Checked when the command line is read, not after the evaluation."""
    try:
        return str(check_results_path(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def load_encoder(args: argparse.Namespace) -> SentenceEncoder:
    return SentenceEncoder.from_pretrained(
        model_name(args),
        device=args.device,
        max_seq_length=args.max_seq_length,
        trust_remote_code=args.trust_remote_code,
        truncate_dim=getattr(args, "truncate_dim", None),
    )


def model_name(args: argparse.Namespace) -> str:
    """--model, or the default model when it is not given."""
    return args.model or DEFAULT_MODEL


def named_set(source: str) -> tuple[str, str] | None:
    """``(name, split)`` of a named set such as ``stsb:test``; None for a file, folder or Hub name.
    A mistyped name (``stbs:test``) is refused at once rather than looked up on the Hub."""
    match = NAME_AND_SPLIT.match(source)
    if match is None or Path(source).exists():
        return None
    name, split = match.groups()
    if name not in NAMED_SETS:
        raise ValueError(f"{source}: unknown named set {name!r}; the named sets are stsb:SPLIT and clinc150:SPLIT")
    return name, split


def check_split_used(split: str | None, sources: list[str | None]) -> None:
    """``--split`` picks the split of the files and Hub datasets among ``sources``; with named sets
    only (which carry their own split) it would be ignored, so it is refused."""
    given = [source for source in sources if source is not None]
    if split is not None and given and all(named_set(source) for source in given):
        raise ValueError(
            f"--split {split} applies to files and Hub datasets; named sets ({', '.join(given)}) carry their own split"
        )


def refuse_named(source: str, expected: str, hint: str = "") -> None:
    """A ValueError when ``source`` is a named set, which holds another kind of data than ``expected``."""
    named = named_set(source)
    if named:
        raise ValueError(f"{source} holds {NAMED_SETS[named[0]][0]}; {expected} are expected here{hint}")


def read_scored_pairs(source: str, args: argparse.Namespace, split: str | None = None) -> SentencePairs:
    """``stsb:SPLIT`` or any source :func:`read_sts` reads (``split`` of a Hub dataset or DatasetDict)."""
    return _named_or_file(source, args, "stsb", lambda: read_sts(source, split=split))


def read_texts_with_labels(
    source: str, args: argparse.Namespace, split: str | None = None
) -> LabelledTexts | MultiLabelTexts:
    """``clinc150:SPLIT`` or any source :func:`read_labelled_texts` reads (``split`` as above); label
    sets (:func:`read_multi_label_texts`) with ``--multi-label``."""
    if getattr(args, "multi_label", False):
        refuse_named(source, "multi-label texts")
        return read_multi_label_texts(source, split=split)
    return _named_or_file(source, args, "clinc150", lambda: read_labelled_texts(source, split=split))


def _named_or_file(source: str, args: argparse.Namespace, wanted: str, read_file: Callable[[], object]):
    """The named set ``wanted`` when ``source`` names it (another named set is refused), else ``read_file()``."""
    named = named_set(source)
    if named is None:
        return read_file()
    kind, loader = NAMED_SETS[wanted]
    if named[0] != wanted:
        refuse_named(source, kind)
    return loader(named[1], data_dir=args.data_dir)


def emit(results: dict, args: argparse.Namespace, summary: str) -> None:
    """Print ``results`` (JSON with ``--json``, else ``summary``) and write them to ``--output``."""
    print(json.dumps(json_safe(results), allow_nan=False) if args.json else summary)
    if args.output:
        write_results(results, args.output)


def tsv_field(value: object) -> str:
    """``value`` as one field of a tab-separated output line: backslash, tab, CR and LF escaped."""
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\r", "\\r").replace("\n", "\\n")


def progress(args: argparse.Namespace) -> bool | None:
    return False if args.no_progress else None


def add_fine_tune_options(parser: argparse.ArgumentParser) -> None:
    """--fine-tune, --rounds and --save-model: Siamese fine-tuning of the tower on the support set."""
    parser.add_argument(
        "--fine-tune",
        action="store_true",
        help="first fine-tune the model on pairs of same-class support examples (in-batch negatives; "
        "minutes on a CPU for hundreds of examples)",
    )
    parser.add_argument("--rounds", type=int, help="pairs per support example for --fine-tune (default 20)")
    parser.add_argument("--save-model", help="write the fine-tuned model to this folder (use it later with --model)")
    parser.add_argument("--overwrite", action="store_true", help="let --save-model replace an existing folder")


def add_label_options(parser: argparse.ArgumentParser) -> None:
    """--labels, --label-text, --label-weight and --multi-label."""
    parser.add_argument(
        "--labels", help="the classes: a .json array or one label a line (zero-shot: with --label-text, no --support)"
    )
    parser.add_argument(
        "--label-text",
        help="'names' (each class name in words is a weighted member of its class) or a .json object of "
        "label -> description (classes it leaves out use their names)",
    )
    parser.add_argument("--label-weight", type=float, help="how many examples a label text is worth (default 1)")
    parser.add_argument(
        "--multi-label",
        action="store_true",
        help="texts carry label sets: a 'labels' (or 'label') column holding a list, or labels joined by | in CSV/TSV",
    )


def read_label_list(path: str) -> list[str | int]:
    """``--labels``: a JSON array of labels, or a file with one label a line (blank lines skipped)."""
    if Path(path).suffix.lower() == ".json":
        labels = read_json(Path(path))
        if not isinstance(labels, list):
            raise ValueError(f"{path}: expected a JSON array of labels, got a {type(labels).__name__}")
        return labels
    return [line.strip() for line in read_lines(path) if line.strip()]


def read_label_text(value: str | None, classes: list) -> str | dict | None:
    """``--label-text``: ``names``, or a JSON object of label -> description; a key that spells an int
    class (JSON keys are strings) is read as that int."""
    if value is None or value == "names":
        return value
    if Path(value).suffix.lower() != ".json":
        raise ValueError(f"--label-text must be 'names' or a .json file of label -> description, got {value!r}")
    descriptions = read_json(Path(value))
    if not isinstance(descriptions, dict):
        raise ValueError(
            f"{value}: expected a JSON object of label -> description, got a {type(descriptions).__name__}"
        )
    ints = {str(label): label for label in classes if isinstance(label, int)}
    return {ints.get(key, key): text for key, text in descriptions.items()}


def few_shot_classifier(args: argparse.Namespace, support: LabelledTexts | MultiLabelTexts | None) -> FewShotClassifier:
    """A classifier over ``support`` (None: zero-shot, from --labels and --label-text) with the --model,
    --strategy, --k, --threshold, label and fine-tuning options."""
    for option, value in (("--save-model", args.save_model), ("--rounds", args.rounds)):
        if value is not None and not args.fine_tune:
            raise ValueError(f"{option} needs --fine-tune")
    if args.rounds is not None and args.rounds < 1:
        raise ValueError(f"--rounds must be >= 1, got {args.rounds}")
    if args.k is not None and args.strategy != "knn":
        raise ValueError(f"--k is the neighbours per class of --strategy knn; --strategy {args.strategy} has none")
    if support is None and (args.labels is None or args.label_text is None):
        raise ValueError("give --support (labelled examples), or --labels and --label-text for zero-shot")
    if support is None and args.fine_tune:
        raise ValueError("--fine-tune trains on the --support examples; zero-shot has none")
    if args.label_weight is not None and args.label_text is None:
        raise ValueError("--label-weight weighs the label texts of --label-text")
    saved = Path(args.save_model) if args.save_model else None
    if saved is not None and saved.exists() and (not saved.is_dir() or any(saved.iterdir())):
        if not args.overwrite:
            raise ValueError(f"--save-model {saved} exists; choose a new folder or pass --overwrite to replace it")
        if not saved.is_dir() or holds_other_files(saved, MODEL_MARKERS):
            raise ValueError(
                f"--save-model {saved} holds files that are not a model; --overwrite replaces a model only"
            )
    labels = read_label_list(args.labels) if args.labels else None
    known = [*(labels or []), *(label for row in (support.labels if support else []) for label in _as_row(row))]
    classifier = FewShotClassifier(
        load_encoder(args),
        labels=labels,
        label_text=read_label_text(args.label_text, known),
        **({} if args.label_weight is None else {"label_weight": args.label_weight}),
        multi_label=args.multi_label,
        strategy=args.strategy,
        **({} if args.k is None else {"k": args.k}),
        threshold=args.threshold,
        unknown_label=args.unknown_label,
        batch_size=args.batch_size,
        show_progress=progress(args),
    )
    if support is not None:
        classifier.add_examples(support.texts, support.labels)
    classifier.label_texts()  # a description of no class, or "names" with int labels: refused before any work
    if args.fine_tune:
        show = not args.no_progress and sys.stderr.isatty()
        config = TrainingConfig.from_dict(FEW_SHOT_CONFIG.to_dict() | {"show_progress": show})
        rounds = {"rounds": args.rounds} if args.rounds is not None else {}
        classifier.fine_tune(config=config, seed=getattr(args, "seed", 0), **rounds)  # eval classify has --seed
        if args.save_model:
            classifier.encoder.save_pretrained(args.save_model)  # a model folder is replaced; others refused
    return classifier


def _as_row(labels: object) -> tuple:
    return labels if isinstance(labels, tuple) else (labels,)


def add_weight_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--weight",
        action="append",
        default=[],
        metavar="ARM=W",
        help="--mode hybrid: the weight of an arm in the fusion, e.g. --weight keyword=0.5 (default 1 each)",
    )


def weights(items: list[str]) -> dict[str, float] | None:
    """The ``--weight ARM=W`` options as ``{arm: weight}`` (None where none is given); the library checks them."""
    chosen = {}
    for item in items:
        arm, separator, value = item.partition("=")
        try:
            if not separator:
                raise ValueError
            chosen[arm] = float(value)
        except ValueError:
            raise ValueError(f"--weight needs ARM=NUMBER (dense=1 or keyword=0.5), got {item!r}") from None
    return chosen or None
