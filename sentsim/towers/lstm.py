"""LSTM tower: token embeddings -> a (Bi)LSTM over packed sequences."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from sentsim.storage.weights import load_safetensors, save_safetensors, tensor_shapes
from sentsim.tokenization import TextTokenizer
from sentsim.towers.transformer import TransformerTower
from sentsim.validation import check_flag, check_int, is_real

WEIGHTS_NAME = "model.safetensors"
TOKENIZER_NAME = "tokenizer.json"


@dataclass(frozen=True, kw_only=True)
class LSTMConfig:
    """Shape of an LSTM tower. Its output dimension is ``hidden_size * (2 if bidirectional else 1)``."""

    vocab_size: int
    embedding_dim: int = 300
    hidden_size: int = 256
    num_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.0
    max_seq_length: int = 256
    freeze_embeddings: bool = False

    def __post_init__(self) -> None:
        # numpy ints and bools are stored as int and bool: the config is written as JSON
        for name in ("vocab_size", "embedding_dim", "hidden_size", "num_layers", "max_seq_length"):
            object.__setattr__(self, name, check_int(f"LSTMConfig.{name}", getattr(self, name), minimum=1))
        for name in ("bidirectional", "freeze_embeddings"):
            object.__setattr__(self, name, check_flag(f"LSTMConfig.{name}", getattr(self, name)))
        if not is_real(self.dropout) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LSTMConfig.dropout must be a number in [0, 1), got {self.dropout!r}")
        object.__setattr__(self, "dropout", float(self.dropout))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> LSTMConfig:
        return cls(**data)


class LSTMTower(nn.Module):
    """Token embeddings followed by a (Bi)LSTM; padding is skipped with packed sequences.

    Args:
        config: the tower's shape.
        tokenizer: a ``tokenizers.Tokenizer`` (a transformer's, or one from ``train_tokenizer``).
        embeddings: optional ``(vocab_size, embedding_dim)`` pretrained vectors to start from.
    """

    kind = "lstm"
    supports_packing = False  # its own forward already skips padding

    def __init__(self, config: LSTMConfig, tokenizer: Tokenizer, embeddings: Tensor | np.ndarray | None = None) -> None:
        super().__init__()
        self.config = config
        self.raw_tokenizer = tokenizer
        self.tokenizer = TextTokenizer(tokenizer, config.max_seq_length)
        if tokenizer.get_vocab_size(with_added_tokens=True) > config.vocab_size:
            raise ValueError(
                f"the tokenizer has {tokenizer.get_vocab_size(with_added_tokens=True)} tokens "
                f"but LSTMConfig.vocab_size is {config.vocab_size}"
            )
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=self.tokenizer.pad_id)
        if embeddings is not None:
            vectors = torch.as_tensor(np.asarray(embeddings, dtype=np.float32))
            expected = (config.vocab_size, config.embedding_dim)
            if tuple(vectors.shape) != expected:
                raise ValueError(f"embeddings must have shape {expected}, got {tuple(vectors.shape)}")
            with torch.no_grad():
                self.embedding.weight.copy_(vectors)
        self.embedding.weight.requires_grad_(not config.freeze_embeddings)
        self.lstm = nn.LSTM(
            config.embedding_dim,
            config.hidden_size,
            num_layers=config.num_layers,
            bidirectional=config.bidirectional,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            batch_first=True,
        )

    @classmethod
    def from_transformer(cls, source: nn.Module, **config: object) -> LSTMTower:
        """An LSTM tower that starts from a transformer's tokenizer and input embeddings.

        ``source`` is a ``TransformerTower`` or a ``SentenceEncoder`` with one (load a model by
        name with ``SentenceEncoder.from_pretrained`` first); ``config`` sets the other
        ``LSTMConfig`` fields (hidden_size, num_layers, ...). ``max_seq_length`` defaults to the
        transformer's, so the student reads what its teacher reads.
        """
        tower = getattr(source, "tower", source)
        if not isinstance(tower, TransformerTower):
            hint = " (load it with SentenceEncoder.from_pretrained first)" if isinstance(tower, (str, Path)) else ""
            raise TypeError(
                f"source must be a transformer tower or an encoder with one, got {type(tower).__name__}{hint}"
            )
        weight = tower.model.get_input_embeddings().weight.detach().float().cpu()  # (V, E)
        config = {"max_seq_length": tower.max_seq_length} | config
        lstm_config = LSTMConfig(vocab_size=weight.shape[0], embedding_dim=weight.shape[1], **config)
        return cls(lstm_config, tower.hf_tokenizer.backend_tokenizer, embeddings=weight)

    @classmethod
    def from_word_vectors(cls, path: str | Path, *, lowercase: bool = True, **config: object) -> LSTMTower:
        """An LSTM tower over pretrained word vectors in the GloVe / word2vec text format.

        Each line is ``word v1 v2 ... vd`` (a word2vec ``count dim`` header line is skipped).
        Words become a word-level vocabulary split on whitespace and punctuation; ``[PAD]`` is
        zeros and ``[UNK]`` the mean vector.
        """
        words, vectors = _read_word_vectors(Path(path))
        vocab = {"[PAD]": 0, "[UNK]": 1}
        for word in words:
            vocab.setdefault(word, len(vocab))
        matrix = np.zeros((len(vocab), vectors.shape[1]), dtype=np.float32)
        matrix[1] = vectors.mean(axis=0)
        for word, vector in zip(words, vectors, strict=True):
            matrix[vocab[word]] = vector
        tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
        if lowercase:
            tokenizer.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.Lowercase()])
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        lstm_config = LSTMConfig(vocab_size=len(vocab), embedding_dim=vectors.shape[1], **config)
        return cls(lstm_config, tokenizer, embeddings=matrix)

    @classmethod
    def load(cls, folder: Path, config: dict) -> LSTMTower:
        """Load a tower saved by :meth:`save` (``config`` is its ``LSTMConfig`` as a dict)."""
        tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_NAME))
        lstm_config = LSTMConfig.from_dict(config)
        with torch.device("meta"):  # the shapes the config asks for, checked before any memory is taken
            expected = {name: tuple(tensor.shape) for name, tensor in cls(lstm_config, tokenizer).state_dict().items()}
        saved = tensor_shapes(folder / WEIGHTS_NAME)
        if saved != expected:
            different = sorted(name for name in expected.keys() | saved.keys() if expected.get(name) != saved.get(name))
            name = different[0]
            raise ValueError(
                f"{folder / WEIGHTS_NAME} does not fit the LSTM config: {name} is {saved.get(name, 'missing')} "
                f"in the file, {expected.get(name, 'not expected')} in the config ({len(different)} tensors differ)"
            )
        tower = cls(lstm_config, tokenizer)
        tower.load_state_dict(load_safetensors(folder / WEIGHTS_NAME))
        return tower

    @property
    def dim(self) -> int:
        return self.config.hidden_size * (2 if self.config.bidirectional else 1)

    @property
    def max_seq_length(self) -> int:
        return self.tokenizer.max_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        self.tokenizer = TextTokenizer(self.raw_tokenizer, check_int("max_seq_length", value, minimum=1))

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Token embeddings ``(B, L, dim)``; padded positions are zeros."""
        lengths = attention_mask.sum(dim=1).clamp(min=1).cpu()  # (B,)
        embedded = self.embedding(input_ids)  # (B, L, E)
        packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        output, _ = self.lstm(packed)
        padded, _ = pad_packed_sequence(output, batch_first=True, total_length=input_ids.shape[1])
        return padded  # (B, L, dim)

    def config_dict(self) -> dict:
        return self.config.to_dict() | {"max_seq_length": self.max_seq_length}

    def save(self, folder: Path) -> None:
        """Write ``model.safetensors`` and ``tokenizer.json`` into ``folder``."""
        save_safetensors(self.state_dict(), folder / WEIGHTS_NAME)
        (folder / TOKENIZER_NAME).write_text(self.raw_tokenizer.to_str(), encoding="utf-8")


def _read_word_vectors(path: Path) -> tuple[list[str], np.ndarray]:
    words: list[str] = []
    rows: list[np.ndarray] = []
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.rstrip().split(" ")
            if number == 1 and len(parts) == 2 and all(part.isdigit() for part in parts):
                continue  # word2vec header: "count dim"
            if len(parts) < 2:
                continue
            try:
                vector = np.asarray(parts[1:], dtype=np.float32)
            except ValueError:
                raise ValueError(
                    f"{path}:{number}: expected 'word v1 v2 ...' with numbers, got {line[:60]!r}"
                ) from None
            if not np.isfinite(vector).all():
                raise ValueError(f"{path}:{number}: the vector of {parts[0]!r} holds NaN or infinity")
            if rows and vector.shape != rows[0].shape:
                raise ValueError(f"{path}:{number}: vector has {vector.size} values, earlier lines had {rows[0].size}")
            words.append(parts[0])
            rows.append(vector)
    if not rows:
        raise ValueError(f"{path} holds no word vectors")
    return words, np.stack(rows)
