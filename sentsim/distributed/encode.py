"""Encode a Ray Data ``Dataset`` on a pool of Ray actors, each loading the model once.

The driver loads the model first (on CPU), to check the prompt and to fingerprint the weights;
then each actor loads it on its own node and device (a model name or folder by that name, an
in-memory :class:`SentenceEncoder` from its saved files, sent through Ray's object store) and
checks that it got the driver's weights. Rows are cut into tasks of
``rows_per_task`` rows; a task whose actor dies (a killed process, a lost node) runs again on
a restarted actor (Ray Data's actor pools restart actors and retry their tasks), and Ray keeps
each task's output once, so no row is lost or doubled.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from sentsim.distributed.runtime import require_ray
from sentsim.distributed.shards import check_output_folder, embeddings_info, write_shards
from sentsim.distributed.worker import EMBEDDING, Embedder, WorkerSettings
from sentsim.encoder import SentenceEncoder
from sentsim.prompts import choose_prompt
from sentsim.validation import check_flag, check_int, check_path, positive_number

if TYPE_CHECKING:
    import ray.data

logger = logging.getLogger(__name__)

ROWS_PER_TASK = 1024  # rows an actor encodes per call: the unit Ray balances and retries


@dataclass(frozen=True)
class _Job:
    source: object  # a model name or folder, or an object reference to the saved files of one
    settings: WorkerSettings
    info: dict
    rows_per_task: int
    workers: int
    cpus_per_worker: float
    gpus_per_worker: float


def encode_dataset(
    ds: ray.data.Dataset,
    model: str | os.PathLike | SentenceEncoder,
    *,
    text_column: str = "text",
    id_column: str = "id",
    prompt_name: str | None = None,
    prompt: str | None = None,
    normalize: bool | None = None,
    batch_size: int = 32,
    rows_per_task: int = ROWS_PER_TASK,
    workers: int = 1,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
    max_seq_length: int | None = None,
    trust_remote_code: bool = False,
) -> ray.data.Dataset:
    """Embed the ``text_column`` of ``ds`` on ``workers`` Ray actors: a Dataset of ``id_column``
    (its values as they are) and ``embedding`` (Arrow ``fixed_size_list<float32>[dim]``), in no
    particular order (Ray does not keep it).

    Each actor runs :meth:`SentenceEncoder.encode` on ``rows_per_task`` rows at a time: on a GPU
    worker (``gpus_per_worker > 0``) in bf16 with packed batches where the GPU and tower allow
    (as ``encode`` picks on CUDA), on a CPU worker with ``ceil(cpus_per_worker)`` torch threads.
    A model name or folder must load the same weights on every node (the same files, or a Hub
    revision); an in-memory encoder is shipped to the workers instead.

    Args:
        ds: the texts and their ids (other columns are dropped).
        model: a model name or folder (loaded by each actor), or a ``SentenceEncoder``.
        text_column, id_column: the columns of texts and of ids (str or int).
        prompt_name, prompt, normalize, batch_size: as in :meth:`SentenceEncoder.encode`.
        rows_per_task: rows per actor call, the unit that Ray balances over the actors and
            runs again if its actor dies.
        workers: actors (each holds a copy of the model).
        cpus_per_worker, gpus_per_worker: what Ray reserves for each actor (fractions allowed).
            Together the actors must leave the cluster a CPU to read the data with.
        max_seq_length, trust_remote_code: as in :meth:`SentenceEncoder.from_pretrained`, for
            a model given by name.

    Raises a ValueError naming the column (and the columns there are) when ``ds`` lacks one or
    holds the wrong type in it, before any actor starts. A null text or id, or an embedding
    with NaN, fails the job (naming the id) when its actor reaches it.
    """
    job = _plan(
        ds,
        model,
        text_column=text_column,
        id_column=id_column,
        prompt_name=prompt_name,
        prompt=prompt,
        normalize=normalize,
        batch_size=batch_size,
        rows_per_task=rows_per_task,
        workers=workers,
        cpus_per_worker=cpus_per_worker,
        gpus_per_worker=gpus_per_worker,
        max_seq_length=max_seq_length,
        trust_remote_code=trust_remote_code,
    )
    return _encode(ds, job)


def encode_to_folder(
    ds: ray.data.Dataset,
    model: str | os.PathLike | SentenceEncoder,
    folder: str | os.PathLike,
    *,
    overwrite: bool = False,
    text_column: str = "text",
    id_column: str = "id",
    prompt_name: str | None = None,
    prompt: str | None = None,
    normalize: bool | None = None,
    batch_size: int = 32,
    rows_per_task: int = ROWS_PER_TASK,
    workers: int = 1,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
    max_seq_length: int | None = None,
    trust_remote_code: bool = False,
) -> dict:
    """:func:`encode_dataset`, written to ``folder`` as Parquet shards of ``id`` and ``embedding``
    with a ``sentsim.json`` (see :mod:`sentsim.distributed.shards`); returns what that records.

    The shards are written here, by this process, as the actors' results stream in, so
    ``folder`` is a local path even on a cluster. It appears only when complete; an existing
    folder is refused (FileExistsError) unless ``overwrite`` and it holds embeddings. The other
    arguments are those of :func:`encode_dataset`.
    """
    folder = check_path("folder", folder)
    check_output_folder(folder, overwrite=check_flag("overwrite", overwrite))
    job = _plan(
        ds,
        model,
        text_column=text_column,
        id_column=id_column,
        prompt_name=prompt_name,
        prompt=prompt,
        normalize=normalize,
        batch_size=batch_size,
        rows_per_task=rows_per_task,
        workers=workers,
        cpus_per_worker=cpus_per_worker,
        gpus_per_worker=gpus_per_worker,
        max_seq_length=max_seq_length,
        trust_remote_code=trust_remote_code,
    )
    encoded = _encode(ds, job)
    if id_column != "id":
        encoded = encoded.rename_columns({id_column: "id"})
    return write_shards(encoded.iter_batches(batch_size=None, batch_format="pyarrow"), folder, job.info)


def _plan(
    ds,
    model,
    *,
    text_column: str,
    id_column: str,
    prompt_name: str | None,
    prompt: str | None,
    normalize: bool | None,
    batch_size: int,
    rows_per_task: int,
    workers: int,
    cpus_per_worker: float,
    gpus_per_worker: float,
    max_seq_length: int | None,
    trust_remote_code: bool,
) -> _Job:
    """Check the arguments and the columns of ``ds``, load the model here and fingerprint it."""
    ray = require_ray()
    if not isinstance(ds, ray.data.Dataset):
        raise TypeError(f"ds must be a ray.data.Dataset, got {type(ds).__name__}")
    for name, value in (("text_column", text_column), ("id_column", id_column)):
        if not isinstance(value, str) or not value:
            raise TypeError(f"{name} must be a column name (a non-empty str), got {value!r}")
    if id_column == EMBEDDING:
        raise ValueError(f"id_column {EMBEDDING!r} is the name of the output's embedding column; rename it first")
    check_flag("normalize", normalize, optional=True)
    check_flag("trust_remote_code", trust_remote_code)
    check_int("batch_size", batch_size, minimum=1)
    check_int("rows_per_task", rows_per_task, minimum=1)
    check_int("workers", workers, minimum=1)
    check_int("max_seq_length", max_seq_length, minimum=1, optional=True)
    cpus_per_worker = positive_number("cpus_per_worker", cpus_per_worker)
    gpus_per_worker = positive_number("gpus_per_worker", gpus_per_worker, allow_zero=True)
    _check_columns(ds, text_column, id_column)
    _check_cpus_left(ray, workers, cpus_per_worker)
    encoder, source, name = _driver_model(model, max_seq_length, trust_remote_code)
    text = choose_prompt(encoder.prompts, encoder.default_prompt_name, prompt, prompt_name)
    if text and not encoder.include_prompt:
        raise ValueError(
            f"this model pools without its prompt's tokens (include_prompt=False), which sentsim does not "
            f"support; encode without a prompt, or with prompt='' (the prompt was {text!r})"
        )
    normalize = encoder.normalize if normalize is None else normalize
    used_name = prompt_name if prompt_name is not None else (encoder.default_prompt_name if prompt is None else None)
    info = embeddings_info(encoder, name, prompt_name=used_name, prompt=text, normalize=normalize)
    if isinstance(source, dict):
        source = ray.put(source)
    settings = WorkerSettings(
        text_column=text_column,
        id_column=id_column,
        prompt=text,
        normalize=normalize,
        batch_size=batch_size,
        device="cuda" if gpus_per_worker > 0 else "cpu",
        threads=None if gpus_per_worker > 0 else max(1, math.ceil(cpus_per_worker)),
        max_seq_length=max_seq_length,
        trust_remote_code=trust_remote_code,
        fingerprint=info["model"],
    )
    logger.info(
        "encoding with %s on %d Ray worker(s) of %g CPU and %g GPU, %d rows a task",
        name or "an in-memory model",
        workers,
        cpus_per_worker,
        gpus_per_worker,
        rows_per_task,
    )
    return _Job(source, settings, info, rows_per_task, workers, cpus_per_worker, gpus_per_worker)


def _encode(ds, job: _Job):
    ray = require_ray()
    columns = list(dict.fromkeys([job.settings.id_column, job.settings.text_column]))
    return (
        ds.select_columns(columns)
        .repartition(target_num_rows_per_block=job.rows_per_task)  # a large block is split over the actors
        .map_batches(
            Embedder,
            fn_constructor_kwargs={"model": job.source, "settings": job.settings},
            batch_size=job.rows_per_task,  # small blocks are bundled up to this
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=job.workers),
            num_cpus=job.cpus_per_worker,
            num_gpus=job.gpus_per_worker or None,
        )
    )


def _check_columns(ds, text_column: str, id_column: str) -> None:
    """A ValueError naming the column unless ``ds`` has a text column of strings and an id column
    of strings or ints (reading the schema may read the first block of data, never start actors)."""
    schema = ds.schema()
    if schema is None:
        raise ValueError("the dataset has no columns (is it empty?)")
    types = dict(zip(schema.names, schema.types, strict=True))
    for column, role in ((text_column, "texts"), (id_column, "ids")):
        if column not in types:
            hint = "; add one, e.g. ds.add_column" if role == "ids" else ""
            raise ValueError(f"the dataset has no column {column!r} ({role}); its columns: {schema.names}{hint}")
    text_type, id_type = types[text_column], types[id_column]
    if not (isinstance(text_type, pa.DataType) and _is_string(text_type)):
        raise ValueError(f"column {text_column!r} holds {text_type}, not texts (strings)")
    if not (isinstance(id_type, pa.DataType) and (_is_string(id_type) or pa.types.is_integer(id_type))):
        raise ValueError(f"column {id_column!r} holds {id_type}; ids must be strings or ints")


def _is_string(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)


def _check_cpus_left(ray, workers: int, cpus_per_worker: float) -> None:
    """A ValueError where the actors would take every CPU of the cluster: Ray Data starts them
    first, and the tasks that read the data would then wait for a CPU forever (ray-project/ray#44687)."""
    if not ray.is_initialized():  # Ray Data starts a local runtime when the job runs
        ray.init()
    cpus = ray.cluster_resources().get("CPU", 0)
    if workers * cpus_per_worker <= cpus - 1:
        return
    if cpus < 2:
        raise ValueError(f"the Ray cluster has {cpus:g} CPU: Ray Data needs one to read the data, and more for workers")
    raise ValueError(
        f"{workers} worker(s) of {cpus_per_worker:g} CPU would leave less than 1 of the cluster's {cpus:g} CPUs "
        "to read the data with, and Ray Data would wait forever; use fewer workers, or a fraction of a CPU each: "
        f"cpus_per_worker (--cpus-per-worker) {(cpus - 1) / workers:.2g} (a CPU worker still runs one thread)"
    )


def _driver_model(model, max_seq_length: int | None, trust_remote_code: bool) -> tuple[SentenceEncoder, object, str]:
    """The encoder here, what the actors load (the name, or the saved files), and the name recorded."""
    if isinstance(model, SentenceEncoder):
        if max_seq_length is not None or trust_remote_code:
            raise ValueError(
                "max_seq_length and trust_remote_code apply to a model loaded by name; "
                "set encoder.max_seq_length on a loaded one"
            )
        return model, _saved_files(model), model.name_or_path or ""
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be a model name, a folder or a SentenceEncoder, got {type(model).__name__}")
    if Path(model).is_dir():
        model = str(Path(model).resolve())  # the actors' working folder is not this one
    encoder = SentenceEncoder.from_pretrained(
        model, device="cpu", max_seq_length=max_seq_length, trust_remote_code=trust_remote_code
    )
    return encoder, str(model), str(model)


def _saved_files(encoder: SentenceEncoder) -> dict[str, bytes]:
    """The files of ``encoder``'s saved folder by relative path: what an actor loads it from."""
    name = encoder.name_or_path
    with tempfile.TemporaryDirectory(prefix="sentsim-model-") as temporary:
        root = Path(temporary) / "model"
        encoder.save_pretrained(root)
        encoder.name_or_path = name  # save_pretrained points it at the folder, which goes now
        return {path.relative_to(root).as_posix(): path.read_bytes() for path in root.rglob("*") if path.is_file()}
