"""/v1/embeddings and /v1/similarity against a real server: the library's numbers, batched."""

from __future__ import annotations

import asyncio
import base64
import os
import re
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest

from .conftest import KEY, start, stop

TEXTS = ["the cat sat on the mat", "stocks fell on monday", "rain over the weekend", "a dog runs in the park"]


def test_openai_client_gets_the_library_embeddings_in_float_and_base64(server):
    expected = server.encoder().encode(TEXTS)
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY)
    as_base64 = client.embeddings.create(model="text-embedding-3-small", input=TEXTS)  # base64 by default
    np.testing.assert_allclose([item.embedding for item in as_base64.data], expected, atol=1e-5)
    assert as_base64.model == str(server.model) and as_base64.usage.prompt_tokens > len(TEXTS)
    floats = client.embeddings.create(model="any", input=TEXTS[0], encoding_format="float")
    np.testing.assert_allclose(floats.data[0].embedding, expected[0], atol=1e-5)
    with server.client() as http:
        raw = http.post("/v1/embeddings", json={"input": TEXTS, "encoding_format": "base64"}).json()
    decoded = np.stack([np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4") for item in raw["data"]])
    np.testing.assert_allclose(decoded, expected, atol=1e-5)
    assert [item["index"] for item in raw["data"]] == [0, 1, 2, 3]


def test_dimensions_cut_and_renormalize(server):
    expected = server.encoder().encode(TEXTS)[:, :8]
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    with server.client() as http:
        data = http.post("/embeddings", json={"input": TEXTS, "dimensions": 8}).json()["data"]
    vectors = np.array([item["embedding"] for item in data])
    assert vectors.shape == (4, 8)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_concurrent_requests_are_batched_with_identical_results(server):
    texts = [f"{TEXTS[i % 4]} number {i}" for i in range(64)]
    expected = server.encoder().encode(texts)

    async def run() -> list[list[float]]:
        headers = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as client:
            answers = await asyncio.gather(*(client.post("/v1/embeddings", json={"input": text}) for text in texts))
        assert all(answer.status_code == 200 for answer in answers)
        return [answer.json()["data"][0]["embedding"] for answer in answers]

    calls_before = _model_calls(server)
    np.testing.assert_allclose(asyncio.run(run()), expected, atol=1e-5)
    calls = _model_calls(server) - calls_before
    assert 1 <= calls < 64, calls  # 64 requests, fewer model calls


def test_similarity_matches_the_library(server):
    encoder = server.encoder()
    with server.client() as http:
        matrix = http.post("/v1/similarity", json={"a": TEXTS[:2], "b": TEXTS}).json()["scores"]
        pairwise = http.post("/v1/similarity", json={"a": TEXTS, "b": TEXTS[::-1], "pairwise": True}).json()["scores"]
        one = http.post("/v1/similarity", json={"a": TEXTS[0], "b": TEXTS[1], "metric": "dot"}).json()["scores"]
        bad = http.post("/v1/similarity", json={"a": "x", "b": "y", "metric": "jaccard"})
    np.testing.assert_allclose(matrix, encoder.similarity(TEXTS[:2], TEXTS), atol=1e-5)
    np.testing.assert_allclose(pairwise, encoder.similarity(TEXTS, TEXTS[::-1], pairwise=True), atol=1e-5)
    assert abs(one - encoder.similarity(TEXTS[0], TEXTS[1], "dot")) < 1e-5
    assert bad.status_code == 400 and "unknown metric 'jaccard'" in bad.json()["error"]["message"]


def test_models_health_and_metrics(server):
    with server.client() as http:
        assert http.get("/v1/models").json()["data"][0]["id"] == str(server.model)
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}  # open without a key
    metrics = httpx.get(f"{server.url}/metrics").text
    for name in ("sentsim_queue_tokens", "sentsim_batch_tokens_bucket", "sentsim_inference_seconds_count"):
        assert name in metrics
    assert re.search(r'sentsim_requests_total\{route="/v1/embeddings",status="200"\} [1-9]', metrics)


def _model_calls(server) -> float:
    metrics = httpx.get(f"{server.url}/metrics").text
    return float(re.search(r"^sentsim_batch_texts_count (\S+)$", metrics, re.M).group(1))


def test_langchain_and_llamaindex_openai_classes_work_unchanged(server):
    from langchain_openai import OpenAIEmbeddings
    from llama_index.embeddings.openai import OpenAIEmbedding

    expected = server.encoder().encode(TEXTS[:2])
    url = f"{server.url}/v1"
    langchain = OpenAIEmbeddings(base_url=url, api_key=KEY, model="any", check_embedding_ctx_length=False)
    np.testing.assert_allclose(langchain.embed_documents(TEXTS[:2]), expected, atol=1e-5)
    np.testing.assert_allclose(langchain.embed_query(TEXTS[0]), expected[0], atol=1e-5)
    llama = OpenAIEmbedding(api_base=url, api_key=KEY)
    np.testing.assert_allclose(llama.get_text_embedding_batch(TEXTS[:2]), expected, atol=1e-5)


@pytest.mark.slow  # a second server: the batcher's own test covers the precision in the default run
def test_int8_server_serves_the_library_int8_embeddings(server):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process, url = start(["--model", str(server.model), "--device", "cpu", "--dtype", "int8"], env=env)
    try:
        texts = ["a cat on a mat", "stocks fell on monday", "rain over the weekend"]
        response = httpx.post(f"{url}/v1/embeddings", json={"input": texts}, timeout=60)
        served = np.array([item["embedding"] for item in response.json()["data"]], dtype=np.float32)
    finally:
        assert stop(process) == 0
    np.testing.assert_allclose(served, server.encoder().encode(texts, dtype="int8"), atol=1e-5)
    assert not np.allclose(served, server.encoder().encode(texts), atol=1e-6)  # the int8 model served
