"""The batcher on its own: FIFO batches under a token budget, abandoned requests skipped, overload refused."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from sentsim.serve.batcher import Batcher, Overloaded
from sentsim.serve.metrics import Metrics

from ..toy_task import toy_encoder


def _batcher(**budget) -> Batcher:
    encoder = toy_encoder(dropout=0.0).eval()
    return Batcher(encoder, metrics=Metrics(), **({"max_batch_tokens": 64, "max_queue_tokens": 1000} | budget))


def _calls(batcher: Batcher) -> float:
    return batcher.metrics.registry.get_sample_value("sentsim_batch_texts_count")


def test_queued_requests_share_model_calls_within_the_budget_and_equal_encode():
    batcher = _batcher()
    encoder, texts = batcher.encoder, [f"the cat sat on the mat {i}" for i in range(12)]

    async def run() -> list[np.ndarray]:
        blocker = asyncio.ensure_future(batcher.call(time.sleep, 0.3))  # the worker is busy: the rest queue up
        await asyncio.sleep(0.05)
        jobs = [batcher.embed(encoder.tower.tokenizer.encode([text])) for text in texts]
        results = await asyncio.gather(*jobs)
        await blocker
        return results

    try:
        results = asyncio.run(run())
    finally:
        batcher.close()
    np.testing.assert_allclose(np.concatenate(results), encoder.encode(texts), atol=1e-5)
    tokens = len(encoder.tower.tokenizer.encode(texts[:1]).flat_ids)
    assert _calls(batcher) == -(-len(texts) // (64 // tokens))  # as many as fit in 64 tokens a call


def test_an_abandoned_request_is_skipped_and_overload_is_refused():
    batcher = _batcher(max_queue_tokens=20)
    tokens = batcher.encoder.tower.tokenizer.encode(["a dog runs in the park"])

    async def run() -> None:
        blocker = asyncio.ensure_future(batcher.call(time.sleep, 0.3))
        await asyncio.sleep(0.05)
        gone = asyncio.ensure_future(batcher.embed(tokens))  # its client will go away
        kept = asyncio.ensure_future(batcher.embed(tokens))
        await asyncio.sleep(0.01)
        with pytest.raises(Overloaded):  # 2 x 8 tokens queued; 8 more would pass 20
            await batcher.embed(tokens)
        gone.cancel()
        await blocker
        assert (await kept).shape == (1, batcher.encoder.dim)

    try:
        asyncio.run(run())
    finally:
        batcher.close()
    assert _calls(batcher) == 1  # the abandoned request never reached the model


def test_batches_run_in_the_configured_precision():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    batcher = _batcher(dtype="int8")
    encoder, texts = batcher.encoder, ["the cat sat on the mat", "a dog runs in the park"]

    async def run() -> np.ndarray:
        return await batcher.embed(encoder.tower.tokenizer.encode(texts))

    try:
        served = asyncio.run(run())
    finally:
        batcher.close()
    np.testing.assert_allclose(served, encoder.encode(texts, dtype="int8"), atol=1e-6)
    assert not np.allclose(served, encoder.encode(texts), atol=1e-6)
