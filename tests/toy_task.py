"""A learnable toy task for training tests: paraphrase pairs from a few templates."""

from __future__ import annotations

import functools

import numpy as np
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import BertConfig

from sentsim import SentenceEncoder, TransformerTower
from sentsim.data import SentencePairs

TOPICS = {
    "cat": ["the cat sleeps", "a kitten naps", "the cat is sleeping", "a sleepy kitten"],
    "market": ["stocks fell", "markets dropped", "shares went down", "the market fell"],
    "rain": ["it rains today", "rain is falling", "a rainy day", "the rain came"],
    "music": ["she plays piano", "a pianist plays", "piano music plays", "she plays music"],
}


def toy_pairs() -> SentencePairs:
    """Same topic: score 1; different topics: score 0."""
    names = list(TOPICS)
    left, right, scores = [], [], []
    for t, topic in enumerate(names):
        texts = TOPICS[topic]
        for i in range(len(texts)):
            left.append(texts[i])
            right.append(texts[(i + 1) % len(texts)])
            scores.append(1.0)
            other = TOPICS[names[(t + 1 + i % 3) % len(names)]]  # never the same topic
            left.append(texts[i])
            right.append(other[i])
            scores.append(0.0)
    return SentencePairs(left, right, np.array(scores))


@functools.cache
def toy_tokenizer() -> Tokenizer:
    """A fixed word-level vocabulary, identical in every process (WordPiece training may order
    tied tokens differently from run to run)."""
    words = sorted({word for texts in TOPICS.values() for text in texts for word in text.split()})
    vocab = {token: i for i, token in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *words])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return tokenizer


def toy_encoder(dropout: float = 0.1, seed: int = 0) -> SentenceEncoder:
    tokenizer = toy_tokenizer()
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=32,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    return SentenceEncoder(TransformerTower.from_config(config, tokenizer, max_seq_length=16))


def columns(pairs: SentencePairs) -> dict:
    return {"sentence1": pairs.sentences1, "sentence2": pairs.sentences2, "score": pairs.scores.tolist()}
