"""Encode at scale: tokenizer processes, and a million texts streamed to a .npy file.

    python benchmarks/bench_encode_scale.py --device cuda                 # 1M texts (a GPU machine)
    python benchmarks/bench_encode_scale.py --device cpu --n-short 2000 --n-long 200 --n-million 20000 --workers 0

1. texts/s of sentsim's defaults on 100k short and 20k long texts (STS-B sentences) with 0 (one tokenizer
   thread), 2, 4 and 8 tokenizer processes (``--workers``);
2. ``encode(texts, output="....npy")`` of ``--n-million`` distinct short texts: texts/s and the
   process's peak resident memory before and after, beside the size of the output file (whose
   written pages count in the resident memory).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA_DIR, best_time, long_texts, machine, stsb_sentences, timed  # noqa: E402

import sentsim.encode.pipeline as pipeline  # noqa: E402
from sentsim import SentenceEncoder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--workers", type=int, nargs="*", default=[0, 2, 4, 8])
    parser.add_argument("--n-short", type=int, default=100_000)
    parser.add_argument("--n-long", type=int, default=20_000)
    parser.add_argument("--n-million", type=int, default=1_000_000)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    encoder = SentenceEncoder.from_pretrained(args.model, device=args.device)
    sentences = stsb_sentences(args.data_dir)
    joined = long_texts(sentences, len(sentences) // 8)
    sets = {
        "short": [sentences[i % len(sentences)] for i in range(args.n_short)],
        "long": [joined[i % len(joined)] for i in range(args.n_long)],
    }
    encoder.encode(sets["short"][:5000], show_progress=False)  # warm-up
    print(f"# encode at scale, {args.model}, sentsim defaults; {machine()}")
    results: dict = {"machine": machine(), "workers": []}
    automatic = pipeline.tokenizer_workers
    for workers in args.workers:
        pipeline.tokenizer_workers = lambda count, w=workers: w
        for name, texts in sets.items():
            seconds = best_time(lambda t=texts: encoder.encode(t, show_progress=False), 2)
            results["workers"].append({"workers": workers, "texts": name, "texts_per_s": len(texts) / seconds})
            print(f"tokenizer processes {workers}, {name}: {len(texts) / seconds:.0f} texts/s", flush=True)
    pipeline.tokenizer_workers = automatic

    before = _peak_rss_mib()
    many = [f"{sentences[i % len(sentences)]} {i}" for i in range(args.n_million)]
    with_texts = _peak_rss_mib()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "embeddings.npy"
        seconds = timed(lambda: encoder.encode(many, output=path, show_progress=False))
        size = os.path.getsize(path) / 2**20
    after = _peak_rss_mib()
    results["stream"] = {
        "texts": len(many),
        "texts_per_s": len(many) / seconds,
        "peak_rss_mib_before": before,
        "peak_rss_mib_with_texts": with_texts,
        "peak_rss_mib_after": after,
        "output_mib": size,
    }
    print(
        f"{len(many)} texts to .npy: {len(many) / seconds:.0f} texts/s; peak RSS {before:.0f} MiB before, "
        f"{with_texts:.0f} MiB with the texts, {after:.0f} MiB after encoding; output file {size:.0f} MiB"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
