"""The FAISS mirror of a document store: the derived vector index, kept in step with SQLite.

The store holds every live chunk's vector, counts its committed operations (its generation)
and draws a random stamp with each (its state); the mirror holds the same vectors in a FAISS
index, knows which generation it reflects, and saves ``index.faiss`` stamped with the state it
reflects, then ``manifest.json`` (factory, tombstones) naming that state too. Whenever the two
might disagree, the mirror is reloaded or rebuilt from the store, never the other way:

- on open, a file whose stamp is not the database's state (a crash between the two writes, a
  file put back from a copy) or that holds another number of vectors than the store has chunks
  is rebuilt, and so is one the manifest does not describe; reading the stamp costs a few bytes;
- when another handle or process has written since (the store's generation moved on), the
  mirror is reloaded from the file that handle saved, or rebuilt: before each write, under
  SQLite's write lock, and before each search;
- after a failed write, whose transaction rolled back; if that rebuild fails too (out of
  memory), the mirror is marked broken and rebuilt before the next read or write.

A lock file (``index.lock``), taken before SQLite's write lock, makes each write and its save
one step for every handle and process on the folder; reading the saved file takes it too.

An index of another precision than float32, or with ``truncate_dim``, holds what
:class:`~sentsim.search.precision.VectorLayout` makes of each vector, and :meth:`FaissMirror.search`
rescores its candidates with the stored float vectors.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import numpy as np

from sentsim.search.backends import VectorBackend, resolve_factory, saved_stamp
from sentsim.search.binary import BinaryBackend, backend_class
from sentsim.search.locking import LOCK_FILE, file_lock
from sentsim.search.manifest import MANIFEST
from sentsim.search.precision import VectorLayout
from sentsim.search.rescore import exact_top_k, rescore
from sentsim.search.store import DocumentStore, IndexCorruptedError
from sentsim.storage.atomic import write_text_atomic

logger = logging.getLogger(__name__)

FAISS_FILE = "index.faiss"


class FaissMirror:
    """The :class:`VectorBackend` holding the store's vectors, and the files that persist it.

    Args:
        folder: the index folder (``manifest.json``, ``index.faiss``).
        store: the source of truth.
        manifest: the folder's manifest; its ``factory``, ``generation``, ``state`` and ``tombstones``
            are kept up to date here.
    """

    def __init__(self, folder: Path, store: DocumentStore, manifest: dict) -> None:
        self.folder, self.store, self.manifest = folder, store, manifest
        self.backend: VectorBackend | BinaryBackend | None = None
        self.layout = VectorLayout.from_manifest(manifest)
        # truncated vectors are re-normalized for cosine, or where the model's embeddings are unit length
        self._normalize = manifest["metric"] == "cosine" or bool(manifest["model"].get("normalize"))
        self.generation = int(manifest["generation"])  # the store generation the backend reflects
        self.broken = False  # a failed write could not be undone in memory: rebuild before use
        self._touched = False  # the current write changed the backend

    @property
    def size(self) -> int:
        """Live vectors in the index."""
        return self.backend.size if self.backend is not None else 0

    @property
    def stale(self) -> bool:
        """Another handle or process has written to the store since this mirror was built (one query)."""
        return self.store.generation != self.generation

    def load(self, repair: bool) -> None:
        """Read ``index.faiss``, or rebuild it where it is stale, the wrong size or (with ``repair``) damaged."""
        if not self._load_file(repair):
            self.rebuild()
            self.save()

    def refresh(self) -> None:
        """Catch up with writes of other handles: reload their saved file, or rebuild (not saved here;
        inside a write, that write saves)."""
        if self.stale:
            logger.info("the index was changed by another handle: reloading its FAISS index")
            if not self._load_file(repair=True):
                self.rebuild()

    def exclusive(self) -> AbstractContextManager[None]:
        """The lock file every handle and process on this folder takes, before SQLite's write lock,
        around a write and its save, and around reading the saved file (load, refresh, save need it)."""
        return file_lock(self.folder / LOCK_FILE)

    def _load_file(self, repair: bool) -> bool:
        """Load ``index.faiss`` if it and the manifest carry the store's current state."""
        path = self.folder / FAISS_FILE
        with self.store.snapshot():
            try:
                manifest = json.loads((self.folder / MANIFEST).read_text(encoding="utf-8"))
            except (OSError, ValueError, RecursionError):
                manifest = self.manifest
            generation, state, chunks = self.store.generation, self.store.state, self.store.count("chunks")
            backend = None
            if manifest.get("factory") and path.exists():
                stamp = saved_stamp(path)  # None: cut short or foreign, which loading tells apart
                if stamp is not None and (stamp, manifest.get("state")) != (state, state):
                    logger.warning(
                        "%s (or %s) was saved for another state of the database (an interrupted write, or put "
                        "back from a copy): rebuilding it from the stored vectors",
                        path,
                        MANIFEST,
                    )
                    return False
                try:
                    backend = backend_class(self.layout.precision).load(
                        path,
                        manifest["factory"],
                        self.layout.index_dim(self.manifest["model"]["dim"]),
                        self.manifest["metric"],
                        set(manifest["tombstones"]),
                    )
                    if stamp is None:
                        raise IndexCorruptedError(f"{path} has no sentsim stamp: cut short, or not saved by sentsim")
                except IndexCorruptedError:
                    if not repair:
                        raise
                    logger.warning("rebuilding the damaged %s from the stored vectors", path)
                    return False
            size = backend.size if backend is not None else 0
            if size != chunks:
                logger.warning("%s holds %d vectors for %d chunks: rebuilding it", path, size, chunks)
                return False
        self.backend, self.generation, self.broken = backend, generation, False
        self.manifest.update(
            factory=manifest.get("factory"),
            generation=generation,
            state=state,
            tombstones=manifest["tombstones"],
        )
        return True

    def ensure(self, vectors: int) -> VectorBackend | BinaryBackend:
        """The backend, created for an index that will hold ``vectors`` vectors if there is none yet."""
        if self.backend is None:
            self.backend = self._new_backend(vectors)
            self.manifest["factory"] = self.backend.factory
        return self.backend

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Add vectors (inside a write), creating the backend for the size it will have."""
        self._touched = True
        self.ensure(len(vectors) + self.size).add(self._indexed(vectors), ids)

    def remove(self, ids: list[int]) -> None:
        """Remove vectors (inside a write)."""
        if ids and self.backend is not None:
            self._touched = True
            self.backend.remove(ids)

    def rebuild(self) -> None:
        """A new FAISS index from every vector in the store (none if the store is empty).

        The new index replaces the old one only once it holds every vector; if building it
        fails, the mirror is marked broken (see :meth:`recover`) and the error raised.
        """
        try:
            with self.store.snapshot():
                generation = self.store.generation
                vector_ids, vectors = self.store.all_vectors()
            backend = None
            if len(vector_ids):
                backend = self._new_backend(len(vector_ids))
                backend.add(self._indexed(vectors), vector_ids)
        except BaseException:
            self.backend, self.broken = None, True
            raise
        self.backend, self.generation, self.broken = backend, generation, False
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
        back), rebuild the index to match the store if the write had changed it."""
        self.recover()
        self._touched = False
        try:
            yield
        except BaseException:
            if not (self._touched or self.broken):
                raise
            try:
                self.rebuild()
            except BaseException:  # noqa: BLE001 - the write's own error is the one to raise; rebuild marked it broken
                logger.exception("could not rebuild the FAISS index after a failed write; retrying on next use")
            raise

    def save_committed(self, generation: int) -> None:
        """Save after the transaction that committed ``generation``. The documents are stored
        already: a failed FAISS write is logged, and the file rebuilt on next open."""
        self.generation = generation
        try:
            self.save()
        except (OSError, RuntimeError, MemoryError) as error:  # FAISS: RuntimeError; compaction: MemoryError
            logger.warning(
                "the change is saved in the database of %s, but writing the FAISS index failed (%s); "
                "it will be rebuilt from the stored vectors on next open",
                self.folder,
                error,
            )

    def save(self) -> None:
        """Compact if due, then write ``index.faiss`` stamped with the store's state and the manifest
        (each atomically), unless the store has moved past this mirror (the handle that moved it saves)."""
        with self.store.snapshot():
            if self.stale:
                logger.debug("not saving generation %d: the store has moved on", self.generation)
                return
            state = self.store.state
        if self.backend is not None and self.backend.needs_compaction():
            logger.info(
                "rebuilding the FAISS index: %d tombstones%s",
                len(self.backend.tombstones),
                ", int8 ranges to retrain" if self.backend.retrain_due else "",
            )
            self.rebuild()
        if self.backend is not None:
            self.backend.save(self.folder / FAISS_FILE, state)
        else:  # an empty index: no file, rather than one of an earlier state
            (self.folder / FAISS_FILE).unlink(missing_ok=True)
        self.manifest["generation"] = self.generation
        self.manifest["state"] = state
        self.manifest["tombstones"] = sorted(self.backend.tombstones) if self.backend is not None else []
        write_text_atomic(self.folder / MANIFEST, json.dumps(self.manifest, indent=2) + "\n")

    def _new_backend(self, vectors: int) -> VectorBackend | BinaryBackend:
        dim, precision = self.layout.index_dim(self.manifest["model"]["dim"]), self.layout.precision
        factory = resolve_factory(self.manifest["backend"], dim, vectors, precision)
        return backend_class(precision)(factory, dim, self.manifest["metric"])

    def _indexed(self, vectors: np.ndarray) -> np.ndarray:
        """Vectors as the index holds them (truncated where the layout says so)."""
        return self.layout.index_vectors(vectors, normalize=self._normalize)

    def search(
        self,
        queries: np.ndarray,
        k: int,
        allowed: np.ndarray | None,
        available: int,
        *,
        nprobe: int | None,
        ef_search: int | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k ``(scores, ids)`` among the ``available`` live vectors (those in ``allowed`` only, when
        given): FAISS's, completed by exact search where an approximate index missed some. An index
        that quantizes or truncates takes ``k x rescore_factor`` candidates and rescores them."""
        if allowed is not None and not self.backend.takes_selector:  # an older FAISS's binary index
            return self.exact(queries, k, allowed)
        fetch = min(k * self.layout.rescore_factor, available) if self.layout.rescored else k
        scores, ids = self.backend.search(self._indexed(queries), fetch, allowed, nprobe=nprobe, ef_search=ef_search)
        short = (ids >= 0).sum(axis=1) < min(fetch, available)
        if self.layout.rescored:
            scores, ids = rescore(queries, ids, self.store.vectors_by_id, self.manifest["metric"], k)
        if short.any():
            scores[short], ids[short] = self.exact(queries[short], k, allowed)
        return scores, ids

    def exact(self, queries: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k over the live vectors (those in ``allowed`` only, when given), full float vectors."""
        if allowed is None:  # every live vector, read in one pass
            vector_ids, vectors = self.store.all_vectors()
            live = np.isin(vector_ids, self.backend.live(vector_ids))
            vector_ids, vectors = vector_ids[live], vectors[live]
        else:
            vector_ids = self.backend.live(allowed)
            vectors = self.store.vectors_of(vector_ids)
        return exact_top_k(queries, vectors, vector_ids, self.manifest["metric"], k)
