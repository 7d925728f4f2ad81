"""A training run's output folder: the run's fingerprint (model, data, loss, config) in
``run.json``, and the checks that keep a resume or a new run from mixing with another run."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import torch.distributed as dist

from sentsim.storage.atomic import recover_folder, write_text_atomic
from sentsim.storage.formats import check_format, read_versioned
from sentsim.training.checkpoint import STATE_FILE, read_checkpoint_run
from sentsim.training.config import TrainingConfig
from sentsim.training.data import TrainingData

logger = logging.getLogger(__name__)

RUN_FILE, CHECKPOINT_DIR = "run.json", "checkpoint"
RUN_FORMAT = 1  # of the run record (run.json, and the copy in each checkpoint); any other is refused


def prepare_output(output: Path, run: dict, resume: bool, rank: int) -> bool:
    """Check ``output`` for this run; returns whether there is a checkpoint to resume from.

    Rank 0 checks and writes, and tells the other ranks (which would otherwise find the
    ``run.json`` it has just written); an error on rank 0 is raised on every rank.
    """
    decision: list = [None]  # whether to resume, or rank 0's error as text
    failure = None
    if rank == 0:
        try:
            decision[0] = _prepare_here(output, run, resume)
        except Exception as error:
            failure, decision[0] = error, f"{type(error).__name__}: {error}"
    if dist.is_available() and dist.is_initialized():
        dist.broadcast_object_list(decision, src=0)
    if failure is not None:
        raise failure
    if isinstance(decision[0], str):
        raise ValueError(f"rank 0 refused the output folder: {decision[0]}")
    return bool(decision[0])


def _prepare_here(output: Path, run: dict, resume: bool) -> bool:
    """:func:`prepare_output`'s checks and writes, on one process. Resuming a run that stopped
    before its first checkpoint starts it again from the beginning."""
    existing = output / RUN_FILE
    if resume:
        recover_folder(output / CHECKPOINT_DIR)  # a checkpoint write that a crash interrupted
        checkpointed = (output / CHECKPOINT_DIR / STATE_FILE).exists()
        if not checkpointed and not existing.exists():
            raise ValueError(f"nothing to resume in {output}: it has no {CHECKPOINT_DIR}/")
        if checkpointed:
            saved = read_checkpoint_run(output / CHECKPOINT_DIR)
            check_format(output / CHECKPOINT_DIR / STATE_FILE, saved, RUN_FORMAT, "run record")
        else:
            saved = read_versioned(existing, RUN_FORMAT, "run record")
        different = sorted(key for key in run if saved.get(key) != run[key])
        if different:
            raise ValueError(
                f"{output} holds a run with another {', '.join(different)}; resume it with the same model, data, loss and config"
            )
        if not checkpointed:
            logger.info("%s has no checkpoint yet: starting the run again from the beginning", output)
            shutil.rmtree(output / "best", ignore_errors=True)
        return checkpointed
    if existing.exists():
        raise ValueError(
            f"{output} already holds a training run; resume it (resume=True; sentsim train --resume DIR, "
            "sentsim distill --resume), or choose a new output folder"
        )
    for leftover in output.glob(f".{RUN_FILE}.*.tmp"):  # a start that a crash interrupted while writing run.json
        leftover.unlink()
    if output.exists() and any(output.iterdir()):
        raise ValueError(f"output folder {output} exists and is not empty")
    output.mkdir(parents=True, exist_ok=True)
    write_text_atomic(output / RUN_FILE, json.dumps(run, indent=2) + "\n")
    return False


def run_fingerprint(encoder, data: TrainingData, loss, config: TrainingConfig, world: int) -> dict:
    """What a run trains (model, data, loss and its settings, config), recorded in ``run.json``."""
    settings = {k: v for k, v in config.to_dict().items() if k not in ("show_progress", "log_steps", "packed")}
    shapes = {name: list(tensor.shape) for name, tensor in encoder.state_dict().items()}
    return {
        "format": RUN_FORMAT,
        "model": {
            "tower": encoder.tower.kind,
            "dim": encoder.dim,
            "pooling": encoder.pooling.value,
            "max_seq_length": encoder.max_seq_length,
            "parameters": hashlib.sha1(json.dumps(shapes, sort_keys=True).encode()).hexdigest(),
        },
        "loss": {"name": type(loss).__name__, **loss.config()},
        "data": {"examples": len(data), "columns": sorted(data.columns), "digest": _data_digest(data)},
        "config": settings,
        "world_size": world,
    }


def _data_digest(data: TrainingData) -> str:
    """A digest of the training data's texts, scores and labels, in order (not of teacher
    embeddings, which a resumed distillation computes again, maybe on another device)."""
    digest = hashlib.sha256()
    for name in sorted(set(data.columns) - {"embedding"}):
        values = data.columns[name]
        digest.update(name.encode() + b"\0")
        if isinstance(values, np.ndarray):
            digest.update(str(values.dtype).encode() + np.ascontiguousarray(values).tobytes())
        else:
            digest.update("\0".join(values).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()
