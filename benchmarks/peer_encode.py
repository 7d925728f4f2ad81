"""Time one CPU encode peer in its own venv (it imports neither sentsim nor the project's packages).

    PEER_PYTHON benchmarks/peer_encode.py fastembed|st-onnx MODEL_FOLDER JOB.json OUT.npz

``JOB.json`` holds ``{"texts": [...], "batch_size": 64, "repeats": 3, "threads": 2}``; ``OUT.npz`` gets
the embeddings of the last run (``embeddings``) and the best time in seconds (``seconds``).
``MODEL_FOLDER`` is a folder written by ``sentsim export onnx`` (``onnx/model.onnx`` and its hard link
``model.onnx``), so the run also shows that both peers load what sentsim exports. bench_encode.py calls
this once per text set; see ../shared/PEERS.md for the venvs.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np


def _fastembed(folder: str, threads: int):
    from fastembed import TextEmbedding

    # fastembed knows this model (mean pooling, L2 norm); its entry with a local folder avoids any download
    model = TextEmbedding(
        "sentence-transformers/all-MiniLM-L6-v2", specific_model_path=folder, threads=threads, cuda=False
    )
    return lambda texts, batch_size: np.stack(list(model.embed(texts, batch_size=batch_size)))


def _st_onnx(folder: str, threads: int):
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    model = SentenceTransformer(
        folder,
        backend="onnx",
        device="cpu",
        model_kwargs={"provider": "CPUExecutionProvider", "file_name": "onnx/model.onnx"},
    )
    return lambda texts, batch_size: model.encode(texts, batch_size=batch_size)


PEERS = {"fastembed": _fastembed, "st-onnx": _st_onnx}


def main() -> None:
    name, folder, job_path, out_path = sys.argv[1:5]
    with open(job_path, encoding="utf-8") as handle:
        job = json.load(handle)
    texts, batch_size = job["texts"], job["batch_size"]
    encode = PEERS[name](folder, job["threads"])
    encode(texts[: 4 * batch_size], batch_size)  # warm-up
    best = float("inf")
    for _ in range(job["repeats"]):
        started = time.perf_counter()
        embeddings = encode(texts, batch_size)
        best = min(best, time.perf_counter() - started)
    np.savez(out_path, embeddings=np.asarray(embeddings, dtype=np.float32), seconds=best)


if __name__ == "__main__":
    main()
