"""Hard-negative mining: for each (anchor, positive) pair, corpus texts close to the anchor that are
not its positive, to train in-batch negatives or triplet losses on.

Each anchor's corpus ranking (exact search, or a ``DocumentIndex``) leaves out the positive, the
anchor, and every text that reads the same as either up to case and whitespace; from what remains
it takes the candidates at ranks ``rank_range`` (0-based, end excluded: ``(10, 50)`` skips the 10
closest) that score below ``positive score - margin`` (those above are likely unlabelled
positives), hardest first. A pair with fewer than ``negatives`` such candidates is dropped (and
counted).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sentsim.prompts import encoder_search_prompts
from sentsim.search.exact import exact_search
from sentsim.similarity import similarity
from sentsim.storage.atomic import atomic_file
from sentsim.validation import check_flag, check_int, finite_or_none, validate_texts

logger = logging.getLogger(__name__)

INDEX_SLACK = 16  # extra hits asked of an index, for the excluded copies of the positive and the anchor

__all__ = ["MinedNegatives", "check_corpus_holds", "check_rank_range", "mine_hard_negatives", "same_text"]


@dataclass(frozen=True)
class MinedNegatives:
    """Pairs with their mined negatives (``negatives[i]`` hardest first) and the pairs left out."""

    anchors: list[str]
    positives: list[str]
    negatives: list[list[str]]
    dropped: list[int]  # rows of the input pairs with too few candidates

    def __len__(self) -> int:
        return len(self.anchors)

    def columns(self) -> dict[str, list[str]]:
        """``anchor``, ``positive``, ``negative_1`` ... ``negative_n``: what ``load_training_data`` reads."""
        count = len(self.negatives[0]) if self.negatives else 0
        mined = {f"negative_{j + 1}": [row[j] for row in self.negatives] for j in range(count)}
        return {"anchor": self.anchors, "positive": self.positives, **mined}

    def save(self, path: str | Path) -> None:
        """Write :meth:`columns` to a Parquet file, atomically."""
        import pyarrow
        import pyarrow.parquet

        table = pyarrow.table(self.columns())
        with atomic_file(path) as temporary:
            pyarrow.parquet.write_table(table, temporary)


def check_rank_range(rank_range: object, negatives: int) -> tuple[int, int]:
    """``rank_range`` as ``(start, end)``, 0 <= start < end, holding at least ``negatives`` ranks."""
    try:
        start, end = (check_int("rank_range", bound, minimum=0) for bound in rank_range)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(f"rank_range must be (start, end), two integers >= 0, got {rank_range!r}") from None
    if end - start < negatives:
        raise ValueError(
            f"rank_range {start}:{end} holds {max(end - start, 0)} ranks, fewer than the {negatives} negatives asked for"
        )
    return start, end


def mine_hard_negatives(
    anchors: Sequence[str],
    positives: Sequence[str],
    corpus: Sequence[str] | object,
    *,
    encoder=None,
    negatives: int = 3,
    rank_range: tuple[int, int] = (10, 50),
    margin: float | None = 0.05,
    batch_size: int = 64,
    show_progress: bool = True,
) -> MinedNegatives:
    """Mine ``negatives`` hard negatives for each (anchor, positive) pair from ``corpus``.

    Args:
        anchors, positives: the pairs, as two lists of texts of one length.
        corpus: a list of texts (searched exactly with ``encoder``), or a ``DocumentIndex`` (searched
            with its own model; its documents kept whole). It must hold every positive: one it
            lacks is an error naming how many and which, raised before anything is encoded.
        encoder: the ``SentenceEncoder`` for a list of texts; with an index, its model (default)
            or one with the same fingerprint.
        negatives: per pair, at least 1.
        rank_range: ``(start, end)``: the candidates at ranks start to end - 1 (0-based, after the
            exclusions above).
        margin: candidates scoring above the positive's score minus this are skipped (None: none are).
        batch_size: texts per forward pass.
        show_progress: progress bars while encoding.
    """
    anchors, positives = validate_texts(anchors, "anchors"), validate_texts(positives, "positives")
    if len(anchors) != len(positives):
        raise ValueError(f"anchors and positives differ in length: {len(anchors)} and {len(positives)}")
    if not anchors:
        raise ValueError("no pairs to mine negatives for")
    negatives = check_int("negatives", negatives, minimum=1)
    start, end = check_rank_range(rank_range, negatives)
    margin = finite_or_none("margin", margin)
    if margin is not None and margin < 0:
        raise ValueError(f"margin must be >= 0 (or None), got {margin}")
    check_int("batch_size", batch_size, minimum=1)
    show_progress = check_flag("show_progress", show_progress)
    if hasattr(corpus, "search_vectors"):
        ranked = _index_rankings(corpus, encoder, anchors, positives, end, batch_size, show_progress)
    else:
        ranked = _exact_rankings(corpus, encoder, anchors, positives, end, batch_size, show_progress)
    kept, mined, dropped = [], [], []
    for row, (candidates, positive_score) in enumerate(ranked):
        limit = np.inf if margin is None else positive_score - margin
        chosen = [text for text, score in candidates[start:end] if score < limit][:negatives]
        if len(chosen) < negatives:
            dropped.append(row)
        else:
            kept.append(row)
            mined.append(chosen)
    if dropped:
        logger.warning(
            "%d of %d pairs had fewer than %d candidates in ranks %d:%d below the margin; they were left out",
            len(dropped),
            len(anchors),
            negatives,
            start,
            end,
        )
    return MinedNegatives([anchors[i] for i in kept], [positives[i] for i in kept], mined, dropped)


def same_text(text: str) -> str:
    """The key under which texts count as the same: case and runs of whitespace ignored."""
    return " ".join(text.split()).casefold()


def check_corpus_holds(positives: Sequence[str], corpus: Sequence[str]) -> dict[str, str]:
    """The distinct texts of ``corpus`` (each text once, up to case and whitespace) by their key; a
    ValueError naming how many and which positives it lacks."""
    first: dict[str, str] = {}
    for text in validate_texts(corpus, "corpus"):
        first.setdefault(same_text(text), text)
    if not first:
        raise ValueError("the corpus is empty")
    if any(same_text(text) not in first for text in positives):
        raise _missing_positives(list(positives), lambda text: same_text(text) in first, "the corpus")
    return first


def _missing_positives(positives: list[str], present: Callable[[str], bool], where: str) -> ValueError:
    missing = [row for row, text in enumerate(positives) if not present(text)]
    shown = "; ".join(f"row {row}: {positives[row][:60]!r}" for row in missing[:5])
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    return ValueError(
        f"{where} lacks {len(missing)} of the {len(positives)} positives ({shown}{more}); mining skips each "
        "positive in the ranking of its anchor, so the corpus must hold them all"
    )


def _exact_rankings(corpus, encoder, anchors, positives, end, batch_size, show_progress):
    """Per pair: the anchor's closest ``end`` candidates ``[(text, score)]`` and the positive's score."""
    if encoder is None:
        raise TypeError("mining a list of texts needs an encoder (a SentenceEncoder)")
    first = check_corpus_holds(positives, corpus)
    texts, row_of = list(first.values()), {key: row for row, key in enumerate(first)}
    prompts = encoder_search_prompts(encoder)
    options = {"batch_size": batch_size, "normalize": True, "show_progress": show_progress}
    corpus_vectors = encoder.encode(texts, prompt=prompts["document"], **options)  # (n, dim)
    anchor_vectors = encoder.encode(anchors, prompt=prompts["query"], **options)  # (pairs, dim)
    positive_rows = [row_of[same_text(text)] for text in positives]
    positive_scores = np.einsum("ij,ij->i", anchor_vectors, corpus_vectors[positive_rows])  # (pairs,)
    exclude = [
        {row_of[same_text(positive)]} | ({row_of[same_text(anchor)]} if same_text(anchor) in row_of else set())
        for anchor, positive in zip(anchors, positives, strict=True)
    ]
    scores, indices = exact_search(anchor_vectors, corpus_vectors, end, exclude=exclude)
    for row in range(len(anchors)):
        hits = [(texts[i], float(s)) for i, s in zip(indices[row], scores[row], strict=True) if i >= 0]
        yield hits, float(positive_scores[row])


def _index_rankings(index, encoder, anchors, positives, end, batch_size, show_progress):
    """:func:`_exact_rankings` through a ``DocumentIndex`` and its stored vectors."""
    if encoder is not None and encoder is not index.encoder:
        from sentsim.fingerprint import fingerprint_mismatch, model_fingerprint

        differ = fingerprint_mismatch(model_fingerprint(index.encoder), model_fingerprint(encoder))
        if differ:
            raise ValueError(f"the index was built with another model (differing: {', '.join(differ)})")
    stored = index.stored_vectors(positives)
    if len(stored) < len(set(positives)):
        raise _missing_positives(positives, stored.__contains__, f"the index in {index.folder}")
    vectors = index.encoder.encode(
        anchors, prompt=index.prompts["query"], batch_size=batch_size, show_progress=show_progress
    )
    metric = index.manifest["metric"]
    positive_scores = similarity(vectors, np.stack([stored[text] for text in positives]), metric, pairwise=True)
    for start in range(0, len(anchors), 1024):
        hits = index.search_vectors(vectors[start : start + 1024], end + INDEX_SLACK, by="document")
        for row, row_hits in enumerate(hits, start):
            seen = {same_text(anchors[row]), same_text(positives[row])}  # skipped, as is a second copy of a text
            kept = []
            for hit in row_hits:
                if same_text(hit.text) not in seen:
                    seen.add(same_text(hit.text))
                    kept.append((hit.text, hit.score))
            yield kept[:end], float(positive_scores[row])
