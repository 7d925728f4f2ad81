import numpy as np
import pandas as pd
import pytest
import torch

from sentsim.tokenization import TextTokenizer


def test_truncates_and_counts(tokenizer):
    text_tokenizer = TextTokenizer(tokenizer, max_length=5)
    batch = text_tokenizer.encode(["the cat sat on the mat", "a dog"])
    assert [len(ids) for ids in batch.ids] == [5, 4]
    assert batch.truncated == 1
    assert batch.ids[0][0] == tokenizer.token_to_id("[CLS]") and batch.ids[0][-1] == tokenizer.token_to_id("[SEP]")
    assert TextTokenizer(tokenizer, max_length=4).encode(["a dog", "a dog"]).truncated == 0  # exactly max_length


def test_empty_text_keeps_special_tokens(tokenizer):
    ids = TextTokenizer(tokenizer, max_length=8).encode([""]).ids[0]
    assert ids == [tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")]


def test_pad_right_with_mask(tokenizer):
    text_tokenizer = TextTokenizer(tokenizer, max_length=8)
    input_ids, mask = text_tokenizer.pad([[5, 6, 7], [8]])
    pad = tokenizer.token_to_id("[PAD]")
    assert torch.equal(input_ids, torch.tensor([[5, 6, 7], [8, pad, pad]]))
    assert torch.equal(mask, torch.tensor([[1, 1, 1], [1, 0, 0]]))


def test_lowercase_option(tokenizer):
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[UNK]": 0, "hello": 1, "Hello": 2}
    cased = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    cased.pre_tokenizer = pre_tokenizers.Whitespace()
    assert TextTokenizer(cased, 8).encode(["Hello"]).ids == [[2]]
    assert TextTokenizer(cased, 8, lowercase=True).encode(["Hello"]).ids == [[1]]


def test_original_tokenizer_is_not_changed(tokenizer):
    TextTokenizer(tokenizer, max_length=3)
    assert tokenizer.truncation is None


def test_tokenized_batch_take_gathers_rows_in_order(tokenizer):
    batch = TextTokenizer(tokenizer, max_length=8).encode(["the cat sat", "a dog", "", "the mat"])
    assert batch.lengths.tolist() == [len(ids) for ids in batch.ids] and len(batch.flat_ids) == batch.lengths.sum()
    picked = batch.take(np.array([3, 0, 2]))
    assert picked.ids == [batch.ids[3], batch.ids[0], batch.ids[2]]
    assert batch.take(slice(1, 3)).ids == batch.ids[1:3]


def test_fast_encode_matches_the_full_encoding(tokenizer):
    texts = ["the cat sat on the mat", "a dog", "", "zebra!"]
    text_tokenizer = TextTokenizer(tokenizer, max_length=6)
    full = [encoding.ids or [text_tokenizer.unk_id] for encoding in text_tokenizer.tokenizer.encode_batch(texts)]
    assert text_tokenizer.encode(texts).ids == full


def test_a_text_without_tokens_gets_unk():
    from tokenizers import Tokenizer, models, pre_tokenizers

    plain = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1, "b": 2}, unk_token="[UNK]"))
    plain.pre_tokenizer = pre_tokenizers.Whitespace()
    batch = TextTokenizer(plain, 8).encode(["a", "", "b a", ""])
    assert batch.ids == [[1], [0], [2, 1], [0]]


def test_train_tokenizer_prints_nothing(capfd):
    from sentsim import train_tokenizer

    train_tokenizer(["the cat sat on the mat"] * 3, vocab_size=50)
    assert capfd.readouterr().out == ""
    with pytest.raises(TypeError, match=r"texts\[2\] is float \(nan\); expected str"):
        train_tokenizer(pd.Series(["a cat", "a dog", float("nan")]), vocab_size=50)
    batches = ([text] * 2 for text in ["the cat sat", "on the mat"])  # batches of texts, as tokenizers allows
    assert train_tokenizer(batches, vocab_size=50).get_vocab_size() > 5
    with pytest.raises(TypeError, match=r"texts\[0\]\[1\] is NoneType"):
        train_tokenizer([["a cat", None]], vocab_size=50)
