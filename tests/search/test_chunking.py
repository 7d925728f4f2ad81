import pytest

from sentsim.search import DocumentIndex
from sentsim.search.chunking import chunk_text

from ..toy_task import TOPICS, toy_encoder
from .conftest import BOTH_STORES


@BOTH_STORES
def test_chunks_carry_offsets_and_documents_group(make_index, encoder, tmp_path):
    index = make_index(tmp_path / "chunked", encoder, chunk_size=3, chunk_overlap=1)
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


LONG_WORDS = [word for texts in TOPICS.values() for text in texts for word in text.split()]


@BOTH_STORES
def test_chunks_cover_a_document_longer_than_the_model_reads(make_index, encoder, tmp_path):
    text = " ".join(LONG_WORDS * 4) + " the cat sleeps"  # ~200 tokens; the model reads 16
    chunks = chunk_text(text, encoder.tower.tokenizer.tokenizer, chunk_size=8, overlap=2)
    assert chunks[-1].end == len(text) and len(chunks) > 20
    index = make_index(tmp_path / "long", encoder, chunk_size=8, chunk_overlap=2)
    index.add([text], ids=["long"])
    assert index.store.count_chunks() == len(chunks)
    assert max(hit.end for hit in index.search("the cat sleeps", k=100)) == len(text)
    index.close()
    with pytest.raises(ValueError, match="chunk_size 15 is larger than the model reads: max_seq_length 16 less 2"):
        make_index(tmp_path / "too-long", encoder, chunk_size=15)
    assert not (tmp_path / "too-long" / "manifest.json").exists()


def test_the_default_overlap_fits_small_chunks(encoder, tmp_path):
    index = DocumentIndex.create(tmp_path / "small", encoder, chunk_size=8)  # the default 32 would not fit
    assert (index.manifest["chunk_size"], index.manifest["chunk_overlap"]) == (8, 2)
    index.close()
    with pytest.raises(ValueError, match="need 0 <= chunk_overlap < chunk_size, got 8 and 8"):
        DocumentIndex.create(tmp_path / "explicit", encoder, chunk_size=8, chunk_overlap=8)
    with pytest.raises(ValueError, match="chunk_size must be an int >= 1, got 0"):  # not about an overlap
        DocumentIndex.create(tmp_path / "zero", encoder, chunk_size=0)


def test_an_upsert_of_unchanged_texts_reads_no_chunks(tmp_path):
    long_text = " ".join(f"word{i}" for i in range(120)) + " the hidden treasure"
    index = DocumentIndex.create(tmp_path / "chunks", toy_encoder(), backend="flat", chunk_size=8)
    index.add([long_text, "a short text"], ids=["long", "short"])
    size, generation = index.store.backend.size, index.store.database.generation
    statements = []
    index.store.database.db.set_trace_callback(statements.append)
    index.upsert([long_text, "a short text"], ids=["long", "short"], metadata=[{"n": 1}, None])
    index.store.database.db.set_trace_callback(None)
    assert [statement for statement in statements if "chunks" in statement] == []  # no query per document
    assert index.get("long") == (long_text, {"n": 1}) and index.get("short") == ("a short text", {})
    assert index.store.backend.size == size and index.store.database.generation == generation + 1  # metadata only
    index.close()


def test_chunk_overlap_without_chunk_size_is_refused(encoder, tmp_path, capsys):
    with pytest.raises(ValueError, match=r"chunk_overlap \(4\) needs chunk_size"):
        DocumentIndex.create(tmp_path / "idx", encoder, chunk_overlap=4)
    assert not (tmp_path / "idx" / "manifest.json").exists()
