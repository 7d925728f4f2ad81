import json
import os
import signal
import subprocess
import sys
import time

import pytest

from sentsim.search import DocumentIndex, IndexCorruptedError
from sentsim.search.backends import VectorBackend

from ..toy_task import toy_encoder
from .corpus import IDS, META, TEXTS


def test_a_compaction_that_cannot_save_raises_and_keeps_the_generation(encoder, tmp_path, monkeypatch):
    index = DocumentIndex.create(tmp_path / "hnsw", encoder, backend="hnsw")
    index.add(TEXTS, ids=IDS, metadata=META)
    index.delete(["d0"])
    generation = index.store.database.generation

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(VectorBackend, "save", full_disk)
        with pytest.raises(OSError, match="No space left"):
            index.compact()
    assert index.store.database.generation == generation
    assert json.loads((tmp_path / "hnsw" / "manifest.json").read_text())["generation"] == generation
    assert {h.id for h in index.search("the cat sleeps", k=100)} == set(IDS[1:])
    reopened = DocumentIndex.open(tmp_path / "hnsw", encoder)
    assert {h.id for h in reopened.search("the cat sleeps", k=100)} == set(IDS[1:])
    index.close()
    reopened.close()


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
    stamped = faiss_file.read_bytes()
    faiss_file.write_bytes(stamped[: stamped.rindex(b"\nsentsim-state:")])  # FAISS reads it; its stamp is gone
    with pytest.raises(IndexCorruptedError, match="index.faiss has no sentsim stamp"):
        DocumentIndex.open(folder, toy_encoder())
    DocumentIndex.open(folder, toy_encoder(), repair=True).close()
    assert faiss_file.read_bytes() == stamped
    manifest = json.loads((folder / "manifest.json").read_text())
    for broken, message in (
        ([], r"manifest.json: expected a JSON object \(index\), got list"),
        ({"format": manifest["format"]}, "'model' is missing or has the wrong type"),
        (manifest | {"keywords": None}, "'keywords' must name a tokenizer"),
        (manifest | {"keywords": {"tokenizer": "icu"}}, "'keywords' must name a tokenizer"),
        (manifest | {"chunk_size": "128"}, "'chunk_size' is missing or has the wrong type"),
        (manifest | {"model": {"name": "x"}}, "model 'dim' is missing"),
        (manifest | {"tombstones": 3}, "'tombstones' must be a list"),
        ({k: v for k, v in manifest.items() if k != "next_vector_id"}, "'next_vector_id' ints"),
        (manifest | {"metric": "bogus"}, "unknown metric 'bogus'"),
    ):
        (folder / "manifest.json").write_text(json.dumps(broken))
        with pytest.raises(IndexCorruptedError, match=message):
            DocumentIndex.open(folder, toy_encoder())
    for text in ("{not json", "[" * 100_000 + "]" * 100_000, '{"generation": 1' + "0" * 5000 + "}"):
        (folder / "manifest.json").write_text(text)
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
    assert reopened.store.backend.size == reopened.store.count_chunks() == len(TEXTS)
    assert "extra" not in {h.id for h in reopened.search("cats", k=100)}
    reopened.close()


def test_a_failed_write_whose_repair_fails_is_repaired_before_the_next_use(index, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise MemoryError("simulated")

    with monkeypatch.context() as patch:
        patch.setattr(VectorBackend, "add", fail)  # the write fails, and so does the rebuild after it
        with pytest.raises(MemoryError):
            index.add(["a new document"], ids=["new"])
    assert index.store.mirror.broken and index.store.backend is None
    assert len(index.search("the cat sleeps", k=100)) == len(TEXTS)  # rebuilt before searching
    with monkeypatch.context() as patch:
        patch.setattr(VectorBackend, "add", fail)  # the write fails, and so does the rebuild after it
        with pytest.raises(MemoryError):
            index.add(["a new document"], ids=["new"])
    index.add(["a new document"], ids=["new"])  # rebuilt before writing: the old vectors are kept
    assert index.store.backend.size == len(TEXTS) + 1
    index.close()
    reopened = DocumentIndex.open(tmp_path / "index", toy_encoder())
    assert reopened.store.backend.size == reopened.store.count_chunks() == len(TEXTS) + 1
    assert len(reopened.search("the cat sleeps", k=100)) == len(TEXTS) + 1
    reopened.close()


def test_a_failed_compaction_is_repaired_before_the_next_use(index, monkeypatch):
    def fail(*args, **kwargs):
        raise MemoryError("simulated")

    with monkeypatch.context() as patch:
        patch.setattr(VectorBackend, "add", fail)
        with pytest.raises(MemoryError):
            index.compact()
    assert index.store.mirror.broken
    assert len(index.search("the cat sleeps", k=100)) == len(TEXTS)
    assert not index.store.mirror.broken and index.store.backend.size == len(TEXTS)


def test_corrupted_database(index, tmp_path):
    index.close()
    (tmp_path / "index" / "documents.sqlite").write_bytes(b"garbage" * 100)
    for extra in ("documents.sqlite-wal", "documents.sqlite-shm"):
        (tmp_path / "index" / extra).unlink(missing_ok=True)
    with pytest.raises(IndexCorruptedError, match="documents.sqlite"):
        DocumentIndex.open(tmp_path / "index", toy_encoder())


def _files(folder):
    return {path.name: path.read_bytes() for path in folder.iterdir()}


@pytest.mark.parametrize(
    ("damage", "message"),
    [("missing", "documents.sqlite is missing"), ("empty", "documents.sqlite is empty"), ("foreign", "lacks the")],
)
def test_an_index_whose_database_is_gone_is_corrupted_and_left_as_it_is(index, tmp_path, damage, message):
    import sqlite3

    index.close()
    folder = tmp_path / "index"
    (folder / "documents.sqlite").unlink()
    if damage == "empty":
        (folder / "documents.sqlite").write_bytes(b"")
    if damage == "foreign":  # another program's database
        with sqlite3.connect(folder / "documents.sqlite") as other:
            other.execute("CREATE TABLE documents (x)")
        other.close()
    before = _files(folder)
    for _ in range(2):  # it opened as an empty index and rewrote the manifest
        with pytest.raises(IndexCorruptedError, match=message):
            DocumentIndex.open(folder, toy_encoder())
    assert _files(folder) == before


def test_a_refused_open_leaves_the_folder_as_it_was(index, tmp_path):
    index.close()
    folder = tmp_path / "index"
    (folder / "index.faiss").write_bytes(b"garbage")
    before = _files(folder)
    with pytest.raises(IndexCorruptedError, match="not a readable FAISS index"):
        DocumentIndex.open(folder, toy_encoder())
    assert _files(folder) == before  # the database was closed: no -wal or -shm file left behind


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


@pytest.mark.parametrize("precision", ["float32", "int8", "binary"])
def test_sigkill_during_adds_leaves_a_consistent_index(precision, encoder, tmp_path):
    index = DocumentIndex.create(tmp_path / "index", encoder, backend="flat", precision=precision)
    index.add(TEXTS, ids=IDS, metadata=META)
    index.close()
    script = WRITER.format(tests=os.path.dirname(os.path.dirname(__file__)), folder=str(tmp_path / "index"))
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
    assert reopened.store.backend.size == reopened.store.count_chunks() == documents
    assert reopened.manifest["precision"] == precision
    hits = reopened.search("document number about cats", k=documents)
    assert len(hits) == documents and all(reopened.get(h.id) is not None for h in hits)
    database = reopened.store.database.db  # the keyword index holds the same chunks, intact
    database.execute("INSERT INTO keywords (keywords, rank) VALUES ('integrity-check', 1)")
    keyword_rows = {row[0] for row in database.execute("SELECT rowid FROM keywords")}
    assert keyword_rows == {row[0] for row in database.execute("SELECT vector_id FROM chunks")}
    written = {h.id for h in reopened.search("document number", k=documents, mode="keyword")}
    assert written == {h.id for h in hits if h.id.startswith("k")} and len(written) == (documents - len(TEXTS)) // 2
    reopened.close()


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
    assert reopened.store.backend.size == reopened.store.count_chunks() == len(TEXTS)
    ids = {h.id for h in reopened.search("a brand new text", k=100)}
    assert "new" in ids and "d1" not in ids
    reopened.close()


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
    assert not index.store.database.db.in_transaction  # rolled back: other handles and processes can write
    assert index.delete([IDS[0]]) == 1 and index.get(IDS[0]) is None
    with index._lock.writing():  # the handle's own write lock was released too
        pass


def test_a_file_saved_by_a_lost_transaction_is_not_taken_for_a_later_write(encoder, tmp_path, monkeypatch):
    from sentsim.search.store import _Transaction

    folder = tmp_path / "hnsw"
    index = DocumentIndex.create(folder, encoder, backend="hnsw")
    index.add(TEXTS, ids=IDS, metadata=META)
    index.delete([IDS[1]])  # a tombstone: compact() has work to do
    with monkeypatch.context() as patch:  # compact() killed after saving its files but before its commit
        patch.setattr(_Transaction, "__exit__", lambda self, *exc: self._roll_back())
        index.compact()
    index.close()
    lost = {name: (folder / name).read_bytes() for name in ("index.faiss", "manifest.json")}
    writer = DocumentIndex.open(folder, encoder)  # rebuilds: those files are of a state never committed

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    for name, data in lost.items():
        (folder / name).write_bytes(data)
    with monkeypatch.context() as patch:  # the next write commits (one generation on) and cannot save its file
        patch.setattr(VectorBackend, "save", full_disk)
        writer.upsert(["a parrot talks all day"], ids=[IDS[0]])
    writer.close()
    with DocumentIndex.open(folder, encoder) as reopened:  # the lost transaction's file: rebuilt
        assert reopened.search("a parrot talks all day", k=1)[0].id == IDS[0]
        assert reopened.get(IDS[0])[0] == "a parrot talks all day"
        assert {h.id for h in reopened.search("the cat sleeps", k=100)} == set(IDS) - {IDS[1]}


def _faiss_ids(index):
    import faiss

    return set(faiss.vector_to_array(index.store.backend.index.id_map).tolist()) - index.store.backend.tombstones


def _chunk_ids(index):
    return {row[0] for row in index.store.database.db.execute("SELECT vector_id FROM chunks")}


def test_a_faiss_file_put_back_from_an_older_copy_is_rebuilt(index, tmp_path, caplog):
    folder = tmp_path / "index"
    older = (folder / "index.faiss").read_bytes()
    index.upsert(["a parrot talks all day"], ids=[IDS[0]])  # as many vectors as before, one of them new
    index.close()
    (folder / "index.faiss").write_bytes(older)
    with DocumentIndex.open(folder, toy_encoder()) as reopened:
        assert "saved for another state of the database" in caplog.text
        hit = reopened.search("a parrot talks all day", k=1)[0]
        assert (hit.id, hit.text) == (IDS[0], "a parrot talks all day")
        assert _faiss_ids(reopened) == _chunk_ids(reopened)
    saved = (folder / "index.faiss").stat().st_ino
    caplog.clear()
    DocumentIndex.open(folder, toy_encoder()).close()  # the file of this state: loaded, not rebuilt
    assert (folder / "index.faiss").stat().st_ino == saved and "rebuilding" not in caplog.text


def test_a_faiss_file_from_a_copy_of_the_index_is_rebuilt(encoder, tmp_path):
    import shutil

    with DocumentIndex.create(tmp_path / "a", encoder, backend="hnsw") as index:
        index.add(TEXTS, ids=IDS)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    for name, text in (("a", "a parrot talks all day"), ("b", "the river floods the town")):
        with DocumentIndex.open(tmp_path / name, encoder) as index:  # one generation on, in each copy
            index.upsert([text], ids=[IDS[0]])
    shutil.copy(tmp_path / "a" / "index.faiss", tmp_path / "b" / "index.faiss")  # same generation, same count
    with DocumentIndex.open(tmp_path / "b", encoder) as index:
        hit = index.search("the river floods the town", k=1)[0]  # its own vector: similarity 1
        assert (hit.id, hit.text, round(hit.score, 4)) == (IDS[0], "the river floods the town", 1.0)


def test_a_manifest_that_does_not_describe_the_faiss_file_is_rebuilt(encoder, tmp_path, caplog):
    folder = tmp_path / "hnsw"
    with DocumentIndex.create(folder, encoder, backend="hnsw") as index:
        index.add(TEXTS, ids=IDS)
    before = json.loads((folder / "manifest.json").read_text())
    with DocumentIndex.open(folder, encoder) as index:
        index.delete(IDS[:2])  # two tombstones in the file and the manifest
    (folder / "manifest.json").write_text(json.dumps(before))  # killed between the file and the manifest
    with DocumentIndex.open(folder, encoder) as index:
        assert "saved for another state of the database" in caplog.text
        assert {h.id for h in index.search("the cat sleeps", k=100)} == set(IDS[2:])
