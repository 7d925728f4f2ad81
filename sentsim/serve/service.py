"""What a server serves: the model, the indexes, and one batcher per model, loaded once."""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sentsim.encoder import SentenceEncoder
from sentsim.prompts import with_prompt
from sentsim.search import DocumentIndex, ModelMismatchError
from sentsim.serve.batcher import Batcher
from sentsim.serve.metrics import Metrics

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeConfig:
    """Settings of ``sentsim serve`` (see ``sentsim serve --help``)."""

    model: str = "all-MiniLM-L6-v2"
    indexes: dict[str, str] = field(default_factory=dict)  # name -> index folder
    device: str | None = None
    api_key: str | None = None
    max_batch_tokens: int | None = None  # None: sized for the device
    max_body_mb: float = 32.0
    max_inputs: int = 2048
    trust_remote_code: bool = False
    dtype: str | None = None  # as encode's: fp32 / bf16 / fp16 / int8 (None: the device's default)
    runtime: str = "torch"  # as encode's: torch / compile / onnx


class Service:
    """The loaded model, indexes and batchers; :attr:`ready` is set once everything is loaded."""

    def __init__(self, config: ServeConfig) -> None:
        self.config, self.metrics = config, Metrics()
        self.ready, self.failed = threading.Event(), None
        self.encoder: SentenceEncoder | None = None
        self.indexes: dict[str, DocumentIndex] = {}
        self._batchers: dict[int, Batcher] = {}  # id(encoder) -> its batcher
        self.other_names: set[str] = set()  # model names requests gave (logged once each)

    def load(self) -> None:
        """Load the model and open the indexes (an index built with another model gets that model)."""
        try:
            config = self.config
            self.encoder = SentenceEncoder.from_pretrained(
                config.model, device=config.device, trust_remote_code=config.trust_remote_code
            )
            self._batcher(self.encoder)
            for name, folder in config.indexes.items():
                try:
                    index = DocumentIndex.open(Path(folder), self.encoder)
                except ModelMismatchError:
                    logger.info("index %s was built with another model: loading that one beside %s", name, config.model)
                    index = DocumentIndex.open(
                        Path(folder), device=config.device, trust_remote_code=config.trust_remote_code
                    )
                self.indexes[name] = index
                self._batcher(index.encoder)
            self._warm_up()
        except BaseException as error:
            self.failed = error
            logger.error("sentsim serve could not start: %s", error)
            raise
        finally:
            self.ready.set()

    def _batcher(self, encoder: SentenceEncoder) -> Batcher:
        if id(encoder) not in self._batchers:
            device_type = encoder.device.type
            budget = self.config.max_batch_tokens or (65536 if device_type == "cuda" else 8192)
            self._batchers[id(encoder)] = Batcher(
                encoder,
                max_batch_tokens=budget,
                max_queue_tokens=32 * budget,
                metrics=self.metrics,
                dtype=self.config.dtype,
                runtime=self.config.runtime,
            )
        return self._batchers[id(encoder)]

    def _warm_up(self) -> None:
        for batcher in self._batchers.values():
            encoder = batcher.encoder  # also builds what dtype / runtime need (an export, int8) before /health
            encoder.embed_tokens(
                encoder.tower.tokenizer.encode(["warm up"] * 4), dtype=self.config.dtype, runtime=self.config.runtime
            )

    async def embed(
        self, texts: list[str], prompt: str = "", encoder: SentenceEncoder | None = None
    ) -> tuple[np.ndarray, int]:
        """Embeddings ``(n, dim)`` of ``texts`` with ``prompt`` prepended, through ``encoder``'s
        batcher (default: the served model), and how many tokens they took."""
        encoder = encoder or self.encoder
        tokens = encoder.tower.tokenizer.encode(with_prompt(prompt, texts))
        embeddings = await self._batcher(encoder).embed(tokens)
        return embeddings, int(tokens.lengths.sum())

    async def on_model_thread(self, encoder: SentenceEncoder, function, *args):
        """Run ``function(*args)`` on ``encoder``'s model thread, between batches (an index write
        encodes there, so it never competes with the batches for the CPU)."""
        return await self._batcher(encoder).call(function, *args)

    def close(self) -> None:
        """Finish the queued requests, stop the workers, close the indexes."""
        for batcher in self._batchers.values():
            batcher.close()
        for index in self.indexes.values():
            index.close()


async def wait_ready(service: Service) -> None:
    """Wait (without blocking the event loop) until the service has loaded."""
    while not service.ready.is_set():
        await asyncio.sleep(0.05)
