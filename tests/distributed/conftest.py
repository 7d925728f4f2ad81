"""Fixtures of the Ray tests: one local Ray runtime for the session, the toy model in a folder, texts."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from ..toy_task import TOPICS, toy_encoder

WORDS = sorted({word for texts in TOPICS.values() for text in texts for word in text.split()})


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray runtime of 2 CPUs whose workers import this checkout's sentsim, as the tests do."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    root = str(Path(__file__).resolve().parents[2])
    saved = {name: os.environ.get(name) for name in ("PYTHONPATH", "RAY_USAGE_STATS_ENABLED")}
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [root, saved["PYTHONPATH"]]))  # the workers inherit it
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def toy_dir(tmp_path_factory) -> Path:
    """The toy encoder (word-level tokenizer, same in every process) saved to a folder, with a query prompt."""
    encoder = toy_encoder()
    encoder.prompts = {"query": "it rains "}
    folder = tmp_path_factory.mktemp("toy") / "model"
    encoder.save_pretrained(folder)
    return folder


def toy_texts(count: int, seed: int = 0) -> list[str]:
    """``count`` texts of 1 to 11 words of the toy vocabulary."""
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(1, 12))) for _ in range(count)]
