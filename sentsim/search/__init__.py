"""Semantic search: a persistent document index with metadata, updates and filters, stored with FAISS or Milvus."""

from sentsim.search.hits import Hit
from sentsim.search.index import DocumentIndex
from sentsim.search.model_guard import ModelMismatchError
from sentsim.search.store import IndexCorruptedError

__all__ = ["DocumentIndex", "Hit", "IndexCorruptedError", "ModelMismatchError"]
