"""DocumentIndex: semantic search over a user's documents, persisted in a folder.

The folder holds ``manifest.json`` (model fingerprint, metric, backend, chunking),
``documents.sqlite`` (documents, chunks, metadata and vectors: the source of truth) and
``index.faiss`` (derived; kept in step by :mod:`sentsim.search.mirror`). Each operation
commits one SQLite transaction, then writes the FAISS file atomically, stamped with the state of
the database it reflects; a FAISS file that does not match the database is rebuilt from the
stored vectors, without re-encoding.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from sentsim.search.backends import VectorBackend, check_tuning_values
from sentsim.search.filters import filter_sql
from sentsim.search.hits import Hit, assemble_hits
from sentsim.search.ingest import plan_documents, refuse_existing, validate_documents
from sentsim.search.locking import ReadWriteLock
from sentsim.search.manifest import new_manifest, read_manifest
from sentsim.search.mirror import MANIFEST, FaissMirror
from sentsim.search.model_guard import index_encoder, manifest_encoder
from sentsim.search.store import DocumentStore
from sentsim.storage.atomic import holds_other_files, recover_folder, write_text_atomic
from sentsim.tokenization import untruncated
from sentsim.validation import (
    check_flag,
    check_int,
    check_path,
    document_id,
    single_text,
    validate_ids,
    validate_texts,
)

logger = logging.getLogger(__name__)

DATABASE = "documents.sqlite"


class DocumentIndex:
    """A persistent semantic index over documents. Create with :meth:`create`, reopen with :meth:`open`.

    Example:
        >>> index = DocumentIndex.create("my-index", encoder, backend="auto", chunk_size=128)
        >>> index.add(["first document ...", "second ..."], ids=["a", "b"], metadata=[{"lang": "en"}, {"lang": "de"}])
        >>> index.search("what is in the first?", k=5, filter={"lang": "en"})
    """

    def __init__(self, folder: Path, encoder, manifest: dict, store: DocumentStore) -> None:
        self.folder, self.encoder, self.manifest, self.store = folder, encoder, manifest, store
        self.mirror = FaissMirror(folder, store, manifest)
        self._lock = ReadWriteLock()

    @property
    def backend(self) -> VectorBackend | None:
        """The FAISS index of the stored vectors (None while the index is empty)."""
        return self.mirror.backend

    @property
    def prompts(self) -> dict[str, str]:
        """The prompts prepended to queries and documents (from the model, when the index was built)."""
        return self.manifest["prompts"]

    # ------------------------------------------------------------ create / open
    @classmethod
    def create(
        cls,
        folder: str | Path,
        encoder,
        *,
        backend: str = "auto",
        metric: str = "cosine",
        chunk_size: int | None = None,
        chunk_overlap: int | None = None,
        model_name: str | None = None,
        trust_remote_code: bool = False,
    ) -> DocumentIndex:
        """A new, empty index in ``folder`` (which must not hold one already).

        Args:
            encoder: a ``SentenceEncoder`` or a model name.
            backend: ``auto`` (exact below 200k vectors, then HNSW, then IVF-PQ past 2M), ``flat``,
                ``ivf``, ``hnsw``, ``ivfpq``, or any FAISS factory string (e.g. ``"IVF1024,SQ8"``).
            metric: ``cosine`` (default), ``dot`` or ``euclidean``; scores are similarities.
            chunk_size: split documents into windows of this many tokens (None: one chunk a document);
                at most what the model reads (``max_seq_length`` less its special tokens).
            chunk_overlap: tokens shared by consecutive chunks (default: 32, at most a quarter of
                ``chunk_size``).
            model_name: the name or folder recorded in the manifest, from which :meth:`open` loads
                the model (a local folder is recorded as an absolute path).
            trust_remote_code: let a model given by name run its own code (never implied; pass it
                to :meth:`open` as well).
        """
        folder = check_path("folder", folder)
        trust_remote_code = check_flag("trust_remote_code", trust_remote_code)
        encoder, name = index_encoder(encoder, model_name, trust_remote_code=trust_remote_code)
        if (folder / MANIFEST).exists():
            raise FileExistsError(f"{folder} already holds an index; open it with DocumentIndex.open")
        if holds_other_files(folder, (MANIFEST,)):  # a later build --overwrite would delete them
            raise FileExistsError(
                f"{folder} holds files that are not an index; create an index in a new or empty folder"
            )
        manifest = new_manifest(
            encoder, name, backend=backend, metric=metric, chunk_size=chunk_size, chunk_overlap=chunk_overlap
        )
        folder.mkdir(parents=True, exist_ok=True)
        store = DocumentStore(folder / DATABASE, create=True)
        write_text_atomic(folder / MANIFEST, json.dumps(manifest, indent=2) + "\n")
        return cls(folder, encoder, manifest, store)

    @classmethod
    def open(
        cls,
        folder: str | Path,
        encoder=None,
        *,
        repair: bool = False,
        device: str | None = None,
        trust_remote_code: bool = False,
    ) -> DocumentIndex:
        """Open an index; ``encoder`` defaults to the model named in the manifest, loaded on ``device``
        (a model that runs its own code, e.g. some Nomic or Jina models, needs ``trust_remote_code=True``).

        A different model is refused (:class:`~sentsim.search.ModelMismatchError`). A truncated or corrupted
        file raises :class:`IndexCorruptedError`; ``repair=True`` rebuilds a damaged FAISS
        file from the vectors stored in the database.
        """
        folder = check_path("folder", folder)
        repair = check_flag("repair", repair)
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(f"{folder} is a file, not an index folder")
        recover_folder(folder)  # a build --overwrite that a crash interrupted between its two renames
        manifest = read_manifest(folder)
        encoder = manifest_encoder(
            folder, manifest["model"], encoder, device, check_flag("trust_remote_code", trust_remote_code)
        )
        store = DocumentStore(folder / DATABASE)
        index = cls(folder, encoder, manifest, store)
        try:
            with index.mirror.exclusive():
                index.mirror.load(repair)
        except BaseException:
            store.close()
            raise
        return index

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> DocumentIndex:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        return self.store.count("documents")

    # ------------------------------------------------------------------ writes
    def add(
        self,
        texts: Sequence[str],
        ids: Sequence[str | int] | None = None,
        metadata: Sequence[dict | None] | None = None,
        *,
        batch_size: int = 64,
        show_progress: bool | None = None,
    ) -> list[str]:
        """Add new documents (an existing id is an error: use :meth:`upsert`). Returns their ids.

        Ids are str or int; an int is stored as its digits (``7`` and ``"7"`` are one id, and hits
        name it ``"7"``). Without ids, each document gets a new UUID.
        """
        return self._write(texts, ids, metadata, replace=False, batch_size=batch_size, show_progress=show_progress)

    def upsert(
        self,
        texts: Sequence[str],
        ids: Sequence[str | int],
        metadata: Sequence[dict | None] | None = None,
        *,
        batch_size: int = 64,
        show_progress: bool | None = None,
    ) -> list[str]:
        """Add or replace documents by id; unchanged texts are not encoded again."""
        if ids is None:
            raise ValueError("upsert needs ids")
        return self._write(texts, ids, metadata, replace=True, batch_size=batch_size, show_progress=show_progress)

    def delete(self, ids: Sequence[str | int]) -> int:
        """Delete documents by id (str or int); returns how many existed. Deleted documents are never returned."""
        ids = list(dict.fromkeys(validate_ids(ids)))
        with self._lock.writing(), self.mirror.exclusive(), self.mirror.restored_on_error():
            removed = []
            with self.store.transaction() as transaction:
                self.mirror.refresh()  # another handle may have written since
                present = self.store.has_documents(ids)
                for doc_id in present:
                    removed += self.store.delete_document(doc_id)
                self.mirror.remove(removed)
            if transaction.changed:  # an operation that changed nothing saves nothing
                self.mirror.save_committed(transaction.generation)
        return len(present)

    def compact(self) -> None:
        """Rebuild the FAISS index from the live vectors (drops tombstones; sizes IVF lists again).

        When that changes the index, the generation moves, so other handles load the new file.
        A failed rebuild or save raises and leaves the generation as it was.
        """
        with self._lock.writing(), self.mirror.exclusive():
            before = self.mirror.backend
            with self.store.transaction() as transaction:  # no other handle commits until the file is saved
                self.mirror.rebuild()  # a failure leaves the mirror marked broken: rebuilt on next use
                after = self.mirror.backend
                if before is not None and (before.tombstones or after is None or after.factory != before.factory):
                    self.mirror.generation = transaction.bump()
                self.mirror.save()  # a failure rolls the new generation back

    def _write(self, texts, ids, metadata, *, replace: bool, batch_size: int, show_progress: bool | None) -> list[str]:
        texts, ids, metadata = validate_documents(texts, ids, metadata)
        batch_size = check_int("batch_size", batch_size, minimum=1)  # here: cached texts are not encoded
        show_progress = check_flag("show_progress", show_progress, optional=True)
        if not texts:
            return []
        if not replace:  # early, before encoding; checked again under the write lock
            refuse_existing(self.store.has_documents(ids))
        plan = plan_documents(
            texts,
            ids,
            metadata,
            self._chunking_tokenizer(),
            self.manifest["chunk_size"],
            self.manifest["chunk_overlap"],
        )
        cached = self.store.cached_vectors([h for document in plan for h in document.hashes])
        chunk_texts = {h: text for document in plan for h, text in document.chunk_texts().items()}
        missing = [h for h in chunk_texts if h not in cached]
        if missing:
            vectors = self.encoder.encode(
                [chunk_texts[h] for h in missing],
                prompt=self.prompts["document"],
                batch_size=batch_size,
                show_progress=show_progress,
            )
            cached |= dict(zip(missing, np.asarray(vectors, dtype=np.float32), strict=True))
        with self._lock.writing(), self.mirror.exclusive(), self.mirror.restored_on_error():
            added_ids, added_vectors, removed = [], [], []
            with self.store.transaction() as transaction:  # SQLite's write lock: no other handle writes now
                self.mirror.refresh()  # another handle may have written since
                existing = self.store.has_documents(ids)
                if not replace:
                    refuse_existing(existing)
                if missing:
                    self.store.put_vectors(missing, np.stack([cached[h] for h in missing]))
                for document in plan:
                    stored = self.store.document(document.id) if document.id in existing else None
                    document = dataclasses.replace(document, stored=stored)
                    if document.stored is not None and not document.unchanged:
                        removed += self.store.delete_document(document.id)
                    if document.unchanged:
                        if document.metadata != document.stored[1]:
                            self.store.put_document(document.id, document.text, document.metadata)
                        continue  # same text: metadata only
                    self.store.put_document(document.id, document.text, document.metadata)
                    vector_ids = self.store.next_vector_ids(len(document.chunks))
                    self.store.put_chunks(
                        (int(v), document.id, c.start, c.end, h)
                        for v, c, h in zip(vector_ids, document.chunks, document.hashes, strict=True)
                    )
                    added_ids.append(vector_ids)
                    added_vectors += [cached[h] for h in document.hashes]
                self.mirror.remove(removed)
                if added_ids:
                    self.mirror.add(np.stack(added_vectors), np.concatenate(added_ids))
            if transaction.changed:  # an operation that changed nothing saves nothing
                self.mirror.save_committed(transaction.generation)
        return ids

    # ------------------------------------------------------------------- reads
    def search(
        self,
        queries: str | Sequence[str],
        k: int = 10,
        *,
        filter: dict | None = None,
        by: str = "chunk",
        nprobe: int | None = None,
        ef_search: int | None = None,
    ) -> list[Hit] | list[list[Hit]]:
        """The ``k`` best hits for a query (a list of lists for several queries).

        ``filter`` restricts the search to documents whose metadata match (see
        :mod:`sentsim.search.filters`), inside FAISS, so k matches come back whenever k exist.
        ``by="document"`` returns each document once, with its best chunk. A ``k`` larger than
        the corpus returns what there is.

        Recall against speed, for this call only: ``nprobe`` (IVF / IVF-PQ indexes; default
        ``max(16, nlist / 16)``) is how many inverted lists each query visits, ``ef_search``
        (HNSW; default 128) how many candidates the graph search keeps. Higher finds more of the
        true neighbours and costs time (``benchmarks/bench_index.py --nprobe-sweep``). A tuned
        call searches on the CPU index even where a GPU copy exists.
        """
        queries = single_text(queries)
        single = isinstance(queries, str)
        queries = [queries] if single else validate_texts(queries, "queries")
        for row, query in enumerate(queries):
            if not query.strip():
                raise ValueError(f"queries[{row}] is empty")
        self._catch_up()  # another handle's write may have changed the index type (auto)
        self._check_search(k, by, nprobe, ef_search)  # before encoding the queries
        vectors = self.encoder.encode(queries, prompt=self.prompts["query"], show_progress=False)
        results = self.search_vectors(vectors, k, filter=filter, by=by, nprobe=nprobe, ef_search=ef_search)
        return results[0] if single else results

    def search_vectors(
        self,
        vectors: np.ndarray,
        k: int,
        *,
        filter: dict | None = None,
        by: str = "chunk",
        nprobe: int | None = None,
        ef_search: int | None = None,
    ) -> list[list[Hit]]:
        """:meth:`search` with query embeddings ``(n, dim)`` (encoded with ``prompt=index.prompts["query"]``)."""
        try:
            vectors = np.asarray(vectors, dtype=np.float32)
        except (TypeError, ValueError):
            raise TypeError(f"vectors must be an array of numbers, got {type(vectors).__name__}") from None
        if vectors.ndim == 1:
            vectors = vectors[None, :]
        if vectors.ndim != 2 or vectors.shape[1] != self.manifest["model"]["dim"]:
            raise ValueError(f"query vectors must have shape (n, {self.manifest['model']['dim']}), got {vectors.shape}")
        if not np.isfinite(vectors).all():
            raise ValueError("query vectors contain NaN or infinity")
        self._catch_up()
        self._check_search(k, by, nprobe, ef_search)
        if filter is not None:
            filter_sql(filter)  # checked even where nothing is indexed yet
        k = int(k)
        with self._lock.reading():
            if self.backend is None or self.backend.size == 0:
                return [[] for _ in vectors]
            allowed = self.store.vector_ids_matching(filter) if filter is not None else None
            available = len(allowed) if allowed is not None else self.backend.size
            fetch = min(k if by == "chunk" else max(4 * k, k + 32), available)
            if fetch == 0:
                return [[] for _ in vectors]
            while True:
                scores, ids = self.backend.search(vectors, fetch, allowed, nprobe=nprobe, ef_search=ef_search)
                short = (ids >= 0).sum(axis=1) < fetch
                if short.any():  # an approximate index missed some: exact search over what is allowed
                    exact_scores, exact_ids = self.mirror.exact(vectors[short], fetch, allowed)
                    scores[short], ids[short] = exact_scores, exact_ids
                hits = assemble_hits(self.store.matches(np.unique(ids[ids >= 0])), scores, ids, k, by)
                if by == "chunk" or fetch >= available or all(len(h) >= k for h in hits):
                    return hits
                fetch = min(available, fetch * 4)

    def get(self, doc_id: str | int) -> tuple[str, dict] | None:
        """A document's text and metadata, or None."""
        return self.store.document(document_id(doc_id))

    # --------------------------------------------------------------- internals
    def _chunking_tokenizer(self) -> Tokenizer:
        """The encoder's tokenizer without truncation, copied once (not on every add)."""
        source = self.encoder.tower.tokenizer.tokenizer
        if self.__dict__.get("_chunking_source") is not source:
            self._chunking_source, self._chunking_copy = source, untruncated(source)
        return self._chunking_copy

    def _catch_up(self) -> None:
        """Before a search: rebuild after a failed write, or reload after another handle's write."""
        if self.mirror.broken or self.mirror.stale:
            with self._lock.writing(), self.mirror.exclusive():
                self.mirror.recover()
                self.mirror.refresh()

    def _check_search(self, k: object, by: object, nprobe: object, ef_search: object) -> None:
        check_int("k", k, minimum=1)
        if by not in ("chunk", "document"):
            raise ValueError(f"by must be 'chunk' or 'document', got {by!r}")
        if self.backend is not None:
            self.backend.check_tuning(nprobe, ef_search)  # values, and that the index has the knob
        else:
            check_tuning_values(nprobe, ef_search)
