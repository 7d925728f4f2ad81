"""The FAISS mirror of a document store: the derived vector index, kept in step with SQLite.

The store holds every live chunk's vector; the mirror holds the same vectors in a FAISS index
(``index.faiss``) and records in ``manifest.json`` which store generation that file reflects.
Whenever the two might disagree, the mirror is rebuilt from the store, never the other way:

- on open, a file older than the database (a crash between the two writes) or holding another
  number of vectors than the store has chunks;
- after a failed write, whose transaction rolled back; if that rebuild fails too (out of
  memory), the mirror is marked broken and rebuilt before the next read or write.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from sentsim.atomic import write_text_atomic
from sentsim.search.backends import VectorBackend, resolve_factory
from sentsim.search.store import DocumentStore, IndexCorruptedError

logger = logging.getLogger(__name__)

MANIFEST, FAISS_FILE = "manifest.json", "index.faiss"


class FaissMirror:
    """The :class:`VectorBackend` holding the store's vectors, and the files that persist it.

    Args:
        folder: the index folder (``manifest.json``, ``index.faiss``).
        store: the source of truth.
        manifest: the folder's manifest; its ``factory``, ``generation`` and ``tombstones`` are
            kept up to date here.
    """

    def __init__(self, folder: Path, store: DocumentStore, manifest: dict) -> None:
        self.folder, self.store, self.manifest = folder, store, manifest
        self.backend: VectorBackend | None = None
        self.broken = False  # a failed write could not be undone in memory: rebuild before use

    @property
    def size(self) -> int:
        """Live vectors in the index."""
        return self.backend.size if self.backend is not None else 0

    def load(self, repair: bool) -> None:
        """Read ``index.faiss``, or rebuild it where it is stale, the wrong size or (with ``repair``) damaged."""
        path = self.folder / FAISS_FILE
        stale = self.manifest.get("generation") != self.store.generation
        if self.manifest.get("factory") and path.exists() and not stale:
            try:
                self.backend = VectorBackend.load(
                    path,
                    self.manifest["factory"],
                    self.manifest["model"]["dim"],
                    self.manifest["metric"],
                    set(self.manifest.get("tombstones", [])),
                )
            except IndexCorruptedError:
                if not repair:
                    raise
                logger.warning("rebuilding the damaged %s from the stored vectors", path)
            else:
                chunks = self.store.count("chunks")
                if self.backend.size == chunks:
                    return
                logger.warning("%s holds %d vectors for %d chunks: rebuilding it", path, self.backend.size, chunks)
                stale = True
        if stale:
            logger.info("the FAISS file is older than the database (an interrupted write): rebuilding it")
        self.rebuild()
        if self.backend is not None or stale:
            self.save()

    def ensure(self, vectors: int) -> VectorBackend:
        """The backend, created for an index that will hold ``vectors`` vectors if there is none yet."""
        if self.backend is None:
            self.backend = self._new_backend(vectors)
            self.manifest["factory"] = self.backend.factory
        return self.backend

    def rebuild(self) -> None:
        """A new FAISS index from every vector in the store (none if the store is empty).

        The new index replaces the old one only once it holds every vector; if building it
        fails, the mirror is marked broken (see :meth:`recover`) and the error raised.
        """
        try:
            vector_ids, vectors = self.store.all_vectors()
            backend = None
            if len(vector_ids):
                backend = self._new_backend(len(vector_ids))
                backend.add(vectors, vector_ids)
        except BaseException:
            self.backend, self.broken = None, True
            raise
        self.backend, self.broken = backend, False
        self.manifest["factory"] = backend.factory if backend is not None else None

    def recover(self) -> None:
        """Rebuild a mirror that a failed write left broken (and save it)."""
        if self.broken:
            logger.warning("rebuilding the FAISS index after an earlier failed write")
            self.rebuild()
            self.save()

    @contextmanager
    def restored_on_error(self) -> Iterator[None]:
        """Around a write: first rebuild a broken mirror; if the write fails (its transaction rolls
        back), rebuild the index to match the store."""
        self.recover()
        try:
            yield
        except BaseException:
            try:
                self.rebuild()
            except BaseException:  # noqa: BLE001 - the write's own error is the one to raise; rebuild marked it broken
                logger.exception("could not rebuild the FAISS index after a failed write; retrying on next use")
            raise

    def save(self) -> None:
        """Compact if due, then write ``index.faiss`` and the manifest (each atomically)."""
        if self.backend is not None and self.backend.needs_compaction():
            logger.info("compacting: %d tombstones", len(self.backend.tombstones))
            self.rebuild()
        if self.backend is not None:
            self.backend.save(self.folder / FAISS_FILE)
        self.manifest["generation"] = self.store.generation
        self.manifest["tombstones"] = sorted(self.backend.tombstones) if self.backend is not None else []
        write_text_atomic(self.folder / MANIFEST, json.dumps(self.manifest, indent=2) + "\n")

    def _new_backend(self, vectors: int) -> VectorBackend:
        dim = self.manifest["model"]["dim"]
        return VectorBackend(resolve_factory(self.manifest["backend"], dim, vectors), dim, self.manifest["metric"])

    def exact(self, queries: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k over the live vectors (those in ``allowed`` only, when given)."""
        if allowed is None:  # every live vector, read in one pass
            vector_ids, vectors = self.store.all_vectors()
            live = np.isin(vector_ids, self.backend.live(vector_ids))
            vector_ids, vectors = vector_ids[live], vectors[live]
        else:
            vector_ids = self.backend.live(allowed)
            vectors = self.store.vectors_of(vector_ids)
        return self.backend.search_exact(queries, vectors, vector_ids, k)
