"""Decisions on top of similarity: same-or-different pairs, and few-shot classification."""

from sentsim.decisions.calibration import IsotonicCalibration, PlattScaling
from sentsim.decisions.few_shot import FewShotClassifier
from sentsim.decisions.pair_classifier import PairClassifier

__all__ = ["FewShotClassifier", "IsotonicCalibration", "PairClassifier", "PlattScaling"]
