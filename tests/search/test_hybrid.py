"""Keyword and hybrid search: safe FTS5 queries, BM25 beside the vectors, reciprocal rank fusion."""

import sqlite3

import numpy as np
import pytest

from sentsim.search import DocumentIndex, Hit
from sentsim.search.hybrid import RRF_K, fuse
from sentsim.search.keywords import TOKENIZERS, keyword_query

from .corpus import TEXTS

HOSTILE = ['"', '""', "-", "- -x", "NEAR(", "NEAR(a b)", "*", "a*", "AND", "OR", "NOT", "a AND", "(", ")", "^", ":",
           "col:a", "'", "\\", "+", "\x00", "a\x00b", '"unclosed', "{a b}", "a -b", "éé", "🙂", "end ;--"]  # fmt: skip
# none of their words is in the toy model's vocabulary: to it, each is the same row of [UNK]s
CODES = ["order QZ-7730 shipped", "order LM-5512 shipped", "order XK-2291 shipped"]


def test_keyword_queries_quote_every_piece_and_never_raise():
    assert keyword_query('what is "NEAR(" -x') == '"what" OR "is" OR """NEAR(""" OR "-x"'
    assert keyword_query("Cats cats CATS dogs") == '"CATS" OR "dogs"'  # once each, case folded
    assert keyword_query(" \t\n") == ""
    database = sqlite3.connect(":memory:")
    for name, tokenize in TOKENIZERS.items():
        database.execute(f"CREATE VIRTUAL TABLE {name} USING fts5(text, tokenize = '{tokenize}')")
        database.execute(f"INSERT INTO {name} VALUES ('near and or not a b x')")
        for text in HOSTILE:
            query = keyword_query(text)
            if query:  # an FTS5 syntax error would raise here
                database.execute(f"SELECT rowid FROM {name} WHERE {name} MATCH ?", (query,)).fetchall()
        found = database.execute(f"SELECT rowid FROM {name} WHERE {name} MATCH ?", (keyword_query("NEAR( AND"),))
        assert found.fetchall() == [(1,)]  # the words themselves, not operators


def test_hostile_and_empty_keyword_queries_through_the_index(index):
    queries = [text if text.strip() else f"{text} x" for text in HOSTILE]
    for mode in ("keyword", "hybrid"):
        assert len(index.search(queries, k=3, mode=mode)) == len(HOSTILE)  # and no FTS5 syntax error
    assert index.search("?!", k=3, mode="keyword") == []  # no word: nothing matches
    assert [h.id for h in index.search("?!", k=3, mode="hybrid")] == [h.id for h in index.search("?!", k=3)]
    with pytest.raises(ValueError, match=r"queries\[0\] is empty"):
        index.search(" ", mode="keyword")


def test_keyword_search_finds_a_rare_token_that_dense_misses(index):
    index.add(CODES, ids=["qz", "lm", "xk"])
    dense = index.search("XK-2291", k=3)
    keyword = index.search("XK-2291", k=3, mode="keyword")
    hybrid = index.search("XK-2291", k=3, mode="hybrid")
    assert {h.id for h in dense} == {"qz", "lm", "xk"} and len({round(h.score, 5) for h in dense}) == 1  # a tie
    assert [h.id for h in keyword] == ["xk"] and keyword[0].keyword_rank == 1 and keyword[0].score > 0
    assert hybrid[0].id == "xk" and (hybrid[0].keyword_rank, hybrid[0].dense_rank is not None) == (1, True)


def test_bm25_ranks_by_the_rarer_words_and_the_tokenizers_differ(encoder, tmp_path):
    texts = ["the cat sleeps on the mat", "the dog runs", "the cat and the dog", "Café au lait", "SKU-12345 part"]
    found = {}
    for name in TOKENIZERS:
        index = DocumentIndex.create(tmp_path / name, encoder, keyword_tokenizer=name)
        index.add(texts, ids=list("abcde"))
        found[name] = {
            query: [h.id for h in index.search(query, k=5, mode="keyword")]
            for query in ("the cat", "running dogs", "cafe", "2345")
        }
        index.close()
    assert set(found["unicode61"]["the cat"][:2]) == {"a", "c"}  # an OR of the words: "the" alone ranks lower ...
    assert set(found["unicode61"]["the cat"]) == {"a", "b", "c"}  # ... but it counts
    assert found["unicode61"]["cafe"] == ["d"] and found["unicode61"]["running dogs"] == []
    assert found["porter"]["running dogs"] == ["b", "c"]  # run(ning) and dog(s) stemmed
    assert found["trigram"]["2345"] == ["e"] and found["unicode61"]["2345"] == []  # a substring


def naive_rrf(dense, keyword, k, weights, key=lambda h: (h.id, h.start, h.end)):
    scores = {}
    for arm, hits in (("dense", dense), ("keyword", keyword)):
        for rank, hit in enumerate(hits, 1):
            scores[key(hit)] = scores.get(key(hit), 0.0) + weights[arm] / (RRF_K + rank)
    return sorted(scores.items(), key=lambda item: -item[1])[:k]


def test_fusion_equals_a_naive_reciprocal_rank_fusion():
    rng = np.random.default_rng(0)
    for _ in range(50):
        ids = [f"d{i}" for i in rng.permutation(40)]
        dense = [Hit(i, float(s), i) for i, s in zip(ids[:25], sorted(rng.random(25), reverse=True), strict=True)]
        keyword = [
            Hit(i, float(s), i)
            for i, s in zip(rng.permutation(ids)[:20], sorted(rng.random(20) * 9)[::-1], strict=True)
        ]
        weights = {"dense": float(rng.choice([1.0, 0.3])), "keyword": float(rng.choice([1.0, 0.5, 0.0]))}
        fused = fuse(dense, keyword, 10, weights=weights, by="chunk")
        expected = naive_rrf(dense, keyword, 10, weights)
        np.testing.assert_allclose([h.score for h in fused], [score for _, score in expected])
        for hit in fused:  # ties may order differently; every hit carries both arms' ranks and scores
            in_dense = [h.id for h in dense].index(hit.id) + 1 if hit.id in [h.id for h in dense] else None
            in_keyword = [h.id for h in keyword].index(hit.id) + 1 if hit.id in [h.id for h in keyword] else None
            assert (hit.dense_rank, hit.keyword_rank) == (in_dense, in_keyword)
            assert hit.dense_score == (dense[in_dense - 1].score if in_dense else None)
            assert hit.keyword_score == (keyword[in_keyword - 1].score if in_keyword else None)
            assert hit.score == pytest.approx(
                weights["dense"] / (RRF_K + in_dense) * (in_dense is not None)
                + (weights["keyword"] / (RRF_K + in_keyword) if in_keyword else 0)
            )


def test_hybrid_search_fuses_both_arms_ten_times_k_deep(index):
    for query in ("the cat sleeps", "rain falling market", "piano"):
        dense = index.search(query, k=30)
        keyword = index.search(query, k=30, mode="keyword")
        hybrid = index.search(query, k=3, mode="hybrid", weights={"keyword": 0.5})
        expected = naive_rrf(dense, keyword, 3, {"dense": 1.0, "keyword": 0.5})
        np.testing.assert_allclose([h.score for h in hybrid], [score for _, score in expected])
        assert {(h.id, h.start, h.end) for h in hybrid} <= {
            key for key, _ in naive_rrf(dense, keyword, 6, {"dense": 1, "keyword": 0.5})
        }


def test_filters_apply_to_both_arms(index):
    for mode in ("keyword", "hybrid"):
        hits = index.search("the cat sleeps a kitten rain", k=4, mode=mode, filter={"even": True, "n": {"lt": 8}})
        assert {h.id for h in hits} <= {"d0", "d2", "d4", "d6"}
        assert all(h.metadata["even"] and h.metadata["n"] < 8 for h in hits)
    hybrid = index.search("the cat sleeps", k=4, mode="hybrid", filter={"topic": "cat"})
    assert sorted(h.id for h in hybrid) == ["d0", "d1", "d2", "d3"]  # k hits whenever k match
    assert all(h.dense_rank is not None for h in hybrid) and hybrid[0].keyword_rank == 1


def test_by_document_holds_in_every_mode(encoder, tmp_path):
    index = DocumentIndex.create(tmp_path / "chunked", encoder, chunk_size=4, chunk_overlap=1)
    long = [" ".join(TEXTS[i : i + 4]) for i in range(0, len(TEXTS), 4)]
    index.add(long, ids=["cat", "market", "rain", "music"])
    for mode in ("dense", "keyword", "hybrid"):
        chunks = index.search("the cat sleeps a kitten", k=20, mode=mode)
        documents = index.search("the cat sleeps a kitten", k=20, mode=mode, by="document")
        assert len({h.id for h in documents}) == len(documents)
        assert documents[0].id == "cat" and len(chunks) > len(documents)
        assert "the cat" in documents[0].text or "kitten" in documents[0].text
    index.close()


def _keyword_rows(index):
    return sorted(row[0] for row in index.store.database.db.execute("SELECT rowid FROM keywords"))


def _chunk_rows(index):
    return sorted(row[0] for row in index.store.database.db.execute("SELECT vector_id FROM chunks"))


def test_deletes_upserts_and_compaction_keep_the_keyword_index_in_step(index, tmp_path):
    assert _keyword_rows(index) == _chunk_rows(index) and len(_chunk_rows(index)) == len(TEXTS)
    index.delete(["d0"])
    assert "d0" not in {h.id for h in index.search("the cat sleeps", k=20, mode="keyword")}
    index.upsert(["a parrot talks all day"], ids=["d1"], metadata=[{"topic": "bird"}])
    index.upsert(["a parrot talks all day"], ids=["d1"], metadata=[{"topic": "parrot"}])  # metadata only
    assert [h.id for h in index.search("parrot", k=5, mode="keyword")] == ["d1"]
    assert index.search("kitten naps", k=5, mode="keyword", filter={"topic": "parrot"}) == []  # the old words gone
    assert _keyword_rows(index) == _chunk_rows(index)
    generation = index.store.database.generation
    index.compact()  # merges the keyword index: deletes left rows in it
    assert index.store.database.generation == generation + 1
    index.compact()  # nothing left to merge or rebuild
    assert index.store.database.generation == generation + 1
    index.close()
    with DocumentIndex.open(tmp_path / "index", encoder=index.encoder) as reopened:
        database = reopened.store.database.db
        database.execute("INSERT INTO keywords (keywords, rank) VALUES ('integrity-check', 1)")
        assert _keyword_rows(reopened) == _chunk_rows(reopened)
        assert [h.id for h in reopened.search("parrot talks", k=1, mode="hybrid")] == ["d1"]


def test_bad_search_options_are_named(index, encoder, tmp_path):
    for options, message in [
        ({"mode": "bm25"}, "unknown mode 'bm25'; expected one of 'dense', 'keyword', 'hybrid'"),
        ({"mode": "keyword", "nprobe": 4}, "nprobe: the dense arm's, and mode='keyword' has none"),
        ({"mode": "dense", "weights": {"keyword": 1}}, "weights weigh the two arms of mode='hybrid'"),
        ({"mode": "hybrid", "weights": {"sparse": 1}}, "unknown arm 'sparse'"),
        ({"mode": "hybrid", "weights": {"keyword": -1}}, r"weights\['keyword'\] must be a finite number >= 0"),
        ({"mode": "hybrid", "weights": {"keyword": float("nan")}}, "must be a finite number"),
        ({"mode": "hybrid", "weights": {"dense": 0, "keyword": 0}}, "at least one arm needs a weight above 0"),
        ({"mode": "hybrid", "weights": [1, 1]}, "weights must be a dict of arm -> weight"),
    ]:
        with pytest.raises((TypeError, ValueError), match=message):
            index.search("the cat", **options)
    with pytest.raises(ValueError, match="unknown keyword_tokenizer 'icu'"):
        DocumentIndex.create(tmp_path / "icu", encoder, keyword_tokenizer="icu")
    assert not (tmp_path / "icu").exists()
    vectors = encoder.encode(["the cat sleeps"])
    with pytest.raises(ValueError, match=r"query vectors must have shape \(2, 32\)"):
        index.search(["a", "b"], mode="hybrid", embeddings=vectors)
    given = index.search("the cat sleeps", k=3, mode="hybrid", embeddings=vectors)
    assert given == index.search("the cat sleeps", k=3, mode="hybrid")
