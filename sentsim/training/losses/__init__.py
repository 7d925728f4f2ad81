"""Losses on embeddings: ``forward(anchor, positive, negative=None, labels=None) -> Tensor``.

The training loop encodes the text columns; a loss only sees embeddings, so each one is
tested on random tensors against a naive reference. ``columns`` names the dataset columns a
loss needs, in the order they are passed, ``target`` the column given as ``labels``, and
``config()`` its settings (keyword arguments of its class) for the run record.

| name | class | columns | labels |
|---|---|---|---|
| ``cosine`` | CosineSimilarityLoss | sentence1, sentence2 | score in [0, 1] |
| ``cosent`` | CoSENTLoss | sentence1, sentence2 | score (any scale; only the order matters) |
| ``contrastive`` | ContrastiveLoss (``online=True``: hard pairs only) | sentence1, sentence2 | label 0/1 |
| ``triplet`` | TripletLoss (``batch_hard=True``: hardest in-batch negative) | anchor, positive, negative | none; with ``batch_hard``, optional group ids |
| ``mnrl`` | InBatchNegativesLoss | anchor, positive [, negative] | optional group ids |
| (distill) | EmbeddingMSELoss | text | the teacher's embedding |

``MatryoshkaLoss(inner, dims=[384, 256, 128, 64])`` wraps any of the five named losses to train
embeddings that can be truncated (``sentsim train --matryoshka 384,256,128,64``).
"""

from sentsim.training.losses.contrastive import ContrastiveLoss
from sentsim.training.losses.cosent import CoSENTLoss
from sentsim.training.losses.cosine_similarity import CosineSimilarityLoss
from sentsim.training.losses.embedding_mse import EmbeddingMSELoss
from sentsim.training.losses.in_batch_negatives import InBatchNegativesLoss
from sentsim.training.losses.matryoshka import MatryoshkaLoss
from sentsim.training.losses.triplet import TripletLoss
from sentsim.validation import check_choice

LOSSES = {
    "cosine": CosineSimilarityLoss,
    "cosent": CoSENTLoss,
    "contrastive": ContrastiveLoss,
    "triplet": TripletLoss,
    "mnrl": InBatchNegativesLoss,
}


def make_loss(name: str, **options):
    """A loss by its short name (see the table above)."""
    return LOSSES[check_choice("loss", name, LOSSES)](**options)


__all__ = [
    "LOSSES",
    "CoSENTLoss",
    "ContrastiveLoss",
    "CosineSimilarityLoss",
    "EmbeddingMSELoss",
    "InBatchNegativesLoss",
    "MatryoshkaLoss",
    "TripletLoss",
    "make_loss",
]
