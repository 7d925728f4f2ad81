"""Siamese fine-tuning of a few-shot classifier's tower on its own support set."""

from __future__ import annotations

import numpy as np

from sentsim.training.config import TrainingConfig
from sentsim.training.data import TrainingData
from sentsim.training.losses.in_batch_negatives import InBatchNegativesLoss
from sentsim.training.trainer import TrainingResult, train
from sentsim.validation import check_int

FEW_SHOT_CONFIG = TrainingConfig(epochs=1, batch_size=128, learning_rate=5e-5, warmup_ratio=0.1)


def fine_tune_few_shot(
    classifier,
    *,
    rounds: int = 20,
    config: TrainingConfig | None = None,
    temperature: float = 0.05,
    symmetric: bool = True,
    seed: int = 0,
) -> TrainingResult:
    """Fine-tune the classifier's encoder on pairs from its support set, then re-embed the support set.

    Each round pairs every example (anchor) with another example of its class (positive; a
    one-example class pairs with itself). In-batch negatives train the anchor to pick its
    positive out of the batch (and, ``symmetric``, the positive its anchor); examples of the
    same class are never counted as negatives. The defaults (20 rounds, batch 128, lr 5e-5,
    temperature 0.05, symmetric) are the recipe measured by ``benchmarks/bench_few_shot.py``;
    without a ``config``, the progress bar follows the classifier's ``show_progress``.
    """
    texts, labels = classifier.support()
    if len(set(labels)) < 2:
        raise ValueError("fine-tuning needs a support set with at least 2 classes")
    check_int("rounds", rounds, minimum=1)
    check_int("seed", seed)
    if config is None:  # the recipe, with the classifier's progress setting
        config = TrainingConfig.from_dict(
            FEW_SHOT_CONFIG.to_dict() | {"show_progress": classifier.show_progress is not False}
        )
    if config.batch_size > len(texts) * rounds:
        config = TrainingConfig.from_dict(config.to_dict() | {"batch_size": len(texts) * rounds})
    rng = np.random.default_rng(seed)
    class_ids = {label: i for i, label in enumerate(dict.fromkeys(labels))}
    members: dict[object, list[int]] = {}
    for index, label in enumerate(labels):
        members.setdefault(label, []).append(index)
    anchors, positives, groups = [], [], []
    for _ in range(rounds):
        for index in rng.permutation(len(texts)):
            same = [other for other in members[labels[index]] if other != index] or [index]
            anchors.append(texts[index])
            positives.append(texts[int(rng.choice(same))])
            groups.append(class_ids[labels[index]])
    data = TrainingData(
        {"anchor": anchors, "positive": positives, "label": np.asarray(groups, dtype=np.int64)}, "support set pairs"
    )
    result = train(classifier.encoder, data, InBatchNegativesLoss(temperature=temperature, symmetric=symmetric), config)
    classifier.refresh()
    return result
