"""The FAISS store: documents in SQLite inside the index folder, searched through a FAISS index.

The folder holds ``documents.sqlite`` (documents, chunks, metadata and vectors: the source of
truth, :mod:`sentsim.search.store`) and ``index.faiss`` (derived; kept in step by
:mod:`sentsim.search.mirror`). Each write commits one SQLite transaction, then writes the FAISS
file atomically, stamped with the state of the database it reflects; a FAISS file that does not
match the database is rebuilt from the stored vectors, without re-encoding.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from sentsim.search.backends import BACKENDS, VectorBackend, check_factory, check_tuning_values
from sentsim.search.filters import Condition
from sentsim.search.hits import Hit, assemble_hits
from sentsim.search.ingest import PlannedDocument, changes, refuse_existing
from sentsim.search.keywords import keyword_query, tokenizer_spec
from sentsim.search.mirror import FaissMirror
from sentsim.search.store import DocumentStore
from sentsim.search.stores import IndexStore

logger = logging.getLogger(__name__)

DATABASE = "documents.sqlite"


class FaissStore(IndexStore):
    """SQLite (:attr:`database`) and the FAISS index kept in step with it (:attr:`mirror`).

    Args:
        folder: the index folder.
        manifest: the folder's manifest (the mirror keeps its FAISS fields up to date).
        database: the opened SQLite store.
    """

    keywords = True

    def __init__(self, folder: Path, manifest: dict, database: DocumentStore) -> None:
        self.folder, self.manifest, self.database = folder, manifest, database
        self.mirror = FaissMirror(folder, database, manifest)

    @classmethod
    def settings(cls, options: dict) -> dict:
        given = [name for name, value in options.items() if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)} applies to store='milvus'; this index keeps its documents in FAISS")
        return {"kind": "faiss"}

    @classmethod
    def create(cls, folder: Path, manifest: dict, *, token: str | None) -> FaissStore:
        cls.settings({"milvus_token": token})
        tokenize = tokenizer_spec(manifest["keywords"]["tokenizer"])
        return cls(folder, manifest, DocumentStore(folder / DATABASE, create=True, tokenize=tokenize))

    @classmethod
    def open(cls, folder: Path, manifest: dict, *, repair: bool, token: str | None) -> FaissStore:
        """Open the database and load the FAISS file (``repair``: rebuild a damaged one)."""
        cls.settings({"milvus_token": token})
        database = DocumentStore(folder / DATABASE)
        store = cls(folder, manifest, database)
        try:
            with store.mirror.exclusive():
                store.mirror.load(repair)
        except BaseException:
            database.close()
            raise
        return store

    @classmethod
    def check_backend(cls, backend: object, dim: int, metric: str) -> None:
        if not isinstance(backend, str):
            raise TypeError(f"backend must be a str ({', '.join(BACKENDS)} or a FAISS factory string), got {backend!r}")
        if backend not in BACKENDS:  # an invalid FAISS factory string fails here, not after encoding
            check_factory(backend, dim, metric)

    @property
    def backend(self) -> VectorBackend | None:
        """The FAISS index of the stored vectors (None while the index is empty)."""
        return self.mirror.backend

    @property
    def index_type(self) -> str | None:
        return self.backend.factory if self.backend is not None else None

    @property
    def stale(self) -> bool:
        return self.mirror.broken or self.mirror.stale

    def refresh(self) -> None:
        """Rebuild after a failed write, or reload after another handle's write."""
        with self.mirror.exclusive():
            self.mirror.recover()
            self.mirror.refresh()

    def close(self) -> None:
        self.database.close()

    # ------------------------------------------------------------------- reads
    def count_documents(self) -> int:
        return self.database.count("documents")

    def count_chunks(self) -> int:
        return self.database.count("chunks")

    def document(self, doc_id: str) -> tuple[str, dict] | None:
        return self.database.document(doc_id)

    def has_documents(self, doc_ids: list[str]) -> set[str]:
        return self.database.has_documents(doc_ids)

    def cached_vectors(self, hashes: list[str]) -> dict[str, np.ndarray]:
        return self.database.cached_vectors(hashes)

    # ------------------------------------------------------------------ writes
    def check_documents(self, plan: list[PlannedDocument]) -> None:
        """SQLite holds documents of any size."""

    def write(self, plan: list[PlannedDocument], vectors: dict[str, np.ndarray], *, replace: bool) -> None:
        """One SQLite transaction (SQLite's write lock: no other handle writes meanwhile), then the
        FAISS file saved; a failure rolls the transaction back and the FAISS index with it."""
        with self.mirror.exclusive(), self.mirror.restored_on_error():
            added_ids, added_vectors, removed = [], [], []
            with self.database.transaction() as transaction:
                self.mirror.refresh()  # another handle may have written since
                existing = self.database.has_documents([document.id for document in plan])
                if not replace:
                    refuse_existing(existing)
                stored = {doc_id: self.database.document(doc_id) for doc_id in existing}
                rechunked, relabelled = changes(plan, stored)
                for document in relabelled:
                    self.database.put_document(document.id, document.text, document.metadata)
                new_hashes = list(dict.fromkeys(h for document in rechunked for h in document.hashes))
                if new_hashes:
                    self.database.put_vectors(new_hashes, np.stack([vectors[h] for h in new_hashes]))
                for document in rechunked:
                    if document.id in stored:
                        removed += self.database.delete_document(document.id)
                    self.database.put_document(document.id, document.text, document.metadata)
                    vector_ids = self.database.next_vector_ids(len(document.chunks))
                    self.database.put_chunks(document.id, document.text, document.chunks, document.hashes, vector_ids)
                    added_ids.append(vector_ids)
                    added_vectors += [vectors[h] for h in document.hashes]
                self.mirror.remove(removed)
                if added_ids:
                    self.mirror.add(np.stack(added_vectors), np.concatenate(added_ids))
            if transaction.changed:  # an operation that changed nothing saves nothing
                self.mirror.save_committed(transaction.generation)

    def delete(self, doc_ids: list[str]) -> int:
        with self.mirror.exclusive(), self.mirror.restored_on_error():
            removed = []
            with self.database.transaction() as transaction:
                self.mirror.refresh()  # another handle may have written since
                present = self.database.has_documents(doc_ids)
                for doc_id in present:
                    removed += self.database.delete_document(doc_id)
                self.mirror.remove(removed)
            if transaction.changed:
                self.mirror.save_committed(transaction.generation)
        return len(present)

    def compact(self) -> None:
        """Rebuild the FAISS index from the live vectors (drops tombstones; sizes IVF lists again), and
        merge the keyword index where deletes left rows in it.

        When that changes the index, the generation moves, so other handles load the new file.
        A failed rebuild or save raises and leaves the generation as it was.
        """
        with self.mirror.exclusive():
            before = self.mirror.backend
            with self.database.transaction() as transaction:  # no other handle commits until the file is saved
                merged = self.database.optimize_keywords()
                self.mirror.rebuild()  # a failure leaves the mirror marked broken: rebuilt on next use
                after = self.mirror.backend
                rebuilt = before is not None and (before.tombstones or after is None or after.factory != before.factory)
                if merged or rebuilt:
                    self.mirror.generation = transaction.bump()
                self.mirror.save()  # a failure rolls the new generation back

    # ------------------------------------------------------------------ search
    def check_search(self, k: int, nprobe: int | None, ef_search: int | None) -> None:
        if self.backend is not None:
            self.backend.check_tuning(nprobe, ef_search)  # values, and that the index has the knob
        else:
            check_tuning_values(nprobe, ef_search)

    def keyword_search(
        self, queries: list[str], k: int, conditions: list[Condition] | None, *, by: str
    ) -> list[list[Hit]]:
        """BM25 over the FTS5 table, the filter in the same SQL query; ``by="document"`` reads deeper
        until k documents are found (or the matches run out)."""
        results = []
        for text in queries:
            query, fetch = keyword_query(text), k if by == "chunk" else max(4 * k, k + 32)
            while True:
                scores, ids = self.database.keyword_matches(query, fetch, conditions)
                hits = assemble_hits(self.database.matches(ids), scores[None, :], ids[None, :], k, by)[0]
                if by == "chunk" or len(hits) >= k or len(ids) < fetch:
                    break
                fetch *= 4
            results.append(hits)
        return results

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
        """Inside FAISS, restricted to the matching vectors; an approximate index that misses some is
        completed by exact search. ``by="document"`` fetches more chunks until k documents are found."""
        if self.backend is None or self.backend.size == 0:
            return [[] for _ in vectors]
        allowed = self.database.vector_ids_matching(conditions) if conditions is not None else None
        available = len(allowed) if allowed is not None else self.backend.size
        fetch = min(k if by == "chunk" else max(4 * k, k + 32), available)
        if fetch == 0:
            return [[] for _ in vectors]
        while True:
            scores, ids = self.mirror.search(vectors, fetch, allowed, available, nprobe=nprobe, ef_search=ef_search)
            hits = assemble_hits(self.database.matches(np.unique(ids[ids >= 0])), scores, ids, k, by)
            if by == "chunk" or fetch >= available or all(len(h) >= k for h in hits):
                return hits
            fetch = min(available, fetch * 4)
