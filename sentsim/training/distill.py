"""Distillation: a student encoder (e.g. a BiLSTM) learns to reproduce a teacher's embeddings."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from sentsim.training.config import TrainingConfig
from sentsim.training.data import TrainingData
from sentsim.training.losses.embedding_mse import EmbeddingMSELoss
from sentsim.training.trainer import Evaluator, TrainingResult, train
from sentsim.validation import validate_texts

logger = logging.getLogger(__name__)


def distill(
    student,
    teacher,
    texts: Sequence[str],
    config: TrainingConfig | None = None,
    *,
    output_dir: str | Path | None = None,
    evaluator: Evaluator | None = None,
    resume: bool = False,
    teacher_batch_size: int = 128,
) -> TrainingResult:
    """Train ``student`` to map each text to the teacher's embedding of it (MSE), on unlabelled texts.

    The teacher encodes every distinct non-empty text once; the student must have the
    teacher's dimension (give it a ``dense`` projection otherwise). Fine-tune on pairs
    afterwards with :func:`sentsim.training.train`.
    """
    unique = [text for text in dict.fromkeys(validate_texts(texts)) if text.strip()]
    if not unique:
        raise ValueError("distillation needs at least one non-empty text")
    if student.dim != teacher.dim:
        raise ValueError(
            f"the student embeds in {student.dim} dimensions, the teacher in {teacher.dim}: "
            f"give the student dense=DenseConfig(in_features={student.dim}, out_features={teacher.dim})"
        )
    config = config or TrainingConfig()
    logger.info("encoding %d texts with the teacher", len(unique))
    targets = teacher.encode(unique, batch_size=teacher_batch_size, show_progress=config.show_progress)
    data = TrainingData({"text": unique, "embedding": targets}, "distillation texts")
    return train(student, data, EmbeddingMSELoss(), config, output_dir=output_dir, evaluator=evaluator, resume=resume)
