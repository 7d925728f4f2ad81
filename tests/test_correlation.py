import numpy as np
import pytest

from sentsim.evaluation import pearson, spearman

scipy_stats = pytest.importorskip("scipy.stats")


def test_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 6, size=200).astype(float)  # many ties, like STS scores
    y = x + rng.normal(size=200)
    assert spearman(x, y) == pytest.approx(scipy_stats.spearmanr(x, y).statistic, abs=1e-12)
    assert pearson(x, y) == pytest.approx(scipy_stats.pearsonr(x, y).statistic, abs=1e-12)


def test_bad_lengths():
    with pytest.raises(ValueError, match="same length"):
        spearman([1, 2, 3], [1, 2])


def test_nan_is_refused_rather_than_ranked():
    with pytest.raises(ValueError, match=r"x\[2\] is nan; correlation needs finite values"):
        spearman([1, 2, np.nan], [1, 2, 3])  # np.argsort would rank NaN last and report 1.0
