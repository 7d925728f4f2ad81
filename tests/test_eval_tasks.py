"""Evaluators on a tiny encoder, each against a reference computed from its embeddings by hand."""

import json

import numpy as np
import pytest

from sentsim import SentenceEncoder, similarity
from sentsim.data import (
    LabelledPairs,
    LabelledTexts,
    RetrievalData,
    SentencePairs,
    Triplets,
    load_clinc150,
    load_stsb,
    read_beir,
    read_labelled_texts,
    read_pairs,
    read_triplets,
    sts_pair_classification,
    sts_paraphrase_retrieval,
)
from sentsim.evaluation import (
    average_precision,
    evaluate_pairs,
    evaluate_retrieval,
    evaluate_sts,
    evaluate_triplets,
    spearman,
    write_results,
)

from .conftest import DATA_DIR

TEXTS = [
    "The cat sat on the mat.",
    "A dog is running in the park.",
    "She reads a book by the window.",
    "Stocks fell sharply on Monday morning.",
    "He cooks pasta with tomato sauce.",
    "The train leaves at noon.",
]


@pytest.fixture
def encoder(tiny_transformer):
    return SentenceEncoder(tiny_transformer)


def test_sts_equals_spearman_of_cosines(encoder):
    pairs = SentencePairs(TEXTS[:3], TEXTS[3:], np.array([1.0, 3.0, 2.0]))
    embeddings = encoder.encode(TEXTS)
    cosines = similarity(embeddings[:3], embeddings[3:], pairwise=True)
    result = evaluate_sts(encoder, pairs)
    assert result["spearman"] == pytest.approx(100 * spearman(cosines, pairs.scores))
    assert result["n"] == 3 and result["primary_metric"] == "spearman"


def test_sts_undefined_and_degenerate_cases(encoder):
    with pytest.raises(ValueError, match="all 3 gold scores equal 2.0"):
        evaluate_sts(encoder, SentencePairs(TEXTS[:3], TEXTS[3:], np.array([2.0, 2.0, 2.0])))
    with pytest.raises(ValueError, match="at least 2 pairs"):
        evaluate_sts(encoder, SentencePairs(TEXTS[:1], TEXTS[1:2], np.array([1.0])))
    with pytest.raises(ValueError, match="column 'scores', row 1: expected a finite number, got nan"):
        evaluate_sts(encoder, SentencePairs(TEXTS[:3], TEXTS[3:], np.array([4.5, np.nan, 1.0])))
    import pandas as pd

    frame = pd.DataFrame({"a": TEXTS[:3], "b": TEXTS[3:], "score": [4.5, 2.0, 1.0]}, index=[7, 3, 5])
    from_frame = evaluate_sts(encoder, SentencePairs(frame.a, frame.b, frame.score))  # any index: by position
    assert from_frame == evaluate_sts(encoder, SentencePairs(TEXTS[:3], TEXTS[3:], [4.5, 2.0, 1.0]))
    with pytest.raises(ValueError, match="all 3 gold scores equal 2.0"):  # a list, not only an array
        evaluate_sts(encoder, SentencePairs(TEXTS[:3], TEXTS[3:], [2.0, 2.0, 2.0]))
    with pytest.raises(ValueError, match="column 'sentences2', row 1: expected a non-empty text, got None"):
        SentencePairs(frame.a, [TEXTS[3], None, TEXTS[5]], frame.score)
    with pytest.raises(ValueError, match="columns of different lengths"):
        SentencePairs(TEXTS[:3], TEXTS[3:5], [1.0, 2.0, 3.0])
    same = evaluate_sts(encoder, SentencePairs(TEXTS[:2], TEXTS[:2], np.array([1.0, 2.0])))
    assert same["spearman"] == 0.0  # constant similarities correlate 0, never NaN


def test_pairs_with_a_given_threshold(encoder):
    pairs = LabelledPairs(TEXTS[:3], TEXTS[3:], np.array([1, 0, 1]))
    embeddings = encoder.encode(TEXTS)
    cosines = similarity(embeddings[:3], embeddings[3:], pairwise=True)
    threshold = float(np.median(cosines))
    result = evaluate_pairs(encoder, pairs, threshold=threshold)
    predictions = cosines >= threshold
    assert result["accuracy"] == pytest.approx(100 * np.mean(predictions == pairs.labels))
    assert result["average_precision"] == pytest.approx(average_precision(cosines, pairs.labels))
    assert result["threshold"] == threshold
    for bad in (float("nan"), float("inf"), "0.5"):
        with pytest.raises(ValueError, match="threshold must be a finite number or None"):
            evaluate_pairs(encoder, pairs, threshold=bad)


def test_pairs_tuned_threshold_is_best_on_the_data(encoder):
    pairs = LabelledPairs(TEXTS[:3], TEXTS[3:], np.array([1, 0, 1]))
    tuned = evaluate_pairs(encoder, pairs)
    embeddings = encoder.encode(TEXTS)
    cosines = similarity(embeddings[:3], embeddings[3:], pairwise=True)
    best = max(np.mean((cosines >= t) == pairs.labels) for t in [*cosines, cosines.max() + 1])
    assert tuned["accuracy"] == pytest.approx(100 * best)


def test_triplets_by_hand(encoder):
    triplets = Triplets(TEXTS[:2], TEXTS[2:4], TEXTS[4:6])
    e = encoder.encode(TEXTS)
    expected = [similarity(e[i], e[i + 2]) > similarity(e[i], e[i + 4]) for i in range(2)]
    result = evaluate_triplets(encoder, triplets)
    assert result["accuracy"] == pytest.approx(100 * np.mean(expected))
    assert {"dot_accuracy", "euclidean_accuracy", "manhattan_accuracy"} <= set(result)


def test_retrieval_finds_identical_texts(encoder):
    corpus = {f"d{i}": text for i, text in enumerate(TEXTS)}
    data = RetrievalData(queries={"q0": TEXTS[2], "q1": TEXTS[4]}, corpus=corpus, relevant={"q0": {"d2"}, "q1": {"d4"}})
    result = evaluate_retrieval(encoder, data, device="cpu")
    assert result["mrr@10"] == 100.0 and result["recall@1"] == 100.0 and result["ndcg@10"] == pytest.approx(100.0)


def test_retrieval_ignores_the_query_itself(encoder):
    corpus = {f"d{i}": text for i, text in enumerate(TEXTS)}
    data = RetrievalData(queries={"q0": TEXTS[0]}, corpus=corpus, relevant={"q0": {"d1"}}, ignore={"q0": {"d0"}})
    embeddings = encoder.encode(TEXTS)
    others = similarity(embeddings[0], embeddings[1:])[0]
    rank = 1 + int((others > others[0]).sum())
    assert evaluate_retrieval(encoder, data, device="cpu")["mrr@10"] == pytest.approx(100 / rank)


def test_retrieval_data_validation():
    with pytest.raises(ValueError, match="query 'q1' has no relevant document"):
        RetrievalData({"q0": "a", "q1": "b"}, {"d0": "x"}, {"q0": {"d0"}})
    with pytest.raises(ValueError, match=r"relevant document\(s\) \['d9'\] are not in the corpus"):
        RetrievalData({"q0": "a"}, {"d0": "x"}, {"q0": {"d9"}})
    with pytest.raises(ValueError, match="empty corpus"):
        RetrievalData({"q0": "a"}, {}, {"q0": {"d0"}})
    with pytest.raises(ValueError, match=r"query 'q0': ignored document\(s\) \['zz'\] are not in the corpus"):
        RetrievalData({"q0": "a"}, {"d0": "x"}, {"q0": {"d0"}}, {"q0": {"zz"}})


def test_derived_tasks():
    pairs = SentencePairs(["a", "b", "c", "d", "a"], ["b", "c", "d", "d", "e"], np.array([4.5, 2.0, 0.5, 5.0, 4.0]))
    classification = sts_pair_classification(pairs)
    assert classification.sentences1 == ["a", "c", "d", "a"] and classification.labels.tolist() == [1, 0, 1, 1]
    retrieval = sts_paraphrase_retrieval(pairs, [SentencePairs(["f"], ["g"], np.array([1.0]))])
    # "d"-"d" is skipped (a text is not its own paraphrase); "a" has two relevant documents.
    assert list(retrieval.queries.values()) == ["a"]
    assert sorted(retrieval.corpus[d] for d in retrieval.relevant["q0"]) == ["b", "e"]
    assert set(retrieval.corpus.values()) == {"a", "b", "c", "d", "e", "f", "g"}
    assert [retrieval.corpus[d] for d in retrieval.ignore["q0"]] == ["a"]
    with pytest.raises(ValueError, match="no pair has a score >= 9"):
        sts_paraphrase_retrieval(pairs, [], min_score=9)


def test_read_beir(tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text(
        '{"_id": "d1", "title": "Cats", "text": "meow"}\n{"_id": "d2", "text": "woof"}\n'
    )
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "cat sound"}\n{"_id": "q2", "text": "unjudged"}\n')
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\n")
    data = read_beir(tmp_path)
    assert data.queries == {"q1": "cat sound"} and data.corpus["d1"] == "Cats meow" and data.relevant == {"q1": {"d1"}}


def test_labelled_readers(tmp_path):
    (tmp_path / "pairs.csv").write_text("sentence1,sentence2,label\na,b,1\nc,d,0\n")
    assert read_pairs(tmp_path / "pairs.csv").labels.tolist() == [1, 0]
    (tmp_path / "bad.csv").write_text("sentence1,sentence2,label\na,b,1\nc,d,2\n")
    with pytest.raises(ValueError, match="column 'label', row 1: expected a label 0 or 1, got '2'"):
        read_pairs(tmp_path / "bad.csv")
    (tmp_path / "triplets.jsonl").write_text(json.dumps({"anchor": "a", "positive": "b", "negative": "c"}) + "\n")
    assert read_triplets(tmp_path / "triplets.jsonl").negatives == ["c"]
    (tmp_path / "texts.tsv").write_text("text\tlabel\nhello\tgreet\nbye\tleave\n")
    assert read_labelled_texts(tmp_path / "texts.tsv").labels == ["greet", "leave"]


def test_sample_per_class_is_seeded():
    data = LabelledTexts([f"x{i}" for i in range(12)], ["a", "b", "c"] * 4)
    first, again = data.sample_per_class(2, seed=3), data.sample_per_class(2, seed=3)
    assert first == again and sorted(first.labels) == ["a", "a", "b", "b", "c", "c"]
    assert data.sample_per_class(2, seed=4) != first
    with pytest.raises(ValueError, match="class 'a' has 4 examples, fewer than shots=5"):
        data.sample_per_class(5)


def test_write_results_converts_nested_numpy_and_pandas_values(tmp_path):
    import pandas as pd

    results = {
        "folds": [np.float32(1.5), float("nan")],
        "per_class": {np.int64(0): np.float64(1.0)},
        "curve": np.array([0.25, 0.5]),
        "series": pd.Series([1, 2], index=[5, 9]),
    }
    write_results(results, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text()) == {
        "folds": [1.5, None],
        "per_class": {"0": 1.0},
        "curve": [0.25, 0.5],
        "series": [1, 2],
    }
    write_results({"n": 2, "curve": np.array([0.25, 0.5])}, tmp_path / "r.csv")
    assert (tmp_path / "r.csv").read_text().splitlines() == ["metric,value", "n,2", 'curve,"[0.25, 0.5]"']


def test_write_results(tmp_path):
    write_results({"accuracy": 91.5, "n": 3}, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text()) == {"accuracy": 91.5, "n": 3}
    write_results({"accuracy": 91.5, "n": 3}, tmp_path / "r.csv")
    assert (tmp_path / "r.csv").read_text().splitlines() == ["metric,value", "accuracy,91.5", "n,3"]
    with pytest.raises(ValueError, match=r"\.json or \.csv"):
        write_results({}, tmp_path / "r.txt")
    write_results({"pearson": float("nan"), "spearman": np.float32(0.5), "n": np.int64(3)}, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text()) == {"pearson": None, "spearman": 0.5, "n": 3}
    (tmp_path / "file").write_text("")
    with pytest.raises(OSError, match=r"cannot write .*file/r.json"):  # the target, not a temporary name
        write_results({"n": 1}, tmp_path / "file" / "r.json")


@pytest.mark.skipif(not (DATA_DIR / "clinc150").exists(), reason="shared data not found")
def test_named_sets_load_from_the_data_folder():
    assert len(load_stsb("dev", data_dir=DATA_DIR)) == 1500
    test = load_clinc150("test", data_dir=DATA_DIR)
    assert len(test) == 4500 and len(set(test.labels)) == 150
    assert set(load_clinc150("oos_val", data_dir=DATA_DIR).labels) == {"oos"}
    with pytest.raises(ValueError, match="unknown CLINC150 split 'dev'"):
        load_clinc150("dev", data_dir=DATA_DIR)
    with pytest.raises(FileNotFoundError, match="unset it to load from the Hub"):
        load_stsb("test", data_dir=DATA_DIR / "nowhere")


def test_evaluators_and_train_name_the_data_they_expect(tiny_encoder):
    """A datasets.Dataset, or data of another task, is refused with the type and its loader
    (it failed with an AttributeError from inside)."""
    import datasets

    from sentsim.data import load_stsb
    from sentsim.evaluation import evaluate_pairs, evaluate_retrieval, evaluate_sts, evaluate_triplets
    from sentsim.training import train
    from sentsim.training.losses import CoSENTLoss

    rows = datasets.Dataset.from_dict({"sentence1": ["a"], "sentence2": ["b"], "score": [1.0]})
    with pytest.raises(TypeError, match=r"pairs must be SentencePairs \(from load_stsb or read_sts\), got Dataset"):
        evaluate_sts(tiny_encoder, rows)
    with pytest.raises(TypeError, match="pairs must be LabelledPairs .*sts_pair_classification.*got SentencePairs"):
        evaluate_pairs(tiny_encoder, load_stsb("test", data_dir=DATA_DIR))
    with pytest.raises(TypeError, match="triplets must be Triplets .*got list"):
        evaluate_triplets(tiny_encoder, [("a", "b", "c")])
    with pytest.raises(TypeError, match="data must be RetrievalData .*got dict"):
        evaluate_retrieval(tiny_encoder, {"queries": {}})
    with pytest.raises(TypeError, match="data must be TrainingData .*load_training_data.*got Dataset"):
        train(tiny_encoder, rows, CoSENTLoss())


def test_retrieval_through_an_index_scores_as_exact_search_and_keywords(encoder):
    from sentsim.evaluation import IndexSearch

    corpus = {f"d{i}": text for i, text in enumerate(TEXTS)}
    queries = {f"q{i}": text for i, text in enumerate(TEXTS)}
    relevant = {f"q{i}": {f"d{(i + 1) % len(TEXTS)}"} for i in range(len(TEXTS))}
    data = RetrievalData(queries, corpus, relevant, ignore={f"q{i}": {f"d{i}"} for i in range(len(TEXTS))})
    exact = evaluate_retrieval(encoder, data, recall_at=(1, 3))
    dense = evaluate_retrieval(encoder, data, recall_at=(1, 3), index=IndexSearch(mode="dense"))
    assert exact.pop("search") == "exact" and dense.pop("search") == "dense"
    assert dense == pytest.approx(exact)  # the query's own text left out in both
    same = RetrievalData(queries, corpus, {q: {f"d{q[1:]}"} for q in queries})
    for mode in ("keyword", "hybrid"):
        assert evaluate_retrieval(encoder, same, index=IndexSearch(mode=mode))["mrr@10"] == 100.0
    with pytest.raises(TypeError, match="index must be"):
        evaluate_retrieval(encoder, data, index="hybrid")


def test_same_label_retrieval():
    from sentsim.data import LabelledTexts, same_label_retrieval

    corpus = LabelledTexts(["c", "d", "e"], ["y", "x", "y"])
    data = same_label_retrieval(LabelledTexts(["a", "b"], ["x", "y"]), corpus)
    assert data.queries == {"q0": "a", "q1": "b"} and data.corpus == {"d0": "c", "d1": "d", "d2": "e"}
    assert data.relevant == {"q0": {"d1"}, "q1": {"d0", "d2"}} and data.ignore == {}
    with pytest.raises(ValueError, match=r"label\(s\) \['z'\] of the queries have no document"):
        same_label_retrieval(LabelledTexts(["a"], ["z"]), corpus)
