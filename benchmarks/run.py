"""Run the benchmark suite (or named parts) and write JSON, a Markdown table and plots.

    python benchmarks/run.py --quick                  # every part, small settings for a CPU
    python benchmarks/run.py                          # full settings (meant for a GPU machine)
    python benchmarks/run.py --only encode index      # some parts

Results go to ``benchmarks/results/<machine>/``: ``<part>.json`` from each script, ``README.md``
with every figure beside its reference measured in the same run, and ``*.png`` plots.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PARTS = {
    # part: (script, quick arguments, full arguments)
    "encode": (
        "bench_encode.py",
        ["--n-short", "500", "--n-long", "64", "--repeats", "1"],
        ["--n-short", "100000", "--n-long", "20000", "--st-batch-size", "256", "64", "--compile"],
    ),
    "encode_scale": (
        "bench_encode_scale.py",
        ["--n-short", "500", "--n-long", "64", "--n-million", "5000", "--workers", "0"],
        [],
    ),
    "quality": ("bench_quality.py", ["--seeds", "2"], []),
    "hybrid": ("bench_hybrid.py", ["--max-queries", "500"], []),
    "train": ("bench_train.py", ["--epochs", "1", "--limit", "400"], []),
    "few_shot": (
        "bench_few_shot.py",
        ["--shots", "5", "--seeds", "0", "--rounds", "2", "--systems", "frozen", "tuned-names"],
        ["--shots", "1", "5", "10", "--seeds", "0", "1", "2", "3", "4", "--oos", "--systems", "frozen", "tuned-names"],
    ),
    "few_shot_setfit": (  # SetFit trains 1,875 steps at 5 shots, 3,750 at 10: one seed
        "bench_few_shot.py",
        [
            "--shots",
            "1",
            "--seeds",
            "0",
            "--rounds",
            "2",
            "--setfit-iterations",
            "1",
            "--systems",
            "tuned-names",
            "setfit",
        ],
        ["--shots", "1", "5", "10", "--seeds", "0", "--systems", "tuned-names", "setfit"],
    ),
    "matryoshka": ("bench_matryoshka.py", ["--limit", "400", "--skip-reference"], []),
    "cached": ("bench_cached.py", ["--quick"], []),
    "mining": ("bench_mining.py", ["--skip-reference"], []),
    "lora": ("bench_lora.py", ["--limit", "400"], ["--limit", "0", "--epochs", "4"]),
    "distill": (
        "bench_distill.py",
        ["--hidden-size", "256", "--distill-epochs", "1", "--finetune-epochs", "1", "--speed-texts", "500"],
        ["--hidden-size", "256", "--freeze-embeddings"],
    ),
    "index": (
        "bench_index.py",
        ["--sizes", "20000", "--real-limit", "5000", "--backends", "flat", "ivf", "hnsw"],  # IVF-PQ training: minutes
        ["--sizes", "100000", "1000000", "--nprobe-sweep"],
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small settings for a CPU")
    parser.add_argument("--only", nargs="+", choices=list(PARTS), help="run only these parts")
    parser.add_argument("--machine", default=None, help="results folder name (default: derived from the hardware)")
    parser.add_argument("--render", action="store_true", help="only rewrite the report from the folder's JSON files")
    args = parser.parse_args()
    folder = HERE / "results" / (args.machine or _machine_name(args.quick))
    folder.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    for part in [] if args.render else args.only or list(PARTS):
        script, quick, full = PARTS[part]
        command = [
            sys.executable,
            str(HERE / script),
            *(quick if args.quick else full),
            "--json",
            str(folder / f"{part}.json"),
        ]
        print(f"## {part}: {' '.join(command[1:])}", flush=True)
        start = time.perf_counter()
        subprocess.run(command, check=True)
        print(f"## {part} took {time.perf_counter() - start:.0f} s", flush=True)
    report = render(folder)
    (folder / "README.md").write_text(report, encoding="utf-8")
    print(f"wrote {folder / 'README.md'} ({time.perf_counter() - began:.0f} s in all)")


def render(folder: Path) -> str:
    """The Markdown report of every ``<part>.json`` in ``folder`` (and its plots)."""
    results = {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}
    machine = next((r.get("machine") for r in results.values() if isinstance(r, dict) and r.get("machine")), "unknown")
    lines = [f"# Benchmark results: {folder.name}", "", f"Machine: {machine}.", ""]
    for part, renderer in RENDERERS.items():
        if part in results:
            try:
                lines += renderer(results[part], folder) + [""]
            except (KeyError, TypeError):  # written by an earlier version of the part's script
                lines += [f"## {part}", "", f"`{part}.json` has another layout: rerun `--only {part}`.", ""]
    return "\n".join(lines)


def _encode(data: dict, folder: Path) -> list[str]:
    rows = [
        "## Encode throughput (texts/s), all-MiniLM-L6-v2; reference: sentence-transformers fp32",
        "",
        "| device | texts | n | sentsim setting | sentence-transformers | sentsim | ratio | max abs diff | min cosine |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["results"]:
        rows.append(
            f"| {r['device']} | {r['texts']} | {r['n']} | {r.get('setting', 'default')} | {r['st_texts_per_s']:.0f} "
            f"| {r['sentsim_texts_per_s']:.0f} | {r['ratio']:.2f} | {r['max_abs_diff']:.1e} | {r.get('min_cosine', float('nan')):.6f} |"
        )
    if data.get("quality"):
        rows += ["", "| device | sentsim setting | STS-B test Spearman (fp32 reference 82.03) |", "|---|---|---|"]
        rows += [f"| {q['device']} | {q['setting']} | {q['stsb_test_spearman']:.2f} |" for q in data["quality"]]
    defaults = [r for r in data["results"] if r.get("setting", "default").startswith("default")]
    _bar_plot(
        folder / "encode.png",
        [f"{r['device']} {r['texts']}" for r in defaults],
        {
            "sentence-transformers": [r["st_texts_per_s"] for r in defaults],
            "sentsim (defaults)": [r["sentsim_texts_per_s"] for r in defaults],
        },
        "texts/s",
    )
    return rows + ["", "![encode](encode.png)"]


def _encode_scale(data: dict, folder: Path) -> list[str]:
    rows = [
        "## Encode at scale: tokenizer processes, and texts streamed to a .npy file",
        "",
        "| tokenizer processes | texts | texts/s |",
        "|---|---|---|",
    ]
    rows += [f"| {r['workers']} | {r['texts']} | {r['texts_per_s']:.0f} |" for r in data["workers"]]
    stream = data["stream"]
    rows += [
        "",
        f"{stream['texts']:,} distinct short texts to `.npy` with the defaults: {stream['texts_per_s']:.0f} texts/s; "
        f"peak resident memory {stream['peak_rss_mib_before']:.0f} MiB before, {stream['peak_rss_mib_after']:.0f} MiB "
        f"after, of which {stream['output_mib']:.0f} MiB are the output file's written pages.",
    ]
    return rows


def _quality(data: dict, folder: Path) -> list[str]:
    few = data["clinc_few_shot"]
    rows = [
        "## Quality, frozen all-MiniLM-L6-v2",
        "",
        "| task | sentsim | reference |",
        "|---|---|---|",
        f"| STS-B test Spearman | {data['sts']['spearman']:.2f} | 82.03 |",
        f"| STS-B pairs, dev threshold, test accuracy / F1 / AP | {data['pairs']['accuracy']:.2f} / {data['pairs']['f1']:.2f} / {data['pairs']['average_precision']:.2f} | |",
        f"| PairClassifier (Platt) Brier / ECE | {data['pair_classifier_platt']['brier']:.4f} / {data['pair_classifier_platt']['ece']:.4f} | |",
        f"| STS-B paraphrase retrieval MRR@10 / nDCG@10 / Recall@10 | {data['retrieval']['mrr@10']:.2f} / {data['retrieval']['ndcg@10']:.2f} / {data['retrieval']['recall@10']:.2f} | |",
    ]
    references = {"1": 64.9, "5": 85.6, "10": 88.0}
    for shots in ("1", "5", "10"):
        f = few[shots]
        rows.append(
            f"| CLINC150 {shots}-shot prototypes, seed 0 / mean ± sd | {f['seed_0']:.2f} / {f['mean']:.2f} ± {f['std']:.2f} | {references[shots]} |"
        )
    rows.append(f"| CLINC150 all 100 per class | {few['all']:.2f} | 91.7 |")
    for name, r in data["out_of_scope"].items():
        rows.append(
            f"| out-of-scope ({name}): in-scope accuracy / OOS recall | {r['in_scope_accuracy']:.2f} / {r['oos_recall']:.2f} | |"
        )
    _line_plot(
        folder / "few_shot.png",
        [1, 5, 10],
        {"sentsim (seed 0)": [few[s]["seed_0"] for s in ("1", "5", "10")], "reference": [64.9, 85.6, 88.0]},
        "examples per class",
        "accuracy",
    )
    return rows + ["", "![CLINC150 accuracy by shots](few_shot.png)"]


def _train(data: dict, folder: Path) -> list[str]:
    rows = [
        f"## Fine-tuning (CoSENT, {data['pairs']} STS-B pairs x {data['epochs']} epochs)",
        "",
        "| | wall s | pairs/s | STS-B test Spearman |",
        "|---|---|---|---|",
    ]
    for name in ("sentsim", "sentence_transformers"):
        if name in data:
            r = data[name]
            rows.append(
                f"| {name.replace('_', '-')} | {r['seconds']:.1f} | {r['pairs_per_second']:.1f} | {r['test_spearman']:.2f} |"
            )
    return rows


def _few_shot(data: dict, folder: Path) -> list[str]:
    shots = sorted({cell["shots"] for cell in data["cells"]})
    rows = [
        f"## CLINC150 few-shot ({data['args']['eval_split']}, accuracy, mean over the support samples of seeds "
        f"{sorted({cell['seed'] for cell in data['cells']})}; mean train s; systems {data['args']['systems']})",
        "",
        "| system | " + " | ".join(f"{n}-shot" for n in shots) + " |",
        "|---|" + "---|" * len(shots),
        f"| zero-shot from label names | {data['zero_shot']['accuracy']:.2f} |" + " |" * (len(shots) - 1),
    ]
    systems = ["frozen", "frozen_names", "tuned", "tuned+names-at-scoring", "tuned-names"]
    for system, head in [(s, h) for s in systems for h in ("prototype", "logistic")] + [("setfit", "accuracy")]:
        columns = []
        for n in shots:
            found = [cell[system] for cell in data["cells"] if cell["shots"] == n and system in cell]
            seconds = [entry["seconds"] for entry in found if "seconds" in entry]
            note = f" ({np.mean(seconds):.0f} s)" if seconds else ""
            columns.append(f"{np.mean([entry[head] for entry in found]):.2f}{note}" if found else "")
        if any(columns):
            rows.append(f"| {system} {head} | " + " | ".join(columns) + " |")
    return rows


def _matryoshka(data: dict, folder: Path) -> list[str]:
    names = list(data["spearman"])
    dims = list(data["spearman"][names[0]])
    return [
        f"## Matryoshka: STS-B test Spearman by truncation (CoSENT, {data['pairs']} pairs x {data['epochs']} epoch)",
        "",
        "| dims | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
        *(f"| {dim} | " + " | ".join(f"{data['spearman'][name][dim]:.2f}" for name in names) + " |" for dim in dims),
    ]


def _cached(data: dict, folder: Path) -> list[str]:
    rows = [
        "## Cached in-batch negatives: peak memory of one step",
        "",
        "| library | batch | mini-batch | peak MB | step s |",
    ]
    rows.append("|---|---|---|---|---|")
    for r in data["results"]:
        rows.append(
            f"| {r['library']} | {r['batch']} | {r['mini_batch'] or '-'} | {r['peak_mb']:.0f} | {r['seconds']:.1f} |"
        )
    return rows


def _mining(data: dict, folder: Path) -> list[str]:
    rows = [
        f"## Hard-negative mining: in-batch negatives training on {data['pairs']} STS-B pairs",
        "",
        "| training | rows | nDCG@10 | MRR@10 | Recall@10 | STS-B Spearman |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in data.items():
        if isinstance(r, dict) and "ndcg@10" in r:
            rows.append(
                f"| {name} | {r.get('rows', '')} | {r['ndcg@10']:.2f} | {r['mrr@10']:.2f} | {r['recall@10']:.2f} "
                f"| {r['sts']:.2f} |"
            )
    return rows


def _lora(data: dict, folder: Path) -> list[str]:
    rows = [
        "## LoRA vs full fine-tuning (CoSENT on STS-B train)",
        "",
        "| run | trainable | lr | STS-B Spearman | size on disk MiB |",
        "|---|---|---|---|---|",
    ]
    for name, r in data.items():
        if isinstance(r, dict) and "trainable" in r:
            rows.append(
                f"| {name} | {r['trainable']:,} ({r['trainable'] / r['parameters']:.2%}) | {r['lr']:g} "
                f"| {r['spearman']:.2f} | {r['bytes_on_disk'] / 2**20:.2f} |"
            )
    rows.append(f"| frozen | | | {data['frozen']['spearman']:.2f} | |")
    rows.append(
        f"| LoRA reloaded / merged | | | {data['lora_reloaded_spearman']:.2f} / {data['lora_merged_spearman']:.2f} | |"
    )
    return rows


def _distill(data: dict, folder: Path) -> list[str]:
    s, speed = data["sts_test_spearman"], data["cpu_texts_per_second"]
    return [
        f"## LSTM student (hidden {data['hidden_size']}) vs all-MiniLM-L6-v2",
        "",
        "| | STS-B test Spearman | CPU texts/s |",
        "|---|---|---|",
        f"| student, distilled | {s['distilled']:.2f} | |",
        f"| student, distilled + fine-tuned | {s['fine_tuned']:.2f} | {speed['student']:.0f} |",
        f"| teacher all-MiniLM-L6-v2 | {s['teacher']:.2f} | {speed['teacher']:.0f} |",
        "| references: InferSent 68, averaged GloVe 58; targets >= 75 and >= 5x | | |",
    ]


def _index(data: dict, folder: Path) -> list[str]:
    rows = [
        "## Index: sentsim backends vs raw FAISS (k=10, 1,000 queries a batch)",
        "",
        "| data | backend | build s | bytes/vector | QPS | recall@10 | raw build s | raw QPS | raw recall@10 | overhead |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    points, sweep = {}, []
    for r in data["rows"]:
        if "nprobe" in r:
            sweep.append(
                f"| {r['data']} | {r['factory']} | {r['nprobe']} ({r['nprobe_share']:.1%}) | {r['recall@10']:.3f} | {r['qps']:.0f} |"
            )
        elif "factory" in r:
            rows.append(
                f"| {r['data']} | {r['factory']} | {r['build_s']:.1f} | {r['bytes_per_vector']:.0f} | {r['qps']:.0f} | {r['recall@10']:.3f} | {r['raw_build_s']:.1f} | {r['raw_qps']:.0f} | {r['raw_recall@10']:.3f} | {r['overhead']:.1%} |"
            )
            points.setdefault(r["data"], []).append((r["recall@10"], r["qps"], r["factory"]))
        else:
            rows.append(
                f"| {r['data']} | {r['backend']} (hits with text and metadata) | | | {r['qps']:.0f} | | | {r['raw_qps']:.0f} | | {r['overhead']:.1%} |"
            )
    if sweep:
        rows += [
            "",
            "IVF recall and speed by nprobe (sentsim's default: max(16, nlist/16)):",
            "",
            "| data | index | nprobe (share of lists) | recall@10 | QPS |",
            "|---|---|---|---|---|",
            *sweep,
        ]
    _scatter_plot(folder / "index.png", points)
    return rows + ["", "![index](index.png)"]


def _hybrid(data: dict, folder: Path) -> list[str]:
    rows = [
        "## Hybrid search: nDCG@10 / MRR@10 / Recall@10 through a DocumentIndex (flat), peers in the same run",
        "",
        "| task | split | search | nDCG@10 | MRR@10 | Recall@10 |",
        "|---|---|---|---|---|---|",
    ]
    for task, splits in data["tasks"].items():
        for split in ("val", "test"):
            report = splits[split]
            for label, metrics in report["rows"].items():
                rows.append(
                    f"| {task} | {split} ({report['queries']} queries) | {label} | {metrics['ndcg@10']:.2f} "
                    f"| {metrics['mrr@10']:.2f} | {metrics['recall@10']:.2f} |"
                )
        speed = splits["test"]["qps"]
        rows.append(
            f"| {task} | test | searches/s, k=10, one query a call, embedded already | "
            + " / ".join(f"{m} {q:.0f}" for m, q in speed.items())
            + " | | |"
        )
    return rows


RENDERERS = {
    "encode": _encode,
    "encode_scale": _encode_scale,
    "quality": _quality,
    "hybrid": _hybrid,
    "train": _train,
    "few_shot": _few_shot,
    "few_shot_setfit": _few_shot,
    "matryoshka": _matryoshka,
    "cached": _cached,
    "mining": _mining,
    "lora": _lora,
    "distill": _distill,
    "index": _index,
}


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        return plt
    except ImportError:
        return None


def _bar_plot(path: Path, labels: list[str], series: dict[str, list[float]], ylabel: str) -> None:
    plt = _pyplot()
    if plt is None:
        return
    figure, axes = plt.subplots(figsize=(6, 3.2))
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series.items()):
        axes.bar([x + i * width for x in range(len(labels))], values, width, label=name)
    axes.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(labels))], labels)
    axes.set_ylabel(ylabel)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _line_plot(path: Path, x: list[float], series: dict[str, list[float]], xlabel: str, ylabel: str) -> None:
    plt = _pyplot()
    if plt is None:
        return
    figure, axes = plt.subplots(figsize=(5, 3.2))
    for name, values in series.items():
        axes.plot(x, values, marker="o", label=name)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _scatter_plot(path: Path, points: dict[str, list[tuple[float, float, str]]]) -> None:
    plt = _pyplot()
    if plt is None:
        return
    figure, axes = plt.subplots(figsize=(6, 3.6))
    for data, rows in points.items():
        axes.scatter([r[0] for r in rows], [r[1] for r in rows], label=data)
        for recall, qps, factory in rows:
            axes.annotate(factory, (recall, qps), fontsize=7)
    axes.set_xlabel("recall@10")
    axes.set_ylabel("queries/s")
    axes.set_yscale("log")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _machine_name(quick: bool) -> str:
    import torch

    name = (
        torch.cuda.get_device_name(0).replace(" ", "-").lower()
        if torch.cuda.is_available()
        else f"cpu-{os.cpu_count()}core"
    )
    return f"{name}-quick" if quick else name


if __name__ == "__main__":
    main()
