import numpy as np
import pytest
import torch

from sentsim import similarity


@pytest.fixture
def vectors():
    rng = np.random.default_rng(0)
    return rng.normal(size=(3, 5)).astype(np.float32), rng.normal(size=(4, 5)).astype(np.float32)


def reference(a, b, metric):
    if metric == "cosine":
        return (a / np.linalg.norm(a, axis=1, keepdims=True)) @ (b / np.linalg.norm(b, axis=1, keepdims=True)).T
    if metric == "dot":
        return a @ b.T
    order = 2 if metric == "euclidean" else 1
    return -np.linalg.norm(a[:, None, :] - b[None, :, :], ord=order, axis=-1)


@pytest.mark.parametrize("metric", ["cosine", "dot", "euclidean", "manhattan"])
def test_matrix_matches_numpy(vectors, metric):
    a, b = vectors
    scores = similarity(a, b, metric)
    assert isinstance(scores, np.ndarray) and scores.shape == (3, 4)
    np.testing.assert_allclose(scores, reference(a, b, metric), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("metric", ["cosine", "dot", "euclidean", "manhattan"])
def test_pairwise_is_the_matrix_diagonal(vectors, metric):
    a, b = vectors
    scores = similarity(a, b[:3], metric, pairwise=True)
    assert scores.shape == (3,)
    np.testing.assert_allclose(scores, np.diag(reference(a, b[:3], metric)), rtol=1e-5, atol=1e-5)


def test_distances_are_similarities(vectors):
    a, _ = vectors
    for metric in ("euclidean", "manhattan"):
        scores = similarity(a, a, metric)
        np.testing.assert_allclose(np.diag(scores), 0.0, atol=1e-6)
        assert (scores <= 1e-6).all()


def test_two_vectors_give_a_float(vectors):
    a, b = vectors
    score = similarity(a[0], b[0])
    assert isinstance(score, float)
    assert score == pytest.approx(float(reference(a[:1], b[:1], "cosine")[0, 0]), abs=1e-6)


def test_two_tensor_vectors_give_a_0d_tensor_with_its_gradient():
    a, b = torch.randn(5, requires_grad=True), torch.randn(5)
    score = similarity(a, b)
    assert isinstance(score, torch.Tensor) and score.shape == ()
    score.backward()  # usable in a loss: the gradient of the cosine
    expected = b / b.norm() / a.norm() - (a @ b) * a / a.norm() ** 3 / b.norm()
    torch.testing.assert_close(a.grad, expected.detach(), rtol=1e-5, atol=1e-6)
    assert isinstance(similarity(a.detach().numpy(), b), float)  # numpy on one side: a float


def test_torch_in_torch_out(vectors):
    a, b = vectors
    scores = similarity(torch.from_numpy(a), torch.from_numpy(b), "dot")
    assert isinstance(scores, torch.Tensor)
    np.testing.assert_allclose(scores.numpy(), a @ b.T, rtol=1e-5)


def test_pairwise_needs_equal_lengths(vectors):
    with pytest.raises(ValueError, match="same length; got 3 and 4"):
        similarity(*vectors, pairwise=True)


def test_dimension_mismatch(vectors):
    with pytest.raises(ValueError, match="dimensions differ"):
        similarity(vectors[0], vectors[1][:, :4])


def test_unknown_metric_lists_valid_ones(vectors):
    with pytest.raises(ValueError, match="'cosine', 'dot', 'euclidean', 'manhattan'"):
        similarity(*vectors, metric="jaccard")


def test_texts_are_refused_with_a_hint():
    with pytest.raises(TypeError, match="encode texts first"):
        similarity(np.array(["a"]), np.array(["b"]))
    with pytest.raises(TypeError, match="numpy array or torch tensor"):
        similarity(["a"], ["b"])


def test_reversed_and_strided_views_are_accepted(vectors):
    a, b = vectors
    np.testing.assert_allclose(similarity(a[::-1], b[:, ::-1]), reference(a[::-1], b[:, ::-1], "cosine"), atol=1e-6)
    np.testing.assert_allclose(similarity(a[::2], b, "dot"), a[::2] @ b.T, rtol=1e-5)


def test_float64_stays_float64_and_does_not_overflow():
    a = np.array([[1e30, 2e30], [3.0, -1.0]])
    scores = similarity(a, a, "dot")
    assert scores.dtype == np.float64 and np.isfinite(scores).all()
    assert scores[0, 0] == pytest.approx(5e60)
    assert similarity(a, a)[0, 0] == pytest.approx(1.0)
    assert similarity(a.astype(np.float32), a.astype(np.float32)[1:]).dtype == np.float32


def test_nan_and_infinity_are_refused_with_the_row(vectors):
    a, b = vectors
    bad = b.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"b holds NaN or infinity \(row 2 is the first\)"):
        similarity(a, bad)
    with pytest.raises(ValueError, match=r"a holds NaN or infinity \(row 0"):
        similarity(torch.full((1, 5), float("inf")), torch.from_numpy(b), pairwise=False)


@pytest.mark.parametrize("metric", ["cosine", "dot", "euclidean", "manhattan"])
def test_tensor_inputs_keep_their_gradients(metric):
    torch.manual_seed(0)
    a, b = torch.randn(3, 5, requires_grad=True), torch.randn(3, 5)
    naive = {
        "cosine": lambda: torch.nn.functional.cosine_similarity(a, b, dim=1),
        "dot": lambda: (a * b).sum(1),
        "euclidean": lambda: -(a - b).norm(dim=1),
        "manhattan": lambda: -(a - b).abs().sum(1),
    }[metric]
    similarity(a, b, metric, pairwise=True).sum().backward()
    ours, a.grad = a.grad.clone(), None
    naive().sum().backward()
    torch.testing.assert_close(ours, a.grad, rtol=1e-5, atol=1e-6)
    assert isinstance(similarity(a, b.numpy(), metric), np.ndarray)  # a numpy input still gives numpy
