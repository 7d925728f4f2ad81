"""Retrieval through a :class:`~sentsim.search.DocumentIndex`: the corpus indexed, each query searched.

Where exact search measures the model, this measures what users of an index get: its search
mode (dense, keyword, hybrid) and its index options, scored by the same metrics.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from sentsim.data.retrieval import RetrievalData
from sentsim.search import DocumentIndex


@dataclass(frozen=True, kw_only=True)
class IndexSearch:
    """How the evaluated index is built and searched.

    Args:
        mode: ``dense``, ``keyword`` or ``hybrid`` (see :meth:`DocumentIndex.search`).
        backend: the FAISS backend (default ``flat``, exact).
        keyword_tokenizer: the keyword index's tokenizer (default ``unicode61``).
        weights: the arms' weights of a hybrid search (default 1 each).
        precision, rescore_factor, truncate_dim: how the FAISS index holds the vectors (default
            float32, whole; see :meth:`DocumentIndex.create`).
    """

    mode: str = "dense"
    backend: str = "flat"
    keyword_tokenizer: str | None = None
    weights: dict[str, float] | None = field(default=None)
    precision: str | None = None
    rescore_factor: int | None = None
    truncate_dim: int | None = None

    def create_options(self) -> dict:
        """The options of :meth:`DocumentIndex.create` (beside the model and the metric) that differ from its defaults."""
        given = {
            "keyword_tokenizer": self.keyword_tokenizer,
            "precision": self.precision,
            "rescore_factor": self.rescore_factor,
            "truncate_dim": self.truncate_dim,
        }
        return {"backend": self.backend} | {name: value for name, value in given.items() if value is not None}

    def search_options(self) -> dict:
        """The options of :meth:`DocumentIndex.search` (beside the queries and k)."""
        return {"mode": self.mode, "weights": self.weights}


def build_index(
    folder: Path, encoder, corpus: dict[str, str], config: IndexSearch, *, metric: str, batch_size: int, show_progress
) -> DocumentIndex:
    """A new index in ``folder`` holding ``corpus`` (document id -> text), built as ``config`` says."""
    index = DocumentIndex.create(folder, encoder, metric=metric, **config.create_options())
    try:
        index.add(list(corpus.values()), ids=list(corpus), batch_size=batch_size, show_progress=show_progress)
    except BaseException:
        index.close()
        raise
    return index


def search_rankings(
    index: DocumentIndex, data: RetrievalData, query_ids: list[str], depth: int, search_options: dict
) -> list[list[str]]:
    """The top ``depth`` document ids of each query in ``index`` (an index of ``data.corpus``, ids as
    its keys), searched with ``search_options``; each query's ignored documents are left out."""
    skip = max((len(data.ignore.get(q, ())) for q in query_ids), default=0)
    results = index.search([data.queries[q] for q in query_ids], k=depth + skip, **search_options)
    rankings = []
    for qid, hits in zip(query_ids, results, strict=True):
        ignored = data.ignore.get(qid, set())
        rankings.append([hit.id for hit in hits if hit.id not in ignored][:depth])
    return rankings


def index_rankings(
    encoder,
    data: RetrievalData,
    query_ids: list[str],
    depth: int,
    config: IndexSearch,
    *,
    metric: str,
    batch_size: int,
    show_progress: bool | None,
) -> list[list[str]]:
    """:func:`search_rankings` in an index of the corpus built as ``config`` says, in a temporary folder
    (removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="sentsim-eval-") as folder:
        options = {"metric": metric, "batch_size": batch_size, "show_progress": show_progress}
        with build_index(Path(folder) / "index", encoder, data.corpus, config, **options) as index:
            return search_rankings(index, data, query_ids, depth, config.search_options())
