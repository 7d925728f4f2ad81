"""The index routes: search, upsert and delete through HTTP, concurrently, with the model guard."""

from __future__ import annotations

import threading

import numpy as np

from .conftest import DOCUMENTS


def test_search_equals_the_library(server):
    from sentsim.search import DocumentIndex

    with server.client() as http:
        answer = http.post("/v1/indexes/docs/search", json={"query": DOCUMENTS[3], "k": 3}).json()
        many = http.post("/v1/indexes/docs/search", json={"queries": DOCUMENTS[:2], "k": 2, "by": "document"}).json()
        filtered = http.post("/v1/indexes/docs/search", json={"query": "cats", "k": 50, "filter": {"n": {"lt": 4}}})
    hits = answer["results"][0]["hits"]
    assert hits[0]["id"] == "d3" and hits[0]["text"] == DOCUMENTS[3] and hits[0]["metadata"] == {"n": 3}
    assert [len(result["hits"]) for result in many["results"]] == [2, 2]
    assert sorted(hit["id"] for hit in filtered.json()["results"][0]["hits"]) == ["d0", "d1", "d2", "d3"]
    encoder = server.encoder()
    index_folder = server.model.parent / "index"
    reference = DocumentIndex.open(index_folder, encoder)
    try:
        expected = reference.search(DOCUMENTS[3], k=3)
    finally:
        reference.close()
    assert [hit["id"] for hit in hits] == [hit.id for hit in expected]
    np.testing.assert_allclose([hit["score"] for hit in hits], [hit.score for hit in expected], atol=1e-5)


def test_a_quantized_index_reports_its_precision_and_searches_like_the_library(server):
    from sentsim.search import DocumentIndex

    with server.client() as http:
        info = http.get("/v1/indexes/binary").json()
        answer = http.post(
            "/v1/indexes/binary/search", json={"query": DOCUMENTS[5], "k": 4, "filter": {"n": {"gte": 2}}}
        )
    assert (info["precision"], info["truncate_dim"], info["backend"]) == ("binary", 16, "BFlat")
    reference = DocumentIndex.open(server.model.parent / "binary", server.encoder())
    try:
        expected = reference.search(DOCUMENTS[5], k=4, filter={"n": {"gte": 2}})
    finally:
        reference.close()
    hits = answer.json()["results"][0]["hits"]
    assert [hit["id"] for hit in hits] == [hit.id for hit in expected] and hits[0]["id"] == "d5"
    np.testing.assert_allclose([hit["score"] for hit in hits], [hit.score for hit in expected], atol=1e-5)


def test_keyword_and_hybrid_search_equal_the_library(server):
    from sentsim.search import DocumentIndex

    body = {"queries": ["the cat sleeps", "piano music"], "k": 4, "filter": {"n": {"lt": 12}}}
    with server.client() as http:
        keyword = http.post("/v1/indexes/docs/search", json=body | {"mode": "keyword"}).json()["results"]
        hybrid = http.post("/v1/indexes/docs/search", json=body | {"mode": "hybrid", "weights": {"keyword": 0.5}})
    hybrid = hybrid.json()["results"]
    with DocumentIndex.open(server.model.parent / "index", server.encoder()) as reference:
        options = {"k": 4, "filter": body["filter"]}
        expected_keyword = reference.search(body["queries"], mode="keyword", **options)
        expected_hybrid = reference.search(body["queries"], mode="hybrid", weights={"keyword": 0.5}, **options)
    for answer, expected in ((keyword, expected_keyword), (hybrid, expected_hybrid)):
        for result, hits in zip(answer, expected, strict=True):
            assert [h["id"] for h in result["hits"]] == [h.id for h in hits]
            assert [(h["dense_rank"], h["keyword_rank"]) for h in result["hits"]] == [
                (h.dense_rank, h.keyword_rank) for h in hits
            ]
            np.testing.assert_allclose([h["score"] for h in result["hits"]], [h.score for h in hits], rtol=1e-5)
    assert hybrid[0]["hits"][0]["dense_rank"] and hybrid[0]["hits"][0]["keyword_rank"]


def test_bad_index_requests(server):
    with server.client() as http:
        unknown = http.post("/v1/indexes/nope/search", json={"query": "x"})
        assert unknown.status_code == 404 and "this server has: binary, docs" in unknown.json()["error"]["message"]
        for body, fragment in [
            ({"query": "x", "filter": {"n": {"near": 3}}}, "near"),
            ({"query": "x", "filter": [1]}, "'filter' must be a JSON object"),
            ({"query": "x", "k": 0}, "k must be an int >= 1"),
            ({"query": "x", "by": "page"}, "by must be 'chunk' or 'document'"),
            ({"query": "x", "mode": "bm25"}, "unknown mode 'bm25'; expected one of 'dense', 'keyword', 'hybrid'"),
            ({"query": "x", "mode": "dense", "weights": {"keyword": 1}}, "weights weigh the two arms of mode='hybrid'"),
            ({"query": "x", "mode": "hybrid", "weights": {"keyword": "a"}}, "weights['keyword'] must be a finite"),
            ({"query": "x", "mode": "keyword", "nprobe": 4}, "nprobe: the dense arm's, and mode='keyword' has none"),
            ({"query": "x", "queries": ["y"]}, "not both"),
            ({"documents": [{"id": {"a": 1}, "text": "x"}]}, "ids are str or int"),
        ]:
            route = "documents" if "documents" in body else "search"
            answer = http.post(f"/v1/indexes/docs/{route}", json=body)
            assert answer.status_code == 400 and fragment in answer.json()["error"]["message"], (body, answer.text)


def test_writes_while_others_search(server):
    failures, stop = [], threading.Event()

    def search() -> None:
        with server.client() as http:
            while not stop.is_set():
                answer = http.post("/v1/indexes/docs/search", json={"query": "cats and dogs", "k": 5})
                if answer.status_code != 200 or len(answer.json()["results"][0]["hits"]) != 5:
                    failures.append(answer.text)

    searchers = [threading.Thread(target=search) for _ in range(3)]
    for thread in searchers:
        thread.start()
    try:
        with server.client() as http:
            for round in range(5):
                documents = [
                    {"id": f"new{round}-{i}", "text": f"fresh text {i} about rain", "metadata": {"round": round}}
                    for i in range(4)
                ]
                assert http.post("/v1/indexes/docs/documents", json={"documents": documents}).status_code == 200
                deleted = http.post("/v1/indexes/docs/delete", json={"ids": [f"new{round}-0", "missing"]}).json()
                assert deleted["deleted"] == 1
            info = http.get("/v1/indexes/docs").json()
    finally:
        stop.set()
        for thread in searchers:
            thread.join()
    assert failures == []
    assert info["documents"] == len(DOCUMENTS) + 5 * 3 and info["backend"] is not None
    assert info["keyword_tokenizer"] == "unicode61"
