import json
import threading
import time

from sentsim.search import DocumentIndex
from sentsim.search.backends import VectorBackend

from ..toy_task import toy_encoder
from .conftest import BOTH_STORES
from .corpus import IDS, META, TEXTS


def test_a_compaction_reaches_other_handles(encoder, tmp_path):
    first = DocumentIndex.create(tmp_path / "hnsw", encoder, backend="hnsw")
    first.add(TEXTS, ids=IDS, metadata=META)
    second = DocumentIndex.open(tmp_path / "hnsw", encoder)
    first.delete(["d0", "d1"])
    second.search("the cat sleeps")  # catches up: its index now holds the tombstones too
    assert len(second.store.backend.tombstones) == 2
    first.compact()
    second.add(["a new document"], ids=["new"])  # loads the compacted file before writing
    assert second.store.backend.tombstones == set()
    manifest = json.loads((tmp_path / "hnsw" / "manifest.json").read_text())
    assert manifest["tombstones"] == [] and manifest["generation"] == second.store.database.generation
    assert {h.id for h in second.search("the cat sleeps", k=100)} == set(IDS[2:]) | {"new"}
    generation = first.store.database.generation
    first.compact()  # nothing to drop: the generation stays, other handles keep their index
    assert first.store.database.generation == generation and not second.store.mirror.stale
    first.close()
    second.close()


@BOTH_STORES
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


@BOTH_STORES
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
    hits = index.search("the cat fell", k=100)  # each stored chunk once
    assert len(index) == len(hits) == index.store.count_chunks() == len(TEXTS) + 1
    hit = next(h for h in hits if h.id == "same")
    assert hit.text == index.get("same")[0]


@BOTH_STORES
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
    found = reopened.search("she plays piano", k=100)
    assert len(found) == reopened.store.count_chunks() == len(reopened) == len(TEXTS) + 2
    hits = {h.id: h.text for h in found}
    assert set(hits) == set(IDS) | {"new", "from-a"} and hits["d0"] == "she plays piano"
    reopened.close()


def test_writers_on_one_folder_queue_on_the_lock_file_not_on_sqlite(index, tmp_path, monkeypatch):
    """A write holds SQLite's write lock only once it holds index.lock: a slow save (a large index)
    makes the other writers wait, instead of failing with 'database is locked' after SQLite's timeout."""
    import threading

    index.close()
    folder = tmp_path / "index"
    handles = [DocumentIndex.open(folder, toy_encoder()) for _ in range(3)]
    for handle in handles:
        handle.store.database.db.execute("PRAGMA busy_timeout = 1000")  # SQLite gives up after 1 s ...
    real_save = VectorBackend.save

    def slow_save(self, path, stamp):
        time.sleep(1.5)  # ... while one save takes longer
        real_save(self, path, stamp)

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
    assert reopened.store.backend.size == reopened.store.count_chunks() == len(TEXTS) + 3
    reopened.close()
