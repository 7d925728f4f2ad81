import json

import numpy as np
import pytest

from sentsim.data import read_sts
from sentsim.data.texts import read_texts
from sentsim.data.triplets import read_triplets


def test_headerless_sts_csv_with_quoted_commas(tmp_path):
    path = tmp_path / "sts.csv"
    path.write_text('A cat sits.,A cat is sitting.,4.5\n"Hello, world",Goodbye,0.0\n', encoding="utf-8")
    pairs = read_sts(path)
    assert pairs.sentences1 == ["A cat sits.", "Hello, world"]
    assert pairs.sentences2 == ["A cat is sitting.", "Goodbye"]
    np.testing.assert_array_equal(pairs.scores, [4.5, 0.0])


def test_csv_with_header_and_column_mapping(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("a,b,similarity\nx,y,1\nz,w,2\n", encoding="utf-8")
    pairs = read_sts(path, columns={"a": "sentence1", "b": "sentence2", "similarity": "score"})
    assert len(pairs) == 2 and pairs.sentences1 == ["x", "z"]


def test_jsonl_and_dataset_objects(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = [{"sentence1": "a", "sentence2": "b", "score": 0.5}, {"sentence1": "c", "sentence2": "d", "score": 1.0}]
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    assert read_sts(path).sentences2 == ["b", "d"]
    dataset = datasets.Dataset.from_list(rows)
    np.testing.assert_array_equal(read_sts(dataset).scores, [0.5, 1.0])
    datasets.DatasetDict({"test": dataset}).save_to_disk(str(tmp_path / "saved"))
    assert read_sts(tmp_path / "saved", split="test").sentences1 == ["a", "c"]


def test_missing_column_is_named(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("sentence1,sentence2,label\nx,y,1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['score'\]"):
        read_sts(path)


@pytest.mark.parametrize("score", ["high", "nan", "inf"])
def test_bad_score_names_column_and_row(tmp_path, score):
    path = tmp_path / "sts.csv"
    path.write_text(f"a,b,1.0\nc,d,{score}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"column 'score', row 1: expected a (finite )?number, got '{score}'"):
        read_sts(path)


def test_null_text_names_column_and_row():
    datasets = pytest.importorskip("datasets")
    dataset = datasets.Dataset.from_list(
        [{"sentence1": "a", "sentence2": "b", "score": 1.0}, {"sentence1": None, "sentence2": "d", "score": 1.0}]
    )
    with pytest.raises(ValueError, match="column 'sentence1', row 1: expected a non-empty text, got None"):
        read_sts(dataset)
    blank = datasets.Dataset.from_dict({"anchor": ["a", "b"], "positive": ["c", "d"], "negative": ["e", ""]})
    with pytest.raises(ValueError, match="column 'negative', row 1: expected a non-empty text, got ''"):
        read_triplets(blank)  # an empty cell is missing data, in evaluation as in training


def test_ragged_csv_row(tmp_path):
    path = tmp_path / "sts.csv"
    path.write_text("a,b,1.0\nc,2.0\n", encoding="utf-8")
    with pytest.raises(ValueError, match="row 1 has 2 fields, expected 3"):
        read_sts(path)


def test_read_texts_lines_jsonl_and_stdin(tmp_path, monkeypatch):
    lines = tmp_path / "texts.txt"
    lines.write_text("first\n\nthird\n", encoding="utf-8")
    assert read_texts(lines) == ["first", "", "third"]
    records = tmp_path / "texts.jsonl"
    records.write_text('{"text": "a"}\n{"text": "b", "id": 2}\n', encoding="utf-8")
    assert read_texts(records) == ["a", "b"]
    records.write_text('{"text": "a"}\n{"body": "b"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"texts.jsonl:2: expected an object with a text field 'text'"):
        read_texts(records)
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("x\ny\n"))
    assert read_texts("-") == ["x", "y"]


def test_read_texts_splits_on_newlines_only_and_names_bad_bytes(tmp_path):
    odd = tmp_path / "odd.txt"  # U+2028, form feed and NEL sit inside texts; CRLF endings are stripped
    odd.write_bytes("first\r\nsecond\u2028still second\nthird\x0cstill third\nfourth\x85x\n".encode())
    assert read_texts(odd) == ["first", "second\u2028still second", "third\x0cstill third", "fourth\x85x"]
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\n\xff\xfe bad\n")
    with pytest.raises(ValueError, match=r"bad.txt:2: not valid UTF-8"):
        read_texts(bad)
    with pytest.raises(ValueError, match=r"a text field \('body'\) is read from .jsonl and table files only"):
        read_texts(odd, field="body")


def test_read_texts_from_tables_takes_the_text_column_and_skips_a_bom(tmp_path):
    table = tmp_path / "test.csv"
    table.write_bytes("\ufefftext,label\nis it raining?,weather\nplay a song,music\n".encode())  # as Excel writes
    assert read_texts(table) == ["is it raining?", "play a song"]  # not the header, not the labels
    assert read_texts(table, field="label") == ["weather", "music"]
    with pytest.raises(ValueError, match="missing column"):
        read_texts(table, field="body")


def test_data_sets_print_their_size_not_their_rows():
    """repr(load_stsb(...)) printed every pair (about 130k characters)."""
    from sentsim.data import LabelledPairs, RetrievalData, SentencePairs

    assert repr(SentencePairs(["a", "b"], ["c", "d"], [1.0, 2.0])) == "SentencePairs(2 rows)"
    assert repr(LabelledPairs(["a"], ["b"], [1])) == "LabelledPairs(1 row)"
    assert repr(RetrievalData({"q": "a"}, {"d": "b"}, {"q": {"d"}})) == "RetrievalData(1 queries, 1 documents)"


STS_ROWS = [{"sentence1": "a", "sentence2": "b", "score": 0.5}, {"sentence1": "c", "sentence2": "d", "score": 1.0}]


@pytest.mark.parametrize(
    "name, content",
    [
        ("array.json", json.dumps(STS_ROWS, indent=2)),
        ("columns.json", json.dumps({key: [row[key] for row in STS_ROWS] for key in STS_ROWS[0]})),
        ("lines.json", "\n".join(json.dumps(row) for row in STS_ROWS) + "\n"),
        ("lines.jsonl", "\n\n".join(json.dumps(row) for row in STS_ROWS)),
    ],
)
def test_json_layouts_read_alike(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    pairs = read_sts(path)
    assert pairs.sentences1 == ["a", "c"] and pairs.sentences2 == ["b", "d"]
    np.testing.assert_array_equal(pairs.scores, [0.5, 1.0])


def test_parquet_is_read_without_datasets(tmp_path, monkeypatch):
    pyarrow = pytest.importorskip("pyarrow")
    parquet = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "pairs.parquet"
    parquet.write_table(pyarrow.Table.from_pylist(STS_ROWS), path)
    monkeypatch.setitem(__import__("sys").modules, "datasets", None)  # a local file never needs it
    pairs = read_sts(path)
    assert pairs.sentences1 == ["a", "c"] and pairs.scores.tolist() == [0.5, 1.0]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.jsonl", b"", r"empty.jsonl: empty file"),
        ("blank.json", b" \n\n", r"blank.json: empty file"),
        ("binary.json", b"\x89PNG\r\n\x1a\n\x00\xff", r"binary.json:1: not valid UTF-8"),
        ("binary.jsonl", b'{"a": 1}\n\xff\xfe\n', r"binary.jsonl:2: not valid UTF-8"),
        ("binary.csv", b"sentence1,sentence2,score\n\xff,b,1\n", r"binary.csv:2: not valid UTF-8"),
        ("binary.parquet", b"\x00\x01 not parquet", r"binary.parquet: not a readable Parquet file"),
        ("bad.jsonl", b'{"sentence1": "a"}\n{"sentence1": oops}\n', r"bad.jsonl:2: not valid JSON"),
        ("bad.json", b'{"sentence1": "a"}\n\n{"sentence1": "b"\n', r"bad.json:3: not valid JSON"),
        ("pretty.json", b'[\n  {"sentence1": "a"},\n  {"sentence1" "b"}\n]\n', r"pretty.json:3: not valid JSON"),
        ("list.jsonl", b'{"sentence1": "a"}\n[1, 2]\n', r"list.jsonl:2: expected a JSON object, got an array"),
        ("items.json", b'[{"sentence1": "a"}, "b"]', r"items.json, row 1: expected a JSON object, got a string"),
        ("number.json", b"3", r"number.json: expected an array of objects, an object of columns or JSON Lines"),
        ("none.json", b"[]", r"none.json: no records"),
        ("ragged.json", b'{"sentence1": ["a", "b"], "score": [1]}', r"ragged.json: columns of different lengths"),
        ("missing.json", b'[{"sentence1": "a", "sentence2": "b"}]', r"missing.json: missing column\(s\) \['score'\]"),
    ],
)
def test_bad_local_files_are_one_line_errors_naming_file_and_line(tmp_path, name, content, message):
    """These went through `datasets` and ended in StopIteration or DatasetGenerationError tracebacks."""
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as error:
        read_sts(path)
    assert "\n" not in str(error.value)


def test_documents_from_json_and_jsonl_read_alike(tmp_path):
    """A .json went through `datasets`: its nested metadata stayed one 'metadata' value, unlike .jsonl."""
    from sentsim.data.documents import read_documents

    records = [{"id": 7, "text": "a", "metadata": {"year": 2020}}, {"id": "8", "text": "b", "lang": "en"}]
    (tmp_path / "docs.json").write_text(json.dumps(records), encoding="utf-8")
    (tmp_path / "docs.jsonl").write_text("\n".join(json.dumps(record) for record in records), encoding="utf-8")
    for name in ("docs.json", "docs.jsonl"):
        documents = read_documents(tmp_path / name)
        assert documents.texts == ["a", "b"] and documents.ids == ["7", "8"]
        assert documents.metadata == [{"year": 2020}, {"lang": "en"}]
    clash = [{"id": 7, "text": "a"}, {"id": "7", "text": "b"}]
    (tmp_path / "clash.json").write_text(json.dumps(clash), encoding="utf-8")
    with pytest.raises(ValueError, match=r"clash.json, row 1: id '7' is the same id as 7 at .*clash.json, row 0"):
        read_documents(tmp_path / "clash.json")


def test_beir_qrels_and_local_clinc150_name_the_file(tmp_path):
    from sentsim.data import load_clinc150, read_beir

    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "text": "meow"}\n', encoding="utf-8")
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "cat sound"}\n', encoding="utf-8")
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\thigh\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"test.tsv:2: expected a number as the score, got 'high'"):
        read_beir(tmp_path)
    (tmp_path / "clinc150").mkdir()
    (tmp_path / "clinc150" / "data_full.json").write_text('{"train": [["hi", "greet"]]}', encoding="utf-8")
    assert load_clinc150("train", data_dir=tmp_path).texts == ["hi"]
    with pytest.raises(ValueError, match=r"data_full.json: expected 'test', a list of \[text, label\] pairs"):
        load_clinc150("test", data_dir=tmp_path)  # was a KeyError
    (tmp_path / "clinc150" / "data_full.json").write_text('{"train": [\n["hi", "greet"],\n]}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"data_full.json:3: not valid JSON"):
        load_clinc150("train", data_dir=tmp_path)
