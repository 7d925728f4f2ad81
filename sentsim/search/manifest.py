"""An index folder's ``manifest.json``: read and checked before anything else of the folder is trusted.

It records the model (fingerprint and prompts), the metric, the backend asked for, how the
index holds vectors (``precision``, ``rescore_factor``, ``truncate_dim``: see
:mod:`sentsim.search.precision`), the chunking settings and the store: ``{"kind": "faiss"}`` (SQLite and FAISS files in the folder, whose
state the FAISS fields ``factory``, ``generation``, ``state``, ``tombstones`` and
``next_vector_id`` describe, and whose keyword index ``keywords`` describes:
``{"tokenizer": "unicode61"}``, see :mod:`sentsim.search.keywords`) or ``{"kind": "milvus",
"uri": ..., "collection": ..., "index_id": ...}`` (a Milvus collection; never a token; no
keyword index: ``"keywords": null``).
"""

from __future__ import annotations

from pathlib import Path

from sentsim._version import __version__
from sentsim.fingerprint import model_fingerprint
from sentsim.prompts import encoder_search_prompts
from sentsim.search.chunking import chunk_options
from sentsim.search.keywords import DEFAULT_TOKENIZER, TOKENIZERS, tokenizer_spec
from sentsim.search.precision import RESCORE_FACTOR, check_layout, layout_problem
from sentsim.search.store import IndexCorruptedError
from sentsim.search.stores import STORE_KINDS, store_class
from sentsim.similarity import Metric
from sentsim.storage.formats import read_versioned
from sentsim.validation import is_integer

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 2  # any other is refused (2: the keyword index)
MILVUS_FIELDS = ("uri", "collection", "index_id")


def new_manifest(
    encoder,
    name: str | None,
    *,
    store: dict,
    backend: str,
    metric: str,
    chunk_size: int | None,
    chunk_overlap: int | None,
    precision: str = "float32",
    rescore_factor: int = RESCORE_FACTOR,
    truncate_dim: int | None = None,
    keyword_tokenizer: str | None = None,
) -> dict:
    """The manifest of a new, empty index for ``encoder`` (recorded as ``name``) in ``store`` (its
    manifest entry), its options checked."""
    metric = Metric.parse(metric).value
    if metric == "manhattan":
        raise ValueError("sentsim indexes support cosine, dot and euclidean; not manhattan")
    prompts = encoder_search_prompts(encoder)  # kept in the manifest: later writes and searches use them
    chunk_size, chunk_overlap = chunk_options(chunk_size, chunk_overlap, encoder, prompts["document"])
    layout = check_layout(
        precision, rescore_factor, truncate_dim, dim=encoder.dim, backend=backend, store=store["kind"]
    )
    kind = store_class(store["kind"])
    kind.check_backend(backend, layout.index_dim(encoder.dim), metric)
    if not kind.keywords and keyword_tokenizer is not None:
        raise ValueError(f"keyword_tokenizer applies to a store with a keyword index (faiss), not {store['kind']!r}")
    keywords = None
    if kind.keywords:
        tokenizer = keyword_tokenizer if keyword_tokenizer is not None else DEFAULT_TOKENIZER
        tokenizer_spec(tokenizer)  # a ValueError names the tokenizers
        keywords = {"tokenizer": tokenizer}
    return {
        "sentsim_version": __version__,
        "format": MANIFEST_FORMAT,
        "model": model_fingerprint(encoder, name),
        "metric": metric,
        "backend": backend,
        **layout.to_dict(),
        "chunk_size": chunk_size,
        "chunk_overlap": chunk_overlap,
        "prompts": prompts,
        "store": store,
        "keywords": keywords,
        **(_faiss_fields() if store["kind"] == "faiss" else {}),
    }


def _faiss_fields() -> dict:
    """The FAISS store's fields of a new manifest (``state``: the database state index.faiss was saved for)."""
    return {"factory": None, "generation": 0, "state": "", "tombstones": [], "next_vector_id": 0}


def read_manifest(folder: Path) -> dict:
    """The manifest of the index in ``folder``; FileNotFoundError without one, IndexCorruptedError
    (naming the file and field) for one that is not JSON or not of the shape an index writes."""
    manifest = read_versioned(folder / MANIFEST, MANIFEST_FORMAT, "index", IndexCorruptedError)
    _check_manifest(manifest, folder / MANIFEST)
    return manifest


def _check_manifest(manifest: dict, path: Path) -> None:
    """An IndexCorruptedError naming the field unless ``manifest`` has the shape :meth:`DocumentIndex.create` writes."""
    fields = {"model": dict, "metric": str, "backend": str, "chunk_size": (int, type(None)), "chunk_overlap": int}
    for name, kind in fields.items():
        if name not in manifest or not isinstance(manifest[name], kind) or isinstance(manifest[name], bool):
            raise IndexCorruptedError(f"{path}: {name!r} is missing or has the wrong type ({manifest.get(name)!r})")
    if manifest["metric"] not in {metric.value for metric in Metric}:
        raise IndexCorruptedError(f"{path}: unknown metric {manifest['metric']!r}")
    if not is_integer(manifest["model"].get("dim")):
        raise IndexCorruptedError(f"{path}: model 'dim' is missing or not an int")
    problem = layout_problem(manifest)
    if problem is not None:
        raise IndexCorruptedError(f"{path}: {problem}")
    prompts = manifest.get("prompts")
    if not isinstance(prompts, dict) or any(not isinstance(prompts.get(side), str) for side in ("query", "document")):
        raise IndexCorruptedError(f"{path}: 'prompts' must hold a 'query' and a 'document' text, got {prompts!r}")
    store = manifest.get("store")
    if not isinstance(store, dict) or store.get("kind") not in STORE_KINDS:
        raise IndexCorruptedError(f"{path}: 'store' must name its kind ({', '.join(STORE_KINDS)}), got {store!r}")
    if store["kind"] == "milvus" and not all(isinstance(store.get(key), str) for key in MILVUS_FIELDS):
        raise IndexCorruptedError(f"{path}: a Milvus 'store' needs {', '.join(MILVUS_FIELDS)} (str), got {store!r}")
    keywords = manifest.get("keywords", "missing")
    if (keywords is not None or store["kind"] == "faiss") and (
        not isinstance(keywords, dict) or keywords.get("tokenizer") not in TOKENIZERS
    ):
        raise IndexCorruptedError(
            f"{path}: 'keywords' must name a tokenizer ({', '.join(TOKENIZERS)}) for the faiss store, got {keywords!r}"
        )
    if store["kind"] == "faiss" and (
        not isinstance(manifest.get("tombstones"), list)
        or not all(is_integer(manifest.get(name)) for name in ("generation", "next_vector_id"))
    ):
        raise IndexCorruptedError(f"{path}: 'tombstones' must be a list, 'generation' and 'next_vector_id' ints")
