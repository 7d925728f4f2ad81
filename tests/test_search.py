import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest
import torch

from sentsim import similarity
from sentsim.search import DocumentIndex, IndexCorruptedError, ModelMismatchError
from sentsim.search.backends import VectorBackend, resolve_factory
from sentsim.search.chunking import chunk_text

from .toy_task import TOPICS, toy_encoder

TEXTS = [text for texts in TOPICS.values() for text in texts]
IDS = [f"d{i}" for i in range(len(TEXTS))]
META = [{"topic": topic, "n": i, "even": i % 2 == 0} for i, topic in enumerate(t for t in TOPICS for _ in range(4))]


@pytest.fixture
def encoder():
    return toy_encoder()


@pytest.fixture
def index(encoder, tmp_path):
    index = DocumentIndex.create(tmp_path / "index", encoder, backend="flat")
    index.add(TEXTS, ids=IDS, metadata=META)
    yield index
    index.close()


def clustered(n, dim=48, clusters=200, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim))
    points = centers[rng.integers(0, clusters, n)] + 0.35 * rng.normal(size=(n, dim))
    return points.astype(np.float32)


# ------------------------------------------------------------------ backends
def test_flat_search_equals_brute_force_cosine(index, encoder):
    queries = ["the cat sleeps", "stocks fell sharply", "piano"]
    hits = index.search(queries, k=5)
    documents = encoder.encode(TEXTS)
    expected = np.argsort(-similarity(encoder.encode(queries), documents), axis=1, kind="stable")[:, :5]
    assert [[h.id for h in row] for row in hits] == [[IDS[i] for i in row] for row in expected]
    scores = similarity(encoder.encode(queries), documents)
    np.testing.assert_allclose([h.score for h in hits[0]], np.sort(scores[0])[::-1][:5], atol=1e-5)


@pytest.mark.parametrize("backend", ["ivf", "hnsw"])
def test_approximate_backends_recall_at_10(backend):
    vectors, queries = clustered(20_000), clustered(200, seed=1)
    exact = VectorBackend("Flat", 48, "cosine")
    exact.add(vectors, np.arange(len(vectors)))
    approximate = VectorBackend(resolve_factory(backend, 48, len(vectors)), 48, "cosine")
    approximate.add(vectors, np.arange(len(vectors)))
    _, truth = exact.search(queries, 10)
    _, found = approximate.search(queries, 10)
    recall = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found, strict=True)])
    assert recall >= 0.95, recall


def test_nprobe_and_ef_search_trade_speed_for_recall_per_call():
    vectors, queries = clustered(4000), clustered(100, seed=1)
    exact = VectorBackend("Flat", 48, "cosine")
    exact.add(vectors, np.arange(len(vectors)))
    truth_scores, truth = exact.search(queries, 10)

    def recall(found):
        return np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found, strict=True)])

    ivf = VectorBackend("IVF64,Flat", 48, "cosine")
    ivf.add(vectors, np.arange(len(vectors)))
    default_nprobe = __import__("faiss").try_extract_index_ivf(ivf.inner).nprobe
    every_list_scores, every_list = ivf.search(queries, 10, nprobe=64)  # every list: exact
    np.testing.assert_array_equal(every_list, truth)
    np.testing.assert_allclose(every_list_scores, truth_scores, atol=1e-5)
    assert recall(ivf.search(queries, 10, nprobe=1)[1]) < recall(ivf.search(queries, 10)[1]) <= 1.0
    np.testing.assert_array_equal(ivf.search(queries, 10, nprobe=10_000)[1], truth)  # capped at nlist
    allowed = np.arange(0, 4000, 2)
    _, filtered = ivf.search(queries, 10, allowed, nprobe=64)  # with a filter too: every list, exact
    np.testing.assert_array_equal(filtered, exact.search(queries, 10, allowed)[1])
    np.testing.assert_array_equal(ivf.search(queries, 10, nprobe=np.int64(64))[1], truth)  # numpy ints welcome
    assert __import__("faiss").try_extract_index_ivf(ivf.inner).nprobe == default_nprobe  # index unchanged

    hnsw = VectorBackend("HNSW8", 48, "cosine")
    hnsw.add(vectors, np.arange(len(vectors)))
    assert recall(hnsw.search(queries, 10, ef_search=10)[1]) < recall(hnsw.search(queries, 10, ef_search=400)[1])
    assert hnsw.inner.hnsw.efSearch == 128

    with pytest.raises(ValueError, match="nprobe applies to IVF indexes; this index is 'Flat'"):
        exact.search(queries, 10, nprobe=4)
    with pytest.raises(ValueError, match="ef_search applies to HNSW indexes; this index is 'IVF64,Flat'"):
        ivf.search(queries, 10, ef_search=4)
    for bad in (0, -1, 2.5, True, "8"):
        with pytest.raises(ValueError, match="nprobe must be a positive int"):
            ivf.search(queries, 10, nprobe=bad)


@pytest.mark.parametrize(
    ("factory", "tuning"), [("IVF16,Flat,RFlat", {"nprobe": 16}), ("PCA24,IVF16,Flat", {"nprobe": 16})]
)
def test_tuning_and_filters_reach_wrapped_indexes(factory, tuning):
    vectors, queries = clustered(2000), clustered(20, seed=1)
    allowed = np.arange(1, 2000, 3)
    backend = VectorBackend(factory, 48, "cosine")
    backend.add(vectors, np.arange(len(vectors)))
    _, ids = backend.search(queries, 10, allowed, **tuning)
    assert np.isin(ids, allowed).all() and (ids >= 0).all()
    if "RFlat" in factory:  # refined with exact distances over every list: the exact filtered answer
        exact = VectorBackend("Flat", 48, "cosine")
        exact.add(vectors, np.arange(len(vectors)))
        np.testing.assert_array_equal(ids, exact.search(queries, 10, allowed)[1])
    hnsw = VectorBackend("PCA24,HNSW8", 48, "cosine")
    hnsw.add(vectors, np.arange(len(vectors)))
    assert not hnsw.can_remove  # deletes become tombstones, as for plain HNSW
    assert (hnsw.search(queries, 5, ef_search=64)[1] >= 0).all()


def test_search_tuning_through_the_index_and_cli(encoder, tmp_path, capsys):
    from sentsim.cli import main

    folder, model = tmp_path / "ivf", tmp_path / "model"
    encoder.save_pretrained(model)
    index = DocumentIndex.create(folder, encoder, backend="IVF4,Flat", model_name=str(model))
    index.add(TEXTS, ids=IDS, metadata=META)
    scores = similarity(encoder.encode(["the cat sleeps"]), encoder.encode(TEXTS))[0]
    expected = [IDS[i] for i in np.argsort(-scores, kind="stable")[:5]]
    calls = []
    search = index.backend.search
    index.backend.search = lambda *args, **kwargs: calls.append(kwargs) or search(*args, **kwargs)
    assert [h.id for h in index.search("the cat sleeps", k=5, nprobe=3)] == expected
    assert calls == [{"nprobe": 3, "ef_search": None}]  # the knob reaches FAISS
    index.backend.search = search
    with pytest.raises(ValueError, match="ef_search applies to HNSW"):
        index.search("the cat sleeps", ef_search=64)
    index.close()
    empty = DocumentIndex.create(tmp_path / "empty", encoder)  # no FAISS index yet: values are still checked
    with pytest.raises(ValueError, match=r"nprobe must be a positive int below 2\*\*31, got 0"):
        empty.search("the cat sleeps", nprobe=0)
    empty.close()
    assert main(["search", str(folder), "the cat sleeps", "-k", "5", "--nprobe", "4", "--json"]) == 0
    assert [h["id"] for h in json.loads(capsys.readouterr().out)["hits"]] == expected
    assert main(["search", str(folder), "the cat sleeps", "--ef-search", "64"]) == 2
    assert "ef_search applies to HNSW indexes" in capsys.readouterr().err


def test_ivfpq_trains_and_searches():
    vectors = clustered(5000)
    backend = VectorBackend(resolve_factory("ivfpq", 48, 5000), 48, "cosine")
    backend.add(vectors, np.arange(5000))
    _, ids = backend.search(vectors[:20], 1)
    assert np.mean(ids[:, 0] == np.arange(20)) >= 0.8


def test_too_few_vectors_to_train_is_a_clear_error():
    backend = VectorBackend("IVF64,Flat", 8, "cosine")
    with pytest.raises(ValueError, match="trained on at least 64 vectors, got 10.*backend='flat'"):
        backend.add(np.random.default_rng(0).normal(size=(10, 8)), np.arange(10))


def test_euclidean_scores_are_negative_distances():
    backend = VectorBackend("Flat", 2, "euclidean")
    backend.add(np.array([[0, 0], [3, 4]], dtype=np.float32), np.array([7, 9]))
    scores, ids = backend.search(np.array([[0, 0]], dtype=np.float32), 5)
    assert ids[0].tolist() == [7, 9, -1, -1, -1]
    np.testing.assert_allclose(scores[0][:2], [0.0, -5.0], atol=1e-6)


def test_bad_factory_string():
    with pytest.raises(ValueError, match="invalid FAISS factory string 'Nonsense42'"):
        VectorBackend("Nonsense42", 8, "cosine")


# --------------------------------------------------------------------- index
def test_k_larger_than_corpus_and_no_minus_one(index):
    hits = index.search("the cat sleeps", k=100)
    assert len(hits) == len(TEXTS) and len({h.id for h in hits}) == len(TEXTS)


def test_filters_return_k_matching_hits(index):
    hits = index.search("the cat sleeps", k=4, filter={"topic": "rain"})
    assert len(hits) == 4 and {h.metadata["topic"] for h in hits} == {"rain"}
    hits = index.search("the cat sleeps", k=10, filter={"topic": {"in": ["rain", "music"]}, "n": {"gte": 10}})
    assert sorted(h.metadata["n"] for h in hits) == [10, 11, 12, 13, 14, 15]
    assert {h.id for h in index.search("stocks", k=20, filter={"even": True})} == {f"d{i}" for i in range(0, 16, 2)}
    assert index.search("stocks", k=3, filter={"topic": "nothing"}) == []
    assert index.search(np.array("stocks"), k=3) == index.search("stocks", k=3)  # a 0-d string array
    import pandas as pd

    frame = pd.DataFrame(META)  # values picked from a DataFrame are numpy scalars, arrays or Series
    for numpy_spec, plain_spec in (
        ({"n": {"gte": frame.n.iloc[10]}}, {"n": {"gte": 10}}),
        ({"n": {"lt": np.float32(4.5)}}, {"n": {"lt": 4.5}}),
        ({"even": frame.even.iloc[0]}, {"even": True}),
        ({"topic": {"in": frame.topic.unique()}}, {"topic": {"in": sorted(set(frame.topic))}}),
        ({"topic": {"in": frame.topic[frame.n < 5]}}, {"topic": {"in": ["cat", "market"]}}),
        ({"n": {"in": np.arange(3)}}, {"n": {"in": [0, 1, 2]}}),
    ):
        found = {h.id for h in index.search("stocks", k=20, filter=numpy_spec)}
        assert found == {h.id for h in index.search("stocks", k=20, filter=plain_spec)} != set(), numpy_spec


@pytest.mark.parametrize(
    "spec, expected",
    [
        ({"tags": "cat"}, {"d0", "d2"}),  # a list holding the value, or the value itself
        ({"tags": {"in": ["dog", "pet"]}}, {"d0", "d1"}),
        ({"tags": {"ne": "cat"}}, {"d1", "d3", "d4"}),  # a missing key is not "cat"
        ({"year": {"gte": 2020}}, {"d0", "d3"}),  # the string "2021" is not a number
        ({"year": {"lt": 2020}}, {"d2"}),
        ({"lang": None}, {"d1", "d2"}),  # null or missing
        ({"lang": {"ne": None}}, {"d0", "d3", "d4"}),
        ({"lang": {"ne": "en"}}, {"d1", "d2", "d3"}),
        ({"lang": "en", "tags": {"ne": "cat"}}, {"d4"}),
    ],
)
def test_filter_semantics_for_lists_nulls_and_types(encoder, tmp_path, spec, expected):
    metadata = [
        {"tags": ["cat", "pet"], "year": 2021, "lang": "en"},
        {"tags": ["dog"], "year": "2021", "lang": None},
        {"tags": "cat", "year": 2019},
        {"lang": "de", "year": 2023.5},
        {"tags": [], "lang": "en"},
    ]
    with DocumentIndex.create(tmp_path / "index", encoder, backend="flat") as index:
        index.add(TEXTS[:5], ids=[f"d{i}" for i in range(5)], metadata=metadata)
        assert {hit.id for hit in index.search("cats", k=10, filter=spec)} == expected


def test_a_long_in_list_is_bound_as_one_parameter(index):
    index.store.db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 100)  # SQLite's limit is 32,766 in many builds
    hits = index.search("the cat sleeps", k=100, filter={"n": {"in": list(range(2, 5000))}})
    assert {h.metadata["n"] for h in hits} == set(range(2, len(TEXTS)))


def test_filtered_hnsw_still_finds_k(encoder, tmp_path):
    index = DocumentIndex.create(tmp_path / "hnsw", encoder, backend="hnsw")
    index.add(TEXTS, ids=IDS, metadata=META)
    hits = index.search("the cat sleeps", k=3, filter={"topic": "music"})
    assert len(hits) == 3 and all(h.metadata["topic"] == "music" for h in hits)


def test_ivf_misses_are_filled_by_exact_search(encoder, tmp_path):
    index = DocumentIndex.create(tmp_path / "ivf", encoder, backend="IVF4,Flat")
    index.add(TEXTS, ids=IDS, metadata=META)
    faiss_ivf = __import__("faiss").try_extract_index_ivf(index.backend.inner)
    faiss_ivf.nprobe = 1  # one list of four: most filtered searches miss matching vectors
    query, allowed = "the cat sleeps", [i for i, m in enumerate(META) if m["even"]]
    hits = index.search(query, k=len(allowed), filter={"even": True})
    scores = similarity(encoder.encode([query]), encoder.encode([TEXTS[i] for i in allowed]))[0]
    expected = [IDS[allowed[i]] for i in np.argsort(-scores, kind="stable")]
    assert [h.id for h in hits] == expected
    np.testing.assert_allclose([h.score for h in hits], np.sort(scores)[::-1], atol=1e-5)
    index.delete([IDS[0]])  # unfiltered, with a deleted document: exact over every live vector
    everything = similarity(encoder.encode([query]), encoder.encode(TEXTS[1:]))[0]
    assert [h.id for h in index.search(query, k=len(TEXTS))] == [
        IDS[1 + i] for i in np.argsort(-everything, kind="stable")
    ]
    index.close()


def test_filters_on_keys_with_accents_escapes_and_json_path_syntax(encoder, tmp_path):
    keys = ["café", "emoji😀", "back\\slash", "new\nline", "a.b", "$x", "[0]"]
    index = DocumentIndex.create(tmp_path / "keys", encoder, backend="flat")
    index.add(["one", "two"], ids=["d1", "d2"], metadata=[{key: "yes" for key in keys}, {key: "no" for key in keys}])
    for key in keys:
        assert [h.id for h in index.search("one", k=5, filter={key: "yes"})] == ["d1"], key
        assert [h.id for h in index.search("one", k=5, filter={key: {"ne": "yes"}})] == ["d2"], key
    with pytest.raises(ValueError, match="metadata keys cannot contain a double quote"):
        index.add(["three"], ids=["d3"], metadata=[{'q"uote': 1}])
    index.add(["three"], ids=["d3"], metadata=[{"info": {'the "best"': 1}}])  # nested keys are not filtered on
    with pytest.raises(ValueError, match="filter key 'q\"uote': metadata keys cannot contain a double quote"):
        index.search("one", filter={'q"uote': 1})
    assert len(index) == 3
    index.close()


def test_an_index_folder_with_links_out_of_it_is_refused(encoder, tmp_path):
    import sqlite3

    folder = tmp_path / "index"
    DocumentIndex.create(folder, encoder, backend="flat").close()
    outside = tmp_path / "app.sqlite"
    sqlite3.connect(outside).execute("CREATE TABLE notes (x)").connection.close()
    (folder / "documents.sqlite").unlink()
    (folder / "documents.sqlite").symlink_to(outside)
    with pytest.raises(IndexCorruptedError, match="is a symbolic link"):
        DocumentIndex.open(folder, encoder)
    tables = sqlite3.connect(outside).execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == [("notes",)]  # untouched: no schema, no WAL mode
    (folder / "documents.sqlite").unlink()
    index = DocumentIndex.create(tmp_path / "second", encoder, backend="flat")
    (tmp_path / "second" / "index.lock").unlink(missing_ok=True)
    (tmp_path / "second" / "index.lock").symlink_to(tmp_path / "created_by_sentsim")
    with pytest.raises(OSError, match="is a symbolic link"):
        index.add(["a text"], ids=["a"])
    assert not (tmp_path / "created_by_sentsim").exists() and len(index) == 0
    index.close()


def test_bad_filters(index):
    with pytest.raises(ValueError, match="'gte' needs a number"):
        index.search("x", filter={"n": {"gte": "ten"}})
    with pytest.raises(ValueError, match="unknown operator 'like'"):
        index.search("x", filter={"topic": {"like": "ca%"}})
    with pytest.raises(ValueError, match="filter values must be finite, got nan"):
        index.search("x", filter={"n": {"lt": float("nan")}})
    with pytest.raises(ValueError, match="'in' takes no None"):
        index.search("x", filter={"topic": {"in": ["rain", None]}})


@pytest.mark.parametrize("backend", ["flat", "hnsw"])
def test_deleted_documents_are_never_returned(encoder, tmp_path, backend):
    index = DocumentIndex.create(tmp_path / backend, encoder, backend=backend)
    index.add(TEXTS, ids=IDS, metadata=META)
    assert index.delete(["d0", "d1", "missing"]) == 2
    for query in TEXTS:
        assert not {"d0", "d1"} & {h.id for h in index.search(query, k=len(TEXTS))}
    assert len(index.search("the cat sleeps", k=100)) == len(TEXTS) - 2
    index.close()
    reopened = DocumentIndex.open(tmp_path / backend, encoder)
    assert not {"d0", "d1"} & {h.id for h in reopened.search("the cat sleeps", k=100)}
    reopened.compact()
    assert reopened.backend.tombstones == set() and reopened.backend.size == len(TEXTS) - 2


def test_a_compaction_reaches_other_handles(encoder, tmp_path):
    first = DocumentIndex.create(tmp_path / "hnsw", encoder, backend="hnsw")
    first.add(TEXTS, ids=IDS, metadata=META)
    second = DocumentIndex.open(tmp_path / "hnsw", encoder)
    first.delete(["d0", "d1"])
    second.search("the cat sleeps")  # catches up: its index now holds the tombstones too
    assert len(second.backend.tombstones) == 2
    first.compact()
    second.add(["a new document"], ids=["new"])  # loads the compacted file before writing
    assert second.backend.tombstones == set()
    manifest = json.loads((tmp_path / "hnsw" / "manifest.json").read_text())
    assert manifest["tombstones"] == [] and manifest["generation"] == second.store.generation
    assert {h.id for h in second.search("the cat sleeps", k=100)} == set(IDS[2:]) | {"new"}
    generation = first.store.generation
    first.compact()  # nothing to drop: the generation stays, other handles keep their index
    assert first.store.generation == generation and not second.mirror.stale
    first.close()
    second.close()


def test_a_compaction_that_cannot_save_raises_and_keeps_the_generation(encoder, tmp_path, monkeypatch):
    index = DocumentIndex.create(tmp_path / "hnsw", encoder, backend="hnsw")
    index.add(TEXTS, ids=IDS, metadata=META)
    index.delete(["d0"])
    generation = index.store.generation

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(VectorBackend, "save", full_disk)
        with pytest.raises(OSError, match="No space left"):
            index.compact()
    assert index.store.generation == generation
    assert json.loads((tmp_path / "hnsw" / "manifest.json").read_text())["generation"] == generation
    assert {h.id for h in index.search("the cat sleeps", k=100)} == set(IDS[1:])
    reopened = DocumentIndex.open(tmp_path / "hnsw", encoder)
    assert {h.id for h in reopened.search("the cat sleeps", k=100)} == set(IDS[1:])
    index.close()
    reopened.close()


def test_upsert_replaces_and_cache_avoids_re_encoding(index, encoder, monkeypatch):
    calls = []
    original = encoder.encode
    monkeypatch.setattr(encoder, "encode", lambda texts, **kw: calls.append(list(texts)) or original(texts, **kw))
    index.upsert([TEXTS[0]], ids=["d0"], metadata=[{"topic": "cat", "n": 0, "even": True, "new": 1}])
    assert calls == [] and index.get("d0")[1]["new"] == 1  # same text: metadata only
    index.upsert(["a rainy day"], ids=["d0"])  # a text seen before (d10): from the cache
    assert calls == []
    index.upsert(["a brand new cat text"], ids=["d0"])
    assert calls == [["a brand new cat text"]]
    assert index.get("d0")[0] == "a brand new cat text" and len(index) == len(TEXTS)
    with pytest.raises(ValueError, match=r"document id\(s\) \['d1'\] already exist; use upsert"):
        index.add(["x"], ids=["d1"])


def test_chunks_carry_offsets_and_documents_group(encoder, tmp_path):
    index = DocumentIndex.create(tmp_path / "chunked", encoder, chunk_size=3, chunk_overlap=1)
    long_text = "the cat sleeps . stocks fell . it rains today . she plays piano"
    index.add([long_text, "a kitten naps"], ids=["long", "short"])
    hits = index.search("stocks fell", k=10)
    for hit in hits:
        document = index.get(hit.id)[0]
        assert document[hit.start : hit.end] == hit.text
    by_document = index.search("stocks fell", k=10, by="document")
    assert sorted(h.id for h in by_document) == ["long", "short"]
    assert len(hits) > 2


def test_chunk_text_windows():
    tokenizer = toy_encoder().tower.tokenizer.tokenizer
    text = "the cat sleeps a kitten naps the cat is sleeping"
    chunks = chunk_text(text, tokenizer, chunk_size=4, overlap=1)
    assert [text[c.start : c.end] for c in chunks] == ["the cat sleeps a", "a kitten naps the", "the cat is sleeping"]
    assert chunk_text(text, tokenizer, None) == chunk_text("x", tokenizer, None)[:0] + [type(chunks[0])(0, len(text))]
    with pytest.raises(ValueError, match="overlap"):
        chunk_text(text, tokenizer, chunk_size=4, overlap=4)


def test_save_open_round_trip_and_model_mismatch(index, tmp_path):
    before = [h.id for h in index.search("the market fell", k=5)]
    index.close()
    reopened = DocumentIndex.open(tmp_path / "index", toy_encoder())
    assert [h.id for h in reopened.search("the market fell", k=5)] == before and len(reopened) == len(TEXTS)
    with pytest.raises(ModelMismatchError, match="differs in weights_sha256"):
        DocumentIndex.open(tmp_path / "index", toy_encoder(seed=5))
    with pytest.raises(FileExistsError, match="already holds an index"):
        DocumentIndex.create(tmp_path / "index", toy_encoder())
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "notes.txt").write_text("mine")  # a later build --overwrite would delete it
    with pytest.raises(FileExistsError, match="holds files that are not an index"):
        DocumentIndex.create(tmp_path / "notes", toy_encoder())
    assert os.listdir(tmp_path / "notes") == ["notes.txt"]


def test_corrupted_files_give_clear_errors(index, tmp_path):
    index.close()
    folder = tmp_path / "index"
    faiss_file = folder / "index.faiss"
    data = faiss_file.read_bytes()
    faiss_file.write_bytes(data[: len(data) // 3])
    with pytest.raises(IndexCorruptedError, match=r"index.faiss is not a readable FAISS index"):
        DocumentIndex.open(folder, toy_encoder())
    repaired = DocumentIndex.open(folder, toy_encoder(), repair=True)
    assert len(repaired.search("the cat sleeps", k=100)) == len(TEXTS)
    repaired.close()
    import faiss

    faiss.write_index(faiss.IndexFlatIP(repaired.encoder.dim), str(faiss_file))  # a foreign FAISS file
    with pytest.raises(IndexCorruptedError, match="holds a IndexFlatIP, not the id-mapped index sentsim writes"):
        DocumentIndex.open(folder, toy_encoder())
    DocumentIndex.open(folder, toy_encoder(), repair=True).close()
    manifest = json.loads((folder / "manifest.json").read_text())
    for broken, message in (
        ([], "not a sentsim index manifest"),
        ({}, "'model' is missing or has the wrong type"),
        (manifest | {"chunk_size": "128"}, "'chunk_size' is missing or has the wrong type"),
        (manifest | {"model": {"name": "x"}}, "model 'dim' is missing"),
        (manifest | {"tombstones": 3}, "'tombstones' must be a list"),
        (manifest | {"metric": "bogus"}, "unknown metric 'bogus'"),
    ):
        (folder / "manifest.json").write_text(json.dumps(broken))
        with pytest.raises(IndexCorruptedError, match=message):
            DocumentIndex.open(folder, toy_encoder())
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(IndexCorruptedError, match="manifest.json is corrupted"):
        DocumentIndex.open(folder, toy_encoder())


def test_a_faiss_file_of_the_wrong_size_is_rebuilt_on_open(index, tmp_path):
    folder = tmp_path / "index"
    index.add(["an extra document about cats"], ids=["extra"])
    larger = (folder / "index.faiss").read_bytes()
    index.delete(["extra"])
    index.close()
    (folder / "index.faiss").write_bytes(larger)  # one vector too many, though the generation matches
    reopened = DocumentIndex.open(folder, toy_encoder())
    assert reopened.backend.size == reopened.store.count("chunks") == len(TEXTS)
    assert "extra" not in {h.id for h in reopened.search("cats", k=100)}
    reopened.close()


def test_a_failed_write_whose_repair_fails_is_repaired_before_the_next_use(index, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise MemoryError("simulated")

    with monkeypatch.context() as patch:
        patch.setattr(VectorBackend, "add", fail)  # the write fails, and so does the rebuild after it
        with pytest.raises(MemoryError):
            index.add(["a new document"], ids=["new"])
    assert index.mirror.broken and index.backend is None
    assert len(index.search("the cat sleeps", k=100)) == len(TEXTS)  # rebuilt before searching
    with monkeypatch.context() as patch:
        patch.setattr(VectorBackend, "add", fail)  # the write fails, and so does the rebuild after it
        with pytest.raises(MemoryError):
            index.add(["a new document"], ids=["new"])
    index.add(["a new document"], ids=["new"])  # rebuilt before writing: the old vectors are kept
    assert index.backend.size == len(TEXTS) + 1
    index.close()
    reopened = DocumentIndex.open(tmp_path / "index", toy_encoder())
    assert reopened.backend.size == reopened.store.count("chunks") == len(TEXTS) + 1
    assert len(reopened.search("the cat sleeps", k=100)) == len(TEXTS) + 1
    reopened.close()


def test_ivf_deletes_keep_every_other_id_right():
    vectors = clustered(400, dim=16, clusters=8)
    backend = VectorBackend("IVF4,Flat", 16, "cosine")
    backend.add(vectors, np.arange(400))
    backend.remove([0, 1, 2, 3, 4])  # IVF keeps its own ids: through the id map this used to shift every later id
    _, ids = backend.search(vectors[[10, 50, 150, 2]], 1, nprobe=4)
    assert ids[:3, 0].tolist() == [10, 50, 150] and ids[3, 0] not in range(5)
    assert backend.size == 395
    _, ids = backend.search(vectors[:20], 400, nprobe=4)  # tombstones are skipped inside FAISS: k live ids
    assert (ids[:, :395] >= 5).all() and (ids[:, 395:] == -1).all()
    assert all(len(set(row)) == 395 for row in ids[:, :395].tolist())


def test_a_failed_compaction_is_repaired_before_the_next_use(index, monkeypatch):
    def fail(*args, **kwargs):
        raise MemoryError("simulated")

    with monkeypatch.context() as patch:
        patch.setattr(VectorBackend, "add", fail)
        with pytest.raises(MemoryError):
            index.compact()
    assert index.mirror.broken
    assert len(index.search("the cat sleeps", k=100)) == len(TEXTS)
    assert not index.mirror.broken and index.backend.size == len(TEXTS)


def test_a_closed_index_says_so(index):
    index.close()
    index.close()  # twice is harmless
    for operation in (lambda: index.search("cat"), lambda: index.add(["x"]), lambda: len(index)):
        with pytest.raises(ValueError, match="is closed; open it again"):
            operation()


def test_corrupted_database(index, tmp_path):
    index.close()
    (tmp_path / "index" / "documents.sqlite").write_bytes(b"garbage" * 100)
    for extra in ("documents.sqlite-wal", "documents.sqlite-shm"):
        (tmp_path / "index" / extra).unlink(missing_ok=True)
    with pytest.raises(IndexCorruptedError, match="documents.sqlite"):
        DocumentIndex.open(tmp_path / "index", toy_encoder())


def test_bad_input(index):
    with pytest.raises(ValueError, match=r"queries\[0\] is empty"):
        index.search("  ")
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        index.search("cat", k=0)
    with pytest.raises(ValueError, match=r"query vectors must have shape \(n, 32\)"):
        index.search_vectors(np.zeros((1, 5)), 3)
    with pytest.raises(ValueError, match="NaN"):
        index.search_vectors(np.full((1, 32), np.nan), 3)
    with pytest.raises(TypeError, match=r"texts\[1\] is NoneType"):
        index.add(["ok", None])
    with pytest.raises(ValueError, match="2 texts, 1 ids"):
        index.add(["a", "b"], ids=["x"])
    with pytest.raises(TypeError, match=r"metadata\[0\] must be a dict"):
        index.add(["a"], ids=["x"], metadata=["lang=en"])
    with pytest.raises(ValueError, match=r"metadata\[1\]\[.score.\] holds NaN or infinity"):
        index.add(["a", "b"], ids=["x", "y"], metadata=[{}, {"score": float("nan")}])
    assert index.search("x", k=3, filter={"n": {"gte": 0}})  # filters still work: nothing was stored
    with pytest.raises(ValueError, match="'n': an empty condition"):
        index.search("x", filter={"n": {}})
    for k in (-1, 2.5, None, True):
        with pytest.raises(ValueError, match="k must be an int >= 1"):
            index.search_vectors(np.zeros((1, 32)), k)
    with pytest.raises(ValueError, match="by must be 'chunk' or 'document'"):
        index.search_vectors(np.zeros((1, 32)), 3, by="documents")
    assert len(index.search_vectors(np.ones((1, 32)), np.int64(2))[0]) == 2


def test_create_checks_its_settings(encoder, tmp_path):
    with pytest.raises(TypeError, match="chunk_size must be an int, got 4.5"):
        DocumentIndex.create(tmp_path / "a", encoder, chunk_size=4.5)
    with pytest.raises(ValueError, match="invalid FAISS factory string 'bogus'"):
        DocumentIndex.create(tmp_path / "b", encoder, backend="bogus")
    with pytest.raises(TypeError, match="backend must be a str"):
        DocumentIndex.create(tmp_path / "c", encoder, backend=None)
    assert not any((tmp_path / name / "manifest.json").exists() for name in "abc")


def test_threads_search_while_one_adds(index):
    errors, stop = [], threading.Event()

    def searcher():
        while not stop.is_set():
            try:
                for hit in index.search("the cat sleeps", k=5):
                    assert index.get(hit.id) is not None and hit.text
            except Exception as error:  # noqa: BLE001 - collected for the assertion below
                errors.append(error)

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for thread in threads:
        thread.start()
    for i in range(20):
        index.add([f"new text number {i} about cats"], ids=[f"n{i}"])
        if i % 3 == 0:
            index.delete([f"n{i}"])
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(index) == len(TEXTS) + 20 - 7


WRITER = """
import sys
sys.path.insert(0, {tests!r})
from toy_task import toy_encoder
from sentsim.search import DocumentIndex
index = DocumentIndex.open({folder!r}, toy_encoder())
for i in range(100000):
    index.add(["document number %d about cats and rain" % i, "another text %d" % i], ids=["k%d" % i, "j%d" % i])
    print(i, flush=True)
"""


def test_sigkill_during_adds_leaves_a_consistent_index(index, tmp_path):
    index.close()
    script = WRITER.format(tests=os.path.dirname(__file__), folder=str(tmp_path / "index"))
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    completed = -1
    deadline = time.time() + 60
    while completed < 5 and time.time() < deadline:
        completed = int(process.stdout.readline().split()[0])
    process.send_signal(signal.SIGKILL)
    process.wait()
    reopened = DocumentIndex.open(tmp_path / "index", toy_encoder())
    documents = len(reopened)
    assert documents >= len(TEXTS) + 2 * (completed + 1)  # every completed add is there
    assert (documents - len(TEXTS)) % 2 == 0  # and no half of one
    assert reopened.backend.size == reopened.store.count("chunks") == documents
    hits = reopened.search("document number about cats", k=documents)
    assert len(hits) == documents and all(reopened.get(h.id) is not None for h in hits)
    reopened.close()


def test_manifest_records_the_model(index, tmp_path):
    manifest = json.loads((tmp_path / "index" / "manifest.json").read_text())
    assert manifest["model"]["dim"] == 32 and manifest["metric"] == "cosine" and manifest["factory"] == "Flat"
    assert len(manifest["model"]["weights_sha256"]) == 64


def test_cli_search_lines_escape_tabs_and_newlines_and_id_field_must_exist(tmp_path, capsys):
    from sentsim.cli import main

    model = tmp_path / "model"
    toy_encoder().save_pretrained(model)
    docs = tmp_path / "docs.csv"
    docs.write_bytes('\ufeffid,text\nd1,"the cat\r\nsleeps\there"\nd2,the market fell\n'.encode())  # BOM, as Excel
    build = ["index", "build", "--model", str(model), "--docs", str(docs), "--no-progress"]
    assert main(build + ["--output", str(tmp_path / "bad"), "--id-field", "nope"]) == 2
    assert "no id field 'nope'" in capsys.readouterr().err
    assert main(build + ["--output", str(tmp_path / "idx")]) == 0
    capsys.readouterr()
    assert main(["search", str(tmp_path / "idx"), "the cat", "-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(line.count("\t") == 2 for line in lines[1:])  # one hit a line, three fields
    assert {line.split("\t")[1] for line in lines[1:]} == {"d1", "d2"}  # the BOM is not part of the id column
    assert any(line.endswith("\tthe cat\\r\\nsleeps\\there") for line in lines)


def test_cli_build_search_add_delete(tmp_path, capsys):
    from sentsim.cli import main

    model = tmp_path / "model"
    toy_encoder().save_pretrained(model)
    docs = tmp_path / "docs.jsonl"
    docs.write_text(
        "".join(json.dumps({"id": i, "text": t, **m}) + "\n" for i, t, m in zip(IDS, TEXTS, META, strict=True))
    )
    folder = str(tmp_path / "idx")
    assert (
        main(["index", "build", "--model", str(model), "--docs", str(docs), "--output", folder, "--no-progress"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["documents"] == len(TEXTS)
    assert main(["search", folder, "the cat sleeps", "-k", "3", "--filter", "topic=rain", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["hits"]) == 3 and all(h["metadata"]["topic"] == "rain" for h in result["hits"])
    assert main(["search", folder, "the cat sleeps", "-k", "2", "--where", '{"n": {"lt": 2}}']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "# the cat sleeps" and {line.split("\t")[1] for line in lines[1:]} == {"d0", "d1"}
    assert main(["index", "delete", folder, "--ids", "d0"]) == 0
    assert json.loads(capsys.readouterr().out) == {"index": folder, "deleted": 1, "documents": len(TEXTS) - 1}
    extra = tmp_path / "extra.txt"
    extra.write_text("one more cat text\n")
    assert main(["index", "add", folder, "--docs", str(extra), "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["documents"] == len(TEXTS)
    assert main(["index", "build", "--model", str(model), "--docs", str(docs), "--output", folder]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert (
        main(
            [
                "index",
                "build",
                "--model",
                str(model),
                "--docs",
                str(docs),
                "--output",
                folder,
                "--overwrite",
                "--no-progress",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["documents"] == len(TEXTS)
    assert main(["search", folder, "x", "--filter", "colour=red", "--json"]) == 0  # a key no document has
    assert json.loads(capsys.readouterr().out)["hits"] == []
    assert main(["search", folder, "the cat sleeps", "-k", "2", "--device", "cpu", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["hits"]) == 2
    assert main(["search", folder, "x", "--device", "gpu"]) == 2
    assert "unknown device 'gpu'; expected cpu, cuda, cuda:N or mps" in capsys.readouterr().err
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.md").write_text("years of notes")
    build = ["index", "build", "--model", str(model), "--docs", str(docs), "--no-progress", "--overwrite"]
    assert main(build + ["--output", str(mine)]) == 2  # --overwrite replaces an index, not any folder
    assert "holds files that are not an index; --overwrite replaces an index only" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["notes.md"]


# ------------------------------------------------- probe fixes (each failed before its fix)
LONG_WORDS = [word for texts in TOPICS.values() for text in texts for word in text.split()]


def test_chunks_cover_a_document_longer_than_the_model_reads(encoder, tmp_path):
    text = " ".join(LONG_WORDS * 4) + " the cat sleeps"  # ~200 tokens; the model reads 16
    chunks = chunk_text(text, encoder.tower.tokenizer.tokenizer, chunk_size=8, overlap=2)
    assert chunks[-1].end == len(text) and len(chunks) > 20
    index = DocumentIndex.create(tmp_path / "long", encoder, chunk_size=8, chunk_overlap=2)
    index.add([text], ids=["long"])
    assert index.backend.size == len(chunks)
    assert max(hit.end for hit in index.search("the cat sleeps", k=100)) == len(text)
    index.close()
    with pytest.raises(ValueError, match="chunk_size 15 is larger than the model reads: max_seq_length 16 less 2"):
        DocumentIndex.create(tmp_path / "too-long", encoder, chunk_size=15)
    assert not (tmp_path / "too-long" / "manifest.json").exists()


def test_the_default_overlap_fits_small_chunks(encoder, tmp_path):
    index = DocumentIndex.create(tmp_path / "small", encoder, chunk_size=8)  # the default 32 would not fit
    assert (index.manifest["chunk_size"], index.manifest["chunk_overlap"]) == (8, 2)
    index.close()
    with pytest.raises(ValueError, match="need 0 <= chunk_overlap < chunk_size, got 8 and 8"):
        DocumentIndex.create(tmp_path / "explicit", encoder, chunk_size=8, chunk_overlap=8)
    with pytest.raises(ValueError, match="chunk_size must be an int >= 1, got 0"):  # not about an overlap
        DocumentIndex.create(tmp_path / "zero", encoder, chunk_size=0)


def test_two_threads_adding_one_id_store_it_once(index, encoder, monkeypatch):
    barrier, original = threading.Barrier(2), encoder.encode

    def encode(texts, **kwargs):
        barrier.wait(timeout=10)  # both threads have passed the early "already exists" check
        return original(texts, **kwargs)

    monkeypatch.setattr(encoder, "encode", encode)
    outcomes = []

    def add(text):
        try:
            outcomes.append(index.add([text], ids=["same"]))
        except ValueError as error:
            outcomes.append(str(error))

    threads = [threading.Thread(target=add, args=(text,)) for text in ("the cat fell", "she plays rain")]  # new texts
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    monkeypatch.undo()
    assert sorted(map(str, outcomes)) == sorted(
        ["['same']", "document id(s) ['same'] already exist; use upsert to replace them"]
    )
    assert len(index) == len(TEXTS) + 1 and index.backend.size == index.store.count("chunks") == len(TEXTS) + 1
    hit = next(h for h in index.search("the cat fell", k=100) if h.id == "same")
    assert hit.text == index.get("same")[0]


def test_two_handles_on_one_index_see_each_others_writes(index, tmp_path):
    index.close()
    folder = tmp_path / "index"
    a, b = DocumentIndex.open(folder, toy_encoder()), DocumentIndex.open(folder, toy_encoder())
    a.upsert(["she plays piano"], ids=["d0"])  # a new text for a cat document
    b.add(["a rainy day"], ids=["new"])  # b had not seen a's write
    assert b.get("d0")[0] == "she plays piano"
    assert {h.id: h.text for h in b.search("she plays piano", k=100)}["d0"] == "she plays piano"
    a.add(["the market fell"], ids=["from-a"])
    assert "from-a" in {h.id for h in b.search("the market fell", k=100)}  # b reloads before searching
    a.close()
    b.close()
    reopened = DocumentIndex.open(folder, toy_encoder())
    assert reopened.backend.size == reopened.store.count("chunks") == len(reopened) == len(TEXTS) + 2
    hits = {h.id: h.text for h in reopened.search("she plays piano", k=100)}
    assert set(hits) == set(IDS) | {"new", "from-a"} and hits["d0"] == "she plays piano"
    reopened.close()


def test_writers_on_one_folder_queue_on_the_lock_file_not_on_sqlite(index, tmp_path, monkeypatch):
    """A write holds SQLite's write lock only once it holds index.lock: a slow save (a large index)
    makes the other writers wait, instead of failing with 'database is locked' after SQLite's timeout."""
    import threading
    import time

    from sentsim.search.backends import VectorBackend

    index.close()
    folder = tmp_path / "index"
    handles = [DocumentIndex.open(folder, toy_encoder()) for _ in range(3)]
    for handle in handles:
        handle.store.db.execute("PRAGMA busy_timeout = 1000")  # SQLite gives up after 1 s ...
    real_save = VectorBackend.save

    def slow_save(self, path):
        time.sleep(1.5)  # ... while one save takes longer
        real_save(self, path)

    monkeypatch.setattr(VectorBackend, "save", slow_save)
    errors = []

    def write(handle, number):
        try:
            handle.add([f"text number {number}"], ids=[f"t{number}"])
        except Exception as error:  # noqa: BLE001 - collected for the assertion
            errors.append(error)

    threads = [threading.Thread(target=write, args=(handle, n)) for n, handle in enumerate(handles)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    monkeypatch.setattr(VectorBackend, "save", real_save)
    for handle in handles:
        handle.close()
    reopened = DocumentIndex.open(folder, toy_encoder())
    assert {f"t{n}" for n in range(3)} <= {h.id for h in reopened.search("text number", k=100)}
    assert reopened.backend.size == reopened.store.count("chunks") == len(TEXTS) + 3
    reopened.close()


def test_search_options_are_checked_against_the_index_another_handle_built(tmp_path):
    first = DocumentIndex.create(tmp_path / "hnsw", toy_encoder(), backend="hnsw")  # empty: no FAISS index yet
    second = DocumentIndex.open(tmp_path / "hnsw", toy_encoder())
    first.add(TEXTS, ids=IDS)  # builds the HNSW index
    with pytest.raises(ValueError, match="nprobe applies to IVF indexes; this index is 'HNSW32"):
        second.search(TEXTS[0], k=2, nprobe=4)
    assert second.search(TEXTS[0], k=1, ef_search=16)[0].id == IDS[0]
    first.close()
    second.close()


def test_a_different_tokenizer_is_a_different_model(index, tmp_path):
    from tokenizers import normalizers

    index.close()
    other = toy_encoder()
    other.tower.tokenizer.tokenizer.normalizer = normalizers.Lowercase()  # same weights
    with pytest.raises(ModelMismatchError, match="differs in tokenizer_sha256"):
        DocumentIndex.open(tmp_path / "index", other)
    manifest_path = tmp_path / "index" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["model"]["tokenizer_sha256"]  # written by an earlier sentsim
    manifest_path.write_text(json.dumps(manifest))
    DocumentIndex.open(tmp_path / "index", toy_encoder()).close()


def test_open_applies_the_recorded_max_seq_length_and_absolute_model_path(tmp_path, monkeypatch, capsys):
    from sentsim.cli import main

    toy_encoder().save_pretrained(tmp_path / "model")
    (tmp_path / "docs.txt").write_text("\n".join(TEXTS) + "\n")
    monkeypatch.chdir(tmp_path)
    build = ["index", "build", "--model", "model", "--docs", "docs.txt", "--output", "idx", "--no-progress"]
    assert main([*build, "--max-seq-length", "8"]) == 0
    capsys.readouterr()
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["model"]["name"] == str((tmp_path / "model").resolve()) and manifest["model"]["max_seq_length"] == 8
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["search", "../idx", "the cat sleeps", "-k", "2", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["hits"]) == 2
    with DocumentIndex.open("../idx") as index:
        assert index.encoder.max_seq_length == 8 and len(index.search("a kitten naps", k=3)) == 3


def test_a_failed_faiss_write_after_commit_keeps_the_change(index, tmp_path, monkeypatch, caplog):
    import faiss

    def fail(*args):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(faiss, "write_index", fail)
        assert index.add(["a brand new text"], ids=["new"]) == ["new"]
        assert index.delete(["d1"]) == 1
    assert "the change is saved" in caplog.text and "rebuilt from the stored vectors on next open" in caplog.text
    assert "new" in {h.id for h in index.search("a brand new text", k=100)}
    index.close()
    reopened = DocumentIndex.open(tmp_path / "index", toy_encoder())
    assert reopened.backend.size == reopened.store.count("chunks") == len(TEXTS)
    ids = {h.id for h in reopened.search("a brand new text", k=100)}
    assert "new" in ids and "d1" not in ids
    reopened.close()


def test_a_key_no_document_has_is_a_missing_key(encoder, tmp_path):
    index = DocumentIndex.create(tmp_path / "keys", encoder, backend="flat")
    assert index.search("cats", filter={"colour": "red"}) == []  # empty index
    index.add(TEXTS[:3], ids=["a", "b", "c"], metadata=[{"colour": "red"}, {}, {}])
    assert {h.id for h in index.search("cats", filter={"colour": "red"})} == {"a"}
    index.delete(["a"])  # the last document with the key
    assert index.search("cats", filter={"colour": "red"}) == []
    assert index.search("cats", filter={"colour": {"gte": 1}}) == []
    assert {h.id for h in index.search("cats", filter={"colour": {"ne": "red"}})} == {"b", "c"}
    assert {h.id for h in index.search("cats", filter={"colour": None})} == {"b", "c"}
    index.close()


def test_boundary_checks(index, tmp_path):
    for factory in ("IDMap,Flat", "IVF0,Flat"):
        with pytest.raises(ValueError, match=f"invalid FAISS factory string '{factory}'"):
            DocumentIndex.create(tmp_path / "bad", toy_encoder(), backend=factory)
    assert not (tmp_path / "bad" / "manifest.json").exists()
    metadata = {"n": np.int64(3), "score": np.float32(0.5), "ok": np.bool_(True), "tags": np.array([1, 2])}
    index.add(["a numpy text"], ids=["np"], metadata=[metadata])
    assert index.get("np")[1] == {"n": 3, "score": 0.5, "ok": True, "tags": [1, 2]}
    assert [h.id for h in index.search("x", filter={"n": {"gte": 3}, "ok": True})] == ["np"]
    with pytest.raises(TypeError, match=r"metadata\[0\]\['when'\] is a date"):
        index.add(["a"], ids=["x"], metadata=[{"when": __import__("datetime").date(2021, 1, 1)}])
    for texts in ([""], ["ok", "   "]):
        with pytest.raises(ValueError, match=rf"texts\[{len(texts) - 1}\] is empty"):
            index.add(texts)
    with pytest.raises(TypeError, match="document ids are str, got 5"):
        index.get(5)
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(NotADirectoryError, match="a-file is a file, not an index folder"):
        DocumentIndex.open(tmp_path / "a-file", toy_encoder())


def test_cli_where_must_be_an_object_and_filters_must_not_overlap_it(index, tmp_path, capsys):
    from sentsim.cli import main

    index.close()
    folder = str(tmp_path / "index")
    for where in ("[1]", '"a"', "{bad"):
        assert main(["search", folder, "x", "--where", where]) == 2
        assert "--where" in capsys.readouterr().err
    assert main(["search", folder, "x", "--where", '{"n": {"gte": 3}}', "--filter", "n=4"]) == 2
    assert "the key 'n' already has a condition" in capsys.readouterr().err


def test_read_documents_ids_and_csv_types(tmp_path):
    from sentsim.data.documents import read_documents

    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text('{"id": "a", "text": "x"}\n\n{"text": "y"}\n')
    with pytest.raises(ValueError, match=r"mixed.jsonl:3: no id, though other documents have one"):
        read_documents(mixed)
    clash = tmp_path / "clash.jsonl"
    clash.write_text('{"id": 7, "text": "x"}\n{"id": "7", "text": "y"}\n')
    with pytest.raises(ValueError, match=r"clash.jsonl:2: id '7' is the same id as 7 at .*clash.jsonl:1"):
        read_documents(clash)
    ok = tmp_path / "ok.jsonl"
    ok.write_text('{"id": 7, "text": "x"}\n{"id": "8", "text": "y"}\n')
    assert read_documents(ok).ids == ["7", "8"]
    table = tmp_path / "docs.csv"
    table.write_text(
        "id,text,year,score,zip,lang,code\n1,a,2021,0.5,02134,en,1.10\n2,b,,1,10001,,2\n3,c,2019,2.5,,de,1E5\n"
    )
    documents = read_documents(table)
    assert documents.ids == ["1", "2", "3"]
    assert documents.metadata == [  # numbers only where every cell reads back as the same text
        {"year": 2021, "score": 0.5, "zip": "02134", "lang": "en", "code": "1.10"},
        {"score": 1.0, "zip": "10001", "code": "2"},
        {"year": 2019, "score": 2.5, "lang": "de", "code": "1E5"},
    ]


def test_operations_that_change_nothing_do_not_move_the_generation(index):
    generation = index.store.generation
    index.delete(["no-such-id"])
    index.upsert([TEXTS[0]], ids=[IDS[0]], metadata=[META[0]])  # the same text and metadata
    assert index.store.generation == generation
    index.upsert([TEXTS[0]], ids=[IDS[0]], metadata=[{"new": 1}])
    assert index.store.generation == generation + 1 and index.get(IDS[0])[1] == {"new": 1}


def test_a_document_chunked_otherwise_before_is_chunked_again_on_upsert(tmp_path):
    long_text = " ".join(f"word{i}" for i in range(120)) + " the hidden treasure"
    index = DocumentIndex.create(tmp_path / "chunks", toy_encoder(), backend="flat", chunk_size=8)
    index.add([long_text], ids=["long"])
    spans = index.store.chunk_spans("long")
    with index.store.transaction():  # as an older sentsim left it: only the first chunk
        for vector_id in index.store.db.execute("SELECT vector_id FROM chunks WHERE doc_id = 'long'").fetchall()[1:]:
            index.store.db.execute("DELETE FROM chunks WHERE vector_id = ?", vector_id)
    index.compact()
    index.upsert([long_text], ids=["long"])  # same text, other chunks: indexed again
    assert index.store.chunk_spans("long") == spans and index.backend.size == len(spans)
    assert any("treasure" in hit.text for hit in index.search("the hidden treasure", k=len(spans)))
    index.close()


def test_train_tokenizer_prints_nothing(capfd):
    from sentsim import train_tokenizer

    train_tokenizer(["the cat sat on the mat"] * 3, vocab_size=50)
    assert capfd.readouterr().out == ""
    with pytest.raises(TypeError, match=r"texts\[2\] is float \(nan\); expected str"):
        train_tokenizer(pd.Series(["a cat", "a dog", float("nan")]), vocab_size=50)
    batches = ([text] * 2 for text in ["the cat sat", "on the mat"])  # batches of texts, as tokenizers allows
    assert train_tokenizer(batches, vocab_size=50).get_vocab_size() > 5
    with pytest.raises(TypeError, match=r"texts\[0\]\[1\] is NoneType"):
        train_tokenizer([["a cat", None]], vocab_size=50)


def test_a_bad_filter_is_refused_on_an_empty_index_too(encoder, tmp_path):
    index = DocumentIndex.create(tmp_path / "empty", encoder, backend="flat")
    with pytest.raises(ValueError, match="'gte' needs a number"):
        index.search("the cat", filter={"year": {"gte": "2020"}})
    index.close()


def test_an_index_whose_model_moved_opens_with_that_model_given(tmp_path, capsys):
    from sentsim.cli import main

    model, moved = tmp_path / "model", tmp_path / "moved-model"
    toy_encoder().save_pretrained(model)
    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(TEXTS) + "\n")
    folder = str(tmp_path / "idx")
    build = ["index", "build", "--model", str(model), "--docs", str(docs), "--output", folder, "--no-progress"]
    assert main(build) == 0
    assert main(["search", folder, "the cat sleeps", "-k", "2", "--json"]) == 0
    before = capsys.readouterr().out.splitlines()[-1]
    model.rename(moved)
    assert main(["search", folder, "the cat sleeps", "-k", "2"]) == 2
    assert "was built with this model; if its folder moved, pass the model" in capsys.readouterr().err
    assert main(["search", folder, "the cat", "--model", str(tmp_path / "typo")]) == 2  # the given model is missing
    assert "was built with this model" not in capsys.readouterr().err
    from sentsim.search.index import ModelMismatchError  # noqa: F401 (still importable from here)

    assert main(["search", folder, "the cat sleeps", "-k", "2", "--json", "--model", str(moved)]) == 0
    assert capsys.readouterr().out.strip() == before  # the same hits
    first_hit = json.loads(before)["hits"][0]["id"]
    assert main(["index", "delete", folder, "--ids", first_hit, "--model", str(moved)]) == 0
    assert json.loads(capsys.readouterr().out)["deleted"] == 1
    other = tmp_path / "other-model"
    toy_encoder(seed=1).save_pretrained(other)
    assert main(["search", folder, "the cat", "--model", str(other)]) == 2  # another model is refused
    assert "was built with model" in capsys.readouterr().err


def test_chunk_overlap_without_chunk_size_is_refused(encoder, tmp_path, capsys):
    with pytest.raises(ValueError, match=r"chunk_overlap \(4\) needs chunk_size"):
        DocumentIndex.create(tmp_path / "idx", encoder, chunk_overlap=4)
    assert not (tmp_path / "idx" / "manifest.json").exists()


def test_cli_documents_on_stdin_as_json_lines_or_text_lines(tmp_path, capsys, monkeypatch):
    from sentsim.cli import main

    model = tmp_path / "model"
    toy_encoder().save_pretrained(model)
    records = "".join(json.dumps({"id": i, "text": t, **m}) + "\n" for i, t, m in zip(IDS, TEXTS, META, strict=True))
    monkeypatch.setattr("sys.stdin", io.StringIO("\n" + records))  # a blank first line
    folder = str(tmp_path / "idx")
    assert main(["index", "build", "--model", str(model), "--docs", "-", "--output", folder, "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["documents"] == len(TEXTS)
    with DocumentIndex.open(folder) as index:
        assert index.get("d1") == (TEXTS[1], META[1])
    monkeypatch.setattr("sys.stdin", io.StringIO("a plain text: {not json}\none more cat text\n"))
    assert main(["index", "add", folder, "--docs", "-", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["documents"] == len(TEXTS) + 2
    pretty = json.dumps([{"id": "p", "text": "a cat"}], indent=2)  # an array, pretty-printed: not JSON Lines
    monkeypatch.setattr("sys.stdin", io.StringIO(pretty))
    assert main(["index", "add", folder, "--docs", "-", "--no-progress"]) == 2
    assert "starts like JSON but is not JSON Lines (one object a line); e.g. pipe through `jq -c" in (
        capsys.readouterr().err
    )
    monkeypatch.setattr("sys.stdin", io.StringIO('{"id": "x", "text": "ok"}\n{"id": "y"}\n'))
    assert main(["index", "add", folder, "--docs", "-", "--no-progress"]) == 2
    assert "standard input" in capsys.readouterr().err


def test_cli_compact_drops_tombstones(tmp_path, capsys):
    from sentsim.cli import main

    model = tmp_path / "model"
    toy_encoder().save_pretrained(model)
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in zip(IDS, TEXTS, strict=True)))
    folder = str(tmp_path / "idx")
    build = ["index", "build", "--model", str(model), "--docs", str(docs), "--output", folder, "--no-progress"]
    assert main([*build, "--backend", "hnsw"]) == 0
    assert main(["index", "delete", folder, "--ids", *IDS[:3]]) == 0
    with DocumentIndex.open(folder) as index:
        assert len(index.backend.tombstones) == 3  # HNSW cannot remove: deleted vectors are masked
    capsys.readouterr()
    assert main(["index", "compact", folder]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["documents"], summary["chunks"]) == (len(TEXTS) - 3, len(TEXTS) - 3)
    with DocumentIndex.open(folder) as index:
        assert not index.backend.tombstones and {h.id for h in index.search("cat", k=50)} == set(IDS[3:])


def test_an_index_records_where_its_encoder_was_loaded_from(tmp_path):
    from sentsim import SentenceEncoder

    toy_encoder().save_pretrained(tmp_path / "model")
    encoder = SentenceEncoder.from_pretrained(tmp_path / "model")
    with DocumentIndex.create(tmp_path / "idx", encoder) as index:  # an encoder object, not a name
        index.add(TEXTS[:3], ids=IDS[:3])
        assert index.manifest["model"]["name"] == str((tmp_path / "model").resolve())
    with DocumentIndex.open(tmp_path / "idx") as index:  # reopens with no encoder given
        assert index.search(TEXTS[0], k=1)[0].id == IDS[0]
    with torch.no_grad():
        encoder.tower.model.embeddings.word_embeddings.weight.add_(0.1)  # fine-tuned after loading
    with DocumentIndex.create(tmp_path / "tuned", encoder) as index:
        index.add(TEXTS[:3], ids=IDS[:3])
    with pytest.raises(ModelMismatchError, match="now differs in weights_sha256 .*pass the encoder the index was"):
        DocumentIndex.open(tmp_path / "tuned")
    DocumentIndex.open(tmp_path / "tuned", encoder).close()


def test_the_recorded_model_is_absolute_and_follows_save_pretrained(tmp_path, monkeypatch):
    from sentsim import SentenceEncoder

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    toy_encoder().save_pretrained(tmp_path / "a" / "model")
    toy_encoder(seed=1).save_pretrained(tmp_path / "b" / "model")  # same relative name, another model
    monkeypatch.chdir(tmp_path / "a")
    encoder = SentenceEncoder.from_pretrained("model")  # relative to a/
    assert encoder.name_or_path == str((tmp_path / "a" / "model").resolve())
    monkeypatch.chdir(tmp_path / "b")
    with DocumentIndex.create(tmp_path / "idx", encoder) as index:  # created from b/: still a/model
        assert index.manifest["model"]["name"] == str((tmp_path / "a" / "model").resolve())
    encoder.save_pretrained(tmp_path / "copy")
    assert encoder.name_or_path == str((tmp_path / "copy").resolve())


def test_a_newer_manifest_format_is_reported_before_its_fields(encoder, tmp_path):
    from sentsim.search.manifest import read_manifest

    DocumentIndex.create(tmp_path / "idx", encoder).close()
    path = tmp_path / "idx" / "manifest.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps(manifest | {"format": 3, "chunk_overlap": None}))  # a field a newer format changed
    with pytest.raises(IndexCorruptedError, match="index format 3 is newer than this sentsim reads"):
        read_manifest(tmp_path / "idx")
    path.write_text(json.dumps(manifest | {"format": "2"}))
    with pytest.raises(IndexCorruptedError, match="'format' must be an int, got '2'"):
        read_manifest(tmp_path / "idx")


def test_open_puts_back_an_index_that_a_crash_left_between_two_renames(encoder, tmp_path):
    with DocumentIndex.create(tmp_path / "built", encoder) as index:
        index.add(TEXTS[:3], ids=IDS[:3])
    (tmp_path / "built").rename(tmp_path / ".idx.abcd1234.ready")  # build --overwrite killed: no idx/ yet
    with DocumentIndex.open(tmp_path / "idx", encoder) as index:
        assert len(index) == 3 and index.search(TEXTS[0], k=1)[0].id == IDS[0]


def test_an_interrupt_inside_a_write_transaction_releases_the_database(index, monkeypatch):
    from sentsim.search.store import _Transaction

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(_Transaction, "bump", interrupted)  # Ctrl-C between the changes and the commit
    with pytest.raises(KeyboardInterrupt):
        index.delete([IDS[0]])
    monkeypatch.undo()
    assert not index.store.db.in_transaction  # rolled back: other handles and processes can write
    assert index.delete([IDS[0]]) == 1 and index.get(IDS[0]) is None
    with index._lock.writing():  # the handle's own write lock was released too
        pass


def test_a_file_saved_by_a_lost_transaction_is_not_taken_for_a_later_write(encoder, tmp_path, monkeypatch):
    index = DocumentIndex.create(tmp_path / "hnsw", encoder, backend="hnsw")
    index.add(TEXTS, ids=IDS, metadata=META)
    manifest_path = tmp_path / "hnsw" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    # compact() killed after saving its files (generation + 1) but before its commit: the database stays behind
    manifest_path.write_text(json.dumps(manifest | {"generation": manifest["generation"] + 1}))
    index.close()
    writer = DocumentIndex.open(tmp_path / "hnsw", encoder)  # rebuilds: generations differ

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    manifest_path.write_text(json.dumps(manifest | {"generation": manifest["generation"] + 1}))
    with monkeypatch.context() as patch:  # the next write commits generation + 1 and cannot save its file
        patch.setattr(VectorBackend, "save", full_disk)
        writer.upsert(["a parrot talks all day"], ids=[IDS[0]])
    writer.close()
    with DocumentIndex.open(tmp_path / "hnsw", encoder) as reopened:  # same generation, older file: rebuilt
        assert reopened.search("a parrot talks all day", k=1)[0].id == IDS[0]
        assert reopened.get(IDS[0])[0] == "a parrot talks all day"


def test_reopening_with_the_recorded_model_passes_trust_remote_code_only_when_asked(tmp_path, monkeypatch, capsys):
    """A model that runs its own code (some Nomic, Jina models) is reloaded with trust_remote_code only
    on request: DocumentIndex.open(..., trust_remote_code=True) or --trust-remote-code."""
    from sentsim import SentenceEncoder
    from sentsim.cli import main

    toy_encoder().save_pretrained(tmp_path / "model")
    DocumentIndex.create(tmp_path / "idx", SentenceEncoder.from_pretrained(tmp_path / "model")).close()
    original, seen = SentenceEncoder.from_pretrained.__func__, []

    def recording(cls, *args, **kwargs):
        seen.append(kwargs.get("trust_remote_code", False))
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(SentenceEncoder, "from_pretrained", classmethod(recording))
    DocumentIndex.open(tmp_path / "idx").close()
    DocumentIndex.open(tmp_path / "idx", trust_remote_code=True).close()
    assert main(["search", str(tmp_path / "idx"), "a cat", "--trust-remote-code"]) == 0
    assert main(["index", "compact", str(tmp_path / "idx"), "--trust-remote-code"]) == 0
    DocumentIndex.create(tmp_path / "by-name", str(tmp_path / "model"), trust_remote_code=True).close()
    DocumentIndex.create(tmp_path / "by-name-2", str(tmp_path / "model")).close()
    assert seen == [False, True, True, True, True, False]
    with pytest.raises(TypeError, match="trust_remote_code"):
        DocumentIndex.open(tmp_path / "idx", trust_remote_code="yes")
