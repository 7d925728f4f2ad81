"""The Milvus store (in Milvus Lite): the same answers as the FAISS store, its own limits and errors,
and what a write Milvus refuses leaves behind. The cases shared with the FAISS store run in the
other modules, parametrized over both stores."""

import json
import socket
import time
import uuid

import numpy as np
import pytest

from sentsim.search import DocumentIndex, IndexCorruptedError, ModelMismatchError

from ..toy_task import TOPICS, toy_encoder
from .corpus import IDS, META, TEXTS

pytest.importorskip("milvus_lite")

from pymilvus import MilvusException  # noqa: E402 - after the skip

MILVUS = pytest.mark.parametrize("store", ["milvus"], indirect=True)
WORDS = sorted({word for texts in TOPICS.values() for text in texts for word in text.split()})


def refuse(*args, **kwargs):
    raise MilvusException(message="refused")


def milvus(database: str, **options) -> dict:
    """Options of a Milvus index in its own collection of ``database``."""
    return {"store": "milvus", "milvus_uri": database, "collection": f"c{uuid.uuid4().hex}", **options}


def random_corpus(n: int, seed: int = 0) -> tuple[list[str], list[dict]]:
    rng = np.random.default_rng(seed)
    texts = list(dict.fromkeys(" ".join(rng.choice(WORDS, rng.integers(3, 13))) for _ in range(n)))
    return texts, [{"n": i, "even": i % 2 == 0, "tags": list(rng.choice(WORDS, 2))} for i in range(len(texts))]


def assert_same_hits(expected, found):
    """``found`` (10 hits) equal to the first 10 of ``expected`` (11): ids and chunks rank by rank, and
    scores to 1e-5; a rank whose score ties another's (equal chunk texts) may hold either."""
    scores = np.array([hit.score for hit in expected])
    np.testing.assert_allclose([hit.score for hit in found], scores[: len(found)], atol=1e-5)
    for rank, (want, got) in enumerate(zip(expected, found, strict=False)):
        tied = np.isclose(scores, scores[rank], rtol=1e-6, atol=1e-5).sum() > 1
        assert tied or (want.id, want.start, want.text, want.metadata) == (got.id, got.start, got.text, got.metadata)


@pytest.mark.parametrize("metric", ["cosine", "dot", "euclidean"])
def test_both_stores_return_the_same_top_10_on_exact_search(metric, encoder, tmp_path, milvus_database):
    texts, metadata = random_corpus(300)
    ids = [f"doc{i}" for i in range(len(texts))]
    options = {"backend": "flat", "metric": metric, "chunk_size": 4, "chunk_overlap": 1}
    faiss_index = DocumentIndex.create(tmp_path / "faiss", encoder, **options)
    milvus_index = DocumentIndex.create(tmp_path / "milvus", encoder, **milvus(milvus_database, **options))
    for index in (faiss_index, milvus_index):
        index.add(texts, ids=ids, metadata=metadata, show_progress=False)
    queries = encoder.encode(random_corpus(20, seed=1)[0], prompt=faiss_index.prompts["query"])
    for search in (
        {},
        {"filter": {"even": True, "n": {"lt": 250}}},
        {"filter": {"tags": {"in": WORDS[:5]}}},
        {"by": "document"},
        {"by": "document", "filter": {"n": {"gte": 100}}},
    ):
        expected = faiss_index.search_vectors(queries, 11, **search)  # the 11th tells a tie at the 10th
        found = milvus_index.search_vectors(queries, 10, **search)
        assert all(len(hits) == 10 for hits in found), search
        for want, got in zip(expected, found, strict=True):
            assert_same_hits(want, got)
    assert milvus_index.store.count_chunks() == faiss_index.store.count_chunks()
    assert len(milvus_index) == len(faiss_index) == len(texts)
    faiss_index.close()
    milvus_index.close()


def test_a_milvus_index_lives_in_its_folder_by_default_and_reopens(encoder, tmp_path):
    folder = tmp_path / "index"
    with DocumentIndex.create(folder, encoder, store="milvus", milvus_token="never-written") as index:
        index.add(TEXTS, ids=IDS, metadata=META)
        expected = index.search("the cat sleeps", k=5)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["store"]["kind"] == "milvus" and manifest["store"]["uri"] == "milvus.db"
    assert (
        manifest["store"]["collection"] == "sentsim" and "never-written" not in (folder / "manifest.json").read_text()
    )
    assert "factory" not in manifest and "tombstones" not in manifest  # the FAISS store's fields
    moved = tmp_path / "moved"
    folder.rename(moved)  # the database travels with the folder
    with DocumentIndex.open(moved, encoder) as index:
        assert index.search("the cat sleeps", k=5) == expected and index.store.index_type == "FLAT"
        with pytest.raises(ModelMismatchError, match="differs in weights_sha256"):
            DocumentIndex.open(moved, toy_encoder(seed=5))


def test_the_collection_records_its_index_and_model(encoder, tmp_path, milvus_database):
    options = milvus(milvus_database)
    DocumentIndex.create(tmp_path / "a", encoder, **options).close()
    with pytest.raises(
        FileExistsError, match=f"the collection '{options['collection']}' at .* already holds a sentsim"
    ):
        DocumentIndex.create(tmp_path / "b", encoder, **options)
    with pytest.raises(ModelMismatchError, match="holds the vectors of another model .*differs in weights_sha256"):
        DocumentIndex.create(tmp_path / "c", toy_encoder(seed=3), **options)
    assert not (tmp_path / "b" / "manifest.json").exists() and not (tmp_path / "c" / "manifest.json").exists()

    from sentsim.search.milvus_connection import connect, disconnect

    client = connect(milvus_database, None)  # the collection dropped and built again by another model's index
    client.drop_collection(options["collection"])
    DocumentIndex.create(tmp_path / "d", toy_encoder(seed=3), **options).close()
    with pytest.raises(ModelMismatchError, match="holds the vectors of another model .* than the index in"):
        DocumentIndex.open(tmp_path / "a", encoder)
    client.drop_collection(options["collection"])
    DocumentIndex.create(tmp_path / "e", encoder, **options).close()  # same model, another index
    with pytest.raises(IndexCorruptedError, match="holds another sentsim index than the one in"):
        DocumentIndex.open(tmp_path / "a", encoder)
    client.drop_collection(options["collection"])
    with pytest.raises(IndexCorruptedError, match="is missing: the documents of the index in"):
        DocumentIndex.open(tmp_path / "a", encoder)
    client.create_collection(options["collection"], dimension=32)  # someone else's collection of that name
    with pytest.raises(IndexCorruptedError, match="is not a sentsim index"):
        DocumentIndex.open(tmp_path / "a", encoder)
    with pytest.raises(FileExistsError, match="exists and is not a sentsim index"):
        DocumentIndex.create(tmp_path / "f", encoder, **options)
    assert client.has_collection(options["collection"])  # untouched
    disconnect(milvus_database, None)


def test_a_server_that_does_not_answer_is_named_quickly(encoder, tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    uri = f"http://127.0.0.1:{port}"
    start = time.monotonic()
    with pytest.raises(ConnectionError, match=f"cannot reach Milvus at {uri}"):
        DocumentIndex.create(tmp_path / "index", encoder, store="milvus", milvus_uri=uri)
    assert time.monotonic() - start < 10
    assert not (tmp_path / "index" / "manifest.json").exists()
    with DocumentIndex.create(tmp_path / "lite", encoder, store="milvus") as index:
        index.add(TEXTS[:3], ids=IDS[:3])
    manifest = json.loads((tmp_path / "lite" / "manifest.json").read_text())
    manifest["store"]["uri"] = uri  # the server it names is down
    (tmp_path / "lite" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ConnectionError, match=f"cannot reach Milvus at {uri}"):
        DocumentIndex.open(tmp_path / "lite", encoder)


def test_what_milvus_cannot_do_is_refused_clearly(encoder, tmp_path, milvus_database):
    for options, error, message in (
        ({"backend": "IVF1024,SQ8"}, ValueError, "FAISS factory strings and 'ivfpq' are the FAISS store's"),
        ({"backend": "ivfpq"}, ValueError, "the Milvus store builds 'auto' or 'flat'"),
        ({"milvus_uri": "http://user:secret@host:19530"}, ValueError, "holds credentials, which would be written"),
        ({"milvus_uri": "milvus.sqlite"}, ValueError, "or a Milvus Lite database file ending in .db"),
        ({"milvus_uri": 5}, TypeError, "milvus_uri must be a str"),
        ({"collection": "has-dash"}, ValueError, "collection must be a Milvus collection name"),
        ({"milvus_token": 5}, TypeError, "milvus_token must be a str or None"),
        ({"keyword_tokenizer": "porter"}, ValueError, "keyword_tokenizer applies to a store with a keyword index"),
    ):
        with pytest.raises(error, match=message):
            DocumentIndex.create(tmp_path / "bad", encoder, **{**milvus(milvus_database), **options})
    with pytest.raises(ValueError, match="milvus_uri applies to store='milvus'"):
        DocumentIndex.create(tmp_path / "bad", encoder, milvus_uri=milvus_database)
    assert not (tmp_path / "bad").exists()
    with DocumentIndex.create(tmp_path / "flat", encoder, **milvus(milvus_database)) as index:
        index.add(TEXTS, ids=IDS, metadata=META)
        with pytest.raises(ValueError, match="k must be at most 16384 with the Milvus store"):
            index.search("the cat", k=20_000)
        for mode in ("keyword", "hybrid"):
            with pytest.raises(ValueError, match=f"mode='{mode}' needs a keyword index, which the milvus store does"):
                index.search("the cat", mode=mode)
        with pytest.raises(ValueError, match="nprobe applies to IVF indexes; this index is 'FLAT'"):
            index.search("the cat", nprobe=4)
        with pytest.raises(ValueError, match="ef_search applies to HNSW indexes"):
            index.search("the cat", ef_search=4)
        with pytest.raises(ValueError, match="filter key 'a/b': the Milvus store cannot filter on keys holding '/'"):
            index.search("the cat", filter={"a/b": 1})  # Milvus reads it as a JSON path
        long_text = " ".join(["the cat sleeps"] * 8000)  # one chunk: no chunk_size
        calls = []
        index.encoder.encode = lambda *args, **kwargs: calls.append(args)
        with pytest.raises(ValueError, match="document 'long': its chunk is 119,999 bytes; .*smaller\\) chunk_size"):
            index.add([long_text], ids=["long"])
        with pytest.raises(ValueError, match="document 'big': its metadata is"):
            index.add(["x"], ids=["big"], metadata=[{"notes": "x" * 70_000}])
        assert calls == [] and len(index) == len(TEXTS)  # refused before encoding: nothing stored
        del index.encoder.encode
    with DocumentIndex.create(tmp_path / "hnsw", encoder, **milvus(milvus_database, backend="hnsw")) as index:
        index.add(TEXTS, ids=IDS, metadata=META)
        assert index.store.index_type == "HNSW" and index.search(TEXTS[0], k=1, ef_search=1)[0].id == IDS[0]
        assert len(index.search(TEXTS[0], k=5, filter={"topic": "rain"}, ef_search=8)) == 4


def test_the_token_comes_from_milvus_token_or_the_environment_at_open(encoder, tmp_path, monkeypatch):
    from sentsim.search import milvus_store

    DocumentIndex.create(tmp_path / "index", encoder, store="milvus").close()
    tokens, connect = [], milvus_store.connect
    monkeypatch.setattr(milvus_store, "connect", lambda uri, token: tokens.append(token) or connect(uri, token))
    monkeypatch.setenv("MILVUS_TOKEN", "from-the-environment")
    DocumentIndex.open(tmp_path / "index", encoder).close()
    DocumentIndex.open(tmp_path / "index", encoder, milvus_token="given").close()
    assert tokens == ["from-the-environment", "given"]
    with pytest.raises(ValueError, match="milvus_token applies to store='milvus'"):
        DocumentIndex.create(tmp_path / "faiss", encoder, milvus_token="given")


def test_get_puts_chunked_documents_together_exactly(encoder, tmp_path, milvus_database):
    texts = ["  the cat  sleeps\n\nstocks fell . it rains today  ", "a kitten naps", "piano\tmusic plays " * 5]
    with DocumentIndex.create(tmp_path / "index", encoder, **milvus(milvus_database, chunk_size=3)) as index:
        index.add(texts, ids=["a", "b", "c"], metadata=[{"n": 10**30}, None, {"tags": [None, "x"]}])
        assert [index.get(doc_id) for doc_id in "abc"] == [
            (texts[0], {"n": 10**30}),
            (texts[1], {}),
            (texts[2], {"tags": [None, "x"]}),
        ]
        assert {h.id for h in index.search("x", k=50, filter={"n": {"gte": 0}})} == {"a"}  # held as a float
        for hit in index.search("stocks fell", k=50):
            assert texts["abc".index(hit.id)][hit.start : hit.end] == hit.text


@MILVUS
def test_a_refused_insert_leaves_what_was_stored(index, monkeypatch):
    from sentsim.search import milvus_layout

    before = index.search("the cat sleeps", k=100)
    monkeypatch.setattr(milvus_layout, "INSERT_BYTES", 1)  # one row an insert call
    client, inserted = index.store.client, []
    insert = client.insert

    def insert_once(collection, rows, **kwargs):
        if inserted:
            refuse()
        inserted.append(insert(collection, rows, **kwargs))

    monkeypatch.setattr(client, "insert", insert_once)
    with pytest.raises(RuntimeError, match="refused to store the documents .*refused"):
        index.upsert(["a brand new text", "another new text"], ids=["d0", "new"])
    assert inserted  # d0's row went in, and was deleted again
    assert index.get("d0") == (TEXTS[0], META[0]) and index.get("new") is None
    assert index.search("the cat sleeps", k=100) == before and len(index) == len(TEXTS)

    delete = client.delete
    monkeypatch.setattr(client, "delete", refuse)
    inserted.clear()
    with pytest.raises(RuntimeError, match="refused to store the documents"):  # the clean-up is refused too
        index.upsert(["a brand new text", "another new text"], ids=["d0", "new"])
    assert index.get("d0") == ("a brand new text", {}) and index.get("new") is None  # whole versions only
    assert index.store.count_chunks() == len(TEXTS) + 1  # d0's old row stays beside its new one
    monkeypatch.setattr(client, "delete", delete)
    index.compact()  # keeps each document's newest complete version
    assert index.store.count_chunks() == len(index) == len(TEXTS)
    assert [h.text for h in index.search("x", k=100) if h.id == "d0"] == ["a brand new text"]


@MILVUS
def test_a_refused_delete_of_replaced_rows_keeps_both_until_compact(index, monkeypatch):
    monkeypatch.setattr(index.store.client, "delete", refuse)
    with pytest.raises(RuntimeError, match="delete the rows the new documents replace \\(they are stored"):
        index.upsert(["a parrot talks"], ids=["d0"], metadata=[{"new": True}])
    monkeypatch.undo()
    assert index.get("d0") == ("a parrot talks", {"new": True})  # the newest complete version
    assert {h.text for h in index.search("x", k=100) if h.id == "d0"} == {"a parrot talks", TEXTS[0]}
    index.compact()
    assert [h.text for h in index.search("x", k=100) if h.id == "d0"] == ["a parrot talks"]
    assert index.store.count_chunks() == len(index) == len(TEXTS)


@MILVUS
def test_reads_past_one_query_call_and_the_cache_past_one_page(index, monkeypatch):
    from sentsim.search import milvus_store
    from sentsim.search.ingest import content_hash

    monkeypatch.setattr(milvus_store, "MAX_HITS", 3)  # Milvus's 16,384, made small
    text = "the cat sleeps and a kitten naps"
    index.upsert([text] * 3, ids=["x", "y", "z"])  # one chunk each, the same three times over
    assert index.get("x") == (text, {})
    assert index.store.has_documents(["x", "y", "d0", "nope", *IDS]) == {"x", "y", *IDS}  # 18 rows: paged
    hashes = [content_hash(chunk) for chunk in [text, *TEXTS]]
    assert set(index.store.cached_vectors(hashes)) == set(hashes)  # a page of 3 "x y z" rows hides none


def test_the_cli_builds_searches_and_updates_a_milvus_index(tmp_path, capsys, milvus_database):
    from sentsim.cli import main

    model = tmp_path / "model"
    toy_encoder().save_pretrained(model)
    docs = tmp_path / "docs.jsonl"
    docs.write_text(
        "".join(json.dumps({"id": i, "text": t, **m}) + "\n" for i, t, m in zip(IDS, TEXTS, META, strict=True))
    )
    folder = str(tmp_path / "idx")
    build = ["index", "build", "--model", str(model), "--docs", str(docs), "--no-progress", "--store", "milvus"]
    assert main([*build, "--output", folder, "--backend", "hnsw"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["documents"], summary["chunks"], summary["factory"]) == (len(TEXTS), len(TEXTS), "HNSW")
    assert main(["search", folder, "the cat sleeps", "-k", "3", "--filter", "topic=rain", "--json"]) == 0
    assert {h["metadata"]["topic"] for h in json.loads(capsys.readouterr().out)["hits"]} == {"rain"}
    assert main(["search", folder, "the cat sleeps", "--ef-search", "32", "--by-document"]) == 0
    assert main(["index", "delete", folder, "--ids", "d0", "d1"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["deleted"] == 2
    (tmp_path / "extra.txt").write_text("one more cat text\n")
    assert main(["index", "add", folder, "--docs", str(tmp_path / "extra.txt"), "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["documents"] == len(TEXTS) - 1
    assert main(["index", "compact", folder]) == 0
    assert main([*build, "--output", folder, "--overwrite"]) == 0  # a new database in the new folder
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["documents"] == len(TEXTS)
    shared = ["--milvus-uri", milvus_database, "--collection", f"c{uuid.uuid4().hex}"]
    assert main([*build, "--output", str(tmp_path / "shared"), *shared]) == 0
    capsys.readouterr()
    assert main([*build, "--output", str(tmp_path / "again"), *shared]) == 2  # that collection is taken
    assert "already holds a sentsim index" in capsys.readouterr().err
    assert main([*build, "--output", str(tmp_path / "bad"), "--backend", "IVF64,Flat"]) == 2
    assert "FAISS factory strings" in capsys.readouterr().err
    assert main(["index", "build", "--model", str(model), "--docs", str(docs), "--output", str(tmp_path / "f"),
                 "--milvus-uri", "x.db"]) == 2  # fmt: skip
    assert "milvus_uri applies to store='milvus'" in capsys.readouterr().err


def test_the_server_serves_a_milvus_index(tmp_path):
    from fastapi.testclient import TestClient

    from sentsim.serve.app import create_app
    from sentsim.serve.service import ServeConfig, Service

    toy_encoder().save_pretrained(tmp_path / "model")
    with DocumentIndex.create(tmp_path / "index", str(tmp_path / "model"), store="milvus") as index:
        index.add(TEXTS, ids=IDS, metadata=META)
        expected = index.search("the cat sleeps", k=3, filter={"even": True})
    service = Service(
        ServeConfig(model=str(tmp_path / "model"), indexes={"docs": str(tmp_path / "index")}, device="cpu")
    )
    with TestClient(create_app(service)) as http:
        assert service.ready.wait(60) and service.failed is None
        info = http.get("/v1/indexes/docs").json()
        assert (info["documents"], info["chunks"], info["backend"]) == (len(TEXTS), len(TEXTS), "FLAT")
        body = {"query": "the cat sleeps", "k": 3, "filter": {"even": True}}
        hits = http.post("/v1/indexes/docs/search", json=body).json()["results"][0]["hits"]
        assert [(hit["id"], hit["text"]) for hit in hits] == [(hit.id, hit.text) for hit in expected]
        assert info["keyword_tokenizer"] is None
        refused = http.post("/v1/indexes/docs/search", json=body | {"mode": "hybrid"})
        assert refused.status_code == 400 and "the milvus store does not keep" in refused.json()["error"]["message"]
        documents = {"documents": [{"id": "new", "text": "a kitten naps", "metadata": {"even": True}}]}
        assert http.post("/v1/indexes/docs/documents", json=documents).status_code == 200
        assert http.get("/v1/indexes/docs").json()["documents"] == len(TEXTS) + 1
