"""Evaluators: each returns a dict of metrics with a primary metric."""

from sentsim.evaluation.correlation import pearson, spearman
from sentsim.evaluation.sts import evaluate_sts

__all__ = ["evaluate_sts", "pearson", "spearman"]
