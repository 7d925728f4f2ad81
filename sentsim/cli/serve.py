"""``sentsim serve``: embeddings, similarity and index search over HTTP (OpenAI-compatible)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
from pathlib import Path

from sentsim.encode.precision import Precision
from sentsim.encode.runtimes import Runtime
from sentsim.storage.hub import resolve_model_path
from sentsim.validation import check_int


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve embeddings, similarity and search over HTTP",
        description="An HTTP server with dynamic batching: POST /v1/embeddings (the OpenAI schema), "
        "/v1/similarity, /v1/indexes/NAME/search|documents|delete, GET /health and /metrics. "
        "Binds to 127.0.0.1 unless told otherwise. Needs the serve extra: pip install 'sentsim[serve]'.",
    )
    parser.add_argument("--model", default="all-MiniLM-L6-v2", help="model name or folder (default: all-MiniLM-L6-v2)")
    parser.add_argument(
        "--index", action="append", default=[], metavar="NAME=DIR", help="serve this index (repeatable)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    parser.add_argument("--api-key", help="require 'Authorization: Bearer KEY' (default: $SENTSIM_API_KEY, else none)")
    parser.add_argument(
        "--max-batch-tokens", type=int, help="tokens per model call (default: 8192 on CPU, 65536 on CUDA)"
    )
    parser.add_argument("--max-body-mb", type=float, default=32.0, help="larger request bodies get 413 (default: 32)")
    parser.add_argument("--max-inputs", type=int, default=2048, help="texts per request at most (default: 2048)")
    parser.add_argument(
        "--dtype",
        choices=[*(precision.value for precision in Precision), "int8"],
        help="precision of embeddings and queries, as encode's (default: bf16 on a CUDA GPU, else fp32; int8: CPU, "
        "ONNX Runtime's integer kernels); index documents are written in the index's own precision (fp32 on CPU)",
    )
    parser.add_argument(
        "--runtime", choices=[runtime.value for runtime in Runtime], default="torch", help="as encode's"
    )
    parser.add_argument("--trust-remote-code", action="store_true", help="let a model given by name run its own code")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from sentsim.serve import ServeConfig, Service, create_app
    except ImportError as error:
        raise ImportError(
            f"sentsim serve needs its extra: pip install 'sentsim[serve]' ({error.name} is missing)"
        ) from None
    indexes = {}
    for item in args.index:
        name, separator, folder = item.partition("=")
        if not separator or not name or not folder:
            raise ValueError(f"--index needs NAME=DIR, got {item!r}")
        if name in indexes:
            raise ValueError(f"--index {name} is given twice")
        if not (Path(folder) / "manifest.json").is_file():
            raise ValueError(f"--index {name}: {folder} is not a sentsim index (no manifest.json)")
        indexes[name] = folder
    config = ServeConfig(
        model=args.model,
        indexes=indexes,
        device=args.device,
        api_key=args.api_key or os.environ.get("SENTSIM_API_KEY") or None,
        max_batch_tokens=check_int("--max-batch-tokens", args.max_batch_tokens, minimum=1, optional=True),
        max_body_mb=args.max_body_mb,
        max_inputs=check_int("--max-inputs", args.max_inputs, minimum=1),
        trust_remote_code=args.trust_remote_code,
        dtype=args.dtype,
        runtime=args.runtime,
    )
    if args.max_body_mb <= 0:
        raise ValueError(f"--max-body-mb must be > 0, got {args.max_body_mb}")
    check_int("--port", args.port, minimum=0, maximum=65535)
    resolve_model_path(args.model)  # a missing model is reported now, not after the server started
    app = create_app(Service(config))
    # uvicorn drains in-flight requests on SIGTERM / Ctrl-C, then hands the signal back: taken as done
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    logging.getLogger("sentsim").setLevel(logging.INFO)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=30)
    return 0
