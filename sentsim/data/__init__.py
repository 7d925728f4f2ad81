"""Data readers: local files or Hugging Face datasets, validated with errors naming column and row."""

from sentsim.data.classification import LabelledTexts, MultiLabelTexts, read_labelled_texts, read_multi_label_texts
from sentsim.data.derived import same_label_retrieval, sts_pair_classification, sts_paraphrase_retrieval
from sentsim.data.named import load_clinc150, load_stsb
from sentsim.data.pairs import LabelledPairs, read_pairs
from sentsim.data.retrieval import RetrievalData, read_beir
from sentsim.data.sts import SentencePairs, read_sts
from sentsim.data.texts import read_texts
from sentsim.data.triplets import Triplets, read_triplets

__all__ = [
    "LabelledPairs",
    "LabelledTexts",
    "MultiLabelTexts",
    "RetrievalData",
    "SentencePairs",
    "Triplets",
    "load_clinc150",
    "load_stsb",
    "read_beir",
    "read_labelled_texts",
    "read_multi_label_texts",
    "read_pairs",
    "read_sts",
    "read_texts",
    "read_triplets",
    "same_label_retrieval",
    "sts_pair_classification",
    "sts_paraphrase_retrieval",
]
