import numpy as np
import pytest

from sentsim import similarity
from sentsim.search import DocumentIndex
from sentsim.search.backends import VectorBackend, resolve_factory

from .conftest import BOTH_STORES
from .corpus import IDS, META, TEXTS, clustered


@BOTH_STORES
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
        with pytest.raises(
            ValueError if bad in (0, -1) and bad is not True else TypeError, match="nprobe must be an int between 1 and"
        ):
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


@BOTH_STORES
def test_filtered_hnsw_still_finds_k(make_index, encoder, tmp_path):
    index = make_index(tmp_path / "hnsw", encoder, backend="hnsw")
    index.add(TEXTS, ids=IDS, metadata=META)
    hits = index.search("the cat sleeps", k=3, filter={"topic": "music"})
    assert len(hits) == 3 and all(h.metadata["topic"] == "music" for h in hits)


def test_ivf_misses_are_filled_by_exact_search(encoder, tmp_path):
    index = DocumentIndex.create(tmp_path / "ivf", encoder, backend="IVF4,Flat")
    index.add(TEXTS, ids=IDS, metadata=META)
    faiss_ivf = __import__("faiss").try_extract_index_ivf(index.store.backend.inner)
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
