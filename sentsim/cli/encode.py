"""``sentsim encode``: texts from a file -> embeddings in a ``.npy`` file."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from sentsim.cli.common import add_model_options, load_encoder, progress
from sentsim.data.texts import read_texts
from sentsim.encode.precision import Precision
from sentsim.encode.runtimes import Runtime

logger = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "encode", help="embed texts into a .npy file", description="Embed texts from a file into a .npy file."
    )
    parser.add_argument(
        "--input",
        required=True,
        help="one text a line, .jsonl, a .csv/.tsv/.json/.parquet table (its --field column), or - for stdin",
    )
    parser.add_argument("--output", required=True, help="where to write the (n, dim) float32 .npy array")
    parser.add_argument(
        "--field",
        help="the text field of .jsonl input or text column of .csv / .tsv / .json / .parquet input (default: text)",
    )
    prompt = parser.add_mutually_exclusive_group()
    prompt.add_argument(
        "--prompt-name", help="prepend the model's prompt of this name, e.g. query (default: its default prompt)"
    )
    prompt.add_argument("--prompt", help="prepend this text to every text, e.g. 'query: '")
    parser.add_argument(
        "--normalize",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="L2-normalize (default: the model's setting)",
    )
    parser.add_argument(
        "--max-tokens", type=int, default=None, help="at most this many padded tokens per batch (e.g. 16384)"
    )
    parser.add_argument(
        "--dtype",
        choices=[*(precision.value for precision in Precision), "int8"],
        default=None,
        help="default: bf16 on a CUDA GPU that supports it, else fp32; int8: CPU, ONNX Runtime's integer kernels "
        "(pip install onnxruntime onnx; built once per model and cached)",
    )
    parser.add_argument(
        "--runtime",
        choices=[runtime.value for runtime in Runtime],
        default="torch",
        help="compile: torch.compile (seconds of warm-up, for long runs); onnx: ONNX Runtime on CPU in fp32 "
        "(pip install onnxruntime); the same embeddings",
    )
    add_model_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    texts = read_texts(args.input, field=args.field)
    encoder = load_encoder(args)
    output = Path(args.output)
    if output.suffix.lower() != ".npy":
        output = output.with_name(output.name + ".npy")
    embeddings = encoder.encode(  # streams to disk; encode() renames the file into place when complete
        texts,
        prompt_name=args.prompt_name,
        prompt=args.prompt,
        batch_size=args.batch_size,
        max_tokens=args.max_tokens,
        normalize=args.normalize,
        dtype=args.dtype,
        runtime=args.runtime,
        output=output,
        show_progress=progress(args),
    )
    shape = embeddings.shape
    del embeddings
    print(f"{output}\t{shape[0]}x{shape[1]}")
    return 0
