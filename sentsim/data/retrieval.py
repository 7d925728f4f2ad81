"""Retrieval data: queries, a corpus, and which documents are relevant to each query."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from sentsim.data.jsonl import read_jsonl
from sentsim.data.lines import iter_lines


@dataclass(frozen=True, repr=False)
class RetrievalData:
    """Queries and documents by id, with relevance judgements.

    ``relevant[qid]`` holds the ids of the documents relevant to query ``qid``; every query
    needs at least one. ``ignore[qid]`` holds documents left out of that query's ranking (for
    example the query's own text when it is part of the corpus).
    """

    queries: dict[str, str]
    corpus: dict[str, str]
    relevant: dict[str, set[str]]
    ignore: dict[str, set[str]] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"RetrievalData({len(self.queries)} queries, {len(self.corpus)} documents)"

    def __post_init__(self) -> None:
        if not self.queries:
            raise ValueError("retrieval data has no queries")
        if not self.corpus:
            raise ValueError("retrieval data has an empty corpus")
        for qid in self.queries:
            documents = self.relevant.get(qid)
            if not documents:
                raise ValueError(f"query {qid!r} has no relevant document; drop it or add a judgement")
            unknown = sorted(documents - self.corpus.keys())
            if unknown:
                raise ValueError(f"query {qid!r}: relevant document(s) {unknown[:3]} are not in the corpus")
        for qid, documents in self.ignore.items():
            unknown = sorted(set(documents) - self.corpus.keys())
            if unknown:
                raise ValueError(f"query {qid!r}: ignored document(s) {unknown[:3]} are not in the corpus")


def read_beir(folder: str | Path, *, split: str = "test") -> RetrievalData:
    """Read a BEIR-style folder: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.

    Documents are ``{"_id", "text"[, "title"]}`` (a title is prepended to the text); qrels rows
    are ``query-id<TAB>corpus-id<TAB>score`` after a header line, and a score > 0 is relevant.
    Queries without a judgement in the split are left out.
    """
    folder = Path(folder)
    corpus = {}
    for record in _read_jsonl(folder / "corpus.jsonl"):
        title = record.get("title") or ""
        corpus[str(record["_id"])] = f"{title} {record['text']}".strip() if title else record["text"]
    all_queries = {str(record["_id"]): record["text"] for record in _read_jsonl(folder / "queries.jsonl")}
    relevant: dict[str, set[str]] = {}
    qrels = folder / "qrels" / f"{split}.tsv"
    rows = csv.reader(iter_lines(qrels), delimiter="\t")
    next(rows, None)
    for number, row in enumerate(rows, start=2):
        if len(row) < 3:
            raise ValueError(f"{qrels}:{number}: expected query-id, corpus-id, score")
        if _score(row[2], f"{qrels}:{number}") > 0:
            relevant.setdefault(row[0], set()).add(row[1])
    queries = {qid: text for qid, text in all_queries.items() if qid in relevant}
    return RetrievalData(queries=queries, corpus=corpus, relevant=relevant)


def _score(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{where}: expected a number as the score, got {text!r}") from None


def _read_jsonl(path: Path) -> list[dict]:
    records = []
    for number, record in read_jsonl(path):
        if "_id" not in record or not isinstance(record.get("text"), str):
            raise ValueError(f"{path}:{number}: expected an object with '_id' and 'text'")
        records.append(record)
    return records
