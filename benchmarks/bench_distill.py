"""LSTM student vs its transformer teacher: quality (STS-B test) and CPU encode speed.

    python benchmarks/bench_distill.py [--hidden-size 512] [--distill-epochs 10] [--json out.json]

1. Distill all-MiniLM-L6-v2 into a BiLSTM (starting from the teacher's tokenizer and input
   embeddings, max pooling, a linear projection to 384) on the sentences of STS-B train and
   CLINC150 train (never test sentences), with MSE to the teacher's embeddings.
2. Fine-tune the student on STS-B train with CoSENT.
3. Report STS-B test Spearman after each stage and CPU encode throughput of student and teacher.
Targets: Spearman >= 75 (InferSent 68, averaged GloVe 58); CPU encode >= 5x the teacher.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA_DIR, best_time, machine, stsb_sentences  # noqa: E402

from sentsim import DenseConfig, LSTMTower, SentenceEncoder  # noqa: E402
from sentsim.data import load_clinc150, load_stsb  # noqa: E402
from sentsim.evaluation import evaluate_sts  # noqa: E402
from sentsim.training import TrainingConfig, distill, load_training_data, make_loss, train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", default="all-MiniLM-L6-v2")
    parser.add_argument("--hidden-size", type=int, default=512)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--distill-epochs", type=int, default=10)
    parser.add_argument("--distill-lr", type=float, default=1e-3)
    parser.add_argument("--finetune-epochs", type=int, default=4)
    parser.add_argument("--finetune-lr", type=float, default=2e-4)
    parser.add_argument("--speed-texts", type=int, default=2000)
    parser.add_argument(
        "--freeze-embeddings",
        action="store_true",
        help="keep the teacher's input embeddings fixed (much faster on CPU)",
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(f"# LSTM student distilled from {args.teacher}; {machine()}")
    teacher = SentenceEncoder.from_pretrained(args.teacher, device="cuda" if torch.cuda.is_available() else "cpu")
    stsb = {split: load_stsb(split, data_dir=args.data_dir) for split in ("train", "dev", "test")}
    texts = stsb["train"].sentences1 + stsb["train"].sentences2 + load_clinc150("train", data_dir=args.data_dir).texts
    torch.manual_seed(0)
    tower = LSTMTower.from_transformer(
        teacher, hidden_size=args.hidden_size, num_layers=args.layers, freeze_embeddings=args.freeze_embeddings
    )
    student = SentenceEncoder(
        tower,
        pooling="max",
        normalize=True,
        dense=DenseConfig(in_features=tower.dim, out_features=teacher.dim, activation="identity"),
    )
    results: dict = {
        "machine": machine(),
        "hidden_size": args.hidden_size,
        "layers": args.layers,
        "freeze_embeddings": args.freeze_embeddings,
    }

    start = time.perf_counter()
    distilled = distill(
        student,
        teacher,
        texts,
        TrainingConfig(
            epochs=args.distill_epochs,
            batch_size=64,
            learning_rate=args.distill_lr,
            warmup_ratio=0.05,
            show_progress=False,
        ),
    )
    results["distill"] = {
        "texts": len(set(texts)),
        "seconds": time.perf_counter() - start,
        "final_mse": distilled.final_loss,
    }
    after_distill = evaluate_sts(student, stsb["test"], show_progress=False)["spearman"]
    print(
        f"distilled on {len(set(texts))} texts x {args.distill_epochs} epochs in {results['distill']['seconds']:.0f} s: STS-B test Spearman {after_distill:.2f}"
    )

    columns = {
        "sentence1": stsb["train"].sentences1,
        "sentence2": stsb["train"].sentences2,
        "score": (stsb["train"].scores / 5).tolist(),
    }
    start = time.perf_counter()
    train(
        student,
        load_training_data(columns),
        make_loss("cosent"),
        TrainingConfig(epochs=args.finetune_epochs, batch_size=16, learning_rate=args.finetune_lr, show_progress=False),
    )
    after_finetune = evaluate_sts(student, stsb["test"], show_progress=False)["spearman"]
    teacher_score = evaluate_sts(teacher, stsb["test"], show_progress=False)["spearman"]
    results["sts_test_spearman"] = {"distilled": after_distill, "fine_tuned": after_finetune, "teacher": teacher_score}
    print(
        f"fine-tuned on STS-B train ({time.perf_counter() - start:.0f} s): STS-B test Spearman {after_finetune:.2f}   "
        f"teacher {teacher_score:.2f}; references: InferSent 68, averaged GloVe 58"
    )

    sentences = stsb_sentences(args.data_dir)[: args.speed_texts]
    speeds = {}
    for name, encoder in (("student", student), ("teacher", teacher)):
        encoder.to("cpu")
        encoder.encode(sentences[:128], batch_size=64, show_progress=False)
        speeds[name] = len(sentences) / best_time(
            lambda e=encoder: e.encode(sentences, batch_size=64, show_progress=False), 3
        )
    results["cpu_texts_per_second"] = speeds
    print(
        f"CPU encode, {len(sentences)} STS-B sentences: student {speeds['student']:.0f} texts/s, teacher {speeds['teacher']:.0f} texts/s, "
        f"ratio {speeds['student'] / speeds['teacher']:.1f}x"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
