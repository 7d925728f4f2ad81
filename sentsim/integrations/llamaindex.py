"""A LlamaIndex ``BaseEmbedding`` backed by a sentsim model, encoding in-process.

>>> from llama_index.core import Settings
>>> from sentsim.integrations.llamaindex import SentsimEmbedding
>>> Settings.embed_model = SentsimEmbedding("all-MiniLM-L6-v2")
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from sentsim.encoder import SentenceEncoder
from sentsim.integrations.embedder import SearchEmbedder

try:
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.bridge.pydantic import PrivateAttr
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "sentsim.integrations.llamaindex needs LlamaIndex: pip install llama-index-core (or 'sentsim[llamaindex]')"
    ) from error

__all__ = ["SentsimEmbedding"]


class SentsimEmbedding(BaseEmbedding):
    """LlamaIndex embeddings from a ``SentenceEncoder``: texts (nodes) with the model's document
    prompt, queries with its query prompt (as :mod:`sentsim.search`); the async methods run on a thread.

    Args:
        model: a ``SentenceEncoder``, or a model name or folder for ``SentenceEncoder.from_pretrained``
            (load one yourself for its other options, such as ``device``).
        model_name: the name LlamaIndex reports; default: where the model was loaded from.
        embed_batch_size: texts per call from LlamaIndex, and per forward pass.
        **kwargs: other ``BaseEmbedding`` fields (``callback_manager``, ``num_workers``, ...).
    """

    _embedder: SearchEmbedder = PrivateAttr()

    def __init__(
        self,
        model: SentenceEncoder | str | os.PathLike,
        *,
        model_name: str | None = None,
        embed_batch_size: int = 32,
        **kwargs: Any,
    ) -> None:
        embedder = SearchEmbedder(model)
        super().__init__(model_name=model_name or embedder.name, embed_batch_size=embed_batch_size, **kwargs)
        self._embedder = embedder

    @classmethod
    def class_name(cls) -> str:
        return "SentsimEmbedding"

    @property
    def encoder(self) -> SentenceEncoder:
        return self._embedder.encoder

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embedder.query(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embedder.documents([text], self.embed_batch_size)[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embedder.documents(texts, self.embed_batch_size)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await asyncio.to_thread(self._get_query_embedding, query)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)
