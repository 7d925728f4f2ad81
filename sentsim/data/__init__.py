"""Data readers: sentence pairs from local files or Hugging Face datasets, validated loudly."""

from sentsim.data.sts import SentencePairs, read_sts

__all__ = ["SentencePairs", "read_sts"]
