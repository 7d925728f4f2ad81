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
