"""``sentsim index build|add|delete`` and ``sentsim search``: semantic search over documents."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sentsim.cli.common import (
    add_model_options,
    add_precision_options,
    add_weight_option,
    load_encoder,
    model_name,
    precision_options,
    progress,
    tsv_field,
    weights,
)
from sentsim.data.documents import read_documents
from sentsim.search import DocumentIndex
from sentsim.search.hybrid import MODES
from sentsim.search.keywords import TOKENIZERS
from sentsim.search.manifest import MANIFEST
from sentsim.search.precomputed import embeddings_for
from sentsim.storage.atomic import atomic_folder, holds_other_files
from sentsim.validation import validate_ids


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    index = subparsers.add_parser(
        "index", help="build and update a document index", description="Build and update a semantic search index."
    )
    actions = index.add_subparsers(dest="action", required=True, metavar="ACTION")

    build = actions.add_parser(
        "build", help="build an index from documents", description="Build a new index folder from documents."
    )
    build.add_argument(
        "--docs",
        required=True,
        help="documents: .txt (one a line), .jsonl/.json/.csv/.tsv/.parquet with text[, id, metadata...], a dataset, "
        "or - for stdin (JSON Lines, or one document a line)",
    )
    build.add_argument("--output", required=True, help="index folder")
    build.add_argument(
        "--store",
        default="faiss",
        choices=["faiss", "milvus"],
        help="where the documents live: faiss (SQLite and a FAISS index in the folder) or milvus (a Milvus "
        "collection; a server's token is read from MILVUS_TOKEN)",
    )
    build.add_argument(
        "--milvus-uri",
        help="--store milvus: a server (http://host:19530) or a Milvus Lite .db file (relative: inside the index "
        "folder; default milvus.db there)",
    )
    build.add_argument("--collection", help="--store milvus: the collection to create (default sentsim)")
    build.add_argument(
        "--backend",
        default="auto",
        help="faiss: auto, flat, ivf, hnsw, ivfpq or a FAISS factory string; milvus: auto or flat (exact), hnsw, ivf",
    )
    build.add_argument("--metric", default="cosine", choices=["cosine", "dot", "euclidean"])
    add_precision_options(build)
    build.add_argument("--chunk-size", type=int, default=None, help="split documents into chunks of this many tokens")
    build.add_argument(
        "--chunk-overlap",
        type=int,
        default=None,
        help="tokens shared by consecutive chunks (default 32, at most a quarter of --chunk-size)",
    )
    build.add_argument(
        "--keyword-tokenizer",
        choices=list(TOKENIZERS),
        help="--store faiss: how the keyword index (search --mode keyword/hybrid) splits words: unicode61 "
        "(default; case and accents folded), porter (English stems too) or trigram (substrings: CJK, codes)",
    )
    build.add_argument(
        "--overwrite", action="store_true", help="replace an existing index (atomically, once the new one is built)"
    )
    _document_fields(build)
    _embeddings_option(build)
    add_model_options(build, truncate=True)
    build.set_defaults(run=run_build)

    add = actions.add_parser(
        "add", help="add or replace documents", description="Add documents to an index (same ids are replaced)."
    )
    add.add_argument("folder")
    add.add_argument(
        "--docs",
        required=True,
        help="documents to add: .txt (one a line), .jsonl, .json, .csv, .tsv, .parquet, or - for stdin",
    )
    _document_fields(add)
    _embeddings_option(add)
    add.add_argument("--no-progress", action="store_true", help="no progress bar")
    _index_model_options(add)
    add.set_defaults(run=run_add)

    delete = actions.add_parser("delete", help="delete documents by id", description="Delete documents by id.")
    delete.add_argument("folder")
    delete.add_argument("--ids", required=True, nargs="+")
    _index_model_options(delete, device=False)
    delete.set_defaults(run=run_delete)

    compact = actions.add_parser(
        "compact",
        help="drop deleted vectors and re-pick the index type",
        description="FAISS store: rebuild the FAISS index from the stored vectors (deleted vectors are dropped "
        "and an 'auto' index takes the type its size calls for). Milvus store: remove the rows refused writes "
        "left, then compact the collection.",
    )
    compact.add_argument("folder")
    _index_model_options(compact, device=False)
    compact.set_defaults(run=run_compact)

    search = subparsers.add_parser(
        "search",
        help="search an index",
        description="Print the best hits for a query: score, id, text (--mode hybrid: and the rank in each arm).",
    )
    search.add_argument("folder")
    search.add_argument("query", nargs="+", help="one or more queries")
    search.add_argument("-k", type=int, default=5, help="hits per query (default 5)")
    search.add_argument(
        "--mode",
        default="dense",
        choices=list(MODES),
        help="dense (embeddings; default), keyword (BM25 over the words) or hybrid (both, fused by reciprocal rank)",
    )
    add_weight_option(search)
    search.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="metadata equality (value read as JSON when it parses)",
    )
    search.add_argument("--where", help='a full filter as a JSON object, e.g. \'{"year": {"gte": 2020}}\'')
    search.add_argument("--by-document", action="store_true", help="one hit per document (its best chunk)")
    search.add_argument(
        "--nprobe", type=int, help="IVF indexes: inverted lists visited per query (more: better recall)"
    )
    search.add_argument("--ef-search", type=int, help="HNSW indexes: candidates kept by the graph search")
    search.add_argument("--json", action="store_true", help="print JSON lines: one object per query with its hits")
    _index_model_options(search)
    search.set_defaults(run=run_search)


def _index_model_options(parser: argparse.ArgumentParser, *, device: bool = True) -> None:
    parser.add_argument(
        "--model",
        default=None,
        help="the index's model, where its folder has moved (default: the model the index was built with; "
        "another model is refused)",
    )
    parser.add_argument("--trust-remote-code", action="store_true", help="allow the index's model to run its own code")
    if not device:
        return
    parser.add_argument(
        "--device",
        default=None,
        help="where the index's model encodes: cpu, cuda, cuda:1 ... (default: cuda when available)",
    )


def _document_fields(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--text-field", default="text")
    parser.add_argument("--id-field", help="column of document ids (default: 'id' where present, else ids are made up)")


def _embeddings_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--embeddings",
        metavar="DIR",
        help="the documents' embeddings from `sentsim encode --engine ray --prompt-name document` (matched by "
        "id; same model, prompt and normalization; for an index without --chunk-size): nothing is encoded",
    )


def _write_documents(index: DocumentIndex, documents, args: argparse.Namespace, *, replace: bool) -> None:
    """Add (or, with ids and ``replace``, upsert) the documents, with their --embeddings where given."""
    options = {"metadata": documents.metadata, "show_progress": progress(args)}
    if args.embeddings is not None:
        if documents.ids is None:
            raise ValueError(f"--embeddings are matched to documents by id; {args.docs} has no id field")
        ids = validate_ids(documents.ids)
        options["embeddings"] = embeddings_for(index, ids, args.embeddings)
    if documents.ids is not None and replace:
        index.upsert(documents.texts, ids=documents.ids, **options)
    else:
        index.add(documents.texts, ids=documents.ids, **options)


def run_build(args: argparse.Namespace) -> int:
    documents = _read_documents(args)
    encoder = load_encoder(args)
    output = Path(args.output)
    if output.exists() and any(output.iterdir()):
        if not args.overwrite:
            raise ValueError(f"{output} exists and is not empty; pass --overwrite to replace it")
        if holds_other_files(output, (MANIFEST,)):  # e.g. "." or the folder of the documents
            raise ValueError(f"{output} holds files that are not an index; --overwrite replaces an index only")
    with atomic_folder(output) as staging:
        index = DocumentIndex.create(
            staging,
            encoder,
            store=args.store,
            milvus_uri=args.milvus_uri,
            collection=args.collection,
            backend=args.backend,
            metric=args.metric,
            chunk_size=args.chunk_size,
            chunk_overlap=args.chunk_overlap,
            model_name=model_name(args),
            **precision_options(args),
            keyword_tokenizer=args.keyword_tokenizer,
        )
        if args.embeddings is None:
            index.add(
                documents.texts,
                ids=documents.ids,
                metadata=documents.metadata,
                batch_size=args.batch_size,
                show_progress=progress(args),
            )
        else:
            _write_documents(index, documents, args, replace=False)
        index.close()
        for leftover in ("documents.sqlite-wal", "documents.sqlite-shm"):
            (staging / leftover).unlink(missing_ok=True)
    with DocumentIndex.open(output, encoder) as index:
        print(_summary(output, index))
    return 0


def run_add(args: argparse.Namespace) -> int:
    documents = _read_documents(args)
    with DocumentIndex.open(
        args.folder, args.model, device=args.device, trust_remote_code=args.trust_remote_code
    ) as index:
        _write_documents(index, documents, args, replace=True)
        print(json.dumps({"index": args.folder, "documents": len(index)}))
    return 0


def run_delete(args: argparse.Namespace) -> int:
    with DocumentIndex.open(args.folder, args.model, trust_remote_code=args.trust_remote_code) as index:
        removed = index.delete(args.ids)
        print(json.dumps({"index": args.folder, "deleted": removed, "documents": len(index)}))
    return 0


def run_compact(args: argparse.Namespace) -> int:
    with DocumentIndex.open(args.folder, args.model, trust_remote_code=args.trust_remote_code) as index:
        index.compact()
        print(_summary(args.folder, index))
    return 0


def _summary(folder: str | Path, index: DocumentIndex) -> str:
    """The JSON line of a built or compacted index: documents, chunks (vectors), the vector index
    (a FAISS factory string, or a Milvus index type) and its precision."""
    chunks, factory = index.store.count_chunks(), index.store.index_type
    return json.dumps(
        {
            "index": str(folder),
            "documents": len(index),
            "chunks": chunks,
            "factory": factory,
            "precision": index.manifest["precision"],
        }
    )


def run_search(args: argparse.Namespace) -> int:
    spec = _where(args.where)
    for item in args.filter:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise ValueError(f"--filter needs KEY=VALUE, got {item!r}")
        if key in spec:
            raise ValueError(
                f"--filter {item!r}: the key {key!r} already has a condition (in --where or another --filter)"
            )
        spec[key] = _value(value)
    with DocumentIndex.open(
        args.folder, args.model, device=args.device, trust_remote_code=args.trust_remote_code
    ) as index:
        results = index.search(
            args.query,
            k=args.k,
            mode=args.mode,
            weights=weights(args.weight),
            filter=spec or None,
            by="document" if args.by_document else "chunk",
            nprobe=args.nprobe,
            ef_search=args.ef_search,
        )
    for query, hits in zip(args.query, results, strict=True):
        if args.json:
            print(json.dumps({"query": query, "hits": [vars(hit) for hit in hits]}, ensure_ascii=False))
            continue
        print(f"# {query}")
        for hit in hits:
            print(f"{hit.score:.4f}\t{tsv_field(hit.id)}\t{tsv_field(hit.text)}{_ranks(hit, args.mode)}")
    return 0


def _ranks(hit, mode: str) -> str:
    """A hybrid hit's rank in each arm (``-`` where that arm did not return it), as two more columns."""
    if mode != "hybrid":
        return ""
    return "".join(f"\t{arm}:{getattr(hit, f'{arm}_rank') or '-'}" for arm in ("dense", "keyword"))


def _where(text: str | None) -> dict:
    if text is None:
        return {}
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"--where is not valid JSON ({error.msg}): {text!r}") from None
    except (ValueError, RecursionError) as error:  # nested too deeply, a number of 5,000 digits
        raise ValueError(f"--where cannot be read as JSON ({error})") from None
    if not isinstance(spec, dict):
        raise ValueError(
            f'--where must be a JSON object of key -> condition, e.g. \'{{"year": {{"gte": 2020}}}}\', got {text!r}'
        )
    return spec


def _value(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
    except (ValueError, RecursionError) as error:  # nested too deeply, a number of 5,000 digits
        raise ValueError(f"a --filter value cannot be read as JSON ({error})") from None


def _read_documents(args: argparse.Namespace):
    """--docs with --text-field and --id-field; a named --id-field must exist."""
    documents = read_documents(args.docs, text_field=args.text_field, id_field=args.id_field or "id")
    if args.id_field is not None and documents.ids is None:
        raise ValueError(f"{args.docs}: no id field {args.id_field!r}")
    return documents
