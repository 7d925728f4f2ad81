"""Few-shot and zero-shot classification: texts labelled by their nearest classes in a small support set.

New classes and examples are added without retraining: the support set is just embeddings. A
class may also be described by a label text (its name in words, or a description), which joins
its examples as a weighted member; with label texts and no examples at all, the classifier is
zero-shot. The tower can be fine-tuned on pairs built from the support set (and label texts);
:meth:`FewShotClassifier.fine_tune` re-embeds everything afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from sentsim.data.columns import class_column, label_set_column
from sentsim.decisions import class_scores
from sentsim.decisions import few_shot_store as store
from sentsim.decisions.label_text import check_known, check_label_text, label_prompt, label_texts_for
from sentsim.decisions.logistic import LogisticHead
from sentsim.decisions.model_check import model_digest
from sentsim.decisions.thresholds import out_of_scope_threshold, tune_class_thresholds
from sentsim.training.few_shot import fine_tune_few_shot
from sentsim.validation import (
    check_choice,
    check_flag,
    check_int,
    finite_or_none,
    nonfinite_row,
    plain,
    positive_number,
    single_text,
    validate_texts,
)

logger = logging.getLogger(__name__)

__all__ = ["FewShotClassifier"]

STRATEGIES = ("prototype", "knn", "logistic")
THRESHOLD_OBJECTIVES = ("balanced", "accuracy")
LABEL_WEIGHT = 1.0  # a label text is worth this many examples (chosen on CLINC150 val: bench_few_shot.py --sweep)

Label = str | int


class FewShotClassifier:
    """Nearest-class classification over a support set of ``(text, label)`` examples and label texts.

    Args:
        encoder: a ``SentenceEncoder`` (embeddings are L2-normalized here; similarity is cosine).
        labels: the classes, declared up front (needed for zero-shot; examples may add more).
        label_text: ``"names"`` (each str label in words: ``card_arrival`` -> "card arrival") or a
            dict of label -> description (a class it leaves out uses its name; see
            :mod:`sentsim.decisions.label_text`). Label texts are embedded with the model's document
            prompt where it has one, and count as ``label_weight`` examples of their class: in the
            prototype, among the ``knn`` neighbours, as weighted points of the ``logistic`` head,
            and as anchors of :meth:`fine_tune`.
        label_weight: how many examples a label text is worth (> 0 for a class without examples).
        multi_label: examples carry label sets; :meth:`predict` answers every class whose score
            reaches its own threshold (:meth:`fit_class_thresholds`), :meth:`predict_proba` gives
            independent sigmoids.
        strategy: ``"prototype"``: cosine to each class's mean embedding; ``"knn"``: the mean
            cosine of the ``k`` most similar examples of each class; ``"logistic"``: the class
            probabilities of a logistic-regression head fitted on the support embeddings (refitted
            on the next prediction whenever the support set changes; the encoder is untouched).
        k: neighbours per class for ``knn``.
        logistic_c: inverse L2 regularization strength of the ``logistic`` head (scikit-learn's ``C``).
        threshold: single-label: below this best score the answer is ``unknown_label`` ("none of
            these"; ``None`` always answers a class; :meth:`fit_threshold` tunes it). Multi-label:
            the threshold of every class without its own.
        unknown_label: the "none of these" answer (single-label).
        temperature: softmax temperature of :meth:`predict_proba` over cosine scores.
        batch_size, show_progress: passed to ``encoder.encode``.
    """

    def __init__(
        self,
        encoder,
        *,
        labels: Sequence[Label] | None = None,
        label_text: str | dict[Label, str] | None = None,
        label_weight: float = LABEL_WEIGHT,
        multi_label: bool = False,
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
        self.label_weight = positive_number("label_weight", label_weight, allow_zero=True)
        self.multi_label = check_flag("multi_label", multi_label)
        threshold = finite_or_none("threshold", threshold)
        self.label_text = check_label_text(label_text)
        declared = [] if labels is None else class_column(_label_list(labels), "labels", "FewShotClassifier")
        if unknown_label in declared:
            raise ValueError(f"the label {unknown_label!r} is reserved for 'none of these' answers")
        label_texts_for(self.label_text, declared)  # "names" with int labels: refused now
        self.encoder = encoder
        self.strategy, self.k, self.threshold = strategy, k, threshold
        self.unknown_label, self.temperature, self.logistic_c = unknown_label, temperature, logistic_c
        self.batch_size, self.show_progress = batch_size, show_progress
        self.class_thresholds: dict[Label, float] = {}  # multi-label, by fit_class_thresholds
        self._declared: list[Label] = list(dict.fromkeys(declared))
        self._texts: list[str] = []
        self._labels: list = []  # one label per example, or a tuple of labels (multi_label)
        self._embeddings = np.zeros((0, encoder.dim), dtype=np.float32)
        self._label_vectors: dict[str, np.ndarray] = {}  # label text -> unit embedding; kept until refresh()
        self._layout_cache: class_scores.Layout | None = None
        self._head: LogisticHead | None = None  # fitted on first use after the support set changes

    @property
    def classes(self) -> list[Label]:
        """The declared labels, then those of the examples, in the order they were first met."""
        found = (label for labels in self._labels for label in labels) if self.multi_label else self._labels
        return list(dict.fromkeys([*self._declared, *found]))

    def support(self) -> tuple[list[str], list]:
        """The support set's texts and labels (a tuple of labels per text when ``multi_label``)."""
        return list(self._texts), list(self._labels)

    def label_texts(self) -> dict[Label, str]:
        """The label text of each class that has one (without the prompt it is embedded with); a
        ValueError when ``label_text`` describes a label that is no class (declared or met in the examples)."""
        check_known(self.label_text, self.classes)
        return label_texts_for(self.label_text, self.classes)

    def add_examples(
        self, texts: Sequence[str], labels: Sequence, *, embeddings: np.ndarray | None = None
    ) -> FewShotClassifier:
        """Add labelled examples (new classes welcome); ``embeddings`` skips encoding when already computed.

        With ``multi_label``, each label is a list of labels (or one label, a set of one).
        """
        texts = validate_texts(texts)
        if isinstance(labels, str):  # would read as one label per character
            raise TypeError(f"labels must be a list with one label per text, got the str {labels!r}")
        blank = next((index for index, text in enumerate(texts) if not text.strip()), None)
        if blank is not None:  # its embedding would say nothing about its class
            raise ValueError(f"texts[{blank}] is empty ({texts[blank]!r}); every support example needs a text")
        if self.multi_label:
            labels = label_set_column(_label_list(labels), "labels", "support set")
            flat = [label for row in labels for label in row]
        else:
            labels = flat = class_column(labels, "labels", "support set")
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        if self.unknown_label in flat:
            raise ValueError(f"the label {self.unknown_label!r} is reserved for 'none of these' answers")
        label_texts_for(self.label_text, list(dict.fromkeys(flat)))  # "names" with an int label: refused
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
        self._changed()
        return self

    def remove_class(self, label: Label) -> None:
        """Forget ``label``: its examples (multi-label: its place in their label sets), declaration and description."""
        if label not in self.classes:
            raise KeyError(f"no class {label!r}; classes are {self.classes[:10]}")
        if self.multi_label:
            kept = [tuple(other for other in labels if other != label) for labels in self._labels]
            keep = [i for i, labels in enumerate(kept) if labels]
            self._labels = [kept[i] for i in keep]
        else:
            keep = [i for i, known in enumerate(self._labels) if known != label]
            self._labels = [self._labels[i] for i in keep]
        self._texts = [self._texts[i] for i in keep]
        self._embeddings = self._embeddings[keep]
        self._declared = [known for known in self._declared if known != label]
        if isinstance(self.label_text, dict):
            self.label_text = {known: text for known, text in self.label_text.items() if known != label}
        self.class_thresholds.pop(label, None)
        self._changed()

    def fine_tune(self, **options):
        """Siamese fine-tuning of the encoder on pairs from the support set and its label texts; the
        support set and label texts are re-embedded after. ``options`` (``rounds``, ``config``,
        ``temperature``, ``symmetric``, ``label_share``, ``seed``) and their defaults are those of
        :func:`sentsim.training.few_shot.fine_tune_few_shot`."""
        return fine_tune_few_shot(self, **options)

    def refresh(self) -> None:
        """Re-embed the support set and label texts with the (fine-tuned) encoder."""
        self._embeddings = self._encode(self._texts) if self._texts else self._embeddings
        self._label_vectors = {}
        self._changed()

    def scores(self, texts: str | Sequence[str] | np.ndarray) -> np.ndarray:
        """Score of each text (or embedding row) for each class, ``(n, len(classes))``: cosine
        (``prototype``, ``knn``) or probability (``logistic``); ``(len(classes),)`` for one string or embedding."""
        one = _as_batch_of_one(texts)
        if one is not None:
            return self.scores(one)[0]
        layout = self._layout()
        queries = self._queries(texts)
        if self.strategy == "logistic":
            return self._logistic_head(layout).probabilities(queries)
        parts = (self._embeddings, layout.members, layout.label_vectors, layout.has_text, self.label_weight)
        if self.strategy == "prototype":
            return class_scores.prototype_scores(queries, class_scores.prototypes(*parts))
        return class_scores.knn_scores(queries, *parts, self.k)

    def predict_proba(self, texts: str | Sequence[str] | np.ndarray) -> np.ndarray:
        """Class probabilities, ``(n, len(classes))``; ``(len(classes),)`` for one string or embedding.

        Single-label: rows sum to 1 (the head's with ``logistic``, else a softmax over classes of
        ``scores / temperature``). Multi-label: independent sigmoids, the head's with ``logistic``,
        else ``sigmoid((score - class threshold) / temperature)`` (0.5 at the threshold).
        """
        one = _as_batch_of_one(texts)
        if one is not None:
            return self.predict_proba(one)[0]
        scores = self.scores(texts)
        if self.strategy == "logistic":
            return scores
        if self.multi_label:
            return torch.sigmoid(torch.from_numpy((scores - self._thresholds()) / self.temperature)).numpy()
        return torch.softmax(torch.from_numpy(scores) / self.temperature, dim=1).numpy()

    def predict(self, texts: str | Sequence[str] | np.ndarray) -> list:
        """The best class of each text, or ``unknown_label`` where its score is under ``threshold``
        (one label for one string or embedding). Multi-label: the list of classes whose score
        reaches their threshold, best first (empty for none)."""
        one = _as_batch_of_one(texts)
        if one is not None:
            return self.predict(one)[0]
        scores = self.scores(texts)
        classes = self.classes
        if self.multi_label:
            passed = scores >= self._thresholds()
            return [
                [classes[c] for c in np.argsort(-row, kind="stable") if ok[c]]
                for row, ok in zip(scores, passed, strict=True)
            ]
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
        if self.multi_label:
            raise ValueError("a multi-label classifier has a threshold per class: use fit_class_thresholds()")
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
        correct = np.array([self.classes[i] == label for i, label in zip(scores.argmax(axis=1), labels, strict=True)])
        self.threshold = out_of_scope_threshold(scores.max(axis=1), correct, out, objective)
        return self.threshold

    def fit_class_thresholds(self, texts: Sequence[str] | np.ndarray, labels: Sequence) -> dict[Label, float]:
        """Multi-label: tune one threshold per class on labelled texts (each with its label set, which
        may be empty), maximizing each class's F1; stored in ``class_thresholds`` and returned."""
        if not self.multi_label:
            raise ValueError(
                "fit_class_thresholds is for multi_label=True; a single-label classifier uses fit_threshold"
            )
        rows = label_set_column(_label_list(labels), "labels", "fit_class_thresholds", allow_empty=True)
        if len(texts) != len(rows):
            raise ValueError(f"fit_class_thresholds got {len(texts)} texts but {len(rows)} label sets")
        classes = self.classes
        unknown = sorted({repr(label) for row in rows for label in row if label not in classes})
        if unknown:
            raise ValueError(f"fit_class_thresholds: label(s) {', '.join(unknown[:5])} name no class of the classifier")
        scores = self.scores(texts)
        thresholds = tune_class_thresholds(scores, class_scores.membership(rows, classes), classes)
        self.class_thresholds = {label: float(t) for label, t in zip(classes, thresholds, strict=True)}
        return dict(self.class_thresholds)

    def save(self, folder: str | Path, *, overwrite: bool = False) -> None:
        """Write the support set, label texts and settings to ``folder``, atomically (a non-empty folder
        that holds no saved classifier is refused unless ``overwrite``)."""
        layout = self._layout() if self.classes else None  # label texts embedded: saved, not embedded again on load
        embedded = list(dict.fromkeys(self.label_texts().values())) if layout else []
        label_text = self.label_text
        config = {name: getattr(self, name) for name in store.SETTINGS} | {
            "labels": self._declared,
            "label_text": list(map(list, label_text.items())) if isinstance(label_text, dict) else label_text,
            "texts": self._texts,
            "example_labels": [list(row) for row in self._labels] if self.multi_label else self._labels,
            "class_thresholds": list(map(list, self.class_thresholds.items())),
            "label_prompt": label_prompt(self.encoder),
            "embedded_label_texts": embedded,
            "model_sha256": model_digest(self.encoder),
        }
        vectors = [self._label_vectors[text] for text in embedded]
        arrays = {
            "embeddings": self._embeddings,
            "label_embeddings": np.stack(vectors) if vectors else np.zeros((0, self.encoder.dim), np.float32),
        }
        store.write_classifier(folder, config, arrays, overwrite=overwrite)

    @classmethod
    def load(cls, folder: str | Path, encoder) -> FewShotClassifier:
        """Read a classifier saved by :meth:`save`; the support set and label texts are embedded again
        if ``encoder`` is another model, has another dimension or another document prompt."""
        config, arrays = store.read_classifier(folder)
        path = Path(folder) / store.CONFIG_NAME
        try:
            label_text = config["label_text"]
            if isinstance(label_text, list):
                label_text = store.pairs_to_dict(label_text, "label_text", path)
            classifier = cls(
                encoder,
                labels=config["labels"] or None,
                label_text=label_text,
                **{k: config[k] for k in store.SETTINGS},
            )
            thresholds = store.pairs_to_dict(config["class_thresholds"], "class_thresholds", path)
            classifier.class_thresholds = {
                label: finite_or_none("a class threshold", t) for label, t in thresholds.items()
            }
        except (ValueError, TypeError) as error:  # a setting of the wrong type or value
            raise ValueError(f"{path}: {error}") from None
        embeddings = arrays["embeddings"]
        stale = store.stale(folder, config, embeddings.shape[1], encoder, label_prompt(encoder))
        if config["texts"]:
            classifier.add_examples(config["texts"], config["example_labels"], embeddings=None if stale else embeddings)
            if not stale:
                classifier._embeddings = embeddings  # exactly as saved (normalized then), so scores match to the bit
        if not stale:
            classifier._label_vectors = dict(
                zip(config["embedded_label_texts"], arrays["label_embeddings"], strict=True)
            )
        return classifier

    def _changed(self) -> None:
        self._layout_cache, self._head = None, None

    def _layout(self) -> class_scores.Layout:
        if self._layout_cache is None:
            classes = self.classes
            if not classes:
                raise RuntimeError(
                    "the support set is empty and no class is declared: add_examples() first, or give labels= and label_text="
                )
            texts = self.label_texts()
            missing = [text for text in dict.fromkeys(texts.values()) if text not in self._label_vectors]
            if missing:
                vectors = self._encode(missing, prompt=label_prompt(self.encoder))
                self._label_vectors |= dict(zip(missing, vectors, strict=True))
            rows = self._labels if self.multi_label else [(label,) for label in self._labels]
            vectors = {label: self._label_vectors[text] for label, text in texts.items()}
            self._layout_cache = class_scores.Layout.build(classes, rows, vectors, self.label_weight, self.encoder.dim)
        return self._layout_cache

    def _logistic_head(self, layout: class_scores.Layout) -> LogisticHead:
        if self._head is None:
            self._head = class_scores.fit_head(
                self._embeddings, layout, self.label_weight, c=self.logistic_c, multi_label=self.multi_label
            )
        return self._head

    def _thresholds(self) -> np.ndarray:
        """Multi-label: ``(classes,)`` the threshold of each class (its own, else ``threshold``)."""
        values = [self.class_thresholds.get(label, self.threshold) for label in self.classes]
        missing = [label for label, value in zip(self.classes, values, strict=True) if value is None]
        if missing:
            raise ValueError(
                f"no threshold for class {missing[0]!r} ({len(missing)} class(es) without one): call "
                "fit_class_thresholds() on labelled validation texts, or give threshold="
            )
        return np.asarray(values, dtype=np.float32)

    def _queries(self, texts: Sequence[str] | np.ndarray) -> np.ndarray:
        dim = self._embeddings.shape[1]
        if isinstance(texts, np.ndarray) and texts.dtype.kind == "f":
            if texts.ndim not in (1, 2) or texts.shape[-1] != dim:
                raise ValueError(f"query embeddings must have shape (n, {dim}) or ({dim},), got {texts.shape}")
            queries = texts.astype(np.float32).reshape(-1, dim)
            _check_finite(queries, "query embeddings")
            return queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
        return self._encode(validate_texts(texts)).reshape(-1, dim)

    def _encode(self, texts: list[str], prompt: str | None = None) -> np.ndarray:
        options = {} if prompt is None else {"prompt": prompt}
        return self.encoder.encode(
            texts, normalize=True, batch_size=self.batch_size, show_progress=self.show_progress, **options
        )


def _label_list(labels: object) -> list:
    """A sequence of labels (list, tuple, array, Series) as a list; a str is refused (one label per character)."""
    if isinstance(labels, str):
        raise TypeError(f"labels must be a list of labels, got the str {labels!r}")
    return [plain(label) for label in labels]


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
