"""Few-shot classification: label texts by their nearest classes in a small support set.

New classes and examples are added without retraining: the support set is just embeddings.
The tower can also be fine-tuned on pairs built from the support set (same class = similar,
different = dissimilar); call :meth:`FewShotClassifier.refresh` afterwards to re-embed it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from sentsim._version import __version__
from sentsim.data.columns import class_column
from sentsim.decisions.logistic import LogisticHead
from sentsim.decisions.model_check import fitted_with_another_model, model_digest
from sentsim.storage.atomic import atomic_folder, check_replaceable, recover_folder
from sentsim.storage.formats import check_format
from sentsim.storage.weights import load_safetensors, save_safetensors
from sentsim.training.few_shot import fine_tune_few_shot
from sentsim.validation import (
    check_choice,
    check_int,
    finite_or_none,
    nonfinite_row,
    plain,
    positive_number,
    single_text,
    validate_texts,
)

logger = logging.getLogger(__name__)

STRATEGIES = ("prototype", "knn", "logistic")
THRESHOLD_OBJECTIVES = ("balanced", "accuracy")
CONFIG_NAME, EMBEDDINGS_NAME = "few_shot.json", "support.safetensors"
FEW_SHOT_FORMAT = 1  # of few_shot.json; any other is refused
SETTINGS = ("strategy", "k", "threshold", "unknown_label", "temperature", "logistic_c")  # saved, passed to __init__
SAVED_KEYS = ("format", *SETTINGS, "texts", "labels", "model_sha256")  # what save writes and load needs

Label = str | int


class FewShotClassifier:
    """Nearest-class classification over a support set of ``(text, label)`` examples.

    Args:
        encoder: a ``SentenceEncoder`` (embeddings are L2-normalized here; similarity is cosine).
        strategy: ``"prototype"``: cosine to each class's mean embedding; ``"knn"``: the mean
            cosine of the ``k`` most similar examples of each class; ``"logistic"``: the class
            probabilities of a logistic-regression head fitted on the support embeddings (refitted
            on the next prediction whenever the support set changes; the encoder is untouched).
        k: neighbours per class for ``knn``.
        logistic_c: inverse L2 regularization strength of the ``logistic`` head (scikit-learn's ``C``).
        threshold: below this best score the answer is ``unknown_label`` ("none of these");
            ``None`` always answers a class. :meth:`fit_threshold` tunes it.
        unknown_label: the "none of these" answer.
        temperature: softmax temperature of :meth:`predict_proba` over cosine scores.
        batch_size, show_progress: passed to ``encoder.encode``.
    """

    def __init__(
        self,
        encoder,
        *,
        strategy: str = "prototype",
        k: int = 3,
        threshold: float | None = None,
        unknown_label: Label = "none",
        temperature: float = 0.05,
        logistic_c: float = 100.0,
        batch_size: int = 64,
        show_progress: bool | None = None,
    ) -> None:
        check_choice("strategy", strategy, STRATEGIES)
        unknown_label = plain(unknown_label)  # np.int64 / np.str_, as class labels are taken
        if isinstance(unknown_label, bool) or not isinstance(unknown_label, (str, int)) or unknown_label == "":
            raise TypeError(f"unknown_label must be a non-empty str or an int, got {unknown_label!r}")
        k, batch_size = (
            check_int("k", k, minimum=1),
            check_int("batch_size", batch_size, minimum=1),
        )  # as int: saved as JSON
        temperature, logistic_c = positive_number("temperature", temperature), positive_number("logistic_c", logistic_c)
        threshold = finite_or_none("threshold", threshold)
        self.encoder = encoder
        self.strategy, self.k, self.threshold = strategy, k, threshold
        self.unknown_label, self.temperature, self.logistic_c = unknown_label, temperature, logistic_c
        self.batch_size, self.show_progress = batch_size, show_progress
        self._texts: list[str] = []
        self._labels: list[Label] = []
        self._embeddings = np.zeros((0, encoder.dim), dtype=np.float32)
        self._head: LogisticHead | None = None  # fitted on first use after the support set changes

    @property
    def classes(self) -> list[Label]:
        """The labels of the support set, in the order they were first added."""
        return list(dict.fromkeys(self._labels))

    def support(self) -> tuple[list[str], list[Label]]:
        """The support set's texts and labels (for building fine-tuning pairs)."""
        return list(self._texts), list(self._labels)

    def add_examples(
        self, texts: Sequence[str], labels: Sequence[Label], *, embeddings: np.ndarray | None = None
    ) -> FewShotClassifier:
        """Add labelled examples (new classes welcome); ``embeddings`` skips encoding when already computed."""
        texts = validate_texts(texts)
        if isinstance(labels, str):  # would read as one label per character
            raise TypeError(f"labels must be a list with one label per text, got the str {labels!r}")
        blank = next((index for index, text in enumerate(texts) if not text.strip()), None)
        if blank is not None:  # its embedding would say nothing about its class
            raise ValueError(f"texts[{blank}] is empty ({texts[blank]!r}); every support example needs a text")
        labels = class_column(labels, "labels", "support set")
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        if self.unknown_label in labels:
            raise ValueError(f"the label {self.unknown_label!r} is reserved for 'none of these' answers")
        if embeddings is None:
            embeddings = self._encode(texts)
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.shape != (len(texts), self._embeddings.shape[1]):
            raise ValueError(
                f"embeddings must have shape ({len(texts)}, {self._embeddings.shape[1]}): one row per text, "
                f"the encoder's dimension; got {embeddings.shape}"
            )
        _check_finite(embeddings, "embeddings")
        embeddings = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
        self._texts += texts
        self._labels += labels
        self._embeddings = np.concatenate([self._embeddings, embeddings])
        self._head = None
        return self

    def remove_class(self, label: Label) -> None:
        """Forget every example of ``label``."""
        if label not in self._labels:
            raise KeyError(f"no class {label!r}; classes are {self.classes[:10]}")
        keep = [i for i, known in enumerate(self._labels) if known != label]
        self._texts = [self._texts[i] for i in keep]
        self._labels = [self._labels[i] for i in keep]
        self._embeddings = self._embeddings[keep]
        self._head = None

    def fine_tune(self, **options):
        """Siamese fine-tuning of the encoder on pairs from the support set; the support set is
        re-embedded after. ``options`` (``rounds``, ``config``, ``temperature``, ``symmetric``,
        ``seed``) and their defaults are those of :func:`sentsim.training.few_shot.fine_tune_few_shot`."""
        return fine_tune_few_shot(self, **options)

    def refresh(self) -> None:
        """Re-embed the support set with the (fine-tuned) encoder."""
        self._embeddings = self._encode(self._texts) if self._texts else self._embeddings
        self._head = None

    def scores(self, texts: str | Sequence[str] | np.ndarray) -> np.ndarray:
        """Score of each text (or embedding row) for each class, ``(n, len(classes))``: cosine
        (``prototype``, ``knn``) or probability (``logistic``); ``(len(classes),)`` for one string or embedding."""
        one = _as_batch_of_one(texts)
        if one is not None:
            return self.scores(one)[0]
        if not self._labels:
            raise RuntimeError("the support set is empty: add_examples() first")
        queries = self._queries(texts)
        if self.strategy == "logistic":
            return self._logistic_head().probabilities(queries)
        similarities = torch.from_numpy(queries @ self._embeddings.T)  # (n, support)
        labels = np.asarray(self._labels, dtype=object)
        columns = []
        for label in self.classes:
            members = similarities[:, torch.from_numpy(np.flatnonzero(labels == label))]
            if self.strategy == "prototype":
                prototype = self._embeddings[labels == label].mean(axis=0)
                prototype /= max(float(np.linalg.norm(prototype)), 1e-12)
                columns.append(torch.from_numpy(queries @ prototype))
            else:
                columns.append(members.topk(min(self.k, members.shape[1]), dim=1).values.mean(dim=1))
        return torch.stack(columns, dim=1).numpy()

    def predict_proba(self, texts: str | Sequence[str] | np.ndarray) -> np.ndarray:
        """Class probabilities, ``(n, len(classes))``, rows sum to 1: the head's (``logistic``) or a
        softmax over classes of ``scores / temperature``; ``(len(classes),)`` for one string or embedding."""
        one = _as_batch_of_one(texts)
        if one is not None:
            return self.predict_proba(one)[0]
        if self.strategy == "logistic":
            return self.scores(texts)
        return torch.softmax(torch.from_numpy(self.scores(texts)) / self.temperature, dim=1).numpy()

    def predict(self, texts: str | Sequence[str] | np.ndarray) -> list[Label] | Label:
        """The best class of each text, or ``unknown_label`` where its score is under ``threshold``
        (one label for one string or embedding)."""
        one = _as_batch_of_one(texts)
        if one is not None:
            return self.predict(one)[0]
        scores = self.scores(texts)
        classes = self.classes
        best = scores.argmax(axis=1)
        return [
            self.unknown_label if self.threshold is not None and row[i] < self.threshold else classes[i]
            for row, i in zip(scores, best, strict=True)
        ]

    def fit_threshold(
        self, texts: Sequence[str] | np.ndarray, labels: Sequence[Label], *, objective: str = "balanced"
    ) -> float:
        """Tune ``threshold`` on labelled texts, where out-of-scope ones carry ``unknown_label``.

        ``balanced`` maximizes the mean of in-scope accuracy and out-of-scope recall;
        ``accuracy`` maximizes accuracy over all the texts.
        """
        check_choice("objective", objective, THRESHOLD_OBJECTIVES)
        labels = class_column(labels, "labels", "fit_threshold")
        if len(texts) != len(labels):
            raise ValueError(f"fit_threshold got {len(texts)} texts but {len(labels)} labels")
        unknown = sorted(map(repr, set(labels) - set(self.classes) - {self.unknown_label}))  # 1 is not "1"
        if unknown:
            logger.warning(
                "fit_threshold: %d label(s) name no class of the support set (%s); their texts count as errors",
                len(unknown),
                ", ".join(unknown[:5]),
            )
        out = np.array([label == self.unknown_label for label in labels])
        if out.all() or not out.any():
            raise ValueError(
                f"fit_threshold needs in-scope texts and out-of-scope ones labelled {self.unknown_label!r}"
            )
        scores = self.scores(texts)
        classes = self.classes
        best_score = scores.max(axis=1)
        correct = np.array([classes[i] == label for i, label in zip(scores.argmax(axis=1), labels, strict=True)])
        candidates = np.unique(np.r_[best_score, best_score.max() + 1e-6])
        # For each candidate t: in-scope right when correct and score >= t; out-of-scope right when score < t.
        in_right = np.array([(correct & ~out & (best_score >= t)).sum() for t in candidates])
        out_right = np.array([(out & (best_score < t)).sum() for t in candidates])
        if objective == "balanced":
            values = in_right / (~out).sum() + out_right / out.sum()
        else:
            values = (in_right + out_right) / len(labels)
        self.threshold = float(candidates[int(np.argmax(values))])
        return self.threshold

    def save(self, folder: str | Path, *, overwrite: bool = False) -> None:
        """Write the support set (texts, labels, embeddings) and settings to ``folder``, atomically.

        It replaces the whole folder, so a non-empty folder that holds no saved classifier is
        refused unless ``overwrite``.
        """
        check_replaceable(folder, (CONFIG_NAME,), "few-shot classifier", overwrite=overwrite)
        config = {
            "format": FEW_SHOT_FORMAT,
            "sentsim_version": __version__,
            "strategy": self.strategy,
            "k": self.k,
            "threshold": self.threshold,
            "unknown_label": self.unknown_label,
            "temperature": self.temperature,
            "logistic_c": self.logistic_c,
            "texts": self._texts,
            "labels": self._labels,
            "model_sha256": model_digest(self.encoder),
        }
        with atomic_folder(folder) as staging:
            (staging / CONFIG_NAME).write_text(json.dumps(config, ensure_ascii=False) + "\n", encoding="utf-8")
            save_safetensors({"embeddings": torch.from_numpy(self._embeddings)}, staging / EMBEDDINGS_NAME)

    @classmethod
    def load(cls, folder: str | Path, encoder) -> FewShotClassifier:
        """Read a classifier saved by :meth:`save`; the support set is re-embedded if ``encoder`` has another dimension."""
        folder = Path(folder)
        recover_folder(folder)  # a save that a crash interrupted between its two renames
        try:
            config = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
            missing = [key for key in SAVED_KEYS if key not in config]
            if missing:
                raise KeyError(f"no {', '.join(missing)}")
        except (ValueError, KeyError, TypeError) as error:  # not JSON, or JSON of another shape
            raise ValueError(
                f"{folder / CONFIG_NAME} is not a saved few-shot classifier ({type(error).__name__}: {error})"
            ) from None
        check_format(folder / CONFIG_NAME, config, FEW_SHOT_FORMAT, "few-shot classifier")  # before the other fields
        texts, labels = config["texts"], config["labels"]
        try:
            classifier = cls(encoder, **{name: config[name] for name in SETTINGS})
        except (ValueError, TypeError) as error:  # a setting of the wrong type or value
            raise ValueError(f"{folder / CONFIG_NAME}: {error}") from None
        embeddings = load_safetensors(folder / EMBEDDINGS_NAME)["embeddings"].numpy()
        if fitted_with_another_model(config["model_sha256"], encoder):
            logger.warning(
                "%s was saved with another model: the support set is embedded again with this one, "
                "and a saved threshold may no longer fit",
                folder,
            )
            embeddings = None
        elif embeddings.shape[1] != encoder.dim:
            logger.warning(
                "%s was saved with %d-dimensional embeddings; the encoder gives %d: the support set is "
                "embedded again, and a saved threshold may no longer fit",
                folder,
                embeddings.shape[1],
                encoder.dim,
            )
            embeddings = None
        if texts:
            classifier.add_examples(texts, labels, embeddings=embeddings)
            if embeddings is not None:
                classifier._embeddings = embeddings  # exactly as saved (normalized then), so scores match to the bit
        return classifier

    def _logistic_head(self) -> LogisticHead:
        if self._head is None:
            if len(self.classes) < 2:
                raise ValueError("the logistic strategy needs a support set with at least 2 classes")
            index = {label: i for i, label in enumerate(self.classes)}
            targets = np.array([index[label] for label in self._labels])
            self._head = LogisticHead.fit(self._embeddings, targets, len(index), c=self.logistic_c)
        return self._head

    def _queries(self, texts: Sequence[str] | np.ndarray) -> np.ndarray:
        if isinstance(texts, np.ndarray) and texts.dtype.kind == "f":
            dim = self._embeddings.shape[1]
            if texts.ndim not in (1, 2) or texts.shape[-1] != dim:
                raise ValueError(f"query embeddings must have shape (n, {dim}) or ({dim},), got {texts.shape}")
            queries = texts.astype(np.float32).reshape(-1, dim)
            _check_finite(queries, "query embeddings")
            return queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
        return self._encode(validate_texts(texts)).reshape(-1, self._embeddings.shape[1])

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts, normalize=True, batch_size=self.batch_size, show_progress=self.show_progress)


def _check_finite(embeddings: np.ndarray, name: str) -> None:
    bad = nonfinite_row(embeddings)
    if bad is not None:
        raise ValueError(f"{name} row {bad} holds NaN or infinity")


def _as_batch_of_one(texts: object) -> list[str] | np.ndarray | None:
    """One query (a string, or a 1-D embedding) as a batch of one; None for a batch."""
    texts = single_text(texts)
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, np.ndarray) and texts.dtype.kind == "f" and texts.ndim == 1:
        return texts[None, :]
    return None
