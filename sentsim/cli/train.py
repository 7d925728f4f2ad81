"""``sentsim train`` and ``sentsim distill``: fine-tune a tower, or distill one into an LSTM student."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sentsim.cli.common import (
    add_model_options,
    check_split_used,
    load_encoder,
    named_set,
    read_scored_pairs,
    read_texts_with_labels,
)
from sentsim.cli.lora_options import add_lora_options, lora_settings
from sentsim.data.texts import read_texts
from sentsim.encoder import SentenceEncoder
from sentsim.evaluation.sts import check_sts_pairs, evaluate_sts
from sentsim.lora import add_lora
from sentsim.projection import DenseConfig
from sentsim.towers import LSTMTower
from sentsim.training import MatryoshkaLoss, TrainingConfig, distill, load_training_data, make_loss, train
from sentsim.training.config import PRECISIONS
from sentsim.training.distributed import init_from_environment, rank_and_world

LSTM_DEFAULTS = {"hidden_size": 512, "layers": 1, "pooling": "max"}  # of a student or --lstm-from tower


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="fine-tune a model on sentence pairs or triplets",
        description="Fine-tune a transformer or LSTM tower. DATA is a file (csv, tsv, json, jsonl, parquet; the "
        "headerless STS-B CSV too), a saved dataset, a Hub dataset, or stsb:train. Runs under "
        "`torchrun --nproc_per_node N` with DDP. The model is written to OUTPUT/final (and OUTPUT/best with --eval).",
    )
    parser.add_argument("--train", required=True, help="training data")
    parser.add_argument("--eval", help="STS data (sentence1,sentence2,score) evaluated during training, e.g. stsb:dev")
    parser.add_argument("--loss", required=True, choices=["cosine", "cosent", "contrastive", "triplet", "mnrl"])
    parser.add_argument(
        "--loss-options",
        type=_json_object,
        default={},
        metavar="JSON",
        help='settings of the loss, e.g. \'{"margin": 0.5, "distance": "cosine", "batch_hard": true}\' '
        "(the parameters of its class; see the README's loss table)",
    )
    parser.add_argument(
        "--matryoshka",
        type=_dims,
        metavar="DIMS",
        help="train embeddings that can be truncated to these dimensions, e.g. 384,256,128,64 (MatryoshkaLoss "
        "around --loss; the model records them; encode with --truncate-dim)",
    )
    parser.add_argument(
        "--mini-batch-size",
        type=int,
        metavar="N",
        help="--loss mnrl: cached in-batch negatives (GradCache): embed each batch N rows at a time, so a large "
        "--batch-size (1024+) fits in memory; the same gradients, about 1.3x the compute",
    )
    parser.add_argument("--output", help="run folder (run.json, metrics.jsonl, checkpoint/, best/, final/)")
    parser.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last checkpoint")
    parser.add_argument(
        "--columns", type=json.loads, default=None, help='rename columns, e.g. \'{"question": "anchor"}\''
    )
    parser.add_argument(
        "--prompts",
        type=_prompts,
        default=None,
        help='prepend prompts to text columns, e.g. \'{"anchor": "query: ", "positive": "passage: "}\', '
        "or one text for every column",
    )
    parser.add_argument(
        "--score-range", type=float, nargs=2, metavar=("LOW", "HIGH"), help="rescale scores to [0, 1] (stsb: 0 5)"
    )
    parser.add_argument("--split", help="split of a Hub dataset or saved DatasetDict (default: train)")
    parser.add_argument(
        "--data-dir", default=None, help="local folder of the named sets (default: $SENTSIM_DATA_DIR, else the Hub)"
    )
    _add_lstm_options(
        parser,
        "--lstm-from",
        "build a fresh LSTM tower from this transformer's tokenizer and input embeddings instead of --model",
    )
    _add_training_options(parser, epochs=1, batch_size=16, lr=2e-5)
    add_lora_options(parser)
    add_model_options(parser, batch_size=False)
    parser.set_defaults(run=run_train)

    distill_parser = subparsers.add_parser(
        "distill",
        help="distill a teacher into an LSTM student",
        description="Train an LSTM student to reproduce the teacher's embeddings on unlabelled texts (MSE). The "
        "student starts from the teacher's tokenizer and input embeddings. Written to OUTPUT/final.",
    )
    distill_parser.add_argument(
        "--teacher", default="all-MiniLM-L6-v2", help="teacher model (default: all-MiniLM-L6-v2)"
    )
    distill_parser.add_argument(
        "--texts",
        required=True,
        nargs="+",
        help="text files (one a line, .jsonl) or named sets (stsb:train, clinc150:train)",
    )
    distill_parser.add_argument("--output", help="run folder")
    distill_parser.add_argument(
        "--resume",
        nargs="?",
        const=True,
        metavar="DIR",
        help="continue the run in DIR (as train --resume), or with no DIR the run in --output",
    )
    distill_parser.add_argument("--eval", help="STS data evaluated during training, e.g. stsb:dev")
    distill_parser.add_argument(
        "--data-dir", default=None, help="local folder of the named sets (default: $SENTSIM_DATA_DIR, else the Hub)"
    )
    _add_lstm_options(distill_parser, None, None)
    _add_training_options(distill_parser, epochs=10, batch_size=64, lr=1e-3)
    distill_parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    distill_parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    distill_parser.set_defaults(run=run_distill)


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON ({error.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _dims(text: str) -> list[int]:
    """--matryoshka: comma-separated dimensions (their order and range are checked by MatryoshkaLoss)."""
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated dimensions such as 384,256,128,64, got {text!r}"
        ) from None


def _train_loss(args: argparse.Namespace):
    """--loss with --loss-options, its cached mini-batches (--mini-batch-size), wrapped by --matryoshka."""
    options = dict(args.loss_options)
    if args.mini_batch_size is not None:
        if args.loss != "mnrl":
            raise ValueError(f"--mini-batch-size applies to --loss mnrl (cached in-batch negatives), not {args.loss}")
        if "mini_batch_size" in options:
            raise ValueError("give the mini-batch size once: --mini-batch-size or --loss-options, not both")
        options["mini_batch_size"] = args.mini_batch_size
    loss = _loss(args.loss, options)
    if args.matryoshka is None:
        return loss
    try:
        return MatryoshkaLoss(loss, args.matryoshka)
    except (TypeError, ValueError) as error:
        raise ValueError(f"--matryoshka: {error}") from None


def _loss(name: str, options: dict):
    """The loss ``name`` with ``options``; an option its class does not take is named."""
    try:
        return make_loss(name, **options)
    except TypeError as error:
        if "unexpected keyword argument" in str(error) or "multiple values" in str(error):
            raise ValueError(f"--loss-options: the {name} loss has no option {str(error).split()[-1]}") from None
        raise ValueError(f"--loss-options: {error}") from None


def _prompts(text: str) -> str | dict:
    """--prompts: a JSON object of column -> prompt, else the text itself (one prompt for every column)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value if isinstance(value, (dict, str)) else text


def _add_lstm_options(parser: argparse.ArgumentParser, flag: str | None, help_text: str | None) -> None:
    if flag:
        parser.add_argument(flag, metavar="MODEL", help=help_text)
    parser.add_argument(
        "--hidden-size", type=int, help=f"LSTM hidden size per direction (default {LSTM_DEFAULTS['hidden_size']})"
    )
    parser.add_argument("--layers", type=int, help=f"LSTM layers (default {LSTM_DEFAULTS['layers']})")
    parser.add_argument("--unidirectional", action="store_true", help="a one-way LSTM (default: bidirectional)")
    parser.add_argument(
        "--pooling", choices=["mean", "cls", "max"], help=f"LSTM pooling (default {LSTM_DEFAULTS['pooling']})"
    )
    parser.add_argument("--freeze-embeddings", action="store_true", help="keep the starting token embeddings fixed")


def _lstm_options_given(args: argparse.Namespace) -> list[str]:
    """The LSTM shape options on the command line (they shape a student or --lstm-from tower only)."""
    given = [f"--{name.replace('_', '-')}" for name in LSTM_DEFAULTS if getattr(args, name) is not None]
    return given + [
        flag for flag in ("--unidirectional", "--freeze-embeddings") if getattr(args, flag[2:].replace("-", "_"))
    ]


def _add_training_options(parser: argparse.ArgumentParser, *, epochs: int, batch_size: int, lr: float) -> None:
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--batch-size", type=int, default=batch_size, help="examples per step over all processes")
    parser.add_argument("--lr", type=float, default=lr, help="peak learning rate")
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--grad-accum", type=int, default=1, help="batches per optimizer step")
    parser.add_argument("--max-grad-norm", type=float, default=1.0)
    parser.add_argument("--precision", default="auto", choices=PRECISIONS)
    parser.add_argument(
        "--packed",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run each batch's texts end to end without padding (default: on CUDA in bf16/fp16 for BERT/RoBERTa "
        "towers); the same weights as the padded path up to float rounding",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-steps", type=int, default=None, help="evaluate every N steps (and at each epoch end)")
    parser.add_argument("--log-steps", type=int, default=10, help="log the loss every N steps (and at the end)")
    parser.add_argument(
        "--checkpoint-steps", type=int, default=None, help="checkpoint every N steps (and at each epoch end)"
    )
    parser.add_argument("--patience", type=int, default=None, help="early stopping: evaluations without improvement")


def _config(args: argparse.Namespace) -> TrainingConfig:
    return TrainingConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        warmup_ratio=args.warmup_ratio,
        weight_decay=args.weight_decay,
        gradient_accumulation=args.grad_accum,
        max_grad_norm=args.max_grad_norm,
        precision=args.precision,
        seed=args.seed,
        eval_steps=args.eval_steps,
        checkpoint_steps=args.checkpoint_steps,
        log_steps=args.log_steps,
        early_stopping_patience=args.patience,
        show_progress=not args.no_progress,
        packed=args.packed,
    )


def _lstm_encoder(source, args: argparse.Namespace, *, normalize: bool, dim: int | None) -> SentenceEncoder:
    shape = {
        name: LSTM_DEFAULTS[name] if getattr(args, name) is None else getattr(args, name) for name in LSTM_DEFAULTS
    }
    tower = LSTMTower.from_transformer(
        source,
        hidden_size=shape["hidden_size"],
        num_layers=shape["layers"],
        bidirectional=not args.unidirectional,
        freeze_embeddings=args.freeze_embeddings,
    )
    dense = (
        DenseConfig(in_features=tower.dim, out_features=dim, activation="identity")
        if dim and dim != tower.dim
        else None
    )
    return SentenceEncoder(tower, pooling=shape["pooling"], normalize=normalize, dense=dense)


def _evaluator(args: argparse.Namespace):
    if not args.eval:
        return None
    pairs = read_scored_pairs(args.eval, args)
    check_sts_pairs(pairs)  # before training, not at the first evaluation
    return lambda encoder: evaluate_sts(encoder, pairs, show_progress=False)


def _run_folder(args: argparse.Namespace) -> str:
    """The run folder of --output / --resume DIR (distill's --resume alone continues --output)."""
    resume = None if args.resume is True else args.resume
    if resume and args.output and Path(resume) != Path(args.output):
        raise ValueError(f"--resume {resume} continues the run in that folder; drop --output {args.output}")
    output = resume or args.output
    if output is None:
        raise ValueError("give --output DIR for a new run, or --resume DIR to continue one")
    return output


def run_train(args: argparse.Namespace) -> int:
    init_from_environment()
    output = _run_folder(args)
    if args.lstm_from and args.model:
        raise ValueError(f"--model {args.model} and --lstm-from {args.lstm_from} both choose the tower; give one")
    lstm_options = _lstm_options_given(args)
    if lstm_options and not args.lstm_from:
        raise ValueError(f"{', '.join(lstm_options)} shape an LSTM tower: add --lstm-from MODEL")
    loss = _train_loss(args)  # before the data and the model load
    lora = lora_settings(args)
    check_split_used(args.split, [args.train])
    named = named_set(args.train)
    if named and named[0] == "stsb":
        pairs = read_scored_pairs(args.train, args)
        source: object = {"sentence1": pairs.sentences1, "sentence2": pairs.sentences2, "score": pairs.scores.tolist()}
        score_range = tuple(args.score_range) if args.score_range else (0.0, 5.0)
    elif named:
        raise ValueError(f"{args.train} holds labelled texts; training takes pairs or triplets (e.g. stsb:train)")
    else:
        source, score_range = args.train, tuple(args.score_range) if args.score_range else None
    data = load_training_data(
        source, split=args.split or "train", columns=args.columns, score_range=score_range, prompts=args.prompts
    )
    encoder = (
        _lstm_encoder(SentenceEncoder.from_pretrained(args.lstm_from, device="cpu"), args, normalize=False, dim=None)
        if args.lstm_from
        else load_encoder(args)
    )
    if lora is not None:
        add_lora(encoder, lora)  # unknown target layers: an error before any step
    if args.prompts and not encoder.include_prompt:
        raise ValueError(
            "--prompts: this model pools without its prompt's tokens (include_prompt=False), so training with "
            "prompts would pool tokens that encoding leaves out; train without --prompts"
        )
    result = train(
        encoder,
        data,
        loss,
        _config(args),
        output_dir=output,
        evaluator=_evaluator(args),
        resume=bool(args.resume),
        device=args.device,
    )
    _report(result)
    return 0


def run_distill(args: argparse.Namespace) -> int:
    init_from_environment()
    output = _run_folder(args)
    teacher = SentenceEncoder.from_pretrained(args.teacher, device=args.device)
    texts = []
    for source in args.texts:
        named = named_set(source)
        if named and named[0] == "stsb":
            pairs = read_scored_pairs(source, args)
            texts += pairs.sentences1 + pairs.sentences2
        elif named:
            texts += read_texts_with_labels(source, args).texts
        else:
            texts += read_texts(source)
    student = _lstm_encoder(teacher, args, normalize=teacher.normalize, dim=teacher.dim)
    result = distill(
        student, teacher, texts, _config(args), output_dir=output, evaluator=_evaluator(args), resume=bool(args.resume)
    )
    _report(result)
    return 0


def _report(result) -> None:
    if rank_and_world()[0] != 0:
        return
    summary = {
        "steps": result.steps,
        "epochs": result.epochs,
        "seconds": round(result.seconds, 1),
        "examples_per_second": round(result.examples_per_second, 1),
        "final_loss": result.final_loss,
        "best_metric": result.best_metric,
        "model": str(Path(result.output_dir) / "final") if result.output_dir else None,
        "best_model": str(Path(result.output_dir) / "best")
        if result.output_dir and result.best_metric is not None
        else None,
    }
    print(json.dumps(summary))
