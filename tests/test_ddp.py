"""DDP on CPU: 2 gloo processes give the same losses and weights as one process with the global batch."""

import json
import os
import warnings
from dataclasses import replace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from sentsim.storage.weights import load_safetensors, save_safetensors
from sentsim.training import TrainingConfig, load_training_data, make_loss, train

from .toy_task import TOPICS, toy_encoder

CONFIG = TrainingConfig(
    epochs=2, batch_size=8, learning_rate=1e-3, max_grad_norm=None, log_steps=1, show_progress=False
)


def mnrl_data():
    topics = list(TOPICS.values())
    return {
        "anchor": [t[i] for t in topics for i in range(4)],
        "positive": [t[(i + 1) % 4] for t in topics for i in range(4)],
    }


def cosine_data():
    topics = list(TOPICS.values())
    return {
        "sentence1": [t[i] for t in topics for i in range(4)],
        "sentence2": [topics[(k + i % 2) % 4][(i + 1) % 4] for k, _ in enumerate(topics) for i in range(4)],
        "score": [1.0 - (i % 2) for _ in topics for i in range(4)],
    }


def triplet_data():
    topics = list(TOPICS.values())
    return {
        "anchor": [t[i] for t in topics for i in range(4)],
        "positive": [t[(i + 1) % 4] for t in topics for i in range(4)],
        "negative": [topics[(k + 1) % 4][i] for k, _ in enumerate(topics) for i in range(4)],
    }


def contrastive_data():
    return cosine_data() | {"label": [1 - (i % 2) for _ in TOPICS for i in range(4)]}


DATA = {"mnrl": mnrl_data, "cosine": cosine_data, "cosent": cosine_data, "triplet": triplet_data}
DATA |= {"contrastive": contrastive_data, "mnrl-cached": mnrl_data, "mnrl-packed": mnrl_data}
DATA["mnrl-negatives"] = triplet_data  # hard negatives and their text ids gathered from every rank
# losses that compare examples across the batch (ranking, mining) see the global batch too
OPTIONS = {"triplet": {"batch_hard": True, "distance": "cosine", "margin": 0.5}, "contrastive": {"online": True}}
OPTIONS["mnrl-cached"] = {"mini_batch_size": 3}  # each rank embeds its 4 rows as 3 + 1 (GradCache)


def _loss(name: str):
    return make_loss(name.split("-")[0], **OPTIONS.get(name, {}))


def _config(name: str) -> TrainingConfig:
    """Packed batches on the ranks (``-packed``): the padded single process's losses and weights still."""
    return replace(CONFIG, packed=True) if name.endswith("-packed") else CONFIG


# (cosine: a euclidean distance near 0, between a text and its copy, has an unbounded gradient)


def _worker(rank: int, world: int, loss_name: str, folder: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        losses = []
        encoder = toy_encoder(dropout=0.0)
        train(
            encoder,
            load_training_data(DATA[loss_name]()),
            _loss(loss_name),
            _config(loss_name),
            output_dir=os.path.join(folder, "run"),  # a new run: rank 0 writes run.json, rank 1 must not trip on it
            on_step=lambda s, v: losses.append(v),
        )
        with open(os.path.join(folder, f"losses{rank}.json"), "w") as handle:
            json.dump(losses, handle)
        if rank == 0:
            save_safetensors(encoder.state_dict(), os.path.join(folder, "weights.safetensors"))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize(
    "loss_name",
    ["mnrl", "cosine", "cosent", "triplet", "contrastive", "mnrl-cached", "mnrl-packed", "mnrl-negatives"],
)
def test_two_processes_match_one_process_with_the_global_batch(tmp_path, loss_name):
    mp.spawn(_worker, args=(2, loss_name, str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"losses{r}.json").read_text()) for r in range(2)]
    assert ranks[0] == ranks[1]  # every rank reports the loss of the global batch
    distributed_losses = ranks[0]
    logged = [json.loads(line)["loss"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]

    single_losses = []
    encoder = toy_encoder(dropout=0.0)
    train(
        encoder,
        load_training_data(DATA[loss_name]()),
        _loss(loss_name.split("-")[0]),  # one process, one padded forward over the global batch
        CONFIG,
        on_step=lambda s, v: single_losses.append(v),
    )

    assert len(distributed_losses) == len(single_losses) == 4
    assert distributed_losses == pytest.approx(single_losses, rel=1e-4, abs=1e-5)
    assert logged == pytest.approx(single_losses, rel=1e-4, abs=1e-5)  # log_steps 1: the global loss, not rank 0's
    weights = load_safetensors(tmp_path / "weights.safetensors")
    for name, tensor in encoder.state_dict().items():
        torch.testing.assert_close(weights[name], tensor, rtol=1e-3, atol=1e-5, msg=lambda m, name=name: f"{name}: {m}")


def _edge_worker(rank: int, world: int, folder: str) -> None:
    from datetime import timedelta

    from sentsim.training.losses import CoSENTLoss, InBatchNegativesLoss

    dist.init_process_group(
        "gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=world, timeout=timedelta(seconds=20)
    )
    results = {}
    try:
        torch.manual_seed(0)
        a, b, scores = torch.randn(4, 8), torch.randn(4, 8), torch.rand(4)
        if rank == 0:  # a loss on one rank only (e.g. a validation loss): gather=False never waits for the others
            results["local"] = float(CoSENTLoss(gather=False)(a, b, labels=scores))
        dist.barrier()
        anchors, positives = torch.randn(8, 8), torch.randn(8, 8)  # the global batch; 4 rows a rank
        rows = slice(4 * rank, 4 * rank + 4)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results["mnrl_no_labels"] = float(InBatchNegativesLoss()(anchors[rows], positives[rows]))
        results["future_warnings"] = sum(issubclass(warning.category, FutureWarning) for warning in caught)
        size = 4 if rank == 0 else 3  # uneven per-rank batches: a clear error, not an abort
        try:
            InBatchNegativesLoss()(torch.randn(size, 8), torch.randn(size, 8))
        except ValueError as error:
            results["uneven"] = str(error)
        with open(os.path.join(folder, f"edge{rank}.json"), "w") as handle:
            json.dump(results, handle)
    finally:
        dist.destroy_process_group()


def test_a_loss_on_one_rank_and_uneven_batches(tmp_path):
    from sentsim.training.losses import CoSENTLoss, InBatchNegativesLoss

    mp.spawn(_edge_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"edge{r}.json").read_text()) for r in range(2)]
    torch.manual_seed(0)
    a, b, scores = torch.randn(4, 8), torch.randn(4, 8), torch.rand(4)
    assert ranks[0]["local"] == pytest.approx(float(CoSENTLoss()(a, b, labels=scores)))  # as in one process
    anchors, positives = torch.randn(8, 8), torch.randn(8, 8)
    single = float(InBatchNegativesLoss()(anchors, positives))  # called without group ids, as a user may
    assert (ranks[0]["mnrl_no_labels"] + ranks[1]["mnrl_no_labels"]) / 2 == pytest.approx(single, rel=1e-5)
    assert ranks[0]["future_warnings"] == 0  # the deprecated torch.distributed.nn all_gather is not used
    for result in ranks:
        assert result["uneven"] == "every DDP rank must give the same batch size; got [4, 3]"
