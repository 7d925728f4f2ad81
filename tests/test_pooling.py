import pytest
import torch

from sentsim.pooling import Pooling, pool


@pytest.fixture
def batch():
    torch.manual_seed(0)
    tokens = torch.randn(4, 6, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0]])
    return tokens, mask


def test_mean_matches_naive_loop(batch):
    tokens, mask = batch
    expected = torch.stack([tokens[i, : int(mask[i].sum())].mean(0) for i in range(4)])
    torch.testing.assert_close(pool(tokens, mask, "mean"), expected)


def test_max_matches_naive_loop(batch):
    tokens, mask = batch
    expected = torch.stack([tokens[i, : int(mask[i].sum())].max(0).values for i in range(4)])
    torch.testing.assert_close(pool(tokens, mask, Pooling.MAX), expected)


def test_cls_is_first_token(batch):
    tokens, mask = batch
    torch.testing.assert_close(pool(tokens, mask, "cls"), tokens[:, 0])


def test_row_without_tokens_pools_to_zeros():
    tokens = torch.randn(1, 3, 4)
    mask = torch.zeros(1, 3, dtype=torch.long)
    for mode in ("mean", "max"):
        assert torch.equal(pool(tokens, mask, mode), torch.zeros(1, 4))


def test_mean_of_bf16_sums_in_float32(batch):
    tokens, mask = batch
    result = pool(tokens.bfloat16(), mask, "mean")
    assert result.dtype == torch.bfloat16
    torch.testing.assert_close(result.float(), pool(tokens.bfloat16().float(), mask, "mean"), atol=1e-2, rtol=1e-2)


def test_unknown_pooling_lists_valid_modes(batch):
    with pytest.raises(ValueError, match="'mean', 'cls', 'max'"):
        pool(*batch, "median")
