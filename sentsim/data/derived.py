"""Tasks derived from scored pairs (pair classification, paraphrase retrieval) and from labelled texts
(same-label retrieval)."""

from __future__ import annotations

from collections.abc import Sequence

from sentsim.data.classification import LabelledTexts
from sentsim.data.pairs import LabelledPairs
from sentsim.data.retrieval import RetrievalData
from sentsim.data.sts import SentencePairs


def sts_pair_classification(
    pairs: SentencePairs, *, positive_min: float = 4.0, negative_max: float = 1.0
) -> LabelledPairs:
    """Similar (label 1) = score >= ``positive_min``; dissimilar (0) = score <= ``negative_max``; the rest is dropped."""
    if negative_max >= positive_min:
        raise ValueError(f"negative_max ({negative_max}) must be below positive_min ({positive_min})")
    keep = [i for i, score in enumerate(pairs.scores) if score >= positive_min or score <= negative_max]
    if not keep:
        raise ValueError(f"no pair has a score >= {positive_min} or <= {negative_max}")
    return LabelledPairs(
        sentences1=[pairs.sentences1[i] for i in keep],
        sentences2=[pairs.sentences2[i] for i in keep],
        labels=(pairs.scores[keep] >= positive_min).astype("int64"),
    )


def sts_paraphrase_retrieval(
    queries_from: SentencePairs, corpus_from: Sequence[SentencePairs], *, min_score: float = 4.0
) -> RetrievalData:
    """Paraphrase retrieval: each ``sentence1`` of a pair scored >= ``min_score`` is a query whose
    relevant document is its ``sentence2``; the corpus is every distinct sentence of ``corpus_from``
    (and of ``queries_from``). A query's own text is ignored in its ranking; a sentence that is
    the query of several pairs is one query with several relevant documents.
    """
    doc_ids: dict[str, str] = {}
    for pairs in [queries_from, *corpus_from]:
        for text in pairs.sentences1 + pairs.sentences2:
            doc_ids.setdefault(text, f"d{len(doc_ids)}")
    query_ids: dict[str, str] = {}
    relevant: dict[str, set[str]] = {}
    for query, document, score in zip(
        queries_from.sentences1, queries_from.sentences2, queries_from.scores, strict=True
    ):
        if score < min_score or query == document:
            continue
        qid = query_ids.setdefault(query, f"q{len(query_ids)}")
        relevant.setdefault(qid, set()).add(doc_ids[document])
    if not query_ids:
        raise ValueError(f"no pair has a score >= {min_score}")
    return RetrievalData(
        queries={qid: text for text, qid in query_ids.items()},
        corpus={did: text for text, did in doc_ids.items()},
        relevant=relevant,
        ignore={qid: {doc_ids[text]} for text, qid in query_ids.items()},
    )


def same_label_retrieval(queries_from: LabelledTexts, corpus_from: LabelledTexts) -> RetrievalData:
    """Retrieval by label: each text of ``queries_from`` is a query whose relevant documents are the
    texts of ``corpus_from`` with its label (e.g. CLINC150: test queries, training texts of the same
    intent). Documents are ``corpus_from``'s rows (ids ``d<row>``); a query whose label no document
    has is an error."""
    corpus = {f"d{row}": text for row, text in enumerate(corpus_from.texts)}
    by_label: dict[str, set[str]] = {}
    for row, label in enumerate(corpus_from.labels):
        by_label.setdefault(label, set()).add(f"d{row}")
    missing = sorted({label for label in queries_from.labels if label not in by_label})
    if missing:
        raise ValueError(f"label(s) {missing[:5]} of the queries have no document in the corpus")
    queries = {f"q{row}": text for row, text in enumerate(queries_from.texts)}
    relevant = {f"q{row}": by_label[label] for row, label in enumerate(queries_from.labels)}
    return RetrievalData(queries=queries, corpus=corpus, relevant=relevant)
