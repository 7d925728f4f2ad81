"""What the framework adapters share: a model's query and document embeddings as plain Python lists.

Queries get the model's query prompt and documents its document / passage / corpus prompt
(:func:`sentsim.prompts.search_prompts`), as in :mod:`sentsim.search`; never its default prompt.
"""

from __future__ import annotations

import os

from sentsim.encoder import SentenceEncoder
from sentsim.prompts import encoder_search_prompts
from sentsim.validation import validate_texts


class SearchEmbedder:
    """Embeds the two sides of a search with one encoder.

    Args:
        model: a ``SentenceEncoder``, or a model name or folder for ``SentenceEncoder.from_pretrained``.
    """

    def __init__(self, model: SentenceEncoder | str | os.PathLike) -> None:
        if isinstance(model, (str, os.PathLike)):
            model = SentenceEncoder.from_pretrained(model)
        elif not isinstance(model, SentenceEncoder):
            raise TypeError(f"model must be a SentenceEncoder, a model name or a folder, got {type(model).__name__}")
        self.encoder = model
        self.prompts = encoder_search_prompts(model)  # {"query": ..., "document": ...}, "" for none

    @property
    def name(self) -> str:
        """Where the model was loaded from, or ``"sentsim"`` for one built in this process."""
        return self.encoder.name_or_path or "sentsim"

    def documents(self, texts: list[str], batch_size: int) -> list[list[float]]:
        """One embedding per text, with the document prompt."""
        texts = validate_texts(texts)  # a single str is refused: it would give one vector, not a list of them
        return self.encoder.encode(texts, prompt=self.prompts["document"], batch_size=batch_size).tolist()

    def query(self, text: str) -> list[float]:
        """The embedding of one query, with the query prompt."""
        if not isinstance(text, str):
            raise TypeError(f"a query must be a str, got {type(text).__name__}")
        return self.encoder.encode(text, prompt=self.prompts["query"]).tolist()
