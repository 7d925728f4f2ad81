"""The Ray Data actor of :func:`~sentsim.distributed.encode_dataset`: it loads the model once, on its
own node and device, then embeds the Arrow batches it is given."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import torch

from sentsim.distributed.runtime import require_ray
from sentsim.encoder import SentenceEncoder
from sentsim.fingerprint import fingerprint_mismatch, model_fingerprint
from sentsim.validation import nonfinite_row

EMBEDDING = "embedding"


@dataclass(frozen=True)
class WorkerSettings:
    """What each actor needs besides the model: columns, how to encode, and the weights to expect."""

    text_column: str
    id_column: str
    prompt: str
    normalize: bool
    batch_size: int
    device: str
    threads: int | None  # torch threads on a CPU worker
    max_seq_length: int | None
    trust_remote_code: bool
    fingerprint: dict  # of the driver's model: each actor checks it loaded the same


class Embedder:
    """A Ray Data actor: loads the model once, then embeds the Arrow batches it is given."""

    def __init__(self, model: object, settings: WorkerSettings) -> None:
        if settings.threads is not None:
            torch.set_num_threads(settings.threads)
        self.settings = settings
        self.encoder = _load(model, settings)

    def __call__(self, batch: pa.Table) -> pa.Table:
        settings = self.settings
        ids, texts = batch.column(settings.id_column), batch.column(settings.text_column)
        for column, values in ((settings.id_column, ids), (settings.text_column, texts)):
            if values.null_count:
                row = values.is_null().to_pylist().index(True)
                where = f"row {row} of a batch" if column == settings.id_column else f"id {ids[row].as_py()!r}"
                raise ValueError(f"column {column!r} is null at {where}")
        vectors = self.encoder.encode(
            texts.to_pylist(),
            prompt=settings.prompt,
            normalize=settings.normalize,
            batch_size=settings.batch_size,
            show_progress=False,
        )  # (rows, dim) float32
        bad = nonfinite_row(vectors)
        if bad is not None:
            raise ValueError(f"the embedding of id {ids[bad].as_py()!r} holds NaN or infinity")
        values = pa.array(vectors.reshape(-1), type=pa.float32())
        embeddings = pa.FixedSizeListArray.from_arrays(values, self.encoder.dim)
        return pa.table({settings.id_column: ids, EMBEDDING: embeddings})


def _load(model: object, settings: WorkerSettings) -> SentenceEncoder:
    """The model in an actor: from its shipped files, or by name, checked against the driver's."""
    ray = require_ray()
    if isinstance(model, ray.ObjectRef):  # Ray Data passes the reference on as it is
        model = ray.get(model)
    if isinstance(model, dict):
        with tempfile.TemporaryDirectory(prefix="sentsim-model-") as folder:
            for name, data in model.items():
                path = Path(folder, name)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            encoder = SentenceEncoder.from_pretrained(folder, device=settings.device)
        source = "the model sent from the driver"
    else:
        encoder = SentenceEncoder.from_pretrained(
            model,
            device=settings.device,
            max_seq_length=settings.max_seq_length,
            trust_remote_code=settings.trust_remote_code,
        )
        source = str(model)
    differ = fingerprint_mismatch(settings.fingerprint, model_fingerprint(encoder))
    if differ:
        raise ValueError(
            f"{source} loads another model on this Ray node than on the driver ({', '.join(differ)} differ); "
            "give every node the same files or Hub revision, or pass the loaded SentenceEncoder"
        )
    return encoder
