"""Helpers shared by the benchmarks: data paths, texts, timing."""

from __future__ import annotations

import csv
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

DEFAULT_DATA_DIR = Path(os.environ.get("SENTSIM_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))


def stsb_sentences(data_dir: Path = DEFAULT_DATA_DIR) -> list[str]:
    """Every sentence of STS-B train, dev and test, in file order (duplicates kept)."""
    sentences = []
    for split in ("train", "dev", "test"):
        path = data_dir / "stsb" / f"{split}.csv"
        if not path.exists():
            raise SystemExit(f"STS Benchmark not found at {path}; pass --data-dir or set SENTSIM_DATA_DIR")
        with open(path, encoding="utf-8", newline="") as handle:
            for row in csv.reader(handle):
                sentences.extend(row[:2])
    return sentences


def long_texts(sentences: list[str], count: int, per_text: int = 8) -> list[str]:
    """``count`` texts of ``per_text`` consecutive sentences joined by spaces."""
    return [" ".join(sentences[i * per_text : (i + 1) * per_text]) for i in range(count)]


def timed(run: Callable[[], object]) -> float:
    """Seconds one run of ``run`` takes, GPU work included."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    run()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def best_time(run: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` timed runs (after the caller's warm-up), in seconds."""
    return min(timed(run) for _ in range(repeats))


def model_flops_per_token(config) -> float:
    """FLOPs of a BERT-style encoder per token (multiply-add = 2): the projections and the
    feed-forward, 2 * (4 d^2 + 2 d f) per layer. Attention scores add 4 d L per layer, under 3% for
    MiniLM at L <= 64, left out."""
    config = config.get_text_config()
    hidden, inner = config.hidden_size, config.intermediate_size
    return 2.0 * config.num_hidden_layers * (4 * hidden * hidden + 2 * hidden * inner)


def fp32_gemm_gflops(size: int = 2048, repeats: int = 5) -> float:
    """What this CPU's fp32 matmul reaches with torch's threads: the practical peak a model can approach."""
    left, right = torch.randn(size, size), torch.randn(size, size)
    left @ right  # warm-up
    return 2 * size**3 / best_time(lambda: left @ right, repeats) / 1e9


def train_sentence_transformers(args, columns: dict, make_loss: Callable) -> tuple[float, Path]:
    """sentence-transformers' trainer on ``columns`` with the benchmarks' recipe (``args.model``,
    ``args.epochs``, ``args.batch_size``, ``args.lr``; 10% warm-up, bf16 on a GPU, seed 0), its loss
    ``make_loss(model, losses)`` from its losses module. Returns the train seconds and the saved model folder."""
    import datasets
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )

    try:
        from sentence_transformers.sentence_transformer import losses
    except ImportError:  # sentence-transformers < 6.2
        from sentence_transformers import losses

    from sentsim.storage.hub import resolve_model_path

    model = SentenceTransformer(str(resolve_model_path(args.model))).float()  # fp32 master weights, as sentsim
    cuda = torch.cuda.is_available()
    with tempfile.TemporaryDirectory() as output:
        training_args = SentenceTransformerTrainingArguments(
            output_dir=output,
            num_train_epochs=args.epochs,
            per_device_train_batch_size=args.batch_size,
            learning_rate=args.lr,
            warmup_ratio=0.1,
            bf16=cuda and torch.cuda.is_bf16_supported(),
            save_strategy="no",
            report_to=[],
            disable_tqdm=True,
            seed=0,
        )
        trainer = SentenceTransformerTrainer(
            model=model,
            args=training_args,
            train_dataset=datasets.Dataset.from_dict(columns),
            loss=make_loss(model, losses),
        )
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    folder = Path(tempfile.mkdtemp())
    model.save(str(folder))
    return seconds, folder


def machine() -> str:
    """The GPU, or the CPU with what it computes natively (figures differ by an order of magnitude between
    a CPU with AVX-512 bf16 / VNNI and one with AVX2 only, so every printed table names it)."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    features = [torch.backends.cpu.get_cpu_capability()]
    features += [
        name
        for name, has in (
            ("bf16", torch.cpu._is_avx512_bf16_supported()),
            ("vnni", torch.cpu._is_vnni_supported()),
            ("amx", torch.cpu._is_amx_tile_supported()),
        )
        if has
    ]
    return f"{_cpu_model()} ({' '.join(features)}), {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            fields = {key.strip(): value.strip() for key, value in (line.split(":", 1) for line in info if ":" in line)}
        return f"{fields['model name']} family {fields.get('cpu family')} model {fields.get('model')}"
    except (OSError, KeyError):
        return platform.processor() or platform.machine()
