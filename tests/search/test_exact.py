import numpy as np
import pytest
import torch

from sentsim.search.exact import exact_search


def test_k_and_chunk_sizes_must_be_positive_ints():
    corpus = np.eye(4, dtype=np.float32)
    for k in (2.5, True, "3", None, 0):
        with pytest.raises(ValueError if k == 0 else TypeError, match=f"k must be an int >= 1, got {k!r}"):
            exact_search(corpus, corpus, k)
    for option in ("query_chunk", "corpus_chunk"):
        with pytest.raises(ValueError, match=f"{option} must be an int >= 1, got 0"):
            exact_search(corpus, corpus, 2, **{option: 0})
    scores, indices = exact_search(corpus, corpus, np.int64(2), query_chunk=1, corpus_chunk=3)
    assert indices[:, 0].tolist() == [0, 1, 2, 3] and scores.shape == (4, 2)


def test_a_1d_query_is_one_query_and_shapes_are_checked():
    rng = np.random.default_rng(0)
    corpus = rng.normal(size=(20, 8)).astype(np.float32)
    scores, indices = exact_search(corpus[3], corpus, 3)
    expected_scores, expected = exact_search(corpus[3:4], corpus, 3)
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(scores, expected_scores)
    assert indices[0, 0] == 3
    _, from_tensor = exact_search(torch.from_numpy(corpus[3]), torch.from_numpy(corpus), 3)
    np.testing.assert_array_equal(from_tensor, expected)
    with pytest.raises(ValueError, match="queries have dimension 4, the corpus 8"):
        exact_search(corpus[:2, :4], corpus, 3)
    with pytest.raises(ValueError, match=r"queries must be \(n, d\) or one \(d,\) vector, got shape \(2, 2, 2\)"):
        exact_search(np.zeros((2, 2, 2)), corpus, 3)
