"""A LangChain ``Embeddings`` backed by a sentsim model, encoding in-process.

>>> from langchain_core.vectorstores import InMemoryVectorStore
>>> from sentsim.integrations.langchain import SentsimEmbeddings
>>> store = InMemoryVectorStore(SentsimEmbeddings("all-MiniLM-L6-v2"))
"""

from __future__ import annotations

import os

from sentsim.encoder import SentenceEncoder
from sentsim.integrations.embedder import SearchEmbedder
from sentsim.validation import check_int

try:
    from langchain_core.embeddings import Embeddings
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "sentsim.integrations.langchain needs LangChain: pip install langchain-core (or 'sentsim[langchain]')"
    ) from error

__all__ = ["SentsimEmbeddings"]


class SentsimEmbeddings(Embeddings):
    """LangChain embeddings from a ``SentenceEncoder``: documents with the model's document prompt,
    queries with its query prompt (as :mod:`sentsim.search`). The async methods LangChain defines
    (``aembed_documents``, ``aembed_query``) run these on a thread.

    Args:
        model: a ``SentenceEncoder``, or a model name or folder for ``SentenceEncoder.from_pretrained``
            (load one yourself for its other options, such as ``device``).
        batch_size: texts per forward pass in :meth:`embed_documents`.
    """

    def __init__(self, model: SentenceEncoder | str | os.PathLike, *, batch_size: int = 32) -> None:
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self._embedder = SearchEmbedder(model)

    @property
    def encoder(self) -> SentenceEncoder:
        return self._embedder.encoder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One embedding (a list of floats) per text."""
        return self._embedder.documents(texts, self.batch_size)

    def embed_query(self, text: str) -> list[float]:
        """The embedding of one query text."""
        return self._embedder.query(text)
