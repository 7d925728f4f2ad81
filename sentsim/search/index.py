"""DocumentIndex: semantic search over a user's documents, persisted in a folder.

The folder holds ``manifest.json`` (model fingerprint, prompts, metric, backend, chunking, and
which store holds the documents, see :mod:`sentsim.search.manifest`). The store (see
:mod:`sentsim.search.stores`) is ``faiss``, SQLite and a FAISS file inside the folder, or
``milvus``, a Milvus collection on a server or cluster, or in a Milvus Lite file inside the folder.
The index checks input, chunks documents, looks up the embedding cache, encodes with the model's
prompts and refuses another model; the store keeps what it is handed and searches it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from sentsim.search.filters import parse_filter
from sentsim.search.hits import Hit
from sentsim.search.hybrid import WEIGHTS, check_mode, search_modes
from sentsim.search.ingest import content_hash, plan_documents, refuse_existing, validate_documents
from sentsim.search.locking import ReadWriteLock
from sentsim.search.manifest import MANIFEST, new_manifest, read_manifest
from sentsim.search.model_guard import index_encoder, manifest_encoder
from sentsim.search.precomputed import query_vectors
from sentsim.search.stores import IndexStore, store_class
from sentsim.storage.atomic import holds_other_files, recover_folder, write_text_atomic
from sentsim.tokenization import untruncated
from sentsim.validation import (
    check_flag,
    check_int,
    check_path,
    document_id,
    nonfinite_row,
    single_text,
    validate_ids,
    validate_texts,
)

logger = logging.getLogger(__name__)


class DocumentIndex:
    """A persistent semantic index over documents. Create with :meth:`create`, reopen with :meth:`open`.

    Example:
        >>> index = DocumentIndex.create("my-index", encoder, backend="auto", chunk_size=128)
        >>> index.add(["first document ...", "second ..."], ids=["a", "b"], metadata=[{"lang": "en"}, {"lang": "de"}])
        >>> index.search("what is in the first?", k=5, filter={"lang": "en"})
        >>> index.search("error E-1042 on start", k=5, mode="hybrid")  # keywords and meaning, fused
    """

    def __init__(self, folder: Path, encoder, manifest: dict, store: IndexStore) -> None:
        self.folder, self.encoder, self.manifest, self.store = folder, encoder, manifest, store
        self._lock = ReadWriteLock()  # one write at a time; searches never see half of one

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
        store: str = "faiss",
        backend: str = "auto",
        metric: str = "cosine",
        precision: str = "float32",
        rescore_factor: int = 4,
        truncate_dim: int | None = None,
        chunk_size: int | None = None,
        chunk_overlap: int | None = None,
        model_name: str | None = None,
        trust_remote_code: bool = False,
        milvus_uri: str | None = None,
        collection: str | None = None,
        milvus_token: str | None = None,
        keyword_tokenizer: str | None = None,
    ) -> DocumentIndex:
        """A new, empty index in ``folder`` (which must not hold one already).

        Args:
            encoder: a ``SentenceEncoder`` or a model name.
            store: where the documents live: ``faiss`` (SQLite and a FAISS index inside ``folder``)
                or ``milvus`` (a Milvus collection; ``pip install 'sentsim[milvus]'``).
            backend: FAISS store: ``auto`` (exact below 200k vectors, then HNSW, then IVF-PQ past 2M),
                ``flat``, ``ivf``, ``hnsw``, ``ivfpq``, or any FAISS factory string (e.g.
                ``"IVF1024,SQ8"``). Milvus store: ``auto`` or ``flat`` (exact, Milvus FLAT), ``hnsw``
                or ``ivf`` (IVF_FLAT).
            metric: ``cosine`` (default), ``dot`` or ``euclidean``; scores are similarities.
            precision: how the FAISS store's in-memory index holds vectors: ``float32`` (default),
                ``int8`` (scalar quantization, 4x smaller; backend ``auto``, ``flat``, ``hnsw`` or
                ``ivf``) or ``binary`` (sign bits searched by Hamming distance, 32x smaller; backend
                ``auto`` or ``flat``; the dimension a multiple of 8). See :mod:`sentsim.search.precision`.
            rescore_factor: an index that quantizes or truncates takes ``k x rescore_factor``
                candidates and rescores them exactly with the float vectors SQLite holds (default 4).
            truncate_dim: the index holds the first ``truncate_dim`` dimensions of each vector
                (Matryoshka models), re-normalized where the metric or the model normalizes;
                rescoring uses the whole vector.
            chunk_size: split documents into windows of this many tokens (None: one chunk a document);
                at most what the model reads (``max_seq_length`` less its special tokens).
            chunk_overlap: tokens shared by consecutive chunks (default: 32, at most a quarter of
                ``chunk_size``).
            model_name: the name or folder recorded in the manifest, from which :meth:`open` loads
                the model (a local folder is recorded as an absolute path).
            trust_remote_code: let a model given by name run its own code (never implied; pass it
                to :meth:`open` as well).
            milvus_uri: Milvus store: a server or cluster (``http://host:19530``), or a Milvus Lite
                database file (``.db``; a relative path lies inside ``folder``). Default:
                ``milvus.db`` inside ``folder``.
            collection: Milvus store: the collection to create (it must not exist; default ``sentsim``).
            milvus_token: Milvus store: the server's token (``user:password`` or an API key); default
                the ``MILVUS_TOKEN`` environment variable. It is never written to the folder.
            keyword_tokenizer: FAISS store: how the keyword index (for ``mode="keyword"`` and
                ``"hybrid"`` searches) splits text into words: ``unicode61`` (default; case and
                diacritics folded), ``porter`` (English stems too) or ``trigram`` (substrings of
                3+ characters: CJK text, codes). The Milvus store keeps no keyword index.
        """
        folder = check_path("folder", folder)
        trust_remote_code = check_flag("trust_remote_code", trust_remote_code)
        kind = store_class(store)  # the store's module: a missing package is named before any work
        settings = kind.settings({"milvus_uri": milvus_uri, "collection": collection, "milvus_token": milvus_token})
        encoder, name = index_encoder(encoder, model_name, trust_remote_code=trust_remote_code)
        if (folder / MANIFEST).exists():
            raise FileExistsError(f"{folder} already holds an index; open it with DocumentIndex.open")
        if holds_other_files(folder, (MANIFEST,)):  # a later build --overwrite would delete them
            raise FileExistsError(
                f"{folder} holds files that are not an index; create an index in a new or empty folder"
            )
        manifest = new_manifest(
            encoder,
            name,
            store=settings,
            backend=backend,
            metric=metric,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            precision=precision,
            rescore_factor=rescore_factor,
            truncate_dim=truncate_dim,
            keyword_tokenizer=keyword_tokenizer,
        )
        folder.mkdir(parents=True, exist_ok=True)
        opened = kind.create(folder, manifest, token=milvus_token)
        try:
            write_text_atomic(folder / MANIFEST, json.dumps(manifest, indent=2) + "\n")
        except BaseException:
            opened.close()
            raise
        return cls(folder, encoder, manifest, opened)

    @classmethod
    def open(
        cls,
        folder: str | Path,
        encoder=None,
        *,
        repair: bool = False,
        device: str | None = None,
        trust_remote_code: bool = False,
        milvus_token: str | None = None,
    ) -> DocumentIndex:
        """Open an index; ``encoder`` defaults to the model named in the manifest, loaded on ``device``
        (a model that runs its own code, e.g. some Nomic or Jina models, needs ``trust_remote_code=True``).

        A different model is refused (:class:`~sentsim.search.ModelMismatchError`), and so is a Milvus
        collection that holds another index. A truncated or corrupted file raises
        :class:`IndexCorruptedError`; ``repair=True`` rebuilds a damaged FAISS file from the vectors
        stored in the database (the Milvus store keeps no derived file). ``milvus_token``: the
        Milvus server's token (default: the ``MILVUS_TOKEN`` environment variable).
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
        store = store_class(manifest["store"]["kind"]).open(folder, manifest, repair=repair, token=milvus_token)
        return cls(folder, encoder, manifest, store)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> DocumentIndex:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        return self.store.count_documents()

    # ------------------------------------------------------------------ writes
    def add(
        self,
        texts: Sequence[str],
        ids: Sequence[str | int] | None = None,
        metadata: Sequence[dict | None] | None = None,
        *,
        batch_size: int = 64,
        show_progress: bool | None = None,
        embeddings: np.ndarray | None = None,
    ) -> list[str]:
        """Add new documents (an existing id is an error: use :meth:`upsert`). Returns their ids.

        Ids are str or int; an int is stored as its digits (``7`` and ``"7"`` are one id, and hits
        name it ``"7"``). Without ids, each document gets a new UUID.

        ``embeddings``: the documents' embeddings ``(n, dim)``, computed already (e.g. on a Ray
        cluster: :mod:`sentsim.distributed`) by this index's model with its document prompt
        (``index.prompts["document"]``) and normalization; nothing is encoded. Only for an index
        that keeps each document whole (no ``chunk_size``).
        """
        return self._write(
            texts,
            ids,
            metadata,
            replace=False,
            batch_size=batch_size,
            show_progress=show_progress,
            embeddings=embeddings,
        )

    def upsert(
        self,
        texts: Sequence[str],
        ids: Sequence[str | int],
        metadata: Sequence[dict | None] | None = None,
        *,
        batch_size: int = 64,
        show_progress: bool | None = None,
        embeddings: np.ndarray | None = None,
    ) -> list[str]:
        """Add or replace documents by id; unchanged texts are not encoded again (``embeddings``: as :meth:`add`)."""
        if ids is None:
            raise ValueError("upsert needs ids")
        return self._write(
            texts,
            ids,
            metadata,
            replace=True,
            batch_size=batch_size,
            show_progress=show_progress,
            embeddings=embeddings,
        )

    def delete(self, ids: Sequence[str | int]) -> int:
        """Delete documents by id (str or int); returns how many existed. Deleted documents are never returned."""
        ids = list(dict.fromkeys(validate_ids(ids)))
        with self._lock.writing():
            return self.store.delete(ids)

    def compact(self) -> None:
        """Drop what deletes left behind. FAISS store: rebuild the FAISS index from the live vectors
        (drops tombstones; sizes IVF lists again; other handles load the new file; a failed rebuild
        or save raises and changes nothing). Milvus store: remove the rows that refused writes left,
        then let Milvus compact the collection."""
        with self._lock.writing():
            self.store.compact()

    def _write(
        self,
        texts,
        ids,
        metadata,
        *,
        replace: bool,
        batch_size: int,
        show_progress: bool | None,
        embeddings: np.ndarray | None = None,
    ) -> list[str]:
        texts, ids, metadata = validate_documents(texts, ids, metadata)
        batch_size = check_int("batch_size", batch_size, minimum=1)  # here: cached texts are not encoded
        show_progress = check_flag("show_progress", show_progress, optional=True)
        if embeddings is not None:
            embeddings = self._check_embeddings(embeddings, len(texts))
        if not texts:
            return []
        if not replace:  # early, before encoding; checked again by the store's write
            refuse_existing(self.store.has_documents(ids))
        plan = plan_documents(
            texts,
            ids,
            metadata,
            self._chunking_tokenizer(),
            self.manifest["chunk_size"],
            self.manifest["chunk_overlap"],
        )
        self.store.check_documents(plan)  # before encoding
        if embeddings is not None:  # one chunk a document (checked): its given embedding
            with self._lock.writing():
                self.store.write(plan, {d.hashes[0]: v for d, v in zip(plan, embeddings, strict=True)}, replace=replace)
            return ids
        vectors = self.store.cached_vectors([h for document in plan for h in document.hashes])
        chunk_texts = {h: text for document in plan for h, text in document.chunk_texts().items()}
        missing = [h for h in chunk_texts if h not in vectors]
        if missing:
            encoded = self.encoder.encode(
                [chunk_texts[h] for h in missing],
                prompt=self.prompts["document"],
                batch_size=batch_size,
                show_progress=show_progress,
            )
            vectors |= dict(zip(missing, np.asarray(encoded, dtype=np.float32), strict=True))
        with self._lock.writing():
            self.store.write(plan, vectors, replace=replace)
        return ids

    # ------------------------------------------------------------------- reads
    def search(
        self,
        queries: str | Sequence[str],
        k: int = 10,
        *,
        mode: str = "dense",
        filter: dict | None = None,
        by: str = "chunk",
        weights: dict[str, float] | None = None,
        nprobe: int | None = None,
        ef_search: int | None = None,
        embeddings: np.ndarray | None = None,
    ) -> list[Hit] | list[list[Hit]]:
        """The ``k`` best hits for a query (a list of lists for several queries).

        ``mode``: ``dense`` (by embedding similarity), ``keyword`` (BM25 over the words of each
        chunk, see :mod:`sentsim.search.keywords`: a query with no word matches nothing) or
        ``hybrid`` (both, fused by reciprocal rank over 10 x k hits of each arm, see
        :mod:`sentsim.search.hybrid`; ``weights={"dense": 1.0, "keyword": 1.0}`` weighs the arms).
        Each hit says its rank and score in each arm that ran. Keyword and hybrid need the FAISS
        store (the Milvus store keeps no keyword index).

        ``filter`` restricts the search to documents whose metadata match (see
        :mod:`sentsim.search.filters`), inside the vector and the keyword search, so k matches
        come back whenever k exist. ``by="document"`` returns each document once, with its best
        chunk. A ``k`` larger than the corpus returns what there is (the Milvus store answers at
        most 16,384 hits a query). ``embeddings``: the queries' embeddings ``(n, dim)``, computed
        already with ``prompt=index.prompts["query"]`` (nothing is encoded).

        Recall against speed, for this call only: ``nprobe`` (IVF / IVF-PQ indexes; FAISS default
        ``max(16, nlist / 16)``) is how many inverted lists each query visits, ``ef_search``
        (HNSW; default 128) how many candidates the graph search keeps. Higher finds more of the
        true neighbours and costs time (``benchmarks/bench_index.py --nprobe-sweep``). An index
        without the knob (exact search) refuses it. A tuned call searches on the CPU index even
        where a GPU copy exists.
        """
        queries = single_text(queries)
        single = isinstance(queries, str)
        queries = [queries] if single else validate_texts(queries, "queries")
        for row, query in enumerate(queries):
            if not query.strip():
                raise ValueError(f"queries[{row}] is empty")
        dense = {"nprobe": nprobe, "ef_search": ef_search, "embeddings": embeddings}
        mode, weights = check_mode(mode, weights, self.store, self.manifest["store"]["kind"], dense)
        self._catch_up()  # another handle's write may have changed the index type (auto)
        self._check_search(k, by, nprobe, ef_search)  # before encoding the queries
        conditions = parse_filter(filter) if filter is not None else None
        vectors = None
        if mode != "keyword":
            vectors = (
                query_vectors(embeddings, self.manifest["model"]["dim"], len(queries))
                if embeddings is not None
                else self.encoder.encode(queries, prompt=self.prompts["query"], show_progress=False)
            )
        options = {"mode": mode, "by": by, "weights": weights, "nprobe": nprobe, "ef_search": ef_search}
        with self._lock.reading():
            results = search_modes(self.store, queries, vectors, int(k), conditions, **options)
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
        """:meth:`search` (``mode="dense"``) with query embeddings ``(n, dim)`` (encoded with
        ``prompt=index.prompts["query"]``)."""
        vectors = query_vectors(vectors, self.manifest["model"]["dim"])
        self._catch_up()
        self._check_search(k, by, nprobe, ef_search)
        conditions = parse_filter(filter) if filter is not None else None  # checked even where nothing is stored
        options = {"mode": "dense", "by": by, "weights": WEIGHTS, "nprobe": nprobe, "ef_search": ef_search}
        with self._lock.reading():
            return search_modes(self.store, [], vectors, int(k), conditions, **options)

    def stored_vectors(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The vectors the index holds for chunks (whole documents, without chunking) whose text is
        one of ``texts``, by text; a text it has never held is absent (the FAISS store keeps the
        vectors of deleted documents, as a cache for their texts)."""
        by_hash = {content_hash(text): text for text in validate_texts(texts)}
        return {by_hash[h]: vector for h, vector in self.store.cached_vectors(list(by_hash)).items()}

    def get(self, doc_id: str | int) -> tuple[str, dict] | None:
        """A document's text and metadata, or None."""
        return self.store.document(document_id(doc_id))

    # --------------------------------------------------------------- internals
    def _check_embeddings(self, embeddings: object, count: int) -> np.ndarray:
        """``embeddings`` as float32 ``(count, dim)``, for an index that keeps documents whole."""
        if self.manifest["chunk_size"] is not None:
            raise ValueError(
                f"this index splits documents into chunks of {self.manifest['chunk_size']} tokens, so it encodes "
                "each chunk itself; embeddings given with the documents fit an index without chunk_size"
            )
        try:
            array = np.asarray(embeddings, dtype=np.float32)
        except (TypeError, ValueError):
            raise TypeError(f"embeddings must be an array of numbers, got {type(embeddings).__name__}") from None
        dim = self.manifest["model"]["dim"]
        if array.shape != (count, dim):
            raise ValueError(f"embeddings must have shape ({count}, {dim}): one row per document, got {array.shape}")
        bad = nonfinite_row(array)
        if bad is not None:
            raise ValueError(f"embeddings[{bad}] holds NaN or infinity")
        return array

    def _chunking_tokenizer(self) -> Tokenizer:
        """The encoder's tokenizer without truncation, copied once (not on every add)."""
        source = self.encoder.tower.tokenizer.tokenizer
        if self.__dict__.get("_chunking_source") is not source:
            self._chunking_source, self._chunking_copy = source, untruncated(source)
        return self._chunking_copy

    def _catch_up(self) -> None:
        """Before a search: let a store that keeps a copy of the vectors catch up with other handles."""
        if self.store.stale:
            with self._lock.writing():
                self.store.refresh()

    def _check_search(self, k: object, by: object, nprobe: object, ef_search: object) -> None:
        k = check_int("k", k, minimum=1)
        if by not in ("chunk", "document"):
            raise ValueError(f"by must be 'chunk' or 'document', got {by!r}")
        self.store.check_search(k, nprobe, ef_search)
