"""The server's Prometheus metrics, in a registry of their own (``GET /metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Queue size, batch sizes, request / queue / inference durations and errors by kind."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.requests = Counter(
            "sentsim_requests", "Requests answered, by route and status", ["route", "status"], registry=registry
        )
        self.errors = Counter("sentsim_errors", "Error answers, by kind", ["kind"], registry=registry)
        self.request_seconds = Histogram(
            "sentsim_request_seconds", "Time to answer a request", ["route"], buckets=_SECONDS, registry=registry
        )
        self.queue_seconds = Histogram(
            "sentsim_queue_seconds", "Time a request waits for the model", buckets=_SECONDS, registry=registry
        )
        self.inference_seconds = Histogram(
            "sentsim_inference_seconds", "Time of one batched model call", buckets=_SECONDS, registry=registry
        )
        self.batch_texts = Histogram(
            "sentsim_batch_texts",
            "Texts per model call",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),
            registry=registry,
        )
        self.batch_tokens = Histogram(
            "sentsim_batch_tokens",
            "Tokens per model call",
            buckets=tuple(2**i for i in range(4, 18)),
            registry=registry,
        )
        self.queue_tokens = Gauge("sentsim_queue_tokens", "Tokens waiting for the model", registry=registry)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
