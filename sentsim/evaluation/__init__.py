"""Evaluators: each returns a dict of metrics with a ``primary_metric``; ``write_results`` saves one."""

from sentsim.evaluation.binary import average_precision, best_threshold, brier_score, expected_calibration_error
from sentsim.evaluation.classification import classification_metrics, evaluate_classifier, multi_label_metrics
from sentsim.evaluation.correlation import pearson, spearman
from sentsim.evaluation.indexed import IndexSearch
from sentsim.evaluation.pairs import evaluate_pairs
from sentsim.evaluation.ranking import retrieval_metrics
from sentsim.evaluation.report import write_results
from sentsim.evaluation.retrieval import evaluate_retrieval
from sentsim.evaluation.sts import evaluate_sts
from sentsim.evaluation.triplets import evaluate_triplets

__all__ = [
    "IndexSearch",
    "average_precision",
    "best_threshold",
    "brier_score",
    "classification_metrics",
    "evaluate_classifier",
    "evaluate_pairs",
    "evaluate_retrieval",
    "evaluate_sts",
    "evaluate_triplets",
    "expected_calibration_error",
    "multi_label_metrics",
    "pearson",
    "retrieval_metrics",
    "spearman",
    "write_results",
]
