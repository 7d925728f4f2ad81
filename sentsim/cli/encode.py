"""``sentsim encode``: texts from a file -> embeddings in a ``.npy`` file, or (``--engine ray``) a
Parquet corpus -> a folder of Parquet shards, encoded on a Ray cluster."""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path

from sentsim.cli.common import add_model_options, load_encoder, model_name, progress
from sentsim.data.texts import read_texts
from sentsim.encode.precision import Precision
from sentsim.encode.runtimes import Runtime

logger = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "encode",
        help="embed texts into a .npy file (or Parquet shards, on Ray)",
        description="Embed texts from a file into a .npy file; with --engine ray, embed a Parquet or JSON Lines "
        "corpus with ids on a Ray cluster into a folder of Parquet shards (id, embedding) and a sentsim.json.",
    )
    parser.add_argument(
        "--input",
        required=True,
        help="one text a line, .jsonl, a .csv/.tsv/.json/.parquet table (its --field column), or - for stdin; "
        "--engine ray: a .parquet or .jsonl file, or a folder of them",
    )
    parser.add_argument(
        "--output",
        required=True,
        help="where to write the (n, dim) float32 .npy array; --engine ray: the folder to write",
    )
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
    ray = parser.add_argument_group("engine")
    ray.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local: this process (default); ray: a pool of Ray actors (pip install 'sentsim[ray]')",
    )
    ray.add_argument(
        "--ray-address",
        help="auto (this machine's cluster, or $RAY_ADDRESS as in ray job submit), HOST:PORT or ray://HOST:PORT "
        "(default: start a local Ray runtime for this command)",
    )
    ray.add_argument("--workers", type=int, help="Ray actors, each with a copy of the model (default: 1)")
    ray.add_argument(
        "--cpus-per-worker",
        type=float,
        help="CPUs Ray reserves for each actor, fractions allowed; a CPU actor runs ceil() threads (default: 1)",
    )
    ray.add_argument("--gpus-per-worker", type=float, help="GPUs for each actor, fractions allowed (default: 0)")
    ray.add_argument("--id-field", help="the id column (str or int ids) of the input (default: id)")
    ray.add_argument("--overwrite", action="store_true", help="replace an existing output folder of embeddings")
    add_model_options(parser, truncate=True)
    parser.set_defaults(run=run)


RAY_OPTIONS = ("ray_address", "workers", "cpus_per_worker", "gpus_per_worker", "id_field", "overwrite")
LOCAL_OPTIONS = {
    "dtype": None,
    "max_tokens": None,
    "device": None,
    "runtime": "torch",
    "truncate_dim": None,
}  # and their defaults


def run(args: argparse.Namespace) -> int:
    _check_engine_options(args)
    if args.engine == "ray":
        return run_ray(args)
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


def _check_engine_options(args: argparse.Namespace) -> None:
    """Options of the other engine are refused rather than ignored."""
    if args.engine == "local":
        given = [name for name in RAY_OPTIONS if getattr(args, name) is not None and getattr(args, name) is not False]
        if given:
            raise ValueError(f"--{given[0].replace('_', '-')} applies to --engine ray")
        return
    given = [name for name, default in LOCAL_OPTIONS.items() if getattr(args, name) != default]
    if given:
        raise ValueError(
            f"--{given[0].replace('_', '-')} applies to --engine local; Ray workers run on what they are given "
            "(--gpus-per-worker), in bf16 on a GPU that supports it, else fp32"
        )
    if args.input == "-":
        raise ValueError("--engine ray reads files (.parquet, .jsonl or a folder of them), not standard input")


def run_ray(args: argparse.Namespace) -> int:
    """Encode the corpus on Ray into the output folder, which appears only when complete."""
    from sentsim.distributed import encode_to_folder, ray_runtime, read_dataset
    from sentsim.distributed.runtime import require_ray
    from sentsim.distributed.shards import check_output_folder

    check_output_folder(Path(args.output), overwrite=args.overwrite)  # before minutes of work
    ray = require_ray()
    context = ray.data.DataContext.get_current()
    bars_were_on = context.enable_progress_bars
    context.enable_progress_bars = not args.no_progress
    try:
        with ray_runtime(args.ray_address, log_to_driver=logger.isEnabledFor(logging.INFO)):
            info = encode_to_folder(
                read_dataset(args.input),
                model_name(args),
                args.output,
                overwrite=args.overwrite,
                text_column=args.field or "text",
                id_column=args.id_field or "id",
                prompt_name=args.prompt_name,
                prompt=args.prompt,
                normalize=args.normalize,
                batch_size=args.batch_size,
                workers=1 if args.workers is None else args.workers,
                cpus_per_worker=1.0 if args.cpus_per_worker is None else args.cpus_per_worker,
                gpus_per_worker=0.0 if args.gpus_per_worker is None else args.gpus_per_worker,
                max_seq_length=args.max_seq_length,
                trust_remote_code=args.trust_remote_code,
            )
    except ray.exceptions.RayError as error:  # a worker's traceback, already logged by Ray: its last word here
        raise RuntimeError(f"a Ray worker failed: {_worker_error(error)}") from None
    finally:
        context.enable_progress_bars = bars_were_on
    print(f"{args.output}\t{info['count']}x{info['dim']}")
    return 0


def _worker_error(error: Exception) -> str:
    """The first ``SomeError: message`` line of a Ray worker's error (the one its code raised), else all of it."""
    text = str(error)
    found = re.search(r"^\s*(\w+(?:Error|Exception): .+)$", text, flags=re.MULTILINE)
    return found[1] if found else " ".join(line.strip() for line in text.splitlines() if line.strip())
