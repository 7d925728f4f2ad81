"""How a FAISS-store index holds its vectors in memory: precision, truncation and exact rescoring.

- ``float32``: each vector as it is (4 bytes a dimension).
- ``int8``: FAISS scalar quantization, a byte a dimension, with per-dimension ranges trained
  on the vectors and saved inside the FAISS file (4x smaller).
- ``binary``: one bit a dimension (its sign) in a FAISS binary index searched by Hamming
  distance (32x smaller; the dimension must be a multiple of 8).
- ``truncate_dim``: the index holds the first d dimensions only (Matryoshka models),
  re-normalized where the metric or the model normalizes.

An index that quantizes or truncates takes ``k x rescore_factor`` candidates from FAISS and
rescores them exactly with the full float vectors SQLite holds (:mod:`sentsim.search.rescore`),
so scores are exact and recall stays near float's while the in-memory index shrinks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from sentsim.validation import check_int, is_integer

PRECISIONS = ("float32", "int8", "binary")
RESCORE_FACTOR = 4
MAX_RESCORE_FACTOR = 1024
# The backends each precision can build (named ones; a factory string sets its own codes).
PRECISION_BACKENDS = {"int8": ("auto", "flat", "hnsw", "ivf"), "binary": ("auto", "flat")}


@dataclass(frozen=True)
class VectorLayout:
    """The manifest's ``precision``, ``rescore_factor`` and ``truncate_dim``."""

    precision: str = "float32"
    rescore_factor: int = RESCORE_FACTOR
    truncate_dim: int | None = None

    @classmethod
    def from_manifest(cls, manifest: dict) -> VectorLayout:
        return cls(manifest["precision"], manifest["rescore_factor"], manifest["truncate_dim"])

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def rescored(self) -> bool:
        """Whether the index holds anything but the full float vectors, so its candidates are rescored."""
        return self.precision != "float32" or self.truncate_dim is not None

    def index_dim(self, dim: int) -> int:
        """The dimension of the vectors inside the FAISS index, for a model of dimension ``dim``."""
        return self.truncate_dim or dim

    def index_vectors(self, vectors: np.ndarray, *, normalize: bool) -> np.ndarray:
        """``vectors`` ``(n, dim)`` as the index holds them: the first ``truncate_dim`` dimensions,
        re-normalized when ``normalize`` (cosine, or a model whose embeddings are unit length)."""
        if self.truncate_dim is None:
            return vectors
        head = np.ascontiguousarray(vectors[:, : self.truncate_dim], dtype=np.float32)
        if normalize:
            head = head / np.maximum(np.linalg.norm(head, axis=1, keepdims=True), 1e-12)
        return head


def check_layout(
    precision: object, rescore_factor: object, truncate_dim: object, *, dim: int, backend: object, store: str
) -> VectorLayout:
    """The layout :meth:`DocumentIndex.create` was given, checked against the model's dimension,
    the backend and the store: a TypeError or ValueError naming what cannot be built."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    rescore_factor = check_int("rescore_factor", rescore_factor, minimum=1, maximum=MAX_RESCORE_FACTOR)
    truncate_dim = check_int("truncate_dim", truncate_dim, minimum=1, optional=True)
    if truncate_dim is not None and truncate_dim > dim:
        raise ValueError(f"truncate_dim must be at most the model's dimension ({dim}), got {truncate_dim}")
    layout = VectorLayout(precision, rescore_factor, truncate_dim)
    if store != "faiss" and layout.rescored:
        raise ValueError(
            f"precision={precision!r} and truncate_dim apply to store='faiss'; the {store} store keeps float32 vectors"
        )
    if precision == "binary" and layout.index_dim(dim) % 8:
        raise ValueError(
            "precision='binary' packs 8 dimensions a byte: the index's dimension (truncate_dim, else the "
            f"model's) must be a multiple of 8, got {layout.index_dim(dim)}"
        )
    allowed = PRECISION_BACKENDS.get(precision)
    if allowed is not None and isinstance(backend, str) and backend not in allowed:
        what = "a FAISS factory string sets its own codes (e.g. 'IVF1024,SQ8')"
        if backend == "ivfpq":
            what = "ivfpq compresses vectors itself (PQ codes)"
        elif backend in ("hnsw", "ivf"):
            what = "binary indexes are exact Hamming scans"
        raise ValueError(
            f"backend {backend!r} cannot take precision={precision!r} ({what}); "
            f"precision={precision!r} works with backend {' or '.join(repr(b) for b in allowed)}"
        )
    return layout


def layout_problem(manifest: dict) -> str | None:
    """What is wrong with a read manifest's layout fields, or None (for IndexCorruptedError)."""
    precision, factor, truncate = (manifest.get(name) for name in ("precision", "rescore_factor", "truncate_dim"))
    if precision not in PRECISIONS:
        return f"'precision' must be one of {', '.join(PRECISIONS)}, got {precision!r}"
    if not is_integer(factor) or not 1 <= factor <= MAX_RESCORE_FACTOR:
        return f"'rescore_factor' must be an int from 1 to {MAX_RESCORE_FACTOR}, got {factor!r}"
    if truncate is not None and (not is_integer(truncate) or not 1 <= truncate <= manifest["model"]["dim"]):
        return f"'truncate_dim' must be null or an int from 1 to the model's dimension, got {truncate!r}"
    return None
