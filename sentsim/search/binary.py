"""The binary backend: each vector's sign bits in a FAISS binary index, searched by Hamming distance.

A vector of d dimensions becomes d bits (1 where a value is positive) packed into d / 8 bytes,
32x less memory than float32. Hamming distance over sign bits orders candidates by angle
roughly; an index of this precision always rescores them exactly with the float vectors of its
store (:mod:`sentsim.search.rescore`). The index is ``IndexBinaryFlat`` inside an
``IndexBinaryIDMap``: exact Hamming scans, deletes for real (no tombstones). It has the
interface of :class:`~sentsim.search.backends.VectorBackend` that the FAISS store uses.
"""

from __future__ import annotations

import functools
from pathlib import Path

import faiss
import numpy as np

from sentsim.search.backends import VectorBackend, _pad, check_tuning_values, save_stamped
from sentsim.search.store import IndexCorruptedError

BINARY_FACTORY = "BFlat"


class BinaryBackend:
    """Sign bits of vectors with int64 ids, in a FAISS binary index (Hamming distance)."""

    can_remove = True
    retrain_due = False

    def __init__(self, factory: str, dim: int, metric: str, index=None, tombstones: set[int] | None = None) -> None:
        if factory != BINARY_FACTORY:
            raise ValueError(f"the binary backend builds {BINARY_FACTORY!r} indexes, not {factory!r}")
        if dim % 8:
            raise ValueError(
                f"a binary index packs 8 dimensions a byte: its dimension must be a multiple of 8, got {dim}"
            )
        self.factory, self.dim, self.metric = factory, dim, metric
        self.index = index if index is not None else faiss.IndexBinaryIDMap(faiss.IndexBinaryFlat(dim))
        self.tombstones = tombstones or set()  # always empty: the flat binary index deletes for real

    @property
    def takes_selector(self) -> bool:
        """Whether this FAISS build restricts binary searches to ids (older builds refuse search parameters)."""
        return binary_selectors()

    @property
    def size(self) -> int:
        return self.index.ntotal

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        self.index.add_with_ids(self.prepare(vectors), ids.astype(np.int64))

    def remove(self, ids: list[int]) -> None:
        if ids:
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))

    def needs_compaction(self) -> bool:
        return False

    def search(
        self,
        queries: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        *,
        nprobe: int | None = None,
        ef_search: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k ``(scores, ids)`` by Hamming distance; a score is the sign agreement ``dim - 2 x
        distance`` (higher is closer), -inf and -1 where fewer exist. ``allowed`` restricts the ids
        searched (where :attr:`takes_selector`)."""
        self.check_tuning(nprobe, ef_search)
        codes = self.prepare(queries)
        fetch = min(k, self.index.ntotal)
        if fetch == 0:
            return np.full((len(codes), k), -np.inf, np.float32), np.full((len(codes), k), -1, np.int64)
        if allowed is None:
            distances, ids = self.index.search(codes, fetch)
        else:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
            distances, ids = self.index.search(codes, fetch, params=faiss.SearchParameters(sel=selector))
        scores = np.where(ids < 0, -np.inf, self.dim - 2.0 * distances).astype(np.float32)
        return _pad(scores, k, -np.inf), _pad(ids, k, -1)

    def check_tuning(self, nprobe: int | None, ef_search: int | None) -> None:
        """Neither knob applies: a flat binary index scans every code."""
        check_tuning_values(nprobe, ef_search)
        if nprobe is not None or ef_search is not None:
            knob = "nprobe" if nprobe is not None else "ef_search"
            raise ValueError(f"{knob} applies to IVF / HNSW indexes; this index is {self.factory!r} (binary, exact)")

    def live(self, ids: np.ndarray) -> np.ndarray:
        return ids

    def prepare(self, vectors: np.ndarray) -> np.ndarray:
        """Sign bits ``(n, dim / 8)`` uint8 of float vectors ``(n, dim)``."""
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        if not np.isfinite(vectors).all():
            raise ValueError("vectors contain NaN or infinity")
        return np.packbits(vectors > 0, axis=1)

    def save(self, path: Path, stamp: str) -> None:
        """As :meth:`VectorBackend.save`: atomically, followed by ``stamp``."""
        save_stamped(path, lambda tmp: faiss.write_index_binary(self.index, tmp), stamp)

    @classmethod
    def load(cls, path: Path, factory: str, dim: int, metric: str, tombstones: set[int]) -> BinaryBackend:
        try:
            index = faiss.read_index_binary(str(path))
        except RuntimeError as error:
            raise IndexCorruptedError(
                f"{path} is not a readable FAISS binary index ({str(error).splitlines()[-1]})"
            ) from None
        if not isinstance(index, faiss.IndexBinaryIDMap):
            raise IndexCorruptedError(f"{path} holds a {type(index).__name__}, not the id-mapped index sentsim writes")
        if index.d != dim:
            raise IndexCorruptedError(f"{path} holds {index.d}-bit codes, the manifest says {dim}")
        return cls(factory, dim, metric, index=index, tombstones=tombstones)


def backend_class(precision: str) -> type:
    """The backend class that holds vectors of ``precision`` (int8 lives in FAISS's float indexes)."""
    return BinaryBackend if precision == "binary" else VectorBackend


@functools.cache
def binary_selectors() -> bool:
    """Whether this FAISS build takes an ID selector in a flat binary search (recent builds do; older
    ones refuse search parameters, and the FAISS store then searches filtered queries exactly over
    the matches)."""
    index = faiss.IndexBinaryIDMap(faiss.IndexBinaryFlat(8))
    index.add_with_ids(np.zeros((2, 1), np.uint8), np.array([1, 2], dtype=np.int64))
    selector = faiss.IDSelectorBatch(np.array([2], dtype=np.int64))
    try:
        _, ids = index.search(np.zeros((1, 1), np.uint8), 2, params=faiss.SearchParameters(sel=selector))
    except (RuntimeError, TypeError):
        return False
    return ids[0].tolist() == [2, -1]
