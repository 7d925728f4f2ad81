"""Where encode's time goes: the batch producer (tokenize + pack) and the GPU consumer, apart.

    python benchmarks/bench_encode_pipeline.py --device cuda

For 100k short STS-B sentences: texts/s of the tokenizer alone, of the producer
(``tokenized_chunks``: tokenize, pack, pin) with one thread and with 8 and 14 tokenizer processes,
of the consumer alone on pre-built batches (``run_chunks``), and of ``encode`` end to end.
End to end is bounded by the slower of producer and consumer.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA_DIR, best_time, machine, stsb_sentences, timed  # noqa: E402

import sentsim.encoding as encoding  # noqa: E402
from sentsim import SentenceEncoder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[0, 8, 14], help="tokenizer processes to time the producer with"
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args()
    encoder = SentenceEncoder.from_pretrained(args.model, device=args.device)
    device, sentences = encoder.device, stsb_sentences(args.data_dir)
    texts = [sentences[i % len(sentences)] for i in range(args.n)]
    tokenizer, on_gpu = encoder.tower.tokenizer, device.type == "cuda"
    packed = encoder._use_packing(None, device, encoding.autocast_dtype(None, device))
    dtype = encoding.autocast_dtype(None, device)
    encoder.encode(texts[:20000], show_progress=False)  # warm-up
    print(f"# encode pipeline, {args.n} short texts, packed={packed}; {machine()}")
    raw = tokenizer.tokenizer
    _report("Rust encode_batch_fast alone", len(texts), lambda: raw.encode_batch_fast(texts, add_special_tokens=True))
    _report("tokenizer alone (+ ids to flat arrays)", len(texts), lambda: tokenizer.encode(texts))
    chunks = []
    for workers in args.workers:
        seconds = timed(
            lambda w=workers: chunks.__setitem__(
                slice(None),
                encoding.tokenized_chunks(texts, tokenizer, 64, None, packed=packed, pin_memory=on_gpu, workers=w),
            )
        )
        print(f"producer, {workers} tokenizer processes: {len(texts) / seconds:.0f} texts/s", flush=True)

    def embed(batch):
        if isinstance(batch, encoding.PackedBatch):
            return encoder._embed_packed(batch, True)
        return encoder._embed(batch.input_ids, batch.attention_mask, True)

    def consume():
        with torch.inference_mode():
            encoding.run_chunks(chunks, embed, device, encoder.dim, lambda start, block: None, lambda n: None, dtype)

    consume()
    _report("consumer alone (pre-built batches)", len(texts), consume)
    _report("encode end to end", len(texts), lambda: encoder.encode(texts, show_progress=False))


def _report(what: str, count: int, run) -> None:
    seconds = best_time(run, 2)
    print(f"{what}: {count / seconds:.0f} texts/s", flush=True)


if __name__ == "__main__":
    main()
