import torch

from sentsim.tokenization import TextTokenizer


def test_truncates_and_counts(tokenizer):
    text_tokenizer = TextTokenizer(tokenizer, max_length=5)
    batch = text_tokenizer.encode(["the cat sat on the mat", "a dog"])
    assert [len(ids) for ids in batch.ids] == [5, 4]
    assert batch.truncated == 1
    assert batch.ids[0][0] == tokenizer.token_to_id("[CLS]") and batch.ids[0][-1] == tokenizer.token_to_id("[SEP]")


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
