"""Each loss against a naive loop over the batch."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sentsim.training.losses import (
    ContrastiveLoss,
    CoSENTLoss,
    CosineSimilarityLoss,
    EmbeddingMSELoss,
    InBatchNegativesLoss,
    TripletLoss,
    make_loss,
)


@pytest.fixture
def batch():
    torch.manual_seed(0)
    return torch.randn(6, 8), torch.randn(6, 8), torch.randn(6, 8)


def cos(a, b):
    return float(F.cosine_similarity(a, b, dim=0))


def test_cosine_similarity_loss(batch):
    a, p, _ = batch
    scores = torch.tensor([0.1, 0.9, 0.5, 0.0, 1.0, 0.3])
    expected = sum((cos(a[i], p[i]) - float(scores[i])) ** 2 for i in range(6)) / 6
    assert float(CosineSimilarityLoss()(a, p, labels=scores)) == pytest.approx(expected, rel=1e-5)


def test_cosent_loss(batch):
    a, p, _ = batch
    scores = torch.tensor([0.1, 0.9, 0.5, 0.5, 1.0, 0.3])
    total = 1.0
    for i in range(6):
        for j in range(6):
            if scores[i] > scores[j]:
                total += math.exp(20 * (cos(a[j], p[j]) - cos(a[i], p[i])))
    assert float(CoSENTLoss()(a, p, labels=scores)) == pytest.approx(math.log(total), rel=1e-5)


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_contrastive_loss(batch, distance):
    a, p, _ = batch
    labels = torch.tensor([1, 0, 1, 0, 0, 1])
    margin = 0.5 if distance == "cosine" else 4.0

    def d(i):
        return 1 - cos(a[i], p[i]) if distance == "cosine" else float((a[i] - p[i]).norm())

    expected = sum(0.5 * (d(i) ** 2 if labels[i] else max(0.0, margin - d(i)) ** 2) for i in range(6)) / 6
    loss = ContrastiveLoss(margin=margin, distance=distance)(a, p, labels=labels)
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_online_contrastive_keeps_only_hard_pairs(batch):
    a, p, _ = batch
    labels = torch.tensor([1, 0, 1, 0, 0, 1])
    distances = [1 - cos(a[i], p[i]) for i in range(6)]
    positives = [distances[i] for i in range(6) if labels[i]]
    negatives = [distances[i] for i in range(6) if not labels[i]]
    terms = [d**2 for d in positives if d > min(negatives)] + [
        max(0, 0.5 - d) ** 2 for d in negatives if d < max(positives)
    ]
    expected = sum(terms) / len(terms)
    assert float(ContrastiveLoss(online=True)(a, p, labels=labels)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("distance, margin", [("euclidean", 5.0), ("cosine", 0.5)])
def test_triplet_loss(batch, distance, margin):
    a, p, n = batch

    def d(x, y):
        return 1 - cos(x, y) if distance == "cosine" else float((x - y).norm())

    expected = sum(max(0.0, d(a[i], p[i]) - d(a[i], n[i]) + margin) for i in range(6)) / 6
    assert float(TripletLoss(margin=margin, distance=distance)(a, p, n)) == pytest.approx(expected, rel=1e-5)


def test_batch_hard_triplet_uses_the_closest_other_candidate(batch):
    a, p, n = batch
    expected = 0.0
    for i in range(6):
        candidates = [n[j] for j in range(6)] + [p[j] for j in range(6) if j != i]
        hardest = min(float((a[i] - c).norm()) for c in candidates)
        expected += max(0.0, float((a[i] - p[i]).norm()) - hardest + 1.0)
    assert float(TripletLoss(margin=1.0, batch_hard=True)(a, p, n)) == pytest.approx(expected / 6, rel=1e-5)


def test_batch_hard_triplet_never_mines_a_copy_of_the_own_positive(batch):
    a, p, n = batch
    p = p.clone()
    p[0] = p[1] = a[0] + 0.01  # rows 0 and 1 share their positive text, the closest candidate of anchor 0
    groups = torch.tensor([7, 7, 1, 2, 3, 4])
    expected = 0.0
    for i in range(6):
        candidates = [n[j] for j in range(6)] + [p[j] for j in range(6) if groups[j] != groups[i]]
        hardest = min(float((a[i] - c).norm()) for c in candidates)
        expected += max(0.0, float((a[i] - p[i]).norm()) - hardest + 1.0)
    loss = TripletLoss(margin=1.0, batch_hard=True)
    assert loss.target == "group" and TripletLoss().target is None  # the trainer passes positive-text hashes
    assert float(loss(a, p, n, groups)) == pytest.approx(expected / 6, rel=1e-5)
    assert float(loss(a, p, n)) != pytest.approx(expected / 6, rel=1e-5)  # without groups, the copy is mined


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_batch_hard_triplet_gradients_equal_a_naive_loop(batch, distance):
    def naive(a, p, n):
        total = 0
        for i in range(6):
            candidates = [n[j] for j in range(6)] + [p[j] for j in range(6) if j != i]
            if distance == "euclidean":
                hardest = torch.stack([(a[i] - c).norm() for c in candidates]).min()
                to_positive = (a[i] - p[i]).norm()
            else:
                hardest = torch.stack([1 - F.cosine_similarity(a[i], c, dim=0) for c in candidates]).min()
                to_positive = 1 - F.cosine_similarity(a[i], p[i], dim=0)
            total = total + torch.relu(to_positive - hardest + 1.0)
        return total / 6

    ours, reference = [tuple(t.clone().requires_grad_() for t in batch) for _ in range(2)]
    TripletLoss(margin=1.0, distance=distance, batch_hard=True)(*ours).backward()
    naive(*reference).backward()
    for mine, theirs in zip(ours, reference, strict=True):
        torch.testing.assert_close(mine.grad, theirs.grad, rtol=1e-4, atol=1e-6)


def shared(a, b) -> bool:
    """One group id each, or multi-hot class rows: do the two rows share a group?"""
    return bool((a * b).sum() > 0) if a.ndim else bool(a == b)


def naive_in_batch(a, p, n=None, groups=None, temperature=0.05, negative_groups=None):
    total = 0.0
    for i in range(len(a)):
        logits = []
        for j in range(len(p)):
            if j != i and groups is not None and shared(groups[i], groups[j]):
                continue
            logits.append((cos(a[i], p[j]) / temperature, j == i))
        if n is not None:
            logits += [
                (cos(a[i], n[j]) / temperature, False)
                for j in range(len(n))
                if negative_groups is None or not shared(groups[i], negative_groups[j])
            ]
        log_z = math.log(sum(math.exp(v) for v, _ in logits))
        total += log_z - next(v for v, target in logits if target)
    return total / len(a)


def test_in_batch_negatives(batch):
    a, p, n = batch
    assert float(InBatchNegativesLoss()(a, p)) == pytest.approx(naive_in_batch(a, p), rel=1e-5)
    assert float(InBatchNegativesLoss()(a, p, n)) == pytest.approx(naive_in_batch(a, p, n), rel=1e-5)
    loss = InBatchNegativesLoss(temperature=0.1)(a, p)
    assert float(loss) == pytest.approx(naive_in_batch(a, p, temperature=0.1), rel=1e-5)


def test_in_batch_negatives_masks_duplicates(batch):
    a, p, _ = batch
    p = p.clone()
    p[3] = p[1]  # the same positive text twice in the batch
    groups = torch.tensor([0, 1, 2, 1, 4, 5])
    loss = InBatchNegativesLoss()(a, p, labels=groups)
    assert float(loss) == pytest.approx(naive_in_batch(a, p, groups=groups), rel=1e-5)
    assert float(loss) < float(InBatchNegativesLoss()(a, p))


def test_in_batch_negatives_with_multi_hot_classes_masks_rows_sharing_any(batch):
    a, p, _ = batch
    classes = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [1, 0, 1]])  # (B, C)
    for symmetric in (False, True):
        loss = float(InBatchNegativesLoss(symmetric=symmetric)(a, p, labels=classes))
        expected = naive_in_batch(a, p, groups=classes)
        if symmetric:
            expected = (expected + naive_in_batch(p, a, groups=classes)) / 2
        assert loss == pytest.approx(expected, rel=1e-5)
    one_hot = torch.eye(6, dtype=torch.long)  # no class shared: every other row is a negative
    assert float(InBatchNegativesLoss()(a, p, labels=one_hot)) == pytest.approx(naive_in_batch(a, p), rel=1e-5)


def test_in_batch_negatives_skips_a_hard_negative_in_the_rows_group(batch):
    a, p, n = batch
    groups = torch.tensor([10, 11, 12, 13, 14, 15])  # ids of the positive texts
    negative_groups = torch.tensor([20, 21, 10, 23, 24, 11, 26, 27, 28, 29, 30, 31])  # two negatives a row
    n = torch.cat([n, torch.randn(6, 8)])  # (12, 8): rows 0 and 1's positives come back as negatives 2 and 5
    loss = InBatchNegativesLoss()(a, p, n, labels=groups, negative_labels=negative_groups)
    expected = naive_in_batch(a, p, n, groups=groups, negative_groups=negative_groups)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert float(loss) != pytest.approx(naive_in_batch(a, p, n, groups=groups), rel=1e-3)  # unmasked differs
    assert float(InBatchNegativesLoss()(a, p, n, negative_labels=negative_groups)) == pytest.approx(
        naive_in_batch(a, p, n), rel=1e-5
    )  # without row labels there is nothing to compare them with


def test_symmetric_in_batch_negatives(batch):
    a, p, _ = batch
    expected = (naive_in_batch(a, p) + naive_in_batch(p, a)) / 2
    assert float(InBatchNegativesLoss(symmetric=True)(a, p)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("name", ["cosine", "cosent", "contrastive", "triplet", "mnrl"])
def test_every_loss_has_gradients(batch, name):
    a, p, n = (t.clone().requires_grad_() for t in batch)
    labels = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    make_loss(name)(a, p, n, labels if name != "mnrl" else None).backward()
    assert a.grad is not None and a.grad.abs().sum() > 0


def test_unknown_loss_and_options():
    with pytest.raises(ValueError, match="unknown loss 'hinge'; expected one of 'cosine', 'cosent'"):
        make_loss("hinge")
    with pytest.raises(ValueError, match="unknown distance 'l3'"):
        TripletLoss(distance="l3")
    with pytest.raises(ValueError, match="temperature must be a finite number > 0, got 0"):
        InBatchNegativesLoss(temperature=0)
    with pytest.raises(ValueError, match="scale must be a finite number > 0, got 0"):  # zero gradients
        make_loss("cosent", scale=0)
    with pytest.raises(ValueError, match="margin must be a finite number > 0, got -1"):
        make_loss("contrastive", margin=-1)
    with pytest.raises(ValueError, match="margin must be a finite number >= 0, got nan"):
        make_loss("triplet", margin=float("nan"))
    with pytest.raises(ValueError, match="margin must be a finite number >= 0, got '1'"):
        make_loss("triplet", margin="1")


@pytest.mark.parametrize(
    "loss, option", [(InBatchNegativesLoss, "symmetric"), (ContrastiveLoss, "online"), (TripletLoss, "batch_hard")]
)
def test_loss_flags_must_be_bools(loss, option):
    with pytest.raises(TypeError, match=f"{option} must be True or False, got 'False'"):
        loss(**{option: "False"})  # a non-empty str would read as True
    assert getattr(loss(**{option: np.True_}), option) is True


@pytest.mark.parametrize(
    "loss, expected",
    [
        (CosineSimilarityLoss(), {}),
        (CoSENTLoss(scale=10), {"scale": 10.0, "gather": True}),
        (
            ContrastiveLoss(margin=0.3, distance="euclidean", online=np.True_),
            {"margin": 0.3, "distance": "euclidean", "online": True, "gather": True},
        ),
        (
            TripletLoss(margin=1, distance="cosine", batch_hard=True, gather=False),
            {"margin": 1.0, "distance": "cosine", "batch_hard": True, "gather": False},
        ),
        (
            InBatchNegativesLoss(temperature=0.1, symmetric=True),
            {"temperature": 0.1, "symmetric": True, "gather": True},
        ),
        (EmbeddingMSELoss(), {}),
    ],
)
def test_a_loss_declares_its_settings_as_plain_json_that_rebuild_it(loss, expected):
    config = loss.config()
    assert config == expected and json.loads(json.dumps(config)) == config
    assert all(type(value) in (float, str, bool) for value in config.values())  # np.True_ recorded as True
    assert type(loss)(**config).config() == config
