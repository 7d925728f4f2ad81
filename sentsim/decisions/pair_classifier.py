"""Same or different? A tuned similarity threshold, with calibrated probabilities."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sentsim._version import __version__
from sentsim.data.columns import binary_column, plain_list
from sentsim.decisions.calibration import Calibrator, calibrator_from_dict, make_calibrator
from sentsim.decisions.model_check import fitted_with_another_model, model_digest
from sentsim.evaluation.binary import (
    average_precision,
    best_threshold,
    binary_metrics,
    brier_score,
    check_binary,
    expected_calibration_error,
    require_both_classes,
)
from sentsim.evaluation.pairs import pair_scores
from sentsim.similarity import Metric
from sentsim.storage.atomic import write_text_atomic
from sentsim.storage.formats import check_format, read_json_object
from sentsim.validation import check_flag, check_int, finite_or_none, is_real, single_text, validate_texts

logger = logging.getLogger(__name__)


PAIR_CLASSIFIER_FORMAT = 1  # any other is refused
SAVED_KEYS = ("format", "sentsim_version", "metric", "threshold", "calibrator", "model_sha256")  # what save writes


class PairClassifier:
    """Decides whether two texts are similar: ``similarity >= threshold``.

    ``fit`` tunes the threshold on labelled pairs and fits a calibrator (Platt or isotonic) on
    held-out pairs, so ``predict_proba`` gives probabilities that match observed frequencies.

    Example:
        >>> classifier = PairClassifier(encoder).fit(sentences1, sentences2, labels)
        >>> classifier.predict("How do I reset my password?", "I forgot my password")
        True
    """

    def __init__(
        self,
        encoder,
        *,
        metric: str | Metric = "cosine",
        threshold: float | None = None,
        calibrator: Calibrator | None = None,
        batch_size: int = 64,
        show_progress: bool | None = None,
    ) -> None:
        threshold = finite_or_none("threshold", threshold)
        batch_size = check_int("batch_size", batch_size, minimum=1)
        self.encoder = encoder
        self.batch_size, self.show_progress = batch_size, show_progress
        self.metric = Metric.parse(metric)
        self.threshold = threshold
        self.calibrator = calibrator

    def fit(
        self,
        sentences1: Sequence[str],
        sentences2: Sequence[str],
        labels: Sequence[int],
        *,
        calibration: str = "platt",
        held_out: float = 0.3,
        calibration_pairs: tuple[Sequence[str], Sequence[str], Sequence[int]] | None = None,
        objective: str = "accuracy",
        seed: int = 0,
    ) -> PairClassifier:
        """Tune the threshold for ``objective`` and fit the calibrator on held-out pairs.

        The calibrator is fitted on ``calibration_pairs`` when given; otherwise a stratified
        ``held_out`` share of the pairs is set aside for it (and the threshold is tuned on the rest).
        """
        check_int("seed", seed)
        if calibration_pairs is not None and not (
            isinstance(calibration_pairs, (tuple, list)) and len(calibration_pairs) == 3
        ):
            raise TypeError(
                "calibration_pairs must be a tuple or list of three: (sentences1, sentences2, labels); "
                f"got {type(calibration_pairs).__name__}"
                + (f" of {len(calibration_pairs)}" if isinstance(calibration_pairs, (tuple, list)) else "")
            )
        scores, labels_a = self._scored(sentences1, sentences2, labels)
        require_both_classes(labels_a)
        if calibration_pairs is not None:
            fit_scores, fit_labels = scores, labels_a
            held_scores, held_labels = self._scored(*calibration_pairs)
        else:
            fit_rows, held_rows = _stratified_split(labels_a, held_out, seed)
            fit_scores, fit_labels = scores[fit_rows], labels_a[fit_rows]
            held_scores, held_labels = scores[held_rows], labels_a[held_rows]
        self.threshold = best_threshold(fit_scores, fit_labels, objective)
        self.calibrator = make_calibrator(calibration).fit(held_scores, held_labels)
        return self

    def score(self, a: str | Sequence[str], b: str | Sequence[str]) -> np.ndarray | float:
        """Similarity of each pair ``(a[i], b[i])`` (a float for two strings)."""
        a, b = single_text(a), single_text(b)
        single = isinstance(a, str) and isinstance(b, str)
        left = [a] if isinstance(a, str) else validate_texts(a, "a")
        right = [b] if isinstance(b, str) else validate_texts(b, "b")
        if not left and not right:
            return np.zeros(0, dtype=np.float64)
        scores = pair_scores(self.encoder, left, right, self.metric, self.batch_size, self.show_progress)
        return float(scores[0]) if single else scores

    def predict(self, a: str | Sequence[str], b: str | Sequence[str]) -> np.ndarray | bool:
        """True where a pair is similar (``score >= threshold``)."""
        if self.threshold is None:
            raise RuntimeError("the classifier has no threshold: call fit() first or pass threshold=")
        scores = self.score(a, b)
        return bool(scores >= self.threshold) if isinstance(scores, float) else scores >= self.threshold

    def predict_proba(self, a: str | Sequence[str], b: str | Sequence[str]) -> np.ndarray | float:
        """Calibrated probability that a pair is similar."""
        if self.calibrator is None:
            raise RuntimeError("the classifier is not calibrated: call fit() first")
        scores = self.score(a, b)
        probabilities = self.calibrator.predict(np.atleast_1d(scores))
        return float(probabilities[0]) if isinstance(scores, float) else probabilities

    def evaluate(self, sentences1: Sequence[str], sentences2: Sequence[str], labels: Sequence[int]) -> dict:
        """Accuracy, precision, recall, F1, AP (x 100) at the fitted threshold; Brier score and ECE of the probabilities."""
        if self.threshold is None or self.calibrator is None:
            raise RuntimeError("call fit() before evaluate()")
        scores, labels_a = self._scored(sentences1, sentences2, labels)
        probabilities = self.calibrator.predict(scores)
        results = binary_metrics(scores >= self.threshold, labels_a)
        results["average_precision"] = average_precision(scores, labels_a)
        results["brier"] = brier_score(probabilities, labels_a)
        results["ece"] = expected_calibration_error(probabilities, labels_a)
        return results | {"threshold": self.threshold, "n": len(labels_a), "primary_metric": "accuracy"}

    def save(self, path: str | Path, *, overwrite: bool = False) -> None:
        """Write the threshold, metric and calibrator to a JSON file (the encoder is saved separately).

        An existing saved pair classifier is replaced; any other existing file only with ``overwrite=True``.
        """
        path = Path(path)
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a folder; give a .json file path")
        if path.exists() and not check_flag("overwrite", overwrite) and not _is_saved_classifier(path):
            raise FileExistsError(
                f"{path} exists and is not a saved pair classifier; pass overwrite=True to replace it"
            )
        data = {
            "format": PAIR_CLASSIFIER_FORMAT,
            "sentsim_version": __version__,
            "metric": self.metric.value,
            "threshold": self.threshold,
            "calibrator": self.calibrator.to_dict() if self.calibrator is not None else None,
            "model_sha256": model_digest(self.encoder),
        }
        write_text_atomic(path, json.dumps(data, indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path, encoder) -> PairClassifier:
        """Read a classifier saved by :meth:`save`, to run with ``encoder``."""
        data = read_json_object(Path(path), "saved pair classifier")
        missing = [key for key in SAVED_KEYS if key not in data]
        if missing:  # e.g. a file of evaluation results, which has a metric and a threshold too
            raise ValueError(f"{path} is not a saved pair classifier (no {', '.join(missing)})")
        check_format(Path(path), data, PAIR_CLASSIFIER_FORMAT, "pair classifier")  # before the other fields
        try:
            calibrator = calibrator_from_dict(data["calibrator"]) if data["calibrator"] is not None else None
        except (ValueError, TypeError, AttributeError) as error:  # a calibrator of another shape
            raise ValueError(f"{path} is not a saved pair classifier ({type(error).__name__}: {error})") from None
        if fitted_with_another_model(data["model_sha256"], encoder):
            logger.warning("%s was fitted with another model: its threshold and calibration may not fit this one", path)
        return cls(encoder, metric=data["metric"], threshold=data["threshold"], calibrator=calibrator)

    def _scored(self, sentences1, sentences2, labels) -> tuple[np.ndarray, np.ndarray]:
        left, right = validate_texts(sentences1, "sentences1"), validate_texts(sentences2, "sentences2")
        labels_a = binary_column(plain_list(labels), "labels", "PairClassifier")  # bools, 0/1; <NA> named
        if len(labels_a) != len(left):
            raise ValueError(f"{len(left)} pairs but {len(labels_a)} labels")
        return check_binary(
            pair_scores(self.encoder, left, right, self.metric, self.batch_size, self.show_progress), labels_a
        )


def _stratified_split(labels: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if not is_real(share) or not 0.0 < share < 1.0:
        raise ValueError(f"held_out must be between 0 and 1, got {share}")
    rng = np.random.default_rng(seed)
    fit_rows, held_rows = [], []
    for label in (0, 1):
        members = rng.permutation(np.flatnonzero(labels == label))
        cut = int(round(len(members) * share))
        if cut < 2 or len(members) - cut < 2:
            raise ValueError(
                f"too few pairs of label {label} ({len(members)}) to set {share:.0%} aside for calibration; "
                "add pairs or pass calibration_pairs"
            )
        held_rows.append(members[:cut])
        fit_rows.append(members[cut:])
    return np.sort(np.concatenate(fit_rows)), np.sort(np.concatenate(held_rows))


def _is_saved_classifier(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and all(key in data for key in SAVED_KEYS)
