"""The training loop: plain and readable (AdamW, linear warm-up/decay, AMP on CUDA, DDP-aware).

On CUDA a step never waits for the GPU: inputs are packed (no padding) and copied without
blocking, AdamW is fused, and the loss stays on the device until it is logged (every
``log_steps``), so the host prepares the next batch while the GPU runs this one."""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from sentsim.encode.devices import resolve_device
from sentsim.encode.precision import Precision, best_gpu_precision
from sentsim.towers.packed import use_packing
from sentsim.training.cached import cached_backward, check_mini_batch
from sentsim.training.checkpoint import TrainState, load_checkpoint, save_checkpoint
from sentsim.training.config import TrainingConfig
from sentsim.training.data import TrainingData, check_fits, negative_columns
from sentsim.training.distributed import rank_and_world
from sentsim.training.features import embed_inputs, text_inputs, to_device
from sentsim.training.losses.matryoshka import trained_dims
from sentsim.training.metrics_log import MetricsLog
from sentsim.training.run_folder import CHECKPOINT_DIR, prepare_output, run_fingerprint
from sentsim.validation import check_instance, is_real

logger = logging.getLogger(__name__)

Evaluator = Callable[[object], dict]


@dataclass
class TrainingResult:
    steps: int
    epochs: int
    seconds: float
    examples_per_second: float
    final_loss: float | None  # mean loss of the last log_steps batches; None if this call ran no step
    best_metric: float | None
    best_step: int | None
    stopped_early: bool
    history: list[dict]
    output_dir: Path | None


def train(
    encoder,
    data: TrainingData,
    loss: torch.nn.Module,
    config: TrainingConfig | None = None,
    *,
    output_dir: str | Path | None = None,
    evaluator: Evaluator | None = None,
    resume: bool = False,
    device: str | torch.device | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> TrainingResult:
    """Fine-tune ``encoder`` on ``data`` with ``loss``; everything is checked before the first step.

    Args:
        encoder: a ``SentenceEncoder`` (trained in place).
        data: from :func:`load_training_data`; its columns must fit ``loss``.
        loss: a loss from :mod:`sentsim.training.losses`.
        config: the settings (default ``TrainingConfig()``).
        output_dir: where ``run.json``, ``metrics.jsonl``, ``checkpoint/``, ``best/`` (the best
            model by the evaluator's primary metric) and ``final/`` go. None keeps nothing on disk.
        evaluator: ``evaluator(encoder) -> dict`` with a ``primary_metric`` key (higher is better),
            e.g. ``lambda e: evaluate_sts(e, dev)``; run every ``eval_steps`` and at each epoch end.
        resume: continue the run in ``output_dir`` from its last checkpoint.
        device: default CUDA when available (under DDP, this rank's GPU), else CPU.
        on_step: called as ``on_step(step, loss)`` after each optimizer step.
    """
    config = config or TrainingConfig()
    rank, world = rank_and_world()
    check_instance("data", data, TrainingData, "load_training_data, which reads a datasets.Dataset or a file")
    check_fits(data, loss)
    if config.batch_size % world:
        raise ValueError(f"batch_size {config.batch_size} must divide evenly over {world} processes")
    if config.batch_size > len(data):
        raise ValueError(f"batch_size {config.batch_size} is larger than the {len(data)} training examples")
    if config.checkpoint_steps and output_dir is None:
        raise ValueError("checkpoint_steps needs an output_dir")
    mini_batch_size = check_mini_batch(loss, config.batch_size)
    matryoshka_dims = trained_dims(loss, encoder.dim)
    output = Path(output_dir) if output_dir is not None else None
    run = run_fingerprint(encoder, data, loss, config, world)
    if output is not None:
        resume = prepare_output(output, run, resume, rank)
    elif resume:
        raise ValueError("resume needs the output_dir of the run to continue")

    device = resolve_device(device or (f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else None))
    torch.manual_seed(config.seed)
    encoder.matryoshka_dims = matryoshka_dims  # what the saved model records (None: not trained for truncation)
    encoder.to(device).train()
    model = encoder
    if world > 1:  # find_unused_parameters: some towers hold weights the embeddings never use (BERT's pooler)
        device_ids = [device] if device.type == "cuda" else None
        model = DistributedDataParallel(encoder, device_ids=device_ids, find_unused_parameters=True)
    autocast_dtype = _autocast_dtype(config.precision, device)
    packed = use_packing(encoder.tower, config.packed, device, autocast_dtype)
    scaler = torch.amp.GradScaler(device.type, enabled=autocast_dtype == torch.float16)
    batches_per_epoch = len(data) // config.batch_size if world > 1 else math.ceil(len(data) / config.batch_size)
    steps_per_epoch = math.ceil(batches_per_epoch / config.gradient_accumulation)
    total_steps = steps_per_epoch * config.epochs
    optimizer = torch.optim.AdamW(
        _parameter_groups(encoder, config.weight_decay), lr=config.learning_rate, fused=device.type == "cuda"
    )
    scheduler = _linear_schedule(optimizer, int(config.warmup_ratio * total_steps), total_steps)
    state = TrainState()
    if resume:
        state = load_checkpoint(
            output / CHECKPOINT_DIR, model=encoder, optimizer=optimizer, scheduler=scheduler, scaler=scaler
        )
        logger.info("resumed at epoch %d, batch %d, step %d", state.epoch, state.batch_in_epoch, state.global_step)

    writes = output is not None and rank == 0
    metrics = MetricsLog(output if writes else None, start_step=state.global_step)
    best_dir = output / "best" if writes else None

    def checkpoint() -> None:
        save_checkpoint(
            output / CHECKPOINT_DIR,
            model=encoder,
            optimizer=optimizer,
            scheduler=scheduler,
            scaler=scaler,
            state=state,
            run=run,
        )

    progress = tqdm(
        total=total_steps,
        initial=state.global_step,
        desc="train",
        unit="step",
        disable=not (config.show_progress and rank == 0),
    )
    losses = LossTrack(world)
    start, examples, logged, stopped_early = time.perf_counter(), 0, 0, False
    for epoch in range(state.epoch, config.epochs):
        order = np.random.default_rng(config.seed + epoch).permutation(len(data))
        for batch in range(state.batch_in_epoch, batches_per_epoch):
            indices = order[batch * config.batch_size : (batch + 1) * config.batch_size]
            local = np.array_split(indices, world)[rank]  # this rank's share of the global batch
            columns, targets = _batch_inputs(loss, data.rows(local), device)
            if mini_batch_size is not None:  # GradCache: the loss of the whole batch, a mini-batch's memory
                value = cached_backward(
                    model,
                    encoder,
                    loss,
                    columns,
                    targets,
                    mini_batch_size=mini_batch_size,
                    device=device,
                    autocast_dtype=autocast_dtype,
                    scaler=scaler,
                    accumulation=config.gradient_accumulation,
                    packed=packed,
                )
            else:
                with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                    value = _batch_loss(model, encoder, loss, columns, targets, device, packed)
                scaler.scale(value / config.gradient_accumulation).backward()
            losses.add(value)
            examples += len(indices)
            last_of_group = (batch + 1) % config.gradient_accumulation == 0 or batch == batches_per_epoch - 1
            if not last_of_group:
                continue
            if config.max_grad_norm is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(encoder.parameters(), config.max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state.global_step += 1
            state.batch_in_epoch = batch + 1
            progress.update(1)
            if on_step is not None:
                on_step(state.global_step, losses.values()[-1])
            if state.global_step % config.log_steps == 0:
                running = losses.values()
                progress.set_postfix(loss=f"{np.mean(running[-20:]):.4f}")
                metrics.log(state.global_step, _loss_record(epoch, running[logged:], scheduler))
                logged = len(running)
            if config.eval_steps and state.global_step % config.eval_steps == 0 and evaluator is not None:
                stopped_early = _evaluate(encoder, evaluator, state, config, best_dir, metrics)
            end_of_epoch = batch == batches_per_epoch - 1  # checkpointed below, after the epoch's evaluation
            if (
                config.checkpoint_steps
                and state.global_step % config.checkpoint_steps == 0
                and writes
                and not end_of_epoch
            ):
                checkpoint()
            if stopped_early:
                break
        state.epoch, state.batch_in_epoch = epoch + 1, 0
        if (
            evaluator is not None
            and not stopped_early
            and not (config.eval_steps and state.global_step % config.eval_steps == 0)
        ):
            stopped_early = _evaluate(encoder, evaluator, state, config, best_dir, metrics)
        if writes:
            checkpoint()
        if stopped_early:
            logger.info(
                "early stopping after %d evaluations without improvement", state.evaluations_without_improvement
            )
            break
    running = losses.values()
    if len(running) > logged:  # the last steps of the run (all of a run shorter than log_steps)
        metrics.log(state.global_step, _loss_record(state.epoch - 1, running[logged:], scheduler))
    progress.close()
    metrics.close()
    encoder.eval()
    if writes:
        encoder.save_pretrained(output / "final")
    seconds = time.perf_counter() - start
    return TrainingResult(
        steps=state.global_step,
        epochs=state.epoch,
        seconds=seconds,
        examples_per_second=examples / seconds if seconds > 0 else 0.0,
        final_loss=float(np.mean(running[-config.log_steps :])) if running else None,
        best_metric=state.best_metric,
        best_step=state.best_step,
        stopped_early=stopped_early,
        history=state.history,
        output_dir=output,
    )


class LossTrack:
    """The loss of each batch, kept on the device until read: reading waits for the GPU once
    (and under DDP all-reduces once) for every batch since the last read. Every rank must read
    at the same steps."""

    def __init__(self, world: int) -> None:
        self.world = world
        self._read: list[float] = []
        self._pending: list[Tensor] = []

    def add(self, loss: Tensor) -> None:
        self._pending.append(loss.detach().float())

    def values(self) -> list[float]:
        """The global batch's loss (the mean over ranks of each rank's equal share) of every batch so far."""
        if self._pending:
            stacked = torch.stack(self._pending)
            if self.world > 1:
                dist.all_reduce(stacked)  # a sum: gloo has no average
                stacked /= self.world
            self._read.extend(stacked.tolist())
            self._pending.clear()
        return self._read


def _loss_record(epoch: int, losses: list[float], scheduler) -> dict:
    """One metrics record: the mean loss of the batches since the last record, and the learning rate."""
    return {"epoch": epoch, "loss": float(np.mean(losses)), "lr": scheduler.get_last_lr()[0]}


def _batch_inputs(loss, rows: dict, device: torch.device) -> tuple[list[list[str]], dict[str, Tensor]]:
    """The texts of each column the loss reads (in its order), and its targets (``labels``, and
    ``negative_labels`` where the loss masks hard negatives). Numbered negatives (``negative_1``
    ... ``negative_n``) make one ``negative`` column of B * n texts, each row's together."""
    columns = [rows[column] for column in loss.columns if column in rows]
    numbered = negative_columns(list(rows)) if "negative" in loss.columns else []
    if numbered:
        columns.append([rows[column][row] for row in range(len(columns[0])) for column in numbered])
    targets = {"labels": _labels(loss, rows, device)}
    if getattr(loss, "masks_negatives", False) and len(columns) == 3 and "label" not in rows:
        # text ids, as the positives' labels: a hard negative that is some row's positive is not that row's negative
        targets["negative_labels"] = _text_ids(columns[2], device)
    return columns, targets


def _batch_loss(
    model, encoder, loss, columns: list[list[str]], targets: dict[str, Tensor], device: torch.device, packed: bool
) -> Tensor:
    """Encode every text column of the batch in one forward pass, then apply the loss."""
    inputs = text_inputs(encoder, [text for column in columns for text in column], device, packed=packed)
    embeddings = embed_inputs(model, inputs)  # (texts, dim)
    parts = list(embeddings.split([len(column) for column in columns]))  # negative: (B * n, dim), row by row
    anchor, positive, negative = parts + [None] * (3 - len(parts))
    return loss(anchor, positive, negative, **targets)


def _labels(loss, rows: dict, device: torch.device) -> Tensor | None:
    if loss.target in ("score", "label", "embedding"):
        return to_device(torch.as_tensor(rows[loss.target], dtype=torch.float32), device)
    if loss.target == "group":
        if "label" in rows:
            return to_device(torch.as_tensor(rows["label"], dtype=torch.long), device)
        return _text_ids(rows["positive"], device)
    return None


def _text_ids(texts: list[str], device: torch.device) -> Tensor:
    """``(len(texts),)`` int64 ids of ``texts``, equal for equal texts (:func:`_text_id`)."""
    return to_device(torch.tensor([_text_id(text) for text in texts], dtype=torch.long), device)


def _text_id(text: str) -> int:
    """A stable 63-bit id of a text (equal texts, equal ids, on every rank)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little") >> 1


def _evaluation_results(results: object) -> dict:
    """The evaluator's dict with numpy scalars as Python numbers; its primary metric a finite number."""
    if not isinstance(results, dict) or results.get("primary_metric") not in results:
        raise ValueError(
            "the evaluator must return a dict with 'primary_metric' naming one of its keys "
            f"(e.g. evaluate_sts(...)), got {results!r}"
        )
    results = {
        key: value.item() if isinstance(value, (np.generic, np.ndarray)) and np.size(value) == 1 else value
        for key, value in results.items()
    }
    name = results["primary_metric"]
    if not is_real(results[name]):
        raise ValueError(f"the evaluator's primary metric {name!r} must be a number, got {results[name]!r}")
    if not math.isfinite(results[name]):
        logger.warning("the evaluator's primary metric %r is %s: counted as no improvement", name, results[name])
    return results


def _evaluate(
    encoder, evaluator: Evaluator, state: TrainState, config: TrainingConfig, best_dir: Path | None, metrics: MetricsLog
) -> bool:
    """Run the evaluator (rank 0), keep the best model, and say whether to stop early (all ranks agree)."""
    rank, world = rank_and_world()
    stop = False
    if rank == 0:
        results = _evaluation_results(evaluator(encoder))
        metric = results[results["primary_metric"]]
        improved = math.isfinite(metric) and (state.best_metric is None or metric > state.best_metric)
        if improved:
            state.best_metric, state.best_step, state.evaluations_without_improvement = metric, state.global_step, 0
            if best_dir is not None:
                encoder.save_pretrained(best_dir)
        else:
            state.evaluations_without_improvement += 1
        record = {"step": state.global_step, "epoch": state.epoch, "eval": results}
        state.history.append(record)
        metrics.log(state.global_step, {"eval": results})
        stop = (
            config.early_stopping_patience is not None
            and state.evaluations_without_improvement >= config.early_stopping_patience
        )
    if world > 1:
        flag = [stop]
        dist.broadcast_object_list(flag, src=0)
        stop = bool(flag[0])
    return stop


def _autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda":
        if precision in ("bf16", "fp16"):
            logger.warning("precision %s needs CUDA; training in fp32 on %s", precision, device)
        return None
    return (best_gpu_precision() if precision == "auto" else Precision(precision)).autocast


def _parameter_groups(encoder, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, parameter in encoder.named_parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if parameter.ndim < 2 or "norm" in name.lower() else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _linear_schedule(optimizer, warmup_steps: int, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
