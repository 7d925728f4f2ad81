"""sentsim: Siamese / bi-encoder sentence similarity.

>>> from sentsim import SentenceEncoder
>>> encoder = SentenceEncoder.from_pretrained("all-MiniLM-L6-v2")
>>> encoder.similarity("A man is eating food.", "Someone is having a meal.")
"""

from sentsim._version import __version__
from sentsim.encoder import SentenceEncoder
from sentsim.pooling import Pooling
from sentsim.projection import DenseConfig
from sentsim.similarity import Metric, similarity
from sentsim.storage.hub import ModelNotFoundError
from sentsim.storage.weights import WeightsError
from sentsim.tokenization import train_tokenizer
from sentsim.towers import LSTMConfig, LSTMTower, TransformerTower

__all__ = [
    "DenseConfig",
    "LSTMConfig",
    "LSTMTower",
    "Metric",
    "ModelNotFoundError",
    "Pooling",
    "SentenceEncoder",
    "TransformerTower",
    "WeightsError",
    "__version__",
    "similarity",
    "train_tokenizer",
]
