"""``sentsim export onnx MODEL OUT_DIR``: a model folder with its transformer as ONNX."""

from __future__ import annotations

import argparse
import json

from sentsim.encode.export import ONNX_FILE, export_onnx_folder
from sentsim.encoder import SentenceEncoder


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="export a model for other runtimes")
    formats = parser.add_subparsers(dest="format", required=True, metavar="FORMAT")
    onnx = formats.add_parser(
        "onnx",
        help="a model folder with onnx/model.onnx",
        description="Save MODEL to OUT_DIR with its transformer as ONNX (onnx/model.onnx), checked against the "
        "torch model first: sentence-transformers (backend='onnx'), fastembed and infinity-emb (optimum) load it.",
    )
    onnx.add_argument("model", help="model folder, short name or Hub id")
    onnx.add_argument("output", help="the folder to write")
    onnx.add_argument("--int8", action="store_true", help="dynamic int8 linear layers (needs the onnx package)")
    onnx.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a folder that holds other files (they are removed; a model folder is always replaced)",
    )
    onnx.add_argument("--trust-remote-code", action="store_true", help="allow the model's own code to run")
    onnx.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    encoder = SentenceEncoder.from_pretrained(args.model, device="cpu", trust_remote_code=args.trust_remote_code)
    closeness = export_onnx_folder(encoder, args.output, int8=args.int8, overwrite=args.overwrite)
    print(json.dumps({"folder": args.output, "onnx": ONNX_FILE, "int8": args.int8, **closeness}))
    return 0
