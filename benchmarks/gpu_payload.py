"""Prepare what a GPU machine without network or this project's data needs, in ``gpu_payload/``.

    python benchmarks/gpu_payload.py

writes (into the git-ignored ``gpu_payload/``, about 46 MB) an fp16 copy of all-MiniLM-L6-v2
(safetensors; sentsim loads it as fp32, and STS-B test Spearman is unchanged: 82.03) and the
STS Benchmark CSVs, then prints the command that runs the GPU tests, the training benchmark (sentsim packed and
padded beside sentence-transformers) and the encode benchmarks
there from a copy of this working tree. The fp32 weights (90 MB) are over the size a lent machine takes along.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA_DIR  # noqa: E402

from sentsim.storage.hub import resolve_model_path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COMMAND = (
    "export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 SENTSIM_DATA_DIR=$PWD/gpu_payload/data "
    "SENTSIM_MINILM=$PWD/gpu_payload/model HF_HUB_OFFLINE=1; "
    "python3 -m pytest -q -m gpu tests/test_packed.py tests/test_packed_training.py -p no:cacheprovider 2>&1 | tail -3; "
    "timeout 240 python3 benchmarks/bench_train.py --model gpu_payload/model --compare-padded "
    "--json $OUT/train.json 2>&1 | tee $OUT/train.log; "
    "timeout 200 python3 benchmarks/bench_encode_pipeline.py --model gpu_payload/model --workers 0 6 "
    "--first-chunks 1024 --budgets 65536 --json $OUT/pipeline.json 2>&1 | tee $OUT/pipeline.log; "
    "RAYON_NUM_THREADS=12 timeout 150 python3 benchmarks/bench_encode_pipeline.py --model gpu_payload/model "
    "--workers 0 --first-chunks 1024 --budgets 65536 --json $OUT/pipeline_rayon12.json 2>&1 | tee $OUT/rayon12.log; "
    "timeout 200 python3 benchmarks/bench_encode.py --model gpu_payload/model --device cuda --n-short 100000 "
    "--n-long 20000 --st-batch-size 256 64 --repeats 3 --json $OUT/encode.json 2>&1 | tee $OUT/encode.log"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args()
    out = ROOT / "gpu_payload"  # the printed command reads it there
    source = resolve_model_path(args.model)
    if out.exists():
        foreign = sorted({path.name for path in out.iterdir()} - {"model", "data"})
        if foreign:
            raise SystemExit(f"{out} holds {', '.join(foreign)}, which this script did not write; move it away")
        shutil.rmtree(out)
    model = out / "model"
    shutil.copytree(
        source, model, ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "*.onnx", "onnx", "openvino")
    )
    for weights in source.rglob("*.safetensors"):
        tensors = {name: tensor.half().contiguous() for name, tensor in load_file(weights).items()}
        target = model / weights.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, target, metadata={"format": "pt"})
    shutil.copytree(args.data_dir / "stsb", out / "data" / "stsb")
    size = sum(path.stat().st_size for path in out.rglob("*") if path.is_file())
    print(f"wrote {out} ({size / 2**20:.0f} MiB). On the GPU machine, with gpu_payload carried along:")
    print(COMMAND)


if __name__ == "__main__":
    main()
