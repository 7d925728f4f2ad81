"""Encode throughput: sentsim vs sentence-transformers, same model, same texts, same run.

    python benchmarks/bench_encode.py                 # CPU, and CUDA when present
    python benchmarks/bench_encode.py --device cpu --n-short 2000 --n-long 256

Prints texts/s for short texts (STS-B sentences) and long ones (8 sentences joined), the
ratio sentsim / sentence-transformers, and the largest difference between their embeddings.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA_DIR, best_time, long_texts, machine, stsb_sentences  # noqa: E402

from sentsim import SentenceEncoder  # noqa: E402
from sentsim.hub import resolve_model_path  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument(
        "--device", action="append", help="cpu / cuda (repeatable; default: cpu, and cuda when present)"
    )
    parser.add_argument("--n-short", type=int, default=2000)
    parser.add_argument("--n-long", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args()

    from sentence_transformers import SentenceTransformer

    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    sentences = stsb_sentences(args.data_dir)
    sets = {"short": sentences[: args.n_short], "long": long_texts(sentences, args.n_long)}
    path = str(resolve_model_path(args.model))
    print(f"# encode throughput, {args.model}, batch {args.batch_size}, best of {args.repeats}; {machine()}")
    print(
        f"{'device':<6} {'texts':<6} {'n':>6} {'sentence-transformers':>22} {'sentsim':>10} {'ratio':>6} {'max |diff|':>11}"
    )
    results = []
    for device in devices:
        ours = SentenceEncoder.from_pretrained(path, device=device)
        theirs = SentenceTransformer(path, device=device)
        for name, texts in sets.items():
            kwargs = {"batch_size": args.batch_size, "show_progress": False}
            ours.encode(texts[: args.batch_size * 2], **kwargs)  # warm-up
            theirs.encode(texts[: args.batch_size * 2], batch_size=args.batch_size)
            ours_s = best_time(lambda: ours.encode(texts, **kwargs), args.repeats)  # noqa: B023
            theirs_s = best_time(lambda: theirs.encode(texts, batch_size=args.batch_size), args.repeats)  # noqa: B023
            diff = float(np.abs(ours.encode(texts, **kwargs) - theirs.encode(texts, batch_size=args.batch_size)).max())
            row = {
                "device": device,
                "texts": name,
                "n": len(texts),
                "st_texts_per_s": len(texts) / theirs_s,
                "sentsim_texts_per_s": len(texts) / ours_s,
                "ratio": theirs_s / ours_s,
                "max_abs_diff": diff,
            }
            results.append(row)
            print(
                f"{device:<6} {name:<6} {len(texts):>6} {row['st_texts_per_s']:>22.0f} {row['sentsim_texts_per_s']:>10.0f} "
                f"{row['ratio']:>6.2f} {diff:>11.1e}"
            )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine(), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
