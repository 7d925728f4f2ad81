import sqlite3

import numpy as np
import pytest

from sentsim.search import DocumentIndex, IndexCorruptedError

from ..toy_task import toy_encoder
from .conftest import BOTH_STORES
from .corpus import IDS, META, TEXTS


@BOTH_STORES
def test_k_larger_than_corpus_and_no_minus_one(index):
    hits = index.search("the cat sleeps", k=100)
    assert len(hits) == len(TEXTS) and len({h.id for h in hits}) == len(TEXTS)


def test_an_index_folder_with_links_out_of_it_is_refused(encoder, tmp_path):

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
    assert reopened.store.backend.tombstones == set() and reopened.store.backend.size == len(TEXTS) - 2


@BOTH_STORES
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


@BOTH_STORES
def test_a_closed_index_says_so(index):
    index.close()
    index.close()  # twice is harmless
    for operation in (lambda: index.search("cat"), lambda: index.add(["x"]), lambda: len(index)):
        with pytest.raises(ValueError, match="is closed; open it again"):
            operation()


@BOTH_STORES
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
        with pytest.raises(ValueError if k == -1 else TypeError, match="k must be an int >= 1"):
            index.search_vectors(np.zeros((1, 32)), k)
    with pytest.raises(ValueError, match="by must be 'chunk' or 'document'"):
        index.search_vectors(np.zeros((1, 32)), 3, by="documents")
    assert len(index.search_vectors(np.ones((1, 32)), np.int64(2))[0]) == 2


def test_create_checks_its_settings(encoder, tmp_path):
    with pytest.raises(TypeError, match="chunk_size must be an int or None, got 4.5"):
        DocumentIndex.create(tmp_path / "a", encoder, chunk_size=4.5)
    with pytest.raises(ValueError, match="invalid FAISS factory string 'bogus'"):
        DocumentIndex.create(tmp_path / "b", encoder, backend="bogus")
    with pytest.raises(TypeError, match="backend must be a str"):
        DocumentIndex.create(tmp_path / "c", encoder, backend=None)
    assert not any((tmp_path / name / "manifest.json").exists() for name in "abc")


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
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(NotADirectoryError, match="a-file is a file, not an index folder"):
        DocumentIndex.open(tmp_path / "a-file", toy_encoder())


@BOTH_STORES
def test_every_entry_point_names_a_wrong_argument(make_index, index, encoder, tmp_path):
    folder = tmp_path / "index"
    for call, message in (
        (lambda: make_index(tmp_path / "new", None), "encoder must be a SentenceEncoder, or a model name"),
        (lambda: make_index(None, encoder), "folder must be a str or path, got NoneType"),
        (lambda: make_index(tmp_path / "new", encoder, model_name=5), "model_name must be a str"),
        (lambda: DocumentIndex.open(5), "folder must be a str or path, got int"),
        (lambda: DocumentIndex.open(folder, 5), "encoder must be a SentenceEncoder, or a model name"),
        (lambda: DocumentIndex.open(folder, encoder, repair="yes"), "repair must be True or False"),
        (lambda: index.add(["x"], metadata={"lang": "en"}), "metadata must be a list of dicts .* got dict"),
        (lambda: index.add(["x"], metadata=5), "metadata must be a list of dicts .* got int"),
        (lambda: index.upsert(TEXTS[:1], IDS[:1], batch_size="3"), "batch_size must be an int"),  # cached: no encode
        (lambda: index.upsert(TEXTS[:1], IDS[:1], show_progress="no"), "show_progress must be True, False or None"),
        (lambda: index.search_vectors("abc", 3), "vectors must be an array of numbers, got str"),
    ):
        with pytest.raises((TypeError, ValueError), match=message):
            call()
    assert not (tmp_path / "new").exists() and len(index) == len(TEXTS)
    with make_index(tmp_path / "named", encoder, model_name=tmp_path) as named:  # a path is a name
        assert named.manifest["model"]["name"] == str(tmp_path.resolve())


@BOTH_STORES
def test_ids_are_str_or_int_in_every_call(index):
    assert index.add(["a numbered text"], ids=[7]) == ["7"]  # stored as its digits: one id with "7"
    assert index.get(7) == index.get("7") == index.get(np.int64(7)) == ("a numbered text", {})
    assert index.upsert(["renumbered"], ids=[np.int64(7)]) == ["7"] and index.get("7")[0] == "renumbered"
    with pytest.raises(ValueError, match=r"duplicate ids in one call: \['8'\]"):
        index.add(["x", "y"], ids=[8, "8"])
    for bad, kind in (({"a": 1}, "dict"), ([1], "list"), (1.5, "float"), (True, "bool"), (None, "NoneType")):
        with pytest.raises(TypeError, match=rf"ids\[0\] is {kind} .*; ids are str or int"):
            index.add(["x"], ids=[bad])  # a dict was stored as its repr
        with pytest.raises(TypeError, match=rf"ids\[1\] is {kind}"):
            index.upsert(["x", "y"], ids=["ok", bad])
        with pytest.raises(TypeError, match=rf"ids\[0\] is {kind}"):
            index.delete([bad])
        with pytest.raises(TypeError, match=rf"doc_id is {kind}"):
            index.get(bad)
    assert index.delete([7]) == 1 and len(index) == len(TEXTS)


def test_operations_that_change_nothing_do_not_move_the_generation(index):
    generation = index.store.database.generation
    index.delete(["no-such-id"])
    index.upsert([TEXTS[0]], ids=[IDS[0]], metadata=[META[0]])  # the same text and metadata
    assert index.store.database.generation == generation
    index.upsert([TEXTS[0]], ids=[IDS[0]], metadata=[{"new": 1}])
    assert index.store.database.generation == generation + 1 and index.get(IDS[0])[1] == {"new": 1}


@BOTH_STORES
def test_a_write_whose_encoding_fails_changes_nothing(index, encoder, monkeypatch):
    before = index.search("the cat sleeps", k=100)

    def failing(texts, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(encoder, "encode", failing)
    with pytest.raises(RuntimeError, match="out of memory"):
        index.upsert(["a brand new text", "another new text"], ids=["d0", "new"])
    monkeypatch.undo()
    assert index.get("d0") == (TEXTS[0], META[0]) and index.get("new") is None
    assert index.search("the cat sleeps", k=100) == before and len(index) == len(TEXTS)


@BOTH_STORES
def test_given_embeddings_are_stored_and_searched_as_encoded_ones(make_index, encoder, tmp_path, monkeypatch):
    reference = make_index(tmp_path / "encoded", encoder, backend="flat")
    reference.add(TEXTS, ids=IDS, metadata=META)
    vectors = encoder.encode(TEXTS, prompt=reference.prompts["document"])
    given = make_index(tmp_path / "given", encoder, backend="flat")
    monkeypatch.setattr(encoder, "encode", lambda *a, **k: pytest.fail("documents with embeddings are encoded"))
    given.add(TEXTS, ids=IDS, metadata=META, embeddings=vectors)
    monkeypatch.undo()
    query = TEXTS[3][:20]
    assert [(h.id, round(h.score, 5)) for h in given.search(query, k=5)] == [
        (h.id, round(h.score, 5)) for h in reference.search(query, k=5)
    ]
    given.upsert([TEXTS[0]], ids=[IDS[0]], metadata=[{"new": 1}], embeddings=vectors[:1])
    assert given.get(IDS[0])[1] == {"new": 1} and len(given) == len(TEXTS)
    with pytest.raises(ValueError, match=r"embeddings must have shape \(2, \d+\): one row per document, got \(1, "):
        given.add(["x", "y"], ids=["n1", "n2"], embeddings=vectors[:1])
    with pytest.raises(ValueError, match=r"embeddings\[0\] holds NaN"):
        given.add(["x"], ids=["n1"], embeddings=np.full((1, vectors.shape[1]), np.nan))
    chunked = make_index(tmp_path / "chunked", encoder, backend="flat", chunk_size=8, chunk_overlap=2)
    with pytest.raises(ValueError, match="splits documents into chunks of 8 tokens"):
        chunked.add(TEXTS[:1], ids=IDS[:1], embeddings=vectors[:1])
    assert len(given) == len(TEXTS) and len(chunked) == 0
