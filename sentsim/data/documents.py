"""Documents to index: text, optional id and metadata, from files or Hugging Face datasets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sentsim.data.columns import text_column
from sentsim.data.jsonl import read_jsonl
from sentsim.data.tables import read_table


@dataclass(frozen=True)
class Documents:
    texts: list[str]
    ids: list[str] | None
    metadata: list[dict]

    def __len__(self) -> int:
        return len(self.texts)


def read_documents(
    source: object, *, text_field: str = "text", id_field: str = "id", split: str | None = "train"
) -> Documents:
    """Read documents from a ``.txt`` file (one a line), ``.jsonl``/``.json``/``.csv``/``.tsv``/``.parquet``
    (a ``text_field`` column, an optional ``id_field`` column, every other column becomes metadata),
    a ``datasets.Dataset`` or a Hub dataset name.
    """
    if isinstance(source, (str, Path)) and Path(source).suffix.lower() == ".txt":
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"documents file not found: {path}")
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return Documents(lines, None, [{} for _ in lines])
    if isinstance(source, (str, Path)) and Path(source).suffix.lower() == ".jsonl":
        table, name = _read_jsonl(Path(source)), str(source)
    else:
        table, name = read_table(source, split=split)
    if text_field not in table:
        raise ValueError(f"{name}: no {text_field!r} column; found {list(table)}")
    texts = text_column(table[text_field], text_field, name)
    ids = [str(value) for value in table[id_field]] if id_field in table else None
    others = [key for key in table if key not in (text_field, id_field)]
    metadata = [{key: table[key][row] for key in others if table[key][row] is not None} for row in range(len(texts))]
    return Documents(texts, ids, metadata)


def _read_jsonl(path: Path) -> dict[str, list]:
    """Columns of a JSON Lines file; a nested ``metadata`` object is flattened into them."""
    records = []
    for _, record in read_jsonl(path):
        if isinstance(record.get("metadata"), dict):
            record = {**{k: v for k, v in record.items() if k != "metadata"}, **record["metadata"]}
        records.append(record)
    keys = list(dict.fromkeys(key for record in records for key in record))
    return {key: [record.get(key) for record in records] for key in keys}
