"""Quantized and truncated indexes: int8 and binary codes, truncate_dim, and exact rescoring from SQLite."""

import json

import faiss
import numpy as np
import pytest
import torch
from transformers import BertConfig

from sentsim import SentenceEncoder, TransformerTower
from sentsim.evaluation import IndexSearch
from sentsim.search import DocumentIndex
from sentsim.search.backends import VectorBackend
from sentsim.search.binary import BinaryBackend

from ..toy_task import toy_tokenizer
from .corpus import IDS, META, TEXTS

PRECISIONS = ["float32", "int8", "binary"]


def wide_encoder(dim: int) -> SentenceEncoder:
    """A one-layer encoder of ``dim`` dimensions (only its fingerprint and tokenizer are used here)."""
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=toy_tokenizer().get_vocab_size(),
        hidden_size=dim,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    return SentenceEncoder(TransformerTower.from_config(config, toy_tokenizer(), max_seq_length=16))


def embedding_like(n: int, dim: int, seed: int) -> np.ndarray:
    """Unit vectors around 100 topics (one draw of centres for every seed)."""
    centres = np.random.default_rng(0).normal(size=(100, dim))
    rng = np.random.default_rng(seed + 1)
    points = centres[rng.integers(0, 100, n)] + rng.normal(size=(n, dim))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def build(folder, encoder, vectors, metadata=None, **options) -> DocumentIndex:
    index = DocumentIndex.create(folder, encoder, **options)
    ids = [str(i) for i in range(len(vectors))]
    index.add([f"document {i}" for i in ids], ids=ids, metadata=metadata, embeddings=vectors)
    return index


def exact(queries: np.ndarray, vectors: np.ndarray, k: int, allowed=None) -> tuple[list[list[str]], np.ndarray]:
    """Brute-force cosine top-k ids (as str) and scores, among ``allowed`` rows only when given."""
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    scores = unit(queries) @ unit(vectors).T
    if allowed is not None:
        scores[:, np.setdiff1d(np.arange(len(vectors)), allowed)] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [[str(i) for i in row] for row in order], np.take_along_axis(scores, order, axis=1)


def recall(found, truth) -> float:
    return float(np.mean([len({h.id for h in hits} & set(t)) / len(t) for hits, t in zip(found, truth, strict=True)]))


@pytest.fixture(scope="module")
def embedded():
    return embedding_like(3000, 256, seed=0), embedding_like(100, 256, seed=1)


@pytest.mark.parametrize(("precision", "bar"), [("int8", 0.99), ("binary", 0.95)])
def test_quantized_recall_against_float_and_exact_scores(precision, bar, embedded, tmp_path):
    vectors, queries = embedded
    encoder = wide_encoder(256)
    truth, _ = exact(queries, vectors, 10)
    index = build(tmp_path / precision, encoder, vectors, precision=precision)
    hits = index.search_vectors(queries, 10)
    assert recall(hits, truth) >= bar
    assert all([h.score for h in row] == sorted((h.score for h in row), reverse=True) for row in hits)
    full = np.stack([[float(queries[q] @ vectors[int(h.id)]) for h in row] for q, row in enumerate(hits)])
    np.testing.assert_allclose(full, [[h.score for h in row] for row in hits], atol=1e-5)
    shallow = build(tmp_path / f"{precision}-1", encoder, vectors, precision=precision, rescore_factor=1)
    assert recall(shallow.search_vectors(queries, 10), truth) < recall(hits, truth)  # deeper candidates find more
    float_bytes = 256 * 4 * len(vectors)
    size = (tmp_path / precision / "index.faiss").stat().st_size
    assert size < float_bytes * (0.3 if precision == "int8" else 0.06)
    index.close()
    shallow.close()


@pytest.mark.parametrize("precision", PRECISIONS)
def test_filters_deletes_and_reopening_on_every_precision(precision, encoder, tmp_path):
    vectors, queries = embedding_like(300, 32, seed=2), embedding_like(5, 32, seed=3)
    metadata = [{"even": i % 2 == 0} for i in range(300)]
    folder = tmp_path / precision
    index = build(folder, encoder, vectors, metadata, precision=precision, rescore_factor=40)
    evens = np.arange(0, 300, 2)
    truth, scores = exact(queries, vectors, 10, allowed=evens)
    filtered = index.search_vectors(queries, 10, filter={"even": True})
    assert [[h.id for h in row] for row in filtered] == truth  # 40 x 10 candidates: every match is rescored
    np.testing.assert_allclose([[h.score for h in row] for row in filtered], scores, atol=1e-5)
    assert index.delete([str(i) for i in range(0, 300, 4)]) == 75
    kept = np.setdiff1d(evens, np.arange(0, 300, 4))
    truth, scores = exact(queries, vectors, 10, allowed=kept)
    assert [[h.id for h in row] for row in index.search_vectors(queries, 10, filter={"even": True})] == truth
    everything = index.search_vectors(queries[:1], 300)[0]
    assert len(everything) == 225 and not {h.id for h in everything} & {str(i) for i in range(0, 300, 4)}
    index.close()
    reopened = DocumentIndex.open(folder, encoder)
    assert reopened.manifest["precision"] == precision
    backend = reopened.store.backend
    assert isinstance(backend, BinaryBackend if precision == "binary" else VectorBackend) and backend.size == 225
    again = reopened.search_vectors(queries, 10, filter={"even": True})
    assert [[h.id for h in row] for row in again] == truth
    np.testing.assert_allclose([[h.score for h in row] for row in again], scores, atol=1e-5)
    reopened.compact()
    assert [[h.id for h in row] for row in reopened.search_vectors(queries, 10, filter={"even": True})] == truth
    reopened.close()


def test_an_older_faiss_without_binary_selectors_searches_the_matches_exactly(encoder, tmp_path, monkeypatch):
    vectors, queries = embedding_like(300, 32, seed=2), embedding_like(5, 32, seed=3)
    index = build(tmp_path / "b", encoder, vectors, [{"n": i} for i in range(300)], precision="binary")
    monkeypatch.setattr(BinaryBackend, "takes_selector", False)
    searched = []
    monkeypatch.setattr(BinaryBackend, "search", lambda *args, **kwargs: searched.append(args))
    hits = index.search_vectors(queries, 10, filter={"n": {"lt": 50}})
    assert not searched  # FAISS is not asked; the 50 matches are searched exactly
    truth, scores = exact(queries, vectors, 10, allowed=np.arange(50))
    assert [[h.id for h in row] for row in hits] == truth
    np.testing.assert_allclose([[h.score for h in row] for row in hits], scores, atol=1e-5)
    index.close()


def test_the_index_files_hold_codes_of_the_precision(encoder, tmp_path):
    vectors = embedding_like(200, 32, seed=4)
    for precision, kind in (("int8", faiss.IndexScalarQuantizer), ("binary", faiss.IndexBinaryFlat)):
        build(tmp_path / precision, encoder, vectors, precision=precision).close()
        path = str(tmp_path / precision / "index.faiss")
        saved = faiss.read_index_binary(path) if precision == "binary" else faiss.read_index(path)
        assert isinstance(
            faiss.downcast_IndexBinary(saved.index) if precision == "binary" else faiss.downcast_index(saved.index),
            kind,
        )
        manifest = json.loads((tmp_path / precision / "manifest.json").read_text())
        assert (manifest["precision"], manifest["rescore_factor"], manifest["truncate_dim"]) == (precision, 4, None)
    saved = faiss.read_index(str(tmp_path / "int8" / "index.faiss"))
    sq = faiss.downcast_index(saved.index)
    trained = faiss.vector_to_array(sq.sq.trained)  # the int8 ranges: per-dimension minimum and width
    np.testing.assert_allclose(trained[:32], vectors.min(axis=0), atol=1e-6)
    np.testing.assert_allclose(trained[:32] + trained[32:], vectors.max(axis=0), atol=1e-6)


def test_int8_ranges_trained_on_a_small_first_batch_are_retrained(encoder, tmp_path):
    vectors, queries = embedding_like(600, 32, seed=5), embedding_like(20, 32, seed=6)
    index = DocumentIndex.create(tmp_path / "int8", encoder, precision="int8", rescore_factor=1)
    ids = [str(i) for i in range(600)]
    index.add(["first", "second"], ids=ids[:2], embeddings=vectors[:2])  # ranges from two vectors
    index.add([f"d{i}" for i in ids[2:]], ids=ids[2:], embeddings=vectors[2:])
    sq = faiss.downcast_index(index.store.backend.inner)
    trained = faiss.vector_to_array(sq.sq.trained)
    np.testing.assert_allclose(trained[:32], vectors.min(axis=0), atol=1e-6)  # retrained on every vector
    truth, _ = exact(queries, vectors, 10)
    assert recall(index.search_vectors(queries, 10), truth) >= 0.95  # int8 order alone, no deeper candidates
    index.close()


def test_truncate_dim_holds_renormalized_heads_and_rescores_with_full_vectors(encoder, tmp_path):
    encoder.normalize = True  # unit-length embeddings: the heads are re-normalized for the dot metric too
    vectors, queries = embedding_like(400, 32, seed=7), embedding_like(10, 32, seed=8)
    index = build(tmp_path / "t", encoder, vectors, metric="dot", truncate_dim=16, rescore_factor=400)
    backend = index.store.backend
    assert backend.dim == 16 and backend.factory == "Flat"
    heads = np.stack([backend.index.reconstruct(i) for i in range(400)])
    np.testing.assert_allclose(np.linalg.norm(heads, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(
        heads, vectors[:, :16] / np.linalg.norm(vectors[:, :16], axis=1, keepdims=True), atol=1e-6
    )
    hits = index.search_vectors(queries, 10)
    truth, scores = exact(queries, vectors, 10)  # every vector rescored: the full-vector ranking
    assert [[h.id for h in row] for row in hits] == truth
    np.testing.assert_allclose([[h.score for h in row] for row in hits], scores, atol=1e-5)
    binary = build(tmp_path / "tb", encoder, vectors, precision="binary", truncate_dim=16, rescore_factor=400)
    assert binary.store.backend.dim == 16
    assert [[h.id for h in row] for row in binary.search_vectors(queries, 10)] == truth
    index.close()
    binary.close()


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"precision": "fp16"}, ValueError, "precision must be one of float32, int8, binary, got 'fp16'"),
        ({"precision": "binary", "truncate_dim": 12}, ValueError, "must be a multiple of 8, got 12"),
        ({"truncate_dim": 33}, ValueError, r"truncate_dim must be at most the model's dimension \(32\), got 33"),
        ({"truncate_dim": 0}, ValueError, "truncate_dim must be an int >= 1 or None, got 0"),
        ({"truncate_dim": 8.0}, TypeError, "truncate_dim must be an int"),
        ({"rescore_factor": 0}, ValueError, "rescore_factor must be an int between 1 and 1024, got 0"),
        ({"precision": "int8", "backend": "ivfpq"}, ValueError, r"'ivfpq' cannot take precision='int8' \(ivfpq"),
        ({"precision": "binary", "backend": "hnsw"}, ValueError, "binary indexes are exact Hamming scans"),
        ({"precision": "int8", "backend": "IVF4,Flat"}, ValueError, "a FAISS factory string sets its own codes"),
    ],
)
def test_bad_precision_options_are_refused_before_anything_is_written(options, error, message, encoder, tmp_path):
    with pytest.raises(error, match=message):
        DocumentIndex.create(tmp_path / "index", encoder, **options)
    assert not (tmp_path / "index").exists()


def test_the_milvus_store_refuses_quantized_indexes(encoder, tmp_path):
    pytest.importorskip("pymilvus")
    with pytest.raises(ValueError, match="precision='binary' and truncate_dim apply to store='faiss'"):
        DocumentIndex.create(tmp_path / "m", encoder, store="milvus", precision="binary")
    assert not (tmp_path / "m").exists()


def test_binary_search_knobs_and_manifest_checks(encoder, tmp_path):
    index = DocumentIndex.create(tmp_path / "b", encoder, precision="binary")
    index.add(TEXTS, ids=IDS, metadata=META)
    with pytest.raises(ValueError, match="nprobe applies to IVF / HNSW indexes; this index is 'BFlat'"):
        index.search("the cat sleeps", nprobe=4)
    assert index.search("the cat sleeps", k=1)[0].text == "the cat sleeps"
    index.close()
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    from sentsim.search import IndexCorruptedError

    for broken, message in (
        (manifest | {"precision": "int4"}, "'precision' must be one of"),
        (manifest | {"rescore_factor": 0}, "'rescore_factor' must be an int"),
        (manifest | {"truncate_dim": 64}, "'truncate_dim' must be null or an int"),
    ):
        (tmp_path / "b" / "manifest.json").write_text(json.dumps(broken))
        with pytest.raises(IndexCorruptedError, match=message):
            DocumentIndex.open(tmp_path / "b", encoder)


def test_cli_builds_quantized_indexes_and_evaluates_through_them(encoder, tmp_path, capsys):
    from sentsim.cli import main
    from sentsim.data import RetrievalData
    from sentsim.evaluation import evaluate_retrieval

    model, docs = tmp_path / "model", tmp_path / "docs.txt"
    encoder.save_pretrained(model)
    docs.write_text("\n".join(TEXTS) + "\n")
    build = ["index", "build", "--model", str(model), "--docs", str(docs), "--no-progress"]
    assert main(build + ["--output", str(tmp_path / "b"), "--precision", "binary", "--index-truncate-dim", "16"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["factory"], summary["precision"], summary["chunks"]) == ("BFlat", "binary", len(TEXTS))
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["truncate_dim"] == 16
    assert main(build + ["--output", str(tmp_path / "x"), "--precision", "binary", "--index-truncate-dim", "20"]) == 2
    assert "must be a multiple of 8, got 20" in capsys.readouterr().err

    corpus = {f"d{i}": text for i, text in enumerate(TEXTS)}
    queries = {f"q{i}": text for i, text in enumerate(TEXTS[::4])}
    relevant = {f"q{i}": {f"d{4 * i + j}" for j in range(1, 4)} for i in range(len(queries))}
    ignore = {f"q{i}": {f"d{4 * i}"} for i in range(len(queries))}  # the query's own text
    data = RetrievalData(queries, corpus, relevant, ignore)
    exact = evaluate_retrieval(encoder, data, device="cpu")
    through_float = evaluate_retrieval(encoder, data, index=IndexSearch())
    assert {key: through_float[key] for key in exact if key != "search"} == {
        key: value for key, value in exact.items() if key != "search"
    }
    for options in ({"precision": "int8"}, {"precision": "binary"}, {"truncate_dim": 8}):
        measured = evaluate_retrieval(encoder, data, index=IndexSearch(**options, rescore_factor=16))
        assert measured["ndcg@10"] == pytest.approx(exact["ndcg@10"])  # 16 cands a hit: all 16 documents rescored
    sts = tmp_path / "sts.csv"
    sts.write_text("".join(f"{a},{b},5\n" for a, b in zip(TEXTS[::2], TEXTS[1::2], strict=True)))
    run = ["eval", "retrieval", "--model", str(model), "--sts", str(sts), "--no-progress", "--json"]
    assert main(run + ["--precision", "int8", "--rescore-factor", "8"]) == 0
    measured = json.loads(capsys.readouterr().out)
    assert measured["search"] == "dense"
    assert main(run) == 0
    assert json.loads(capsys.readouterr().out)["ndcg@10"] == pytest.approx(measured["ndcg@10"])


@pytest.mark.parametrize(("backend", "factory"), [("hnsw", "HNSW32_SQ8"), ("ivf", "IVF38,SQ8")])
def test_int8_codes_in_approximate_indexes(backend, factory, encoder, tmp_path):
    vectors, queries = embedding_like(1500, 32, seed=9), embedding_like(20, 32, seed=10)
    index = build(
        tmp_path / backend, encoder, vectors, [{"n": i} for i in range(1500)], backend=backend, precision="int8"
    )
    assert index.store.backend.factory == factory and not index.store.backend.retrain_due
    truth, _ = exact(queries, vectors, 10)
    assert recall(index.search_vectors(queries, 10), truth) >= 0.9
    index.delete([str(i) for i in range(0, 1500, 2)])  # tombstones, filters through the selector
    truth, scores = exact(queries, vectors, 5, allowed=np.arange(1, 40, 2))
    hits = index.search_vectors(queries, 5, filter={"n": {"lt": 40}})
    assert [[h.id for h in row] for row in hits] == truth  # 20 matches, 20 candidates: all rescored exactly
    np.testing.assert_allclose([[h.score for h in row] for row in hits], scores, atol=1e-5)
    index.close()
