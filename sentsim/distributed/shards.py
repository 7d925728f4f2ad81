"""A folder of embeddings in Parquet shards, and its ``sentsim.json``: written by the Ray engine of
``sentsim encode``, read back by :func:`read_embeddings`.

Layout::

    OUT_DIR/sentsim.json                 format, model fingerprint, prompt, normalization, dim, count, shards
    OUT_DIR/shards/part-00000.parquet    columns id (str or int) and embedding (fixed_size_list<float32>[dim])

The shards are plain Parquet, readable without Ray or sentsim: ``pandas.read_parquet("OUT_DIR/shards")``,
``pyarrow.parquet.read_table("OUT_DIR/shards")``, DuckDB's ``SELECT * FROM 'OUT_DIR/shards/*.parquet'``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sentsim._version import __version__
from sentsim.fingerprint import model_fingerprint
from sentsim.storage.atomic import atomic_folder, holds_other_files
from sentsim.storage.formats import read_versioned
from sentsim.validation import check_path, document_id, is_integer, nonfinite_row

EMBEDDINGS_FORMAT = 1  # any other is refused
INFO_FILE = "sentsim.json"
SHARDS = "shards"
SHARD_BYTES = 128 << 20  # embedding bytes per shard (about 87k rows of 384 dimensions)


def embeddings_info(encoder, name: str, *, prompt_name: str | None, prompt: str, normalize: bool) -> dict:
    """What ``sentsim.json`` records of the embeddings ``encoder`` makes (count and shards come on writing)."""
    return {
        "format": EMBEDDINGS_FORMAT,
        "sentsim_version": __version__,
        "model": model_fingerprint(encoder, name),
        "prompt": {"name": prompt_name, "text": prompt},
        "normalize": bool(normalize),
        "dim": encoder.dim,
    }


def check_output_folder(folder: Path, *, overwrite: bool) -> None:
    """A FileExistsError unless ``folder`` is new or empty, or ``overwrite`` and an embeddings folder."""
    if not folder.exists() or (folder.is_dir() and not any(folder.iterdir())):
        return
    if not overwrite:
        raise FileExistsError(f"{folder} exists; choose a new folder, or overwrite it (overwrite=True, --overwrite)")
    if not folder.is_dir() or holds_other_files(folder, (INFO_FILE,)):
        raise FileExistsError(f"{folder} holds files that are not sentsim embeddings; overwrite replaces those only")


def write_shards(batches: Iterable[pa.Table], folder: Path, info: dict) -> dict:
    """Write ``batches`` (tables of ``id`` and ``embedding``) to ``folder`` as shards of about
    ``SHARD_BYTES`` and ``sentsim.json`` (``info`` with the count and shard names, returned).

    The folder appears whole or not at all: it is written beside its place and renamed into it
    (:func:`~sentsim.storage.atomic.atomic_folder`); on any error an existing folder stays as it was.
    """
    rows_per_shard = max(1, SHARD_BYTES // (4 * info["dim"]))
    with atomic_folder(folder) as staging:
        (staging / SHARDS).mkdir()
        names: list[str] = []
        pending: list[pa.Table] = []
        count = pending_rows = 0
        for batch in batches:
            if pending and not batch.schema.equals(pending[0].schema):  # ids typed apart (int64 here, str there)
                names.append(_write_shard(staging, len(names), pending))
                pending, pending_rows = [], 0
            pending.append(batch)
            pending_rows += batch.num_rows
            count += batch.num_rows
            if pending_rows >= rows_per_shard:
                names.append(_write_shard(staging, len(names), pending))
                pending, pending_rows = [], 0
        if pending:
            names.append(_write_shard(staging, len(names), pending))
        info = info | {"count": count, "shards": names}
        (staging / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def _write_shard(staging: Path, number: int, tables: list[pa.Table]) -> str:
    name = f"{SHARDS}/part-{number:05d}.parquet"
    pq.write_table(pa.concat_tables(tables), staging / name)
    return name


def read_embeddings(folder: str | Path) -> tuple[dict, list[str], np.ndarray]:
    """``(info, ids, vectors)`` of an embeddings folder written by ``sentsim encode --engine ray``.

    ``info`` is its ``sentsim.json`` (model fingerprint, prompt, normalization, dim, count);
    ``vectors`` is float32 ``(count, dim)``, row i the embedding of ``ids[i]``, in shard order
    (the order of the input is not kept). Ids are returned as the search index stores them: a
    str as it is, an int as its decimal digits, so ``7`` and ``"7"`` are one id.

    Raises FileNotFoundError without ``sentsim.json``, and a ValueError naming the file (and the
    id) for an unknown format, a missing or unlisted shard, a shard of the wrong shape, a null id,
    a NaN or infinite embedding, a duplicate id or a count that does not add up.
    """
    folder = check_path("folder", folder)
    info = _read_info(folder / INFO_FILE)
    dim, count = info["dim"], info["count"]
    listed = set(info["shards"])
    unlisted = sorted(str(path.relative_to(folder)) for path in (folder / SHARDS).glob("*.parquet"))
    unlisted = [name for name in unlisted if name not in listed]
    if unlisted:
        raise ValueError(f"{folder}: {', '.join(unlisted)} not listed in {INFO_FILE}; was the folder changed?")
    ids: list[str] = []
    vectors = np.empty((count, dim), dtype=np.float32)
    for name in info["shards"]:
        shard_ids, shard_vectors = _read_shard(folder / name, dim)
        if len(ids) + len(shard_ids) > count:
            raise ValueError(f"{folder}: the shards hold more than the {count} rows {INFO_FILE} records")
        vectors[len(ids) : len(ids) + len(shard_ids)] = shard_vectors
        ids.extend(shard_ids)
    if len(ids) != count:
        raise ValueError(f"{folder}: the shards hold {len(ids)} rows; {INFO_FILE} records {count}")
    bad = nonfinite_row(vectors)
    if bad is not None:
        raise ValueError(f"{folder}: the embedding of id {ids[bad]!r} holds NaN or infinity")
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        duplicate = next(doc_id for doc_id in ids if doc_id in seen or seen.add(doc_id))
        raise ValueError(f"{folder}: id {duplicate!r} occurs more than once (ints count as their digits)")
    return info, ids, vectors


def _read_info(path: Path) -> dict:
    info = read_versioned(path, EMBEDDINGS_FORMAT, "embeddings")
    for key in ("dim", "count"):
        if not is_integer(info.get(key)) or info[key] < (1 if key == "dim" else 0):
            raise ValueError(f"{path}: {key!r} is missing or not a valid count ({info.get(key)!r})")
    shards = info.get("shards")
    if not isinstance(shards, list) or not all(_is_shard_name(name) for name in shards):
        raise ValueError(f"{path}: 'shards' must list files {SHARDS}/*.parquet, got {shards!r}")
    for key, kind in (("model", dict), ("prompt", dict), ("normalize", bool)):
        if not isinstance(info.get(key), kind):
            raise ValueError(f"{path}: {key!r} is missing or has the wrong type ({info.get(key)!r})")
    return info


def _is_shard_name(name: object) -> bool:
    return isinstance(name, str) and name.startswith(f"{SHARDS}/") and "/" not in name[len(SHARDS) + 1 :]


def _read_shard(path: Path, dim: int) -> tuple[list[str], np.ndarray]:
    """The ids (as stored by the index) and the ``(rows, dim)`` float32 embeddings of one shard."""
    try:
        table = pq.read_table(path, columns=["id", "embedding"])
    except FileNotFoundError:
        raise ValueError(f"{path} is missing") from None
    except (pa.ArrowException, OSError) as error:
        raise ValueError(f"{path} is not a readable shard ({str(error).splitlines()[0]})") from None
    embedding = table.column("embedding")
    kind = embedding.type
    if not (pa.types.is_fixed_size_list(kind) and kind.list_size == dim and kind.value_type == pa.float32()):
        raise ValueError(f"{path}: column 'embedding' is {kind}; expected fixed_size_list<float>[{dim}]")
    raw_ids = table.column("id").to_pylist()
    if embedding.null_count:
        row = next(i for i, value in enumerate(embedding.is_null().to_pylist()) if value)
        raise ValueError(f"{path}: the embedding of id {raw_ids[row]!r} is null")
    try:
        ids = [document_id(value, f"{path}: the id in row {row}") for row, value in enumerate(raw_ids)]
    except TypeError as error:  # a null or float id: bad data in the file
        raise ValueError(str(error)) from None
    values = embedding.combine_chunks().flatten().to_numpy(zero_copy_only=False)  # flatten: slices respected
    return ids, values.reshape(len(ids), dim)
