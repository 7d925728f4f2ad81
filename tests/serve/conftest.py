"""A real ``sentsim serve`` in a subprocess on a free loopback port, with a tiny model and index."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sentsim import SentenceEncoder
from sentsim.search import DocumentIndex

from ..toy_task import TOPICS, toy_encoder

KEY = "test-key"
DOCUMENTS = [text for texts in TOPICS.values() for text in texts]


@dataclass
class Server:
    url: str
    model: Path
    process: subprocess.Popen

    def client(self, **options) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60, **options)

    def encoder(self) -> SentenceEncoder:
        return SentenceEncoder.from_pretrained(self.model, device="cpu")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(arguments: list[str], *, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "sentsim", "serve", "--port", str(port), *arguments]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sentsim serve exited: {process.stdout.read()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("sentsim serve did not become healthy in 120 s")


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()


@pytest.fixture(scope="package")
def server(tmp_path_factory) -> Server:
    folder = tmp_path_factory.mktemp("serve")
    encoder = toy_encoder(dropout=0.0)
    encoder.normalize = True
    encoder.save_pretrained(folder / "model")
    encoder = SentenceEncoder.from_pretrained(folder / "model", device="cpu")
    index = DocumentIndex.create(folder / "index", encoder, backend="flat")
    index.add(
        DOCUMENTS, ids=[f"d{i}" for i in range(len(DOCUMENTS))], metadata=[{"n": i} for i in range(len(DOCUMENTS))]
    )
    index.close()
    binary = DocumentIndex.create(folder / "binary", encoder, precision="binary", truncate_dim=16)
    binary.add(
        DOCUMENTS, ids=[f"d{i}" for i in range(len(DOCUMENTS))], metadata=[{"n": i} for i in range(len(DOCUMENTS))]
    )
    binary.close()
    arguments = ["--model", str(folder / "model"), "--index", f"docs={folder / 'index'}", "--device", "cpu"]
    arguments += ["--index", f"binary={folder / 'binary'}"]
    arguments += ["--api-key", KEY, "--max-inputs", "100", "--max-body-mb", "1", "--max-batch-tokens", "512"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process, url = start(arguments, env=env)
    yield Server(url, folder / "model", process)
    assert stop(process) == 0  # SIGTERM drains and exits 0
