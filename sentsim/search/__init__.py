"""Semantic search: a persistent FAISS-backed document index with metadata, updates and filters."""

from sentsim.search.index import DocumentIndex, Hit, ModelMismatchError
from sentsim.search.store import IndexCorruptedError

__all__ = ["DocumentIndex", "Hit", "IndexCorruptedError", "ModelMismatchError"]
