"""Fine-tuning Siamese towers on pairs and triplets; distillation into an LSTM student."""

from sentsim.training.config import TrainingConfig
from sentsim.training.data import TrainingData, load_training_data
from sentsim.training.distill import distill
from sentsim.training.few_shot import fine_tune_few_shot
from sentsim.training.losses import (
    ContrastiveLoss,
    CoSENTLoss,
    CosineSimilarityLoss,
    InBatchNegativesLoss,
    MatryoshkaLoss,
    TripletLoss,
    make_loss,
)
from sentsim.training.trainer import TrainingResult, train

__all__ = [
    "CoSENTLoss",
    "ContrastiveLoss",
    "CosineSimilarityLoss",
    "InBatchNegativesLoss",
    "MatryoshkaLoss",
    "TrainingConfig",
    "TrainingData",
    "TrainingResult",
    "TripletLoss",
    "distill",
    "fine_tune_few_shot",
    "load_training_data",
    "make_loss",
    "train",
]
