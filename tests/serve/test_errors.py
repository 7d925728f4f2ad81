"""Bad requests get a 4xx JSON error naming the problem; the server keeps serving."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from .conftest import KEY


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"input": 5}', "'input' must be a string or a list of strings"),
        (b'{"input": []}', "empty list"),
        (b'{"input": ""}', "empty string"),
        (b'{"input": ["a", ""]}', "input[1] is an empty string"),
        (b'{"input": ["a", null]}', "input[1] is NoneType"),
        (b'{"input": [["a"]]}', "input[0] is list"),
        (b'{"input": [1, 2, 3]}', "check_embedding_ctx_length=False"),
        (b'{"input": [[1, 2], [3]]}', "check_embedding_ctx_length=False"),
        (b'{"input": "a", "encoding_format": "int8"}', "encoding_format must be 'float' or 'base64'"),
        (b'{"input": "a", "dimensions": 0}', "dimensions must be an int between 1 and"),
        (b'{"input": "a", "dimensions": 1e400}', "dimensions must be an int"),
        (b'{"input": "a", "model": 3}', "'model' must be a string"),
        (b'{"input": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", "not valid JSON"),
        (b'{"input": ["x"' + b', "x"' * 100 + b"]}", "at most 100 a request"),
    ],
)
def test_bad_embedding_requests_are_400_naming_the_problem(server, body, fragment):
    with server.client() as http:
        answer = http.post("/v1/embeddings", content=body, headers={"content-type": "application/json"})
        assert answer.status_code == 400, answer.text
        assert fragment in answer.json()["error"]["message"]
        assert http.post("/v1/embeddings", json={"input": "still serving"}).status_code == 200


def test_keys_are_checked_and_bodies_limited(server):
    assert httpx.post(f"{server.url}/v1/embeddings", json={"input": "a"}).status_code == 401
    wrong = httpx.post(f"{server.url}/v1/embeddings", json={"input": "a"}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "authentication_error"
    with server.client() as http:
        big = http.post("/v1/embeddings", json={"input": "word " * 300_000})  # 1.5 MB, over --max-body-mb 1
        assert big.status_code == 413 and "body_too_large" == big.json()["error"]["code"]
        long = http.post("/v1/embeddings", json={"input": "word " * 1000})  # longer than the model reads
        assert long.status_code == 200  # truncated, as encode does


def test_overload_is_429_with_retry_after(server):
    texts = [f"a sentence of several words number {i} about cats and rain" for i in range(100)]

    async def flood() -> list[httpx.Response]:
        headers = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=120) as client:
            return await asyncio.gather(*(client.post("/v1/embeddings", json={"input": texts}) for _ in range(40)))

    answers = asyncio.run(flood())
    statuses = {answer.status_code for answer in answers}
    assert statuses <= {200, 429} and 200 in statuses and 429 in statuses, statuses
    refused = next(answer for answer in answers if answer.status_code == 429)
    assert refused.headers["retry-after"] == "1" and refused.json()["error"]["type"] == "rate_limit_error"
    with server.client() as http:
        assert http.post("/v1/embeddings", json={"input": "after the flood"}).status_code == 200
