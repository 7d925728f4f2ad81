"""The keyword side of an index: FTS5 tokenizers, and full-text queries built so that no input is SQL.

Every chunk's text sits in an SQLite FTS5 table beside its vector (:mod:`sentsim.search.store`),
ranked by BM25. A query is never handed to FTS5 as written: :func:`keyword_query` splits it on
white space, quotes each piece (a piece is then a phrase of the words FTS5's tokenizer finds in
it, so ``SKU-1234`` matches those words side by side) and joins the pieces with ``OR``, so a
natural-language question ranks the chunks by how many of its rarer words they hold rather than
matching none that lacks one. Quotes, hyphens, ``*``, ``NEAR(``, ``AND`` or ``NOT`` are words or
punctuation inside a phrase, never operators: no query is an FTS5 syntax error. A query with no
word the tokenizer keeps (``"?!"``, or a piece shorter than three characters with ``trigram``)
matches nothing.
"""

from __future__ import annotations

from sentsim.validation import check_choice

# name -> the FTS5 tokenize argument
TOKENIZERS = {
    "unicode61": "unicode61 remove_diacritics 2",  # words, case and diacritics folded (café = cafe)
    "porter": "porter unicode61 remove_diacritics 2",  # the same, English words stemmed (running = run)
    "trigram": "trigram",  # any substring of 3+ characters: CJK text, codes, parts of words
}
DEFAULT_TOKENIZER = "unicode61"

__all__ = ["DEFAULT_TOKENIZER", "TOKENIZERS", "keyword_query", "tokenizer_spec"]


def tokenizer_spec(name: object) -> str:
    """The FTS5 ``tokenize`` argument of the tokenizer ``name`` (a ValueError names the choices)."""
    return TOKENIZERS[check_choice("keyword_tokenizer", name, TOKENIZERS)]


def keyword_query(text: str) -> str:
    """The FTS5 query for ``text``: each white-space-separated piece quoted, once, joined by ``OR``
    (``""`` for a text without pieces, which matches nothing)."""
    pieces = text.replace("\x00", " ").split()  # a NUL would end the query early
    unique = {piece.casefold(): piece for piece in pieces}.values()
    return " OR ".join('"' + piece.replace('"', '""') + '"' for piece in unique)
