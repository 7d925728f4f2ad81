"""Siamese fine-tuning of a few-shot classifier's tower on its own support set and label texts."""

from __future__ import annotations

import numpy as np

from sentsim.training.config import TrainingConfig
from sentsim.training.data import TrainingData
from sentsim.training.losses.in_batch_negatives import InBatchNegativesLoss
from sentsim.training.trainer import TrainingResult, train
from sentsim.validation import check_int, positive_number

FEW_SHOT_CONFIG = TrainingConfig(epochs=1, batch_size=128, learning_rate=5e-5, warmup_ratio=0.1)
LABEL_SHARE = 0.25  # of the pairs whose positive is the label text (best of 0 / 0.25 / 0.5 on CLINC150 val, 5-shot)


def fine_tune_few_shot(
    classifier,
    *,
    rounds: int = 20,
    config: TrainingConfig | None = None,
    temperature: float = 0.05,
    symmetric: bool = True,
    label_share: float = LABEL_SHARE,
    seed: int = 0,
) -> TrainingResult:
    """Fine-tune the classifier's encoder on pairs from its support set, then re-embed it.

    Each round pairs every example (anchor) with a positive of its class: its class's label text
    with probability ``label_share`` where the class has one (the text embedded with the
    classifier's label prompt), else another example of the class (a one-example class pairs with
    itself). In-batch negatives train the anchor to pick its positive out of the batch (and,
    ``symmetric``, the positive its anchor); texts of the same class are never counted as
    negatives. In a multi-label set, each pair is drawn for one of the anchor's classes, and
    two pairs are never each other's negatives where the classes of one (its anchor's and its
    positive's) meet the other's. The defaults (20 rounds, batch
    128, lr 5e-5, temperature 0.05, symmetric) are the recipe measured by
    ``benchmarks/bench_few_shot.py``; without a ``config``, the progress bar follows the
    classifier's ``show_progress``.
    """
    from sentsim.decisions.label_text import label_prompt

    texts, labels = classifier.support()
    rows = labels if classifier.multi_label else [(label,) for label in labels]
    if len({label for row in rows for label in row}) < 2:
        raise ValueError("fine-tuning needs a support set with at least 2 classes")
    check_int("rounds", rounds, minimum=1)
    check_int("seed", seed)
    label_share = positive_number("label_share", label_share, allow_zero=True)
    if label_share > 1:
        raise ValueError(f"label_share must be between 0 and 1, got {label_share}")
    if config is None:  # the recipe, with the classifier's progress setting
        config = TrainingConfig.from_dict(
            FEW_SHOT_CONFIG.to_dict() | {"show_progress": classifier.show_progress is not False}
        )
    if config.batch_size > len(texts) * rounds:
        config = TrainingConfig.from_dict(config.to_dict() | {"batch_size": len(texts) * rounds})
    prompt = label_prompt(classifier.encoder) or ""
    label_texts = {label: prompt + text for label, text in classifier.label_texts().items()}
    rng = np.random.default_rng(seed)
    class_ids = {label: i for i, label in enumerate(classifier.classes)}
    members: dict[object, list[int]] = {}
    for index, row in enumerate(rows):
        for label in row:
            members.setdefault(label, []).append(index)
    anchors, positives, groups = [], [], []  # groups: the pair's class id, or (multi-label) its classes
    for _ in range(rounds):
        for index in rng.permutation(len(texts)):
            row = rows[index]
            label = row[int(rng.integers(len(row)))] if len(row) > 1 else row[0]
            if label in label_texts and rng.random() < label_share:
                positive, classes = label_texts[label], {label}
            else:
                same = [other for other in members[label] if other != index] or [index]
                other = int(rng.choice(same))
                positive, classes = texts[other], set(rows[other])
            anchors.append(texts[index])
            positives.append(positive)
            groups.append(classes | set(row) if classifier.multi_label else class_ids[label])
    if classifier.multi_label:
        hot = np.zeros((len(groups), len(class_ids)), dtype=np.int8)  # (pairs, classes)
        for pair, classes in enumerate(groups):
            hot[pair, [class_ids[label] for label in classes]] = 1
        groups = hot
    data = TrainingData(
        {"anchor": anchors, "positive": positives, "label": np.asarray(groups, dtype=np.int64)}, "support set pairs"
    )
    result = train(classifier.encoder, data, InBatchNegativesLoss(temperature=temperature, symmetric=symmetric), config)
    classifier.refresh()
    return result
