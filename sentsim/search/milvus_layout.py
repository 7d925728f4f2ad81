"""How the Milvus store lays an index out in a collection: fields, indexes, and one row per chunk.

Each chunk is one row: its document's id, position and offsets, content hash (the embedding
cache), text, vector, the document's metadata (exactly, and in a JSON field for filters, see
:mod:`sentsim.search.milvus_filters`) and ``piece``, the document's text from this chunk's start
to the next one's: the pieces, joined in order, are the document. Rows carry the ``version`` of
the write that stored them and how many ``chunks`` it wrote, so a document reads as its newest
complete version whatever a refused write left.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator

import numpy as np

from sentsim.search.hits import Hit
from sentsim.search.ingest import PlannedDocument
from sentsim.search.milvus_connection import DataType, MilvusClient
from sentsim.search.milvus_filters import FILTERS, filter_field

INDEX_TYPES = {"auto": "FLAT", "flat": "FLAT", "hnsw": "HNSW", "ivf": "IVF_FLAT"}
METRICS = {"cosine": "COSINE", "dot": "IP", "euclidean": "L2"}
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 200, 128  # as the FAISS store's HNSW
IVF_NLIST, IVF_NPROBE = 1024, 64  # nprobe nlist / 16, as the FAISS store's IVF
MAX_BYTES = 65535  # a VARCHAR's limit, kept for the JSON fields too
INSERT_BYTES = 16 * 2**20  # rows per insert call, by size


def schema(dim: int):
    """The collection's fields (``pk`` is Milvus's own id of a row)."""
    fields = MilvusClient.create_schema(auto_id=True, enable_dynamic_field=False)
    fields.add_field("pk", DataType.INT64, is_primary=True)
    fields.add_field("doc_id", DataType.VARCHAR, max_length=MAX_BYTES)
    fields.add_field("version", DataType.INT64)  # the write that stored the row
    fields.add_field("chunk", DataType.INT64)  # the chunk's position in the document
    fields.add_field("chunks", DataType.INT64)  # how many chunks that write stored
    fields.add_field("start", DataType.INT64)  # the chunk's character offsets in the document
    fields.add_field("end", DataType.INT64)
    fields.add_field("hash", DataType.VARCHAR, max_length=64)  # of the chunk's text: the embedding cache
    fields.add_field("text", DataType.VARCHAR, max_length=MAX_BYTES)  # the chunk's text
    fields.add_field("piece", DataType.VARCHAR, max_length=MAX_BYTES)
    fields.add_field("metadata", DataType.VARCHAR, max_length=MAX_BYTES)  # the document's, as JSON text
    fields.add_field(FILTERS, DataType.JSON)  # the metadata as filters read it
    fields.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    return fields


def index_params(client: MilvusClient, manifest: dict):
    """The vector index the manifest's backend names, and inverted indexes for reads by id and by hash."""
    index_type = INDEX_TYPES[manifest["backend"]]
    params = {"HNSW": {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION}, "IVF_FLAT": {"nlist": IVF_NLIST}}
    indexes = client.prepare_index_params()
    indexes.add_index(
        field_name="vector",
        index_type=index_type,
        metric_type=METRICS[manifest["metric"]],
        params=params.get(index_type, {}),
    )
    for field in ("doc_id", "hash"):
        indexes.add_index(field_name=field, index_type="INVERTED")
    return indexes


def search_params(index_type: str, k: int, nprobe: int | None, ef_search: int | None) -> dict:
    """The index's search parameters: HNSW ``ef`` (at least k: Milvus needs it, FAISS does the same),
    IVF ``nprobe`` (at most nlist, as FAISS)."""
    if index_type == "HNSW":
        return {"ef": max(ef_search or HNSW_EF_SEARCH, k)}
    if index_type == "IVF_FLAT":
        return {"nprobe": min(nprobe or IVF_NPROBE, IVF_NLIST)}
    return {}


def check_document(document: PlannedDocument) -> None:
    """A ValueError naming the document if a field of its rows would be longer than Milvus holds."""
    check_size(document.id, "id", utf8_bytes(document.id), "use shorter ids")
    metadata = max(
        utf8_bytes(json.dumps(part, ensure_ascii=False))
        for part in (document.metadata, filter_field(document.metadata))
    )
    check_size(document.id, "metadata", metadata, "keep its metadata smaller")
    texts = [document.text[c.start : c.end] for c in document.chunks]
    texts += [document.text[start:end] for start, end in piece_bounds(document)]
    check_size(document.id, "chunk", max(map(utf8_bytes, texts)), "build the index with a (smaller) chunk_size")


def chunk_rows(document: PlannedDocument, vectors: dict[str, np.ndarray], version: int) -> Iterator[dict]:
    """The rows of a document's chunks, as the write ``version`` stores them."""
    metadata = json.dumps(document.metadata, ensure_ascii=False)
    filters = filter_field(document.metadata)
    bounds = piece_bounds(document)
    for position, (chunk, digest) in enumerate(zip(document.chunks, document.hashes, strict=True)):
        yield {
            "doc_id": document.id,
            "version": version,
            "chunk": position,
            "chunks": len(document.chunks),
            "start": chunk.start,
            "end": chunk.end,
            "hash": digest,
            "text": document.text[chunk.start : chunk.end],
            "piece": document.text[slice(*bounds[position])],
            "metadata": metadata,
            FILTERS: filters,
            "vector": vectors[digest].tolist(),
        }


def piece_bounds(document: PlannedDocument) -> list[tuple[int, int]]:
    """Where each chunk's piece of the document starts and ends: the pieces, joined, are the text."""
    starts = [0]
    for chunk in document.chunks[1:]:
        starts.append(max(starts[-1], chunk.start))
    return list(zip(starts, [*starts[1:], len(document.text)], strict=True))


def current_versions(rows: list[dict]) -> dict[str, list[dict]]:
    """The rows of each document's newest complete version, in chunk order (a refused write may
    have left a partial or an older one)."""
    versions: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for row in rows:
        versions[row["doc_id"], row["version"]].append(row)
    current = {}
    for (doc_id, _), group in sorted(versions.items(), key=lambda item: item[0][1]):
        if {row["chunk"] for row in group} == set(range(group[0]["chunks"])):
            current[doc_id] = sorted(group, key=lambda row: row["chunk"])
    return current


def documents_of(rows: list[dict]) -> dict[str, tuple[str, dict]]:
    """``doc_id -> (text, metadata)`` of the documents among ``rows`` (read with pieces and metadata)."""
    return {
        doc_id: ("".join(row["piece"] for row in group), json.loads(group[0]["metadata"]))
        for doc_id, group in current_versions(rows).items()
    }


def insert_batches(rows: Iterable[dict]) -> Iterator[list[dict]]:
    """Rows in insert calls of about :data:`INSERT_BYTES` at most."""
    batch, size = [], 0
    for row in rows:
        row_size = 4 * len(row["vector"]) + sum(len(row[field]) for field in ("text", "piece", "metadata"))
        if batch and size + row_size > INSERT_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(row)
        size += row_size
    if batch:
        yield batch


def hit_of(hit: dict, metric: str) -> Hit:
    """A search result as a Hit, its score a similarity as the FAISS store gives it."""
    entity, score = hit["entity"], float(hit["distance"])
    if metric == "L2":  # Milvus gives the squared distance; the FAISS store's score is minus the distance
        score = -math.sqrt(max(score, 0.0))
    return Hit(entity["doc_id"], score, entity["text"], json.loads(entity["metadata"]), entity["start"], entity["end"])


def check_size(doc_id: str, what: str, size: int, hint: str) -> None:
    if size > MAX_BYTES:
        raise ValueError(
            f"document {doc_id[:80]!r}: its {what} is {size:,} bytes; the Milvus store holds at most "
            f"{MAX_BYTES:,} bytes per {what}: {hint}"
        )


def utf8_bytes(text: str) -> int:
    return len(text.encode("utf-8"))
