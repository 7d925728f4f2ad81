"""FAISS backends behind one small interface: exact, IVF-Flat, HNSW, IVF-PQ or a factory string.

Vectors carry int64 ids (``IndexIDMap2``). IVF and PQ indexes are trained on the first vectors
added. Flat-code indexes (Flat, SQ, PQ) delete for real; in HNSW and IVF indexes deleted ids
become tombstones that searches skip, and the index is rebuilt without them once they pass a
quarter of it (or on ``compact``).

GPU: where ``faiss.get_num_gpus() > 0`` (faiss-gpu installed), searches run on a GPU copy of
the index, falling back to the CPU index for what GPU FAISS lacks (k > 2048, selectors used by
filters). Where torch has CUDA but faiss has no GPU, an exact (``flat``) backend searches as a
matrix product + top-k in torch on the GPU.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from sentsim.search.exact import exact_search
from sentsim.search.store import IndexCorruptedError
from sentsim.storage.atomic import atomic_file
from sentsim.validation import check_int

try:
    import faiss
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "the FAISS store (DocumentIndex's default) needs FAISS: pip install 'sentsim[faiss]' (or a faiss-gpu build)"
    ) from error

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "flat", "ivf", "hnsw", "ivfpq")
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 200, 128
GPU_MAX_K = 2048
# IVF probes nlist/16 lists (at least 16): recall@10 0.99 on real MiniLM embeddings of 30k
# sentences at a quarter of nlist/4's cost (bench_index.py --nprobe-sweep; README "Measured").
IVF_MIN_NPROBE, IVF_NPROBE_DIVISOR = 16, 16
# What follows FAISS's own bytes in a saved index: the database state it reflects (FAISS reads
# what it wrote and ignores the rest, so other tools still read the file).
STAMP_MARK, STAMP_TAIL = b"\nsentsim-state:", 128
# int8 (SQ8) ranges are trained on the first vectors added; when more than this share of an added
# batch's values falls outside them, the index is retrained on every vector at the next save.
SQ_RETRAIN_SHARE = 0.01


def save_stamped(path: Path, write: Callable[[str], None], stamp: str) -> None:
    """``write`` an index to ``path`` through a temporary file and a rename, followed by ``stamp``."""
    with atomic_file(path) as tmp:
        write(tmp)
        with open(tmp, "ab") as handle:
            handle.write(STAMP_MARK + stamp.encode("ascii"))


def resolve_factory(backend: str, dim: int, n: int, precision: str = "float32") -> str:
    """The FAISS factory string for ``backend`` at ``n`` vectors (a factory string passes through).

    ``precision="int8"`` stores scalar-quantized codes (``SQ8``) in the flat, HNSW or IVF index
    (``auto`` past 2M vectors: IVF with SQ8 codes); ``"binary"``: ``BFlat``, a binary index
    (:mod:`sentsim.search.binary`). Which backends a precision takes is checked at create.
    """
    if backend not in BACKENDS:
        return backend
    if precision == "binary":
        return "BFlat"
    if backend == "auto":
        backend = "flat" if n < 200_000 else "hnsw" if n < 2_000_000 else "ivfpq"
        backend = "ivf" if backend == "ivfpq" and precision == "int8" else backend
    lists = max(1, min(int(4 * math.sqrt(n)), n // 39 or 1, 65536))
    codes = "SQ8" if precision == "int8" else "Flat"
    if backend == "flat":
        return codes
    if backend == "hnsw":
        return f"HNSW{HNSW_M}" + ("_SQ8" if precision == "int8" else "")
    if backend == "ivf":
        return f"IVF{lists},{codes}"
    subquantizers = max(m for m in range(1, dim + 1) if dim % m == 0 and m <= max(1, dim // 4) and m <= 96)
    return f"IVF{lists},PQ{subquantizers}"


class VectorBackend:
    """A FAISS index with int64 ids, the metric's normalization, tombstones and atomic save."""

    takes_selector = True  # searches can be restricted to ids (filters, tombstones)

    def __init__(
        self, factory: str, dim: int, metric: str, index: faiss.Index | None = None, tombstones: set[int] | None = None
    ) -> None:
        self.factory, self.dim, self.metric = factory, dim, metric
        self.faiss_metric = faiss.METRIC_L2 if metric == "euclidean" else faiss.METRIC_INNER_PRODUCT
        try:
            self.index = (
                index if index is not None else faiss.IndexIDMap2(faiss.index_factory(dim, factory, self.faiss_metric))
            )
        except RuntimeError as error:
            raise ValueError(
                f"invalid FAISS factory string {factory!r}: {str(error).splitlines()[-1]} "
                f"(backends: {', '.join(BACKENDS)}, or a factory string such as 'IVF1024,SQ8')"
            ) from None
        self.tombstones = tombstones or set()
        self.retrain_due = False  # int8 ranges that clip the vectors added since: rebuild at save
        self._gpu_index = None
        self._configure()

    @property
    def inner(self) -> faiss.Index:
        return faiss.downcast_index(self.index.index)

    @property
    def can_remove(self) -> bool:
        """Whether deleted ids can leave the index. Only flat-code indexes (Flat, SQ, PQ) shift their
        rows on removal the way ``IndexIDMap2`` expects; HNSW cannot remove and IVF keeps its own ids,
        so ``remove_ids`` through the id map would leave every later id pointing at the wrong vector."""
        inner = faiss.downcast_index(self.inner)
        return isinstance(_core(inner), faiss.IndexFlatCodes) and not isinstance(inner, faiss.IndexRefine)

    @property
    def size(self) -> int:
        """Live vectors (tombstones excluded)."""
        return self.index.ntotal - len(self.tombstones)

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        vectors = self.prepare(vectors)
        if not self.index.is_trained:
            self._train(vectors)
        elif not self.retrain_due and _clipped_share(self.inner, vectors) > SQ_RETRAIN_SHARE:
            logger.info("new vectors fall outside the int8 ranges trained so far: retraining at the next save")
            self.retrain_due = True
        self.index.add_with_ids(vectors, ids.astype(np.int64))
        self._gpu_index = None

    def remove(self, ids: list[int]) -> None:
        if not ids:
            return
        if self.can_remove:
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))
        else:
            self.tombstones |= set(ids)
        self._gpu_index = None

    def needs_compaction(self) -> bool:
        """Whether the index is due a rebuild: too many tombstones, or int8 ranges to retrain."""
        return self.retrain_due or len(self.tombstones) > max(1000, self.index.ntotal // 4)

    def search(
        self,
        queries: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        *,
        nprobe: int | None = None,
        ef_search: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k ``(similarities, ids)``; ids -1 where fewer exist. ``allowed`` restricts the ids searched;
        ``nprobe`` / ``ef_search`` override the index's own for this call (see :meth:`check_tuning`)."""
        self.check_tuning(nprobe, ef_search)
        queries = self.prepare(queries)
        if self.index.ntotal == 0:
            return np.full((len(queries), k), -np.inf, np.float32), np.full((len(queries), k), -1, np.int64)
        selector = self._selector(allowed)
        tuned = nprobe is not None or ef_search is not None
        fetch = min(k, self.index.ntotal)
        if selector is None and not self.tombstones and self._torch_exact():
            distances, ids = self._torch_search(queries, fetch)
        elif selector is None and not tuned and fetch <= GPU_MAX_K and self._gpu() is not None:
            distances, ids = self._gpu().search(queries, fetch)
        else:
            params = self._search_parameters(selector, nprobe, ef_search)
            distances, ids = (
                self.index.search(queries, fetch, params=params)
                if params is not None
                else self.index.search(queries, fetch)
            )
        scores = -np.sqrt(np.maximum(distances, 0)) if self.metric == "euclidean" else distances
        scores = np.where(ids < 0, -np.inf, scores).astype(np.float32)
        return _pad(scores[:, :k], k, -np.inf), _pad(ids[:, :k], k, -1)

    def check_tuning(self, nprobe: int | None, ef_search: int | None) -> None:
        """Raise a ValueError unless ``nprobe`` (IVF indexes: inverted lists visited per query) and
        ``ef_search`` (HNSW: candidate list size) are None or positive ints for an index that has them."""
        check_tuning_values(nprobe, ef_search)
        core = _core(self.inner)
        if nprobe is not None and faiss.try_extract_index_ivf(core) is None:
            raise ValueError(f"nprobe applies to IVF indexes; this index is {self.factory!r}")
        if ef_search is not None and not isinstance(core, faiss.IndexHNSW):
            raise ValueError(f"ef_search applies to HNSW indexes; this index is {self.factory!r}")

    def live(self, ids: np.ndarray) -> np.ndarray:
        """``ids`` without tombstones."""
        return np.setdiff1d(ids, np.fromiter(self.tombstones, dtype=np.int64)) if self.tombstones else ids

    def prepare(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        if not np.isfinite(vectors).all():
            raise ValueError("vectors contain NaN or infinity")
        if self.metric == "cosine":
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors

    def save(self, path: Path, stamp: str) -> None:
        """Write the index to ``path`` through a temporary file and a rename, followed by ``stamp``
        (what :func:`saved_stamp` reads back)."""
        save_stamped(path, lambda tmp: faiss.write_index(self.index, tmp), stamp)

    @classmethod
    def load(cls, path: Path, factory: str, dim: int, metric: str, tombstones: set[int]) -> VectorBackend:
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as error:
            raise IndexCorruptedError(f"{path} is not a readable FAISS index ({str(error).splitlines()[-1]})") from None
        if not isinstance(index, faiss.IndexIDMap2):
            raise IndexCorruptedError(f"{path} holds a {type(index).__name__}, not the id-mapped index sentsim writes")
        if index.d != dim:
            raise IndexCorruptedError(f"{path} holds {index.d}-dimensional vectors, the manifest says {dim}")
        return cls(factory, dim, metric, index=index, tombstones=tombstones)  # read_index returns the concrete class

    # --------------------------------------------------------------- internals
    def _configure(self) -> None:
        inner = _core(self.inner)
        if isinstance(inner, faiss.IndexHNSW):
            inner.hnsw.efConstruction = max(inner.hnsw.efConstruction, HNSW_EF_CONSTRUCTION)
            inner.hnsw.efSearch = max(inner.hnsw.efSearch, HNSW_EF_SEARCH)
        ivf = faiss.try_extract_index_ivf(inner)
        if ivf is not None:
            ivf.nprobe = max(ivf.nprobe, min(ivf.nlist, max(IVF_MIN_NPROBE, ivf.nlist // IVF_NPROBE_DIVISOR)))

    def _train(self, vectors: np.ndarray) -> None:
        ivf = faiss.try_extract_index_ivf(self.inner)
        needed = max(ivf.nlist if ivf is not None else 1, 256 if "PQ" in self.factory else 1)
        if len(vectors) < needed:
            raise ValueError(
                f"the {self.factory!r} index must be trained on at least {needed} vectors, got {len(vectors)}: "
                "add more documents in the first batch, or use backend='flat'"
            )
        sample = vectors
        limit = max(100_000, 256 * (ivf.nlist if ivf is not None else 1))
        if len(vectors) > limit:
            sample = vectors[np.random.default_rng(0).choice(len(vectors), limit, replace=False)]
        logger.info("training %s on %d vectors", self.factory, len(sample))
        self.index.train(sample)

    def _selector(self, allowed: np.ndarray | None) -> faiss.IDSelector | None:
        """The ids a search may return: ``allowed`` without tombstones, or every id but the tombstones."""
        if allowed is not None:
            return faiss.IDSelectorBatch(np.ascontiguousarray(self.live(allowed), dtype=np.int64))
        if not self.tombstones:
            return None
        dead = faiss.IDSelectorBatch(np.fromiter(self.tombstones, dtype=np.int64, count=len(self.tombstones)))
        selector = faiss.IDSelectorNot(dead)
        selector.referenced_objects = [dead]  # the SWIG object does not keep its argument alive
        return selector

    def _search_parameters(
        self, selector: faiss.IDSelector | None, nprobe: int | None = None, ef_search: int | None = None
    ):
        """Per-call FAISS search parameters (the index itself is never changed), or None for the defaults."""
        if selector is None and nprobe is None and ef_search is None:
            return None
        return _parameters(self.inner, selector, nprobe, ef_search)

    def _gpu(self):
        if faiss.get_num_gpus() == 0:
            return None
        if self._gpu_index is None:
            try:
                self._gpu_index = faiss.index_cpu_to_all_gpus(self.index)
            except RuntimeError as error:  # an index type GPU FAISS lacks
                logger.info("searching on CPU: %s", error)
                return None
        return self._gpu_index

    def _torch_exact(self) -> bool:
        return faiss.get_num_gpus() == 0 and torch.cuda.is_available() and isinstance(self.inner, faiss.IndexFlat)

    def _torch_search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        vectors = faiss.rev_swig_ptr(self.inner.get_xb(), self.inner.ntotal * self.dim).reshape(
            self.inner.ntotal, self.dim
        )
        scores, rows = exact_search(queries, vectors, k, metric=self._exact_metric, device="cuda")
        ids = faiss.vector_to_array(self.index.id_map)[np.maximum(rows, 0)]
        ids = np.where(rows < 0, -1, ids)
        return (scores**2 if self.metric == "euclidean" else scores), ids

    @property
    def _exact_metric(self) -> str:
        """The :func:`exact_search` metric on prepared (cosine: normalized) vectors."""
        return {"cosine": "dot", "dot": "dot", "euclidean": "euclidean"}[self.metric]


def saved_stamp(path: Path) -> str | None:
    """The stamp :meth:`VectorBackend.save` wrote after the index in ``path`` (its last bytes only are
    read), or None where there is none (a file cut short, or not written by sentsim) or no file."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, handle.seek(0, 2) - STAMP_TAIL))
            tail = handle.read()
    except OSError:
        return None
    _, mark, stamp = tail.rpartition(STAMP_MARK)
    return stamp.decode("ascii", "replace") if mark else None


def check_factory(factory: str, dim: int, metric: str) -> None:
    """Raise a ValueError unless ``factory`` builds an index sentsim can use: it is built here and,
    where it needs no training, given two vectors and searched (``"IDMap,Flat"``: sentsim maps ids
    itself; ``"IVF0,Flat"``: no inverted list)."""
    backend = VectorBackend(factory, dim, metric)
    ivf = faiss.try_extract_index_ivf(_core(backend.inner))
    if ivf is not None and ivf.nlist < 1:
        raise ValueError(f"invalid FAISS factory string {factory!r}: an IVF index needs at least 1 inverted list")
    if not backend.index.is_trained:
        return
    vectors = np.random.default_rng(0).normal(size=(2, dim)).astype(np.float32)
    try:
        backend.add(vectors, np.arange(2))
        backend.search(vectors, 1)
    except RuntimeError as error:
        raise ValueError(
            f"invalid FAISS factory string {factory!r}: the index it builds fails ({str(error).splitlines()[-1]})"
        ) from None


def check_tuning_values(nprobe: object, ef_search: object) -> None:
    """Raise a ValueError unless ``nprobe`` and ``ef_search`` are each None or a positive integer."""
    for name, value in (("nprobe", nprobe), ("ef_search", ef_search)):
        check_int(name, value, minimum=1, maximum=2**31 - 1, optional=True)


def _core(index: faiss.Index) -> faiss.Index:
    """The index that does the search inside refinement and pre-transform wrappers."""
    index = faiss.downcast_index(index)
    while isinstance(index, (faiss.IndexRefine, faiss.IndexPreTransform)):
        index = faiss.downcast_index(index.base_index if isinstance(index, faiss.IndexRefine) else index.index)
    return index


def _parameters(index: faiss.Index, selector, nprobe: int | None, ef_search: int | None) -> faiss.SearchParameters:
    """Search parameters for ``index``, nested the way its wrappers expect them."""
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexRefine):
        base = _parameters(index.base_index, selector, nprobe, ef_search)
        return faiss.IndexRefineSearchParameters(k_factor=index.k_factor, base_index_params=base)
    if isinstance(index, faiss.IndexPreTransform):
        return _parameters(index.index, selector, nprobe, ef_search)
    if isinstance(index, faiss.IndexHNSW):
        return faiss.SearchParametersHNSW(sel=selector, efSearch=int(ef_search or index.hnsw.efSearch))
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        return faiss.SearchParametersIVF(sel=selector, nprobe=int(min(nprobe or ivf.nprobe, ivf.nlist)))
    return faiss.SearchParameters(sel=selector)


def _clipped_share(index: faiss.Index, vectors: np.ndarray) -> float:
    """The share of the values of prepared ``vectors`` outside the per-dimension ranges a trained
    8-bit scalar quantizer of whole vectors (flat or HNSW storage) inside ``index`` holds, else 0
    (IVF quantizes residuals, with ranges trained on its first batch, which is at least nlist vectors)."""
    core = _core(index)
    if isinstance(core, faiss.IndexHNSW):
        core = faiss.downcast_index(core.storage)
    if not isinstance(core, faiss.IndexScalarQuantizer):
        return 0.0
    trained = faiss.vector_to_array(core.sq.trained)
    dim = vectors.shape[1]
    if len(trained) != 2 * dim or len(vectors) == 0:  # a uniform quantizer has one range
        return 0.0
    low, width = trained[:dim], trained[dim:]
    return float(np.mean((vectors < low) | (vectors > low + width)))


def _pad(values: np.ndarray, k: int, fill: float) -> np.ndarray:
    if values.shape[1] >= k:
        return values
    return np.concatenate([values, np.full((len(values), k - values.shape[1]), fill, dtype=values.dtype)], axis=1)
