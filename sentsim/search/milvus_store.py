"""The Milvus store: an index's documents, chunks, vectors and metadata in one Milvus collection.

The index folder keeps ``manifest.json`` (whose ``store`` entry names the URI and collection,
never a token) and, by default, the Milvus Lite database ``milvus.db``; a server or cluster
(``http://host:19530``) holds the collection elsewhere, so the same code runs on a laptop and on
a cluster. One row per chunk (see :mod:`sentsim.search.milvus_layout`); the collection records
the index and model it holds (:mod:`sentsim.search.milvus_guard`). Reads and searches run at
consistency level Strong: what a write stored is found as soon as it returns.

Writes are one step for every handle and process on the index folder (``index.lock``); writers
on other machines are not serialized. Milvus has no transactions, so a write inserts the new
version of each document before it deletes the rows it replaces, and a document reads as its
newest complete version:

- a write that fails before Milvus is called (bad input, encoding) changes nothing;
- if Milvus refuses the insert, the rows it took are deleted again: what was stored before reads
  as it was. If that delete is refused too, each document of the write reads as its old version
  or, where all its rows went in, its new one (never a mix), and searches and counts may also
  find the refused write's rows until those ids are written or deleted again, or ``compact()``;
- if Milvus refuses to delete the replaced rows, the write raises; the new documents are stored
  and read, and searches may also return the replaced chunks until then.

What the Milvus store does not do as the FAISS store does, each refused with a ValueError naming
it: backends ``auto``/``flat`` (FLAT, exact), ``hnsw`` and ``ivf`` (IVF_FLAT) only, no FAISS
factory strings or ``ivfpq``; at most 16,384 hits a query; texts, pieces, metadata and ids of at
most 65,535 bytes (a long document needs a ``chunk_size``); no filter on a key holding ``/``.
Its embedding cache is the chunks stored now (the FAISS store keeps deleted documents' vectors).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from sentsim.search.filters import Condition
from sentsim.search.hits import Hit
from sentsim.search.ingest import PlannedDocument, changes, refuse_existing
from sentsim.search.locking import LOCK_FILE, file_lock
from sentsim.search.milvus_connection import (
    CALL_TIMEOUT,
    MilvusClient,
    MilvusException,
    check_uri,
    connect,
    disconnect,
    is_server,
    refused,
    resolve_uri,
    token_or_environment,
)
from sentsim.search.milvus_filters import literal, milvus_expression
from sentsim.search.milvus_guard import (
    MARKER,
    collection_marker,
    read_marker,
    refuse_existing_collection,
    refuse_other_index,
)
from sentsim.search.milvus_layout import (
    INDEX_TYPES,
    METRICS,
    check_document,
    chunk_rows,
    current_versions,
    documents_of,
    hit_of,
    index_params,
    insert_batches,
    schema,
    search_params,
)
from sentsim.search.store import IndexCorruptedError
from sentsim.search.stores import IndexStore
from sentsim.validation import check_int

logger = logging.getLogger(__name__)

DEFAULT_URI, DEFAULT_COLLECTION = "milvus.db", "sentsim"
MAX_HITS = 16384  # Milvus's limit on the hits of a query, and on the rows of one query call
ID_BATCH, QUERY_BATCH = 1000, 256  # ids or hashes in one `in [...]`; query vectors in one search call
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
HIT_FIELDS = ["doc_id", "start", "end", "text", "metadata"]
VERSION_FIELDS = ["doc_id", "version", "chunk", "chunks"]


class MilvusStore(IndexStore):
    """One Milvus collection holding an index's chunks.

    Args:
        folder: the index folder.
        manifest: the folder's manifest.
        client: a connected client (from :func:`~sentsim.search.milvus_connection.connect`).
        uri: the server's URI, or the Milvus Lite file's absolute path.
        token: the token it connected with (kept in memory only).
    """

    def __init__(self, folder: Path, manifest: dict, client: MilvusClient, uri: str, token: str | None) -> None:
        self.folder, self.manifest, self.uri, self._token = folder, manifest, uri, token
        self.collection = manifest["store"]["collection"]
        self._client: MilvusClient | None = client

    # ------------------------------------------------------------ create / open
    @classmethod
    def settings(cls, options: dict) -> dict:
        uri, collection = options["milvus_uri"], options["collection"]
        token_or_environment(options["milvus_token"])
        uri = check_uri(DEFAULT_URI if uri is None else uri)
        collection = DEFAULT_COLLECTION if collection is None else collection
        if not isinstance(collection, str) or not NAME.fullmatch(collection):
            raise ValueError(
                "collection must be a Milvus collection name: a letter or _, then letters, digits or _ "
                f"(at most 255), got {collection!r}"
            )
        return {"kind": "milvus", "uri": uri, "collection": collection, "index_id": uuid.uuid4().hex}

    @classmethod
    def check_backend(cls, backend: object, dim: int, metric: str) -> None:
        if not isinstance(backend, str):
            raise TypeError(f"backend must be a str ({', '.join(INDEX_TYPES)}), got {backend!r}")
        if backend not in INDEX_TYPES:
            raise ValueError(
                "the Milvus store builds 'auto' or 'flat' (exact: FLAT), 'hnsw' (HNSW) or 'ivf' (IVF_FLAT) "
                f"indexes; FAISS factory strings and 'ivfpq' are the FAISS store's, got {backend!r}"
            )

    @classmethod
    def create(cls, folder: Path, manifest: dict, *, token: str | None) -> MilvusStore:
        """Create the collection (which must not exist), recording the index and its model in it."""
        uri, name = resolve_uri(folder, manifest["store"]["uri"]), manifest["store"]["collection"]
        new_file = not is_server(uri) and not os.path.exists(uri)
        token = token_or_environment(token)
        client = connect(uri, token)
        try:
            with refused(uri, name, "create the collection"):
                if client.has_collection(name, timeout=CALL_TIMEOUT):
                    refuse_existing_collection(client, uri, name, manifest)
                client.create_collection(
                    name,
                    schema=schema(manifest["model"]["dim"]),
                    consistency_level="Strong",
                    properties={MARKER: collection_marker(manifest)},
                    timeout=CALL_TIMEOUT,
                )
                # an empty collection's indexes are ready at once (sync polls every half second)
                client.create_index(name, index_params(client, manifest), sync=False, timeout=CALL_TIMEOUT)
                client.load_collection(name, timeout=CALL_TIMEOUT)
        except BaseException:
            disconnect(uri, token)
            if new_file:  # the folder is left as empty as it was
                shutil.rmtree(uri, ignore_errors=True)
            raise
        logger.info("created the Milvus collection %s at %s", name, uri)
        return cls(folder, manifest, client, uri, token)

    @classmethod
    def open(cls, folder: Path, manifest: dict, *, repair: bool, token: str | None) -> MilvusStore:
        """Connect, and check that the collection holds this index (``repair``: nothing to repair here)."""
        uri, name = resolve_uri(folder, manifest["store"]["uri"]), manifest["store"]["collection"]
        if not is_server(uri) and not os.path.exists(uri):
            raise IndexCorruptedError(f"{uri} is missing: the index's documents are gone (restore it, or build again)")
        token = token_or_environment(token)
        client = connect(uri, token)
        try:
            with refused(uri, name, "describe the collection"):
                if not client.has_collection(name, timeout=CALL_TIMEOUT):
                    raise IndexCorruptedError(
                        f"the collection {name!r} at {uri} is missing: the documents of the index in {folder} "
                        "are gone (restore it, or build again)"
                    )
                marker = read_marker(client, name)
                client.load_collection(name, timeout=CALL_TIMEOUT)  # a restarted Milvus (Lite) has it released
            if marker is None:
                raise IndexCorruptedError(f"the collection {name!r} at {uri} is not a sentsim index")
            if marker.get("index_id") != manifest["store"]["index_id"]:
                refuse_other_index(marker, manifest, f"the collection {name!r} at {uri}", folder)
        except BaseException:
            disconnect(uri, token)
            raise
        return cls(folder, manifest, client, uri, token)

    @property
    def client(self) -> MilvusClient:
        if self._client is None:
            raise ValueError(f"the index in {self.folder} is closed; open it again with DocumentIndex.open")
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client = None
            disconnect(self.uri, self._token)

    @property
    def index_type(self) -> str:
        return INDEX_TYPES[self.manifest["backend"]]

    @property
    def stale(self) -> bool:
        return False  # nothing is kept here: every read asks Milvus

    def refresh(self) -> None:
        """Nothing to catch up with: every read asks Milvus."""

    # ------------------------------------------------------------------- reads
    def count_documents(self) -> int:
        return self._count("chunk == 0")

    def count_chunks(self) -> int:
        return self._count("")

    def document(self, doc_id: str) -> tuple[str, dict] | None:
        return documents_of(self._rows_of([doc_id], [*VERSION_FIELDS, "piece", "metadata"])).get(doc_id)

    def has_documents(self, doc_ids: list[str]) -> set[str]:
        return set(current_versions(self._rows_of(doc_ids, VERSION_FIELDS)))

    def cached_vectors(self, hashes: list[str]) -> dict[str, np.ndarray]:
        """The vectors of stored chunks with these content hashes (one query per 1,000 hashes; a
        full page asks again for the hashes it lacked, so duplicated chunks never hide others)."""
        found: dict[str, np.ndarray] = {}
        hashes = list(dict.fromkeys(hashes))
        for start in range(0, len(hashes), ID_BATCH):
            wanted = hashes[start : start + ID_BATCH]
            while wanted:
                rows = self._query(f"hash in {_list(wanted)}", ["hash", "vector"], limit=MAX_HITS)
                for row in rows:
                    found.setdefault(row["hash"], np.asarray(row["vector"], dtype=np.float32))
                wanted = [h for h in wanted if h not in found] if len(rows) == MAX_HITS else []
        return found

    # ------------------------------------------------------------------ writes
    def check_documents(self, plan: list[PlannedDocument]) -> None:
        """A ValueError naming the first document with a field longer than Milvus holds."""
        for document in plan:
            check_document(document)

    def write(self, plan: list[PlannedDocument], vectors: dict[str, np.ndarray], *, replace: bool) -> None:
        with self._exclusive():
            rows = self._rows_of([document.id for document in plan], [*VERSION_FIELDS, "piece", "metadata"])
            stored = documents_of(rows)
            if not replace:
                refuse_existing(set(stored))
            rechunked, relabelled = changes(plan, stored)
            documents = rechunked + relabelled  # a new version of each, from the vectors given
            if not documents:
                return
            version = max([time.time_ns(), *(row["version"] + 1 for row in rows)])
            ids = [document.id for document in documents]
            try:
                with refused(self.uri, self.collection, "store the documents"):
                    for batch in insert_batches(row for d in documents for row in chunk_rows(d, vectors, version)):
                        self.client.insert(self.collection, batch, timeout=CALL_TIMEOUT)
            except BaseException:
                self._remove_version(ids, version)
                raise
            replaced = sorted({row["doc_id"] for row in rows} & set(ids))
            with refused(
                self.uri,
                self.collection,
                "delete the rows the new documents replace (they are stored; searches may also return the "
                "replaced chunks until these ids are written again or compact() runs)",
            ):
                self._delete(replaced, f"version != {version}")

    def delete(self, doc_ids: list[str]) -> int:
        with self._exclusive():
            present = self.has_documents(doc_ids)
            with refused(self.uri, self.collection, "delete the documents"):
                self._delete(doc_ids)  # every version, a refused write's included
        return len(present)

    def compact(self) -> None:
        """Delete the rows that are not their document's newest complete version (what refused
        writes left; reads every row's id fields), then let Milvus compact the collection."""
        with self._exclusive():
            rows = self._query("", ["pk", *VERSION_FIELDS])
            keep = {row["pk"] for group in current_versions(rows).values() for row in group}
            stale = [row["pk"] for row in rows if row["pk"] not in keep]
            with refused(self.uri, self.collection, "compact the collection"):
                for start in range(0, len(stale), ID_BATCH):
                    self.client.delete(self.collection, ids=stale[start : start + ID_BATCH], timeout=CALL_TIMEOUT)
                self.client.compact(self.collection, timeout=CALL_TIMEOUT)
        if stale:
            logger.info("compact: deleted %d rows that refused writes left in %s", len(stale), self.collection)

    # ------------------------------------------------------------------ search
    def check_search(self, k: int, nprobe: int | None, ef_search: int | None) -> None:
        for name, value in (("nprobe", nprobe), ("ef_search", ef_search)):
            check_int(name, value, minimum=1, maximum=2**31 - 1, optional=True)
        if k > MAX_HITS:
            raise ValueError(f"k must be at most {MAX_HITS} with the Milvus store (Milvus's limit), got {k}")
        if nprobe is not None and self.index_type != "IVF_FLAT":
            raise ValueError(f"nprobe applies to IVF indexes; this index is {self.index_type!r}")
        if ef_search is not None and self.index_type != "HNSW":
            raise ValueError(f"ef_search applies to HNSW indexes; this index is {self.index_type!r}")

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
        """Milvus search with the filter as an expression; ``by="document"`` groups by document id."""
        metric = METRICS[self.manifest["metric"]]
        parameters = {"metric_type": metric, "params": search_params(self.index_type, k, nprobe, ef_search)}
        grouping = {"group_by_field": "doc_id"} if by == "document" else {}
        expression = milvus_expression(conditions) if conditions else ""
        results = []
        with refused(self.uri, self.collection, "search"):
            for start in range(0, len(vectors), QUERY_BATCH):
                found = self.client.search(
                    self.collection,
                    data=vectors[start : start + QUERY_BATCH].tolist(),
                    anns_field="vector",
                    filter=expression,
                    limit=k,
                    output_fields=HIT_FIELDS,
                    search_params=parameters,
                    consistency_level="Strong",
                    timeout=CALL_TIMEOUT,
                    **grouping,
                )
                results += [[hit_of(hit, metric) for hit in row] for row in found]
        return results

    # --------------------------------------------------------------- internals
    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One write at a time for every handle and process on this index folder."""
        with file_lock(self.folder / LOCK_FILE):
            yield

    def _rows_of(self, doc_ids: list[str], fields: list[str]) -> list[dict]:
        rows = []
        for start in range(0, len(doc_ids), ID_BATCH):
            rows += self._query(f"doc_id in {_list(doc_ids[start : start + ID_BATCH])}", fields)
        return rows

    def _query(self, expression: str, fields: list[str], limit: int | None = None) -> list[dict]:
        """The rows matching ``expression``: all of them unless ``limit`` (past one call's limit,
        through a query iterator)."""
        with refused(self.uri, self.collection, "read the documents"):
            rows = self.client.query(
                self.collection,
                filter=expression,
                output_fields=fields,
                limit=limit or MAX_HITS,
                consistency_level="Strong",
                timeout=CALL_TIMEOUT,
            )
            if limit is not None or len(rows) < MAX_HITS:
                return list(rows)
            iterator = self.client.query_iterator(
                self.collection,
                batch_size=MAX_HITS,
                filter=expression,
                output_fields=fields,
                consistency_level="Strong",
                timeout=CALL_TIMEOUT,
            )
            rows = []
            try:
                while page := iterator.next():
                    rows += page
            finally:
                iterator.close()
        return rows

    def _count(self, expression: str) -> int:
        with refused(self.uri, self.collection, "count the documents"):
            rows = self.client.query(
                self.collection,
                filter=expression,
                output_fields=["count(*)"],
                consistency_level="Strong",
                timeout=CALL_TIMEOUT,
            )
        return int(rows[0]["count(*)"])

    def _delete(self, doc_ids: list[str], condition: str = "") -> None:
        for start in range(0, len(doc_ids), ID_BATCH):
            expression = f"doc_id in {_list(doc_ids[start : start + ID_BATCH])}"
            self.client.delete(
                self.collection,
                filter=f"{expression} and {condition}" if condition else expression,
                timeout=CALL_TIMEOUT,
            )

    def _remove_version(self, doc_ids: list[str], version: int) -> None:
        """After a refused insert: delete the rows it took (what was stored before stays)."""
        try:
            self._delete(doc_ids, f"version == {version}")
        except MilvusException as error:
            logger.warning(
                "Milvus at %s refused to delete the rows of a refused write (%s): searches may return them "
                "until these documents are written or deleted again, or compact() runs",
                self.uri,
                error.message,
            )


def _list(values: list[str]) -> str:
    return "[" + ", ".join(literal(value) for value in values) + "]"
