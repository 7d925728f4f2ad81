"""Packed (unpadded) encoding: the same embeddings as the padded path, fewer wasted tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import RobertaConfig

from sentsim import SentenceEncoder, TransformerTower
from sentsim.encode import batches, chunks
from sentsim.encode.batches import plan_packed
from sentsim.towers.packed import supports_packing, use_packing

TEXTS = [
    "The cat sat on the mat.",
    "",
    "A dog is running in the park while children are playing football on the beach.",
    "Rain.",
    "He cooks pasta with tomato sauce " * 12,  # longer than max_seq_length: truncated
    "Stocks fell sharply on Monday morning.",
] * 5


def test_layout_from_offsets_numbers_tokens_within_each_text():
    from sentsim.towers.packed import PackedLayout

    layout = PackedLayout.from_offsets(torch.tensor([0, 3, 4, 8], dtype=torch.int32), max_length=4, total=8)
    assert layout.sequence_ids.tolist() == [0, 0, 0, 1, 2, 2, 2, 2]
    assert layout.positions.tolist() == [0, 1, 2, 0, 0, 1, 2, 3]
    assert layout.lengths.tolist() == [3, 1, 4] and layout.size == 3


def test_plan_packed_keeps_order_and_token_budget():
    lengths = np.array([5, 3, 9, 2, 2, 20, 1])
    plan = plan_packed(lengths, max_tokens=10)
    assert plan == [slice(0, 2), slice(2, 3), slice(3, 5), slice(5, 6), slice(6, 7)]  # a 20-token text goes alone
    assert all(lengths[rows].sum() <= 10 or rows.stop - rows.start == 1 for rows in plan)


@pytest.mark.parametrize("pooling", ["mean", "cls", "max"])
def test_packed_equals_padded_in_fp32(tiny_transformer, pooling):
    encoder = SentenceEncoder(tiny_transformer, pooling=pooling).eval()
    padded = encoder.encode(TEXTS, packed=False, batch_size=4)
    with pytest.warns(UserWarning, match="truncated"):
        packed = encoder.encode(TEXTS, packed=True, max_tokens=40)
    assert packed.shape == (len(TEXTS), tiny_transformer.dim)
    np.testing.assert_allclose(packed, padded, atol=1e-5, rtol=0)


def test_packed_roberta_counts_positions_from_padding_idx(tokenizer):
    torch.manual_seed(0)
    config = RobertaConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=40,
        pad_token_id=0,
    )
    encoder = SentenceEncoder(TransformerTower.from_config(config, tokenizer, max_seq_length=32)).eval()
    assert supports_packing(encoder.tower.model)
    texts = [text for text in TEXTS if len(text) < 100]
    np.testing.assert_allclose(encoder.encode(texts, packed=True), encoder.encode(texts, packed=False), atol=1e-5)


def test_packing_is_automatic_only_on_cuda_in_half_precision(tiny_transformer):
    encoder = SentenceEncoder(tiny_transformer)
    assert use_packing(encoder.tower, None, torch.device("cpu"), None) is False
    assert use_packing(encoder.tower, None, torch.device("cuda"), torch.bfloat16) is True
    assert use_packing(encoder.tower, None, torch.device("cuda"), None) is False


def test_packed_needs_a_packable_tower(tiny_lstm):
    with pytest.raises(ValueError, match="packed=True needs a BERT/RoBERTa-family"):
        SentenceEncoder(tiny_lstm).encode(["a text"], packed=True)


@pytest.mark.slow
def test_minilm_packed_equals_padded_on_cpu(minilm):
    texts = [text for text in TEXTS if len(text) < 100]
    np.testing.assert_allclose(minilm.encode(texts, packed=True), minilm.encode(texts, packed=False), atol=1e-5)


@pytest.mark.gpu
def test_minilm_packed_bf16_on_cuda_matches_fp32(minilm_path):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    encoder = SentenceEncoder.from_pretrained(minilm_path, device="cuda")
    texts = [text for text in TEXTS if len(text) < 100] * 50
    reference = encoder.encode(texts, dtype="fp32", packed=False)
    for packed in (True, False):
        ours = encoder.encode(texts, dtype="bf16", packed=packed)
        cosine = (ours * reference).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(reference, axis=1))
        assert cosine.min() >= 0.9998, (packed, cosine.min())
    np.testing.assert_allclose(encoder.encode(texts, dtype="fp32", packed=True), reference, atol=1e-5)


def test_tokenizer_processes_give_the_same_batches(tiny_transformer, monkeypatch):
    monkeypatch.setattr(chunks, "CHUNK", 7)  # several chunks from a few texts
    tokenizer = tiny_transformer.tokenizer
    texts = [f"{text} {i}" for i, text in enumerate(TEXTS)]
    for packed in (False, True):
        one = list(batches.tokenized_chunks(texts, tokenizer, 4, None, packed=packed))
        pooled = list(batches.tokenized_chunks(texts, tokenizer, 4, None, packed=packed, workers=2))
        assert [chunk.start for chunk in pooled] == [chunk.start for chunk in one] == list(range(0, len(texts), 7))
        for a, b in zip(one, pooled, strict=True):
            assert a.truncated == b.truncated
            for x, y in zip(a.batches, b.batches, strict=True):
                assert torch.equal(x.input_ids, y.input_ids)


def test_tokenizer_processes_are_kept_and_closed_with_their_tokenizer(tiny_transformer):
    import gc

    from sentsim.tokenization import TextTokenizer

    tokenizer = TextTokenizer(tiny_transformer.tokenizer.tokenizer, 16)
    pool = chunks.worker_pool(tokenizer, 2)
    assert chunks.worker_pool(tokenizer, 2) is pool  # reused by the next call
    del tokenizer
    gc.collect()
    assert pool not in chunks._pools.values()
