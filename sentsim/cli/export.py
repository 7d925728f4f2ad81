"""``sentsim export onnx MODEL OUT_DIR``: a model folder with its transformer as ONNX;
``sentsim export merged ADAPTER OUT_DIR``: a LoRA adapter folded into its base model."""

from __future__ import annotations

import argparse
import json

from sentsim.encode.export import ONNX_FILE, export_onnx_folder
from sentsim.encoder import SentenceEncoder
from sentsim.lora import merge_lora


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
    merged = formats.add_parser(
        "merged",
        help="a LoRA adapter folded into its base model: a plain model folder",
        description="Load the LoRA adapter MODEL onto its base model, fold it into the weights and save a plain "
        "model folder (no adapter, no peft needed) that sentence-transformers loads with the same embeddings.",
    )
    merged.add_argument("model", help="an adapter folder (sentsim train --lora-rank ... writes one)")
    merged.add_argument("output", help="the folder to write")
    merged.add_argument(
        "--overwrite", action="store_true", help="write into a folder that holds other files (they are removed)"
    )
    merged.add_argument("--trust-remote-code", action="store_true", help="allow the base model's own code to run")
    merged.set_defaults(run=run_merged)


def run(args: argparse.Namespace) -> int:
    encoder = SentenceEncoder.from_pretrained(args.model, device="cpu", trust_remote_code=args.trust_remote_code)
    if encoder.adapter is not None:  # ONNX holds plain weights
        encoder = merge_lora(encoder)
    closeness = export_onnx_folder(encoder, args.output, int8=args.int8, overwrite=args.overwrite)
    print(json.dumps({"folder": args.output, "onnx": ONNX_FILE, "int8": args.int8, **closeness}))
    return 0


def run_merged(args: argparse.Namespace) -> int:
    encoder = SentenceEncoder.from_pretrained(args.model, device="cpu", trust_remote_code=args.trust_remote_code)
    if encoder.adapter is None:
        raise ValueError(f"{args.model} holds no LoRA adapter: it is a plain model already")
    encoder.save_pretrained(args.output, merge=True, overwrite=args.overwrite)
    print(json.dumps({"folder": args.output, "base": encoder.adapter.base, "merged": True}))
    return 0
