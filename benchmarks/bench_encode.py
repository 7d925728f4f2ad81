"""Encode throughput and fidelity: sentsim vs sentence-transformers, same model, same texts, same run.

    python benchmarks/bench_encode.py                 # CPU, and CUDA when present
    python benchmarks/bench_encode.py --device cuda --n-short 100000 --n-long 20000 --compile

For short texts (STS-B sentences, cycled to ``--n-short``) and long ones (8 sentences joined):
end-to-end texts/s of sentence-transformers (fp32, the reference) and of sentsim with its
defaults (on CUDA: bf16, packed sequences; on CPU: fp32, padded), the ratio, and how close the
embeddings are (largest |diff| and smallest cosine to the reference over every text). On CUDA,
extra sentsim rows: the padded bf16 path, the fp32 path, and (``--compile``) torch.compile; on
CPU, ``dtype="bf16"`` where the CPU computes bf16, ``runtime="onnx"`` and ``dtype="int8"`` when
onnxruntime (and onnx) are installed.
On CPU, the first call in a fresh process: import, model load, and the first ``encode`` of one batch
against a later one (int8: also with an empty cache, when the quantized model is built). Then STS-B
test Spearman of each sentsim setting (fp32 reference: 82.03).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    DEFAULT_DATA_DIR,
    best_time,
    fp32_gemm_gflops,
    long_texts,
    machine,
    model_flops_per_token,
    stsb_sentences,
)

from sentsim import SentenceEncoder  # noqa: E402
from sentsim.encode.export import export_onnx_folder  # noqa: E402
from sentsim.encode.precision import Precision, cpu_computes  # noqa: E402
from sentsim.evaluation.correlation import spearman  # noqa: E402
from sentsim.storage.hub import resolve_model_path  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument(
        "--device", action="append", help="cpu / cuda (repeatable; default: cpu, and cuda when present)"
    )
    parser.add_argument("--n-short", type=int, default=2000)
    parser.add_argument("--n-long", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64, help="batch size of both libraries (padded paths)")
    parser.add_argument(
        "--st-batch-size", type=int, nargs=2, metavar=("SHORT", "LONG"), help="sentence-transformers' batch sizes"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="also time sentsim with runtime='compile' on CUDA")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument(
        "--peer",
        action="append",
        default=[],
        metavar="NAME=PYTHON",
        help="also time a CPU peer in its own venv: fastembed=PATH/bin/python or st-onnx=PATH/bin/python "
        "(sentence-transformers' ONNX backend), both on a folder written by sentsim export onnx",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args()

    from sentence_transformers import SentenceTransformer

    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    sentences = stsb_sentences(args.data_dir)
    sets = {
        "short": _cycled(sentences, args.n_short),
        "long": _cycled(long_texts(sentences, len(sentences) // 8), args.n_long),
    }
    path = str(resolve_model_path(args.model))
    st_batches = dict(zip(sets, args.st_batch_size or (args.batch_size, args.batch_size), strict=True))
    peers = dict(peer.split("=", 1) for peer in args.peer)
    print(f"# encode, {args.model}, batch {args.batch_size} (ST {st_batches}), best of {args.repeats}; {machine()}")
    if "cpu" in devices:
        peak = fp32_gemm_gflops()
        print(
            f"# CPU fp32 peak, measured on a 2048^3 matmul: {peak:.0f} GFLOP/s; GFLOP/s below = model FLOPs of the "
            "real (unpadded) tokens per second, % = of that peak"
        )
    print(
        f"{'device':<6} {'texts':<6} {'n':>7} {'sentsim setting':<18} {'ST texts/s':>11} {'sentsim':>9} {'ratio':>6}"
        f" {'max |diff|':>10} {'min cos':>9} {'GFLOP/s':>8} {'%peak':>6}"
    )
    results, quality = [], []
    for device in devices:
        ours = SentenceEncoder.from_pretrained(path, device=device)
        theirs = SentenceTransformer(path, device=device).float()  # fp32 reference
        settings = _settings(device, args.batch_size, args.compile)
        flops_per_token = model_flops_per_token(ours.tower.model.config)
        onnx_folder = _export_for_peers(ours, peers) if device == "cpu" and peers else None
        for name, texts in sets.items():
            gflop = flops_per_token * _tokens(ours, texts) / 1e9
            warm, st_batch = texts[: 4 * args.batch_size], st_batches[name]
            theirs.encode(warm, batch_size=st_batch)
            theirs_s = best_time(lambda: theirs.encode(texts, batch_size=st_batch), args.repeats)  # noqa: B023
            reference = theirs.encode(texts, batch_size=st_batch)
            for setting, kwargs in settings.items():
                ours.encode(
                    texts if kwargs.get("runtime") == "compile" else warm, **kwargs
                )  # warm-up (compile: every shape)
                ours_s = best_time(lambda: ours.encode(texts, **kwargs), args.repeats)  # noqa: B023
                row = {
                    "device": device,
                    "texts": name,
                    "n": len(texts),
                    "setting": setting,
                    "st_texts_per_s": len(texts) / theirs_s,
                    "sentsim_texts_per_s": len(texts) / ours_s,
                    "ratio": theirs_s / ours_s,
                    **_closeness(ours.encode(texts, **kwargs), reference),
                    "gflops": gflop / ours_s,
                }
                results.append(row)
                _print_row(row, peak if device == "cpu" else None)
            for peer, python in peers.items() if onnx_folder else ():
                embeddings, peer_s = _run_peer(peer, python, onnx_folder, texts, args.batch_size, args.repeats)
                row = {
                    "device": device,
                    "texts": name,
                    "n": len(texts),
                    "setting": f"peer: {peer}",
                    "st_texts_per_s": len(texts) / theirs_s,
                    "sentsim_texts_per_s": len(texts) / peer_s,
                    "ratio": theirs_s / peer_s,
                    **_closeness(embeddings, reference),
                    "gflops": gflop / peer_s,
                }
                results.append(row)
                _print_row(row, peak)
        if device == "cpu":
            for setting, kwargs in settings.items():
                first = _first_call(path, kwargs, sets["short"][: args.batch_size])
                first |= {"device": device, "setting": setting}
                quality.append(first)
                print(
                    f"{device:<6} first call in a fresh process, {setting}: import {first['import_s']:.1f} s, "
                    f"model load {first['load_s']:.1f} s, first encode of {args.batch_size} texts "
                    f"{first['first_s']:.2f} s vs {first['later_s']:.2f} s later (overhead {first['overhead_s']:.2f} s"
                    + (
                        f"; with an empty int8 cache {first['cold_first_s']:.2f} s)" if "cold_first_s" in first else ")"
                    ),
                    flush=True,
                )
        for setting, kwargs in settings.items():
            score = _stsb_spearman(ours, args.data_dir, kwargs)
            quality.append({"device": device, "setting": setting, "stsb_test_spearman": score})
            print(f"{device:<6} STS-B test Spearman, {setting}: {score:.2f} (fp32 reference 82.03)", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"machine": machine(), "results": results, "quality": quality}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")


def _print_row(row: dict, peak: float | None) -> None:
    share = f"{100 * row['gflops'] / peak:>5.0f}%" if peak else f"{'':>6}"
    print(
        f"{row['device']:<6} {row['texts']:<6} {row['n']:>7} {row['setting']:<18} {row['st_texts_per_s']:>11.0f}"
        f" {row['sentsim_texts_per_s']:>9.0f} {row['ratio']:>6.2f} {row['max_abs_diff']:>10.1e}"
        f" {row['min_cosine']:>9.6f} {row['gflops']:>8.0f} {share}",
        flush=True,
    )


def _tokens(encoder: SentenceEncoder, texts: list[str]) -> int:
    """Real tokens (special ones included, padding not) the model reads for ``texts``."""
    return int(sum(encoder.tokenize(texts[i : i + 256])["attention_mask"].sum() for i in range(0, len(texts), 256)))


def _export_for_peers(encoder: SentenceEncoder, peers: dict[str, str]) -> Path:
    """An ONNX model folder written by ``sentsim export onnx``, which every peer loads."""
    unknown = set(peers) - {"fastembed", "st-onnx"}
    if unknown:
        raise SystemExit(f"--peer: unknown peer(s) {sorted(unknown)}; expected fastembed or st-onnx")
    folder = Path(tempfile.mkdtemp(prefix="sentsim-peers-")) / "model"
    export_onnx_folder(encoder, folder)
    return folder


def _run_peer(
    peer: str, python: str, folder: Path, texts: list[str], batch_size: int, repeats: int
) -> tuple[np.ndarray, float]:
    """Embeddings and best time of ``peer`` run by ``python`` (its own venv) through peer_encode.py."""
    with tempfile.TemporaryDirectory() as scratch:
        job, out = Path(scratch) / "job.json", Path(scratch) / "out.npz"
        job.write_text(
            json.dumps(
                {"texts": texts, "batch_size": batch_size, "repeats": repeats, "threads": torch.get_num_threads()}
            )
        )
        script = Path(__file__).resolve().parent / "peer_encode.py"
        environment = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DO_NOT_TRACK": "1"}
        subprocess.run([python, str(script), peer, str(folder), str(job), str(out)], env=environment, check=True)
        with np.load(out) as result:
            return result["embeddings"], float(result["seconds"])


def _settings(device: str, batch_size: int, compile: bool) -> dict[str, dict]:
    """sentsim settings timed on ``device``: the defaults first."""
    common = {"batch_size": batch_size, "show_progress": False}
    if device != "cuda":
        settings = {"default (fp32)": common}
        if cpu_computes(Precision.BF16):  # elsewhere bf16 is emulated, and encode runs fp32
            settings["bf16"] = {**common, "dtype": "bf16"}
        else:
            print("# bf16 row left out: this CPU has no native bf16 (AVX-512 bf16 / AMX)")
        if importlib.util.find_spec("onnxruntime") is not None:
            settings["onnx runtime (fp32)"] = {**common, "runtime": "onnx"}
            if importlib.util.find_spec("onnx") is not None:
                settings["int8"] = {**common, "dtype": "int8"}
        return settings
    settings = {
        "default (bf16 packed)": common,
        "bf16 padded": {**common, "packed": False, "max_tokens": 32768, "batch_size": 512},
        "fp32 padded": {**common, "dtype": "fp32", "batch_size": 256},
    }
    if compile:
        settings["bf16 packed compiled"] = {**common, "runtime": "compile"}
    return settings


FIRST_CALL = """
import json, sys, time
started = time.perf_counter()
from sentsim import SentenceEncoder
imported = time.perf_counter()
path, kwargs, texts = json.loads(sys.argv[1])
encoder = SentenceEncoder.from_pretrained(path, device="cpu")
loaded = time.perf_counter()
encoder.encode(texts, **kwargs)
first = time.perf_counter()
encoder.encode(texts, **kwargs)
print(json.dumps({"import_s": imported - started, "load_s": loaded - imported, "first_s": first - loaded,
                  "later_s": time.perf_counter() - first}))
"""


def _first_call(path: str, kwargs: dict, texts: list[str]) -> dict:
    """Import, model load, and the first ``encode`` in a fresh process against a later call (int8:
    also with an empty cache, when the quantized model is built)."""

    def run(environment: dict) -> dict:
        argument = json.dumps([path, kwargs, texts])
        done = subprocess.run(
            [sys.executable, "-c", FIRST_CALL, argument], env=environment, capture_output=True, text=True, check=True
        )
        return json.loads(done.stdout.strip().splitlines()[-1])

    run(dict(os.environ))  # int8 / onnx: builds the cached model if it is missing, so the timed run finds it
    timing = run(dict(os.environ))
    timing["overhead_s"] = timing["first_s"] - timing["later_s"]
    if kwargs.get("dtype") == "int8":
        with tempfile.TemporaryDirectory() as cache:
            timing["cold_first_s"] = run({**os.environ, "SENTSIM_CACHE": cache})["first_s"]
    return timing


def _cycled(texts: list[str], count: int) -> list[str]:
    return [texts[i % len(texts)] for i in range(count)]


def _closeness(ours: np.ndarray, reference: np.ndarray) -> dict:
    cosine = (ours * reference).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(reference, axis=1))
    return {"max_abs_diff": float(np.abs(ours - reference).max()), "min_cosine": float(cosine.min())}


def _stsb_spearman(encoder: SentenceEncoder, data_dir: Path, kwargs: dict) -> float:
    with open(data_dir / "stsb" / "test.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    left = encoder.encode([row[0] for row in rows], **kwargs, normalize=True)
    right = encoder.encode([row[1] for row in rows], **kwargs, normalize=True)
    return 100 * spearman((left * right).sum(1), np.array([float(row[2]) for row in rows]))


if __name__ == "__main__":
    main()
