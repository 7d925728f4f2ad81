"""Every metric against values computed by hand on small inputs."""

import math

import numpy as np
import pytest

from sentsim.evaluation import (
    average_precision,
    best_threshold,
    brier_score,
    classification_metrics,
    expected_calibration_error,
    retrieval_metrics,
)
from sentsim.evaluation.binary import binary_metrics
from sentsim.search.exact import exact_search


def test_best_threshold_for_accuracy_and_f1():
    scores = np.array([0.9, 0.8, 0.7, 0.3, 0.2])
    labels = np.array([1, 1, 0, 0, 1])
    # Cuts: >=.85 acc 3/5; >=.75 acc 4/5; >=.5 acc 3/5; >=.25 acc 2/5; all acc 3/5 -> 0.75.
    assert best_threshold(scores, labels, "accuracy") == pytest.approx(0.75)
    # F1: >=.85: 2/4; >=.75: 4/5; >=.5: 4/6; >=.25: 4/7; all: 6/8 -> 0.75 (F1 0.8).
    assert best_threshold(scores, labels, "f1") == pytest.approx(0.75)


def test_best_threshold_can_predict_nothing():
    threshold = best_threshold(np.array([0.9, 0.8, 0.1]), np.array([0, 0, 1]), "accuracy")
    assert threshold > 0.9  # predicting no positive is right 2 times of 3; any cut is worse


def test_binary_metrics_by_hand():
    result = binary_metrics(np.array([1, 1, 0, 0, 1]), np.array([1, 0, 0, 1, 1]))
    # tp=2 fp=1 fn=1 tn=1
    assert result == pytest.approx({"accuracy": 60.0, "precision": 200 / 3, "recall": 200 / 3, "f1": 200 / 3})
    assert binary_metrics(np.array([0, 0]), np.array([0, 1]))["precision"] == 0.0  # no positives predicted: 0, not NaN


def test_average_precision_by_hand():
    assert average_precision(np.array([0.9, 0.8, 0.7, 0.6]), np.array([1, 0, 1, 0])) == pytest.approx(
        100 * (1 + 2 / 3) / 2
    )
    assert average_precision(np.array([0.5, 0.5]), np.array([1, 0])) == pytest.approx(50.0)  # a tie is one threshold


def test_average_precision_matches_scikit_style_reference():
    rng = np.random.default_rng(0)
    scores, labels = rng.normal(size=300).round(1), rng.integers(0, 2, size=300)  # many ties
    order = np.argsort(-scores, kind="mergesort")
    thresholds = np.unique(scores)[::-1]
    precision = [labels[scores >= t].mean() for t in thresholds]
    recall = [labels[scores >= t].sum() / labels.sum() for t in thresholds]
    expected = sum((r - r0) * p for p, r, r0 in zip(precision, recall, [0.0, *recall[:-1]], strict=True))
    assert order.size == 300
    assert average_precision(scores, labels) == pytest.approx(100 * expected)


def test_brier_and_ece_by_hand():
    assert brier_score(np.array([0.9, 0.2]), np.array([1, 0])) == pytest.approx((0.01 + 0.04) / 2)
    probabilities, labels = np.array([0.1, 0.15, 0.9, 0.95]), np.array([0, 1, 1, 1])
    assert expected_calibration_error(probabilities, labels) == pytest.approx(0.5 * 0.375 + 0.5 * 0.075)
    for metric in (brier_score, expected_calibration_error):
        with pytest.raises(ValueError, match=r"probability 0 is 1.5; probabilities lie in \[0, 1\]"):
            metric(np.array([1.5, -0.2]), np.array([1, 0]))


@pytest.mark.parametrize(
    "scores, labels, message",
    [
        ([0.1, 0.2], [1, 1], "single class"),
        ([0.1, 0.2], [0, 2], "labels must be 0 or 1"),
        ([], [], "no examples"),
        ([0.1, float("nan")], [0, 1], "NaN"),
        ([0.1], [0, 1], "1 scores but 2 labels"),
    ],
)
def test_binary_bad_input(scores, labels, message):
    with pytest.raises(ValueError, match=message):
        average_precision(np.array(scores), np.array(labels))


def test_retrieval_metrics_by_hand():
    result = retrieval_metrics([["a", "b", "c"], ["x", "y"]], [{"b"}, {"x", "z"}])
    ndcg_1 = 1 / math.log2(3)
    ndcg_2 = 1 / (1 + 1 / math.log2(3))
    assert result["mrr@10"] == pytest.approx(100 * (0.5 + 1) / 2)
    assert result["ndcg@10"] == pytest.approx(100 * (ndcg_1 + ndcg_2) / 2)
    assert result["recall@1"] == pytest.approx(100 * (0 + 0.5) / 2)
    assert result["recall@5"] == pytest.approx(100 * (1 + 0.5) / 2)
    assert result["map@100"] == pytest.approx(100 * (0.5 + 0.5) / 2)


def test_retrieval_metrics_take_a_2d_array_and_ece_needs_bins():
    from sentsim.evaluation import expected_calibration_error

    as_lists = retrieval_metrics([["a", "b"], ["c", "d"]], [{"b"}, {"c"}])
    assert retrieval_metrics(np.array([["a", "b"], ["c", "d"]]), [{"b"}, {"c"}]) == as_lists
    with pytest.raises(ValueError, match="bins must be an int >= 1, got 0"):
        expected_calibration_error(np.array([0.2, 0.8]), np.array([0, 1]), bins=0)  # was 0.0


def test_retrieval_metrics_bad_input():
    with pytest.raises(ValueError, match="no queries"):
        retrieval_metrics([], [])
    with pytest.raises(ValueError, match="no relevant document"):
        retrieval_metrics([["a"]], [set()])
    for options in ({"recall_at": (-1,)}, {"recall_at": (0,)}, {"mrr_at": 0}):
        with pytest.raises(ValueError, match="cut-off must be an int >= 1"):
            retrieval_metrics([["a"]], [{"a"}], **options)
    with pytest.raises(TypeError, match="ndcg_at cut-off must be an int >= 1, got 2.5"):
        retrieval_metrics([["a"]], [{"a"}], ndcg_at=2.5)


def test_classification_metrics_by_hand():
    result = classification_metrics(["a", "a", "b", "c"], ["a", "b", "b", "b"])
    assert result["accuracy"] == pytest.approx(50.0)
    assert result["macro_f1"] == pytest.approx(100 * (2 / 3 + 2 / 4 + 0) / 3)
    with pytest.raises(ValueError, match="2 true labels but 1 predictions"):
        classification_metrics(["a", "b"], ["a"])
    with pytest.raises(ValueError, match=r"true label 1 is missing \(nan\)"):
        classification_metrics(["a", float("nan")], ["a", "b"])  # was a NaN macro-F1
    with pytest.raises(ValueError, match=r"predicted label 0 is missing \(None\)"):
        classification_metrics(["a", "b"], [None, "b"])
    assert classification_metrics([True, False], [True, True])["accuracy"] == 50.0  # bools and floats are labels
    assert classification_metrics([1.0, 2.0], [1.0, 1.0])["accuracy"] == 50.0


def test_evaluate_classifier_takes_series_and_arrays_and_refuses_one_string():
    import pandas as pd

    from sentsim.decisions import FewShotClassifier
    from sentsim.evaluation import evaluate_classifier

    from .toy_task import TOPICS, toy_encoder

    texts = [t for ts in TOPICS.values() for t in ts]
    labels = [k for k, ts in TOPICS.items() for _ in ts]
    classifier = FewShotClassifier(toy_encoder(dropout=0.0).eval(), threshold=0.5).add_examples(texts[::2], labels[::2])
    out = pd.Series(["zzz qqq", "what is love"], index=[4, 2])
    expected = evaluate_classifier(classifier, texts[1::2], labels[1::2], out_of_scope=list(out))
    assert expected["n_out_of_scope"] == 2
    frame = pd.DataFrame({"text": texts[1::2], "label": labels[1::2]}, index=range(100, 100 + len(labels[1::2])))
    for out_of_scope in (out, out.to_numpy()):
        assert evaluate_classifier(classifier, frame.text, frame.label, out_of_scope=out_of_scope) == expected
    assert evaluate_classifier(classifier, texts, labels, out_of_scope=np.array([], dtype=str))["n"] == len(texts)
    with pytest.raises(TypeError, match="out_of_scope must be a list of str here, got a single str"):
        evaluate_classifier(classifier, texts, labels, out_of_scope="what is love")


@pytest.mark.parametrize("metric", ["cosine", "dot", "euclidean", "manhattan"])
def test_exact_search_equals_brute_force(metric):
    rng = np.random.default_rng(0)
    queries, corpus = rng.normal(size=(7, 16)).astype(np.float32), rng.normal(size=(50, 16)).astype(np.float32)
    from sentsim import similarity

    full = similarity(queries, corpus, metric)
    scores, indices = exact_search(queries, corpus, 5, metric=metric, corpus_chunk=8, query_chunk=3)
    np.testing.assert_array_equal(indices, np.argsort(-full, axis=1, kind="stable")[:, :5])
    np.testing.assert_allclose(scores, np.take_along_axis(full, indices, axis=1), rtol=1e-5, atol=1e-5)


def test_exact_search_k_beyond_corpus_and_exclusions():
    corpus = np.eye(3, dtype=np.float32)
    scores, indices = exact_search(corpus, corpus, 10, exclude=[{0}, set(), {0, 1, 2}])
    assert indices.shape == (3, 3)
    assert 0 not in indices[0] and indices[1][0] == 1
    assert (indices[2] == -1).all() and np.isneginf(scores[2]).all()
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        exact_search(corpus, corpus, 0)
