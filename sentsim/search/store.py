"""The FAISS store's database: SQLite holds documents, chunks, metadata and vectors; it is the source of truth.

Every change is one transaction, so a process killed at any moment leaves the last completed
operation. The FAISS index is derived from it and can always be rebuilt from the vectors here.
The keyword index (an FTS5 table of every chunk's text, rowid = the chunk's vector id) is part
of the database: written and deleted in the same transaction as its chunk.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sentsim.search.filters import Condition, filter_sql

logger = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (doc_id TEXT PRIMARY KEY, text TEXT NOT NULL, metadata TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    vector_id INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL, hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks(doc_id);
CREATE TABLE IF NOT EXISTS vectors (hash TEXT PRIMARY KEY, vector BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
KEYWORDS = "CREATE VIRTUAL TABLE keywords USING fts5(text, tokenize = '{tokenize}')"
TABLES = {"documents", "chunks", "vectors", "settings", "keywords"}


@dataclass(frozen=True)
class StoredChunk:
    vector_id: int
    doc_id: str
    start: int
    end: int
    hash: str


class DocumentStore:
    """Documents and their chunks' vectors in one SQLite file (WAL mode, one writer)."""

    def __init__(self, path: Path, *, create: bool = False, tokenize: str | None = None) -> None:
        """Open the store at ``path``; ``create`` makes a new one, whose keyword index splits words with
        the FTS5 tokenizer ``tokenize`` (see :mod:`sentsim.search.keywords`). An existing store is checked
        before anything is written to it: a missing, empty, foreign or corrupted file raises IndexCorruptedError."""
        self.path = path
        self._db: sqlite3.Connection | None = None
        if path.is_symlink():  # writes (schema, WAL mode) would land in whatever database it points to
            raise IndexCorruptedError(f"{path} is a symbolic link; an index keeps its own database")
        if not create and not path.is_file():
            what = "is not a file" if path.exists() else "is missing"
            raise IndexCorruptedError(f"{path} {what}: the index's documents are gone (restore it, or build again)")
        try:
            # mode=rw: a file removed since the check above is not created empty
            uri = f"{path.absolute().as_uri()}?mode={'rwc' if create else 'rw'}"
            self._db = sqlite3.connect(uri, uri=True, timeout=60, check_same_thread=False, isolation_level=None)
            if not create:
                self._check()
            mode = self.db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":  # e.g. some network file systems: readers then block writers
                logger.warning(
                    "%s is in %s journal mode, not WAL: searches and writes will wait on each other", path, mode
                )
            self.db.execute("PRAGMA synchronous=FULL")
            if create:
                self.db.executescript(SCHEMA)
                self.db.execute(KEYWORDS.format(tokenize=tokenize))
        except sqlite3.DatabaseError as error:
            self.close()
            raise IndexCorruptedError(f"{path} is not a readable SQLite database: {error}") from None
        except BaseException:
            self.close()
            raise

    def _check(self) -> None:
        """An IndexCorruptedError unless the file holds this store's tables, intact (read only)."""
        tables = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = sorted(TABLES - tables)
        if missing:
            what = "is empty" if not tables else f"lacks the {', '.join(missing)} table(s)"
            raise IndexCorruptedError(f"{self.path} {what}: it is not the database of a sentsim index")
        check = self.db.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise IndexCorruptedError(f"{self.path} is corrupted: {check}")

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise ValueError(f"the index in {self.path.parent} is closed; open it again with DocumentIndex.open")
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # ---------------------------------------------------------------- settings
    def setting(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    @property
    def generation(self) -> int:
        """Counts completed operations (handles compare it to see another's writes)."""
        return int(self.setting("generation", "0"))

    @property
    def state(self) -> str:
        """A random stamp each completed operation draws: the FAISS file saved for this state carries
        it, so a file saved for any other state, of this index or a copy, is told apart."""
        return self.setting("state", "")

    # ------------------------------------------------------------------ writes
    def transaction(self) -> _Transaction:
        return _Transaction(self)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads that see one state of the database (a read transaction, unless one is open already)."""
        if self.db.in_transaction:
            yield
            return
        self.db.execute("BEGIN")
        try:
            yield
        finally:
            self.db.execute("COMMIT")

    @property
    def next_vector_id(self) -> int:
        """The id the next stored vector gets (ids are never reused)."""
        return int(self.setting("next_vector_id", "0"))

    def next_vector_ids(self, count: int) -> np.ndarray:
        first = self.next_vector_id
        self.db.execute("INSERT OR REPLACE INTO settings VALUES ('next_vector_id', ?)", (str(first + count),))
        return np.arange(first, first + count, dtype=np.int64)

    def put_document(self, doc_id: str, text: str, metadata: dict) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO documents VALUES (?, ?, ?)",
            (doc_id, text, json.dumps(metadata, ensure_ascii=False)),
        )

    def put_chunks(self, doc_id: str, text: str, chunks: list, hashes: list[str], vector_ids: np.ndarray) -> None:
        """The chunks (:class:`~sentsim.search.chunking.Chunk`) of the document ``text``, and their keyword rows."""
        rows = list(zip(vector_ids.tolist(), chunks, hashes, strict=True))
        self.db.executemany(
            "INSERT INTO chunks VALUES (?, ?, ?, ?, ?)", ((v, doc_id, c.start, c.end, h) for v, c, h in rows)
        )
        self.db.executemany(
            "INSERT INTO keywords (rowid, text) VALUES (?, ?)",
            ((v, text[c.start : c.end].replace("\x00", " ")) for v, c, _ in rows),  # FTS5 ends a text at a NUL
        )

    def put_vectors(self, hashes: list[str], vectors: np.ndarray) -> None:
        self.db.executemany(
            "INSERT OR IGNORE INTO vectors VALUES (?, ?)",
            ((h, np.ascontiguousarray(v, dtype=np.float32).tobytes()) for h, v in zip(hashes, vectors, strict=True)),
        )

    def delete_document(self, doc_id: str) -> list[int]:
        """Remove a document and its chunks; returns their vector ids (the cached vectors stay)."""
        ids = [row[0] for row in self.db.execute("SELECT vector_id FROM chunks WHERE doc_id = ?", (doc_id,))]
        self.db.execute(
            "DELETE FROM keywords WHERE rowid IN (SELECT vector_id FROM chunks WHERE doc_id = ?)", (doc_id,)
        )
        self.db.execute("INSERT OR REPLACE INTO settings VALUES ('keywords_deleted', '1')")  # for optimize_keywords
        self.db.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
        self.db.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))
        return ids

    def optimize_keywords(self) -> bool:
        """Merge the keyword index into one segment, dropping what deletes left in it, where a delete
        has happened since the last time; returns whether it did."""
        if self.setting("keywords_deleted") is None:
            return False
        self.db.execute("INSERT INTO keywords (keywords) VALUES ('optimize')")
        self.db.execute("DELETE FROM settings WHERE key = 'keywords_deleted'")
        return True

    # ------------------------------------------------------------------- reads
    def document(self, doc_id: str) -> tuple[str, dict] | None:
        row = self.db.execute("SELECT text, metadata FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return (row[0], json.loads(row[1])) if row else None

    def has_documents(self, doc_ids: list[str]) -> set[str]:
        return {row[0] for row in self._rows_in("SELECT doc_id FROM documents WHERE doc_id IN ({})", doc_ids)}

    def matches(self, vector_ids: np.ndarray) -> dict[int, tuple[str, int, int, str, dict]]:
        """``vector_id -> (doc_id, start, end, document text, metadata)`` of live chunks, in one query.

        Metadata is parsed once per document (hits of one document share the dict).
        """
        rows = self.db.execute(
            "SELECT c.vector_id, c.doc_id, c.start, c.end, d.text, d.metadata FROM json_each(?) j "
            "JOIN chunks c ON c.vector_id = j.value JOIN documents d ON d.doc_id = c.doc_id",
            (json.dumps([int(i) for i in vector_ids]),),
        ).fetchall()
        metadata: dict[str, dict] = {}
        for row in rows:
            if row[1] not in metadata:
                metadata[row[1]] = json.loads(row[5])
        return {row[0]: (row[1], row[2], row[3], row[4], metadata[row[1]]) for row in rows}

    def cached_vectors(self, hashes: list[str]) -> dict[str, np.ndarray]:
        query = "SELECT hash, vector FROM vectors WHERE hash IN ({})"
        return {
            digest: np.frombuffer(blob, dtype=np.float32)
            for digest, blob in self._rows_in(query, list(dict.fromkeys(hashes)))
        }

    def chunks(self, vector_ids: Iterable[int]) -> dict[int, StoredChunk]:
        query = "SELECT vector_id, doc_id, start, end, hash FROM chunks WHERE vector_id IN ({})"
        return {row[0]: StoredChunk(*row) for row in self._rows_in(query, [int(i) for i in vector_ids])}

    def _rows_in(self, query: str, values: list) -> Iterator[tuple]:
        """Rows of ``query`` (with one ``IN ({})``) over ``values``, 500 at a time (SQLite's parameter limit)."""
        for start in range(0, len(values), 500):
            part = values[start : start + 500]
            yield from self.db.execute(query.format(", ".join("?" for _ in part)), part)

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """``(vector_ids, vectors)`` of every live chunk, for rebuilding the FAISS index."""
        rows = self.db.execute(
            "SELECT c.vector_id, v.vector FROM chunks c JOIN vectors v ON v.hash = c.hash ORDER BY c.vector_id"
        ).fetchall()
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        return np.array([r[0] for r in rows], dtype=np.int64), np.stack(
            [np.frombuffer(r[1], dtype=np.float32) for r in rows]
        )

    def vectors_by_id(self, vector_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, vectors)`` of those of ``vector_ids`` that are live chunks, by ascending id, in one query."""
        rows = self.db.execute(
            "SELECT c.vector_id, v.vector FROM json_each(?) j JOIN chunks c ON c.vector_id = j.value "
            "JOIN vectors v ON v.hash = c.hash ORDER BY c.vector_id",
            (json.dumps([int(i) for i in vector_ids]),),
        ).fetchall()
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        ids = np.array([row[0] for row in rows], dtype=np.int64)
        return ids, np.frombuffer(b"".join(row[1] for row in rows), dtype=np.float32).reshape(len(rows), -1)

    def vectors_of(self, vector_ids: np.ndarray) -> np.ndarray:
        chunks = self.chunks(vector_ids)
        cache = self.cached_vectors([chunks[int(i)].hash for i in vector_ids])
        return (
            np.stack([cache[chunks[int(i)].hash] for i in vector_ids])
            if len(vector_ids)
            else np.zeros((0, 0), np.float32)
        )

    def count(self, table: str) -> int:
        return int(self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608 - fixed table names

    def keyword_matches(
        self, query: str, limit: int, conditions: list[Condition] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, vector_ids)`` of the ``limit`` chunks that best match the FTS5 ``query`` (built by
        :func:`~sentsim.search.keywords.keyword_query`), best first; scores are BM25 (higher is better)."""
        if not query:
            return np.zeros(0, np.float64), np.zeros(0, np.int64)
        joins, condition, parameters = "", "", []
        if conditions:  # every keyword row has its chunk: the joins only reach the metadata
            joins = " JOIN chunks c ON c.vector_id = keywords.rowid JOIN documents ON documents.doc_id = c.doc_id"
            condition, parameters = filter_sql(conditions)
            condition = f" AND {condition}"
        rows = self.db.execute(
            f"SELECT keywords.rowid, -bm25(keywords) AS score FROM keywords{joins} "
            f"WHERE keywords MATCH ?{condition} ORDER BY score DESC, keywords.rowid LIMIT ?",
            [query, *parameters, limit],
        ).fetchall()
        return np.array([r[1] for r in rows], np.float64), np.array([r[0] for r in rows], np.int64)

    def vector_ids_matching(self, conditions: list[Condition]) -> np.ndarray:
        condition, parameters = filter_sql(conditions)
        query = f"SELECT c.vector_id FROM chunks c JOIN documents ON documents.doc_id = c.doc_id WHERE {condition}"
        return np.array([row[0] for row in self.db.execute(query, parameters)], dtype=np.int64)


class _Transaction:
    """``with store.transaction() as transaction:`` one atomic operation that also bumps the generation.

    It takes SQLite's write lock at the start, so no other handle or process commits in between;
    ``transaction.generation`` is the generation it committed.
    """

    def __init__(self, store: DocumentStore) -> None:
        self.store = store
        self.generation: int | None = None
        self.changed = False  # whether it committed a change (an operation that changed nothing does not)

    def __enter__(self) -> _Transaction:
        self.store.db.execute("BEGIN IMMEDIATE")
        try:  # a Ctrl-C here must not leave the write lock held (__exit__ would not run)
            self._changes_before = self.store.db.total_changes
        except BaseException:
            self._roll_back()
            raise
        return self

    def bump(self) -> int:
        """Move the generation and draw a new state now, before the commit (for files that must
        name it); returns the generation."""
        if not self.changed:
            self.changed = True
            self.generation = self.store.generation + 1
            self.store.db.executemany(
                "INSERT OR REPLACE INTO settings VALUES (?, ?)",
                [("generation", str(self.generation)), ("state", secrets.token_hex(16))],
            )
        return self.generation

    def __exit__(self, kind, value, traceback) -> None:
        try:
            if kind is not None or self.store.db.total_changes == self._changes_before:
                self._roll_back()
                return
            self.bump()
            self.store.db.execute("COMMIT")
        except BaseException:  # e.g. Ctrl-C between the bump and the commit
            self._roll_back()
            raise

    def _roll_back(self) -> None:
        if self.store.db.in_transaction:
            self.store.db.execute("ROLLBACK")
        self.changed, self.generation = False, self.store.generation


class IndexCorruptedError(OSError):
    """A file of the index folder is truncated, corrupted or missing."""
