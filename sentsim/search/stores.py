"""Where a DocumentIndex keeps its documents: the store interface, and the stores behind it.

:class:`~sentsim.search.DocumentIndex` checks input, plans chunks, looks up the embedding cache,
encodes with the prompts, guards the model and writes the manifest; a store keeps documents,
chunks, vectors and metadata and searches them. Two stores implement :class:`IndexStore`:

- ``faiss`` (:mod:`sentsim.search.faiss_store`): SQLite in the index folder, the source of
  truth, and a FAISS index kept in step beside it;
- ``milvus`` (:mod:`sentsim.search.milvus_store`): one Milvus collection, on a Milvus server or
  cluster, or in a Milvus Lite database file (by default inside the index folder).

The index calls a store's writes one at a time (under its write lock) and its searches under its
read lock; the store makes each write one step for the other handles and processes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from sentsim.search.filters import Condition
from sentsim.search.hits import Hit
from sentsim.search.ingest import PlannedDocument

STORE_KINDS = ("faiss", "milvus")


class IndexStore(ABC):
    """Documents, their chunks' vectors and metadata, and the vector search over them."""

    keywords = False  # whether it keeps a keyword index of the chunks (keyword and hybrid search)

    @classmethod
    @abstractmethod
    def settings(cls, options: dict) -> dict:
        """The manifest entry (``{"kind": ...}``) of a new store, from the store options given to
        :meth:`DocumentIndex.create` (``milvus_uri``, ``collection``, ``milvus_token``), checked: a
        TypeError or ValueError names one that is wrong or does not apply."""

    @classmethod
    @abstractmethod
    def create(cls, folder: Path, manifest: dict, *, token: str | None) -> IndexStore:
        """A new, empty store for the index in ``folder`` that ``manifest`` describes."""

    @classmethod
    @abstractmethod
    def open(cls, folder: Path, manifest: dict, *, repair: bool, token: str | None) -> IndexStore:
        """The store of the index in ``folder``, checked against ``manifest``."""

    @classmethod
    @abstractmethod
    def check_backend(cls, backend: object, dim: int, metric: str) -> None:
        """Raise a TypeError or ValueError unless this store can build the index ``backend`` names."""

    @property
    @abstractmethod
    def index_type(self) -> str | None:
        """The vector index searched (a FAISS factory string, a Milvus index type); None while there is none."""

    @property
    @abstractmethod
    def stale(self) -> bool:
        """Whether this handle keeps a copy of the vectors that other handles have changed since
        (or that a failed write left broken): :meth:`refresh` before searching."""

    @abstractmethod
    def refresh(self) -> None:
        """Catch up with the writes of other handles (called under the index's write lock)."""

    @abstractmethod
    def close(self) -> None:
        """Release the store; any later call says the index is closed. Closing twice is harmless."""

    @abstractmethod
    def count_documents(self) -> int: ...

    @abstractmethod
    def count_chunks(self) -> int: ...

    @abstractmethod
    def document(self, doc_id: str) -> tuple[str, dict] | None:
        """A stored document's text and metadata, or None."""

    @abstractmethod
    def has_documents(self, doc_ids: list[str]) -> set[str]:
        """Those of ``doc_ids`` that are stored."""

    @abstractmethod
    def cached_vectors(self, hashes: list[str]) -> dict[str, np.ndarray]:
        """The stored vectors of chunk texts, by content hash (the embedding cache): those it holds."""

    @abstractmethod
    def check_documents(self, plan: list[PlannedDocument]) -> None:
        """Raise a ValueError naming a planned document this store cannot hold (called before encoding)."""

    @abstractmethod
    def write(self, plan: list[PlannedDocument], vectors: dict[str, np.ndarray], *, replace: bool) -> None:
        """Store the planned documents as one operation: their chunks with ``vectors`` (content hash
        -> vector, one for each chunk) and metadata. A stored id is refused (ValueError) unless
        ``replace``; then a new text replaces the document's chunks, and the same text its metadata only."""

    @abstractmethod
    def delete(self, doc_ids: list[str]) -> int:
        """Delete documents by id; returns how many were stored."""

    @abstractmethod
    def compact(self) -> None:
        """Drop what deletes and replacements left behind, where the store keeps it."""

    @abstractmethod
    def check_search(self, k: int, nprobe: int | None, ef_search: int | None) -> None:
        """Raise a TypeError or ValueError unless the index can answer ``k`` hits with these knobs
        (``nprobe``: IVF indexes; ``ef_search``: HNSW)."""

    @abstractmethod
    def search(
        self,
        vectors: np.ndarray,
        k: int,
        conditions: list[Condition] | None,
        *,
        by: str,
        nprobe: int | None,
        ef_search: int | None,
    ) -> list[list[Hit]]:
        """The ``k`` best hits of each query vector ``(n, dim)``, best first, scores as similarities:
        among documents matching every condition (k whenever k match), each document once with
        ``by="document"``."""

    def keyword_search(
        self, queries: list[str], k: int, conditions: list[Condition] | None, *, by: str
    ) -> list[list[Hit]]:
        """As :meth:`search`, ranked by keywords (BM25 scores) for each query text; only for a store
        that keeps :attr:`keywords`."""
        raise NotImplementedError(f"{type(self).__name__} keeps no keyword index")


def store_class(kind: str) -> type[IndexStore]:
    """The store of ``kind`` (its module, and what it needs, imported only now)."""
    if kind == "faiss":
        from sentsim.search.faiss_store import FaissStore

        return FaissStore
    if kind == "milvus":
        from sentsim.search.milvus_store import MilvusStore

        return MilvusStore
    raise ValueError(f"store must be one of {', '.join(STORE_KINDS)}, got {kind!r}")
