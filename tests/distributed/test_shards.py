"""The embeddings folder: written atomically, read back with every check (no Ray needed)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sentsim.distributed.shards import check_output_folder, read_embeddings, write_shards

INFO = {
    "format": 1,
    "model": {"name": "toy", "dim": 4},
    "prompt": {"name": None, "text": ""},
    "normalize": True,
    "dim": 4,
}


def batch(ids: list, vectors: np.ndarray) -> pa.Table:
    values = pa.array(np.asarray(vectors, dtype=np.float32).reshape(-1))
    return pa.table({"id": ids, "embedding": pa.FixedSizeListArray.from_arrays(values, 4)})


@pytest.fixture
def vectors() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)


def test_round_trip_with_str_and_int_ids(tmp_path, vectors):
    info = write_shards([batch(["a", "b"], vectors[:2]), batch([7, 8, 9], vectors[2:])], tmp_path / "out", INFO)
    assert info["count"] == 5 and info["shards"] == ["shards/part-00000.parquet", "shards/part-00001.parquet"]
    read_info, ids, read = read_embeddings(tmp_path / "out")
    assert read_info == info and ids == ["a", "b", "7", "8", "9"]  # ints as their digits, as the index stores them
    assert read.dtype == np.float32 and read.flags.c_contiguous
    np.testing.assert_array_equal(read, vectors)
    assert pq.read_table(tmp_path / "out" / "shards" / "part-00001.parquet").column("id").type == pa.int64()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]  # no temporaries left beside it


def test_a_failed_write_leaves_the_old_folder(tmp_path, vectors):
    write_shards([batch(["a"], vectors[:1])], tmp_path / "out", INFO)

    def failing():
        yield batch(["b"], vectors[1:2])
        raise RuntimeError("a worker failed")

    with pytest.raises(RuntimeError):
        write_shards(failing(), tmp_path / "out", INFO)
    assert read_embeddings(tmp_path / "out")[1] == ["a"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]


def test_output_folder_checks(tmp_path, vectors):
    check_output_folder(tmp_path / "new", overwrite=False)
    (tmp_path / "empty").mkdir()
    check_output_folder(tmp_path / "empty", overwrite=False)
    write_shards([batch(["a"], vectors[:1])], tmp_path / "out", INFO)
    with pytest.raises(FileExistsError, match="exists; choose a new folder, or overwrite it"):
        check_output_folder(tmp_path / "out", overwrite=False)
    check_output_folder(tmp_path / "out", overwrite=True)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not sentsim embeddings"):
        check_output_folder(tmp_path / "mine", overwrite=True)


@pytest.mark.parametrize(
    ("ids", "bad_row", "message"),
    [
        (["a", "7", 7], None, r"id '7' occurs more than once"),
        (["a", "b", "c"], 1, r"the embedding of id 'b' holds NaN"),
        (["a", None, "c"], None, r"the id in row 1 is NoneType"),
    ],
)
def test_bad_rows_are_refused(tmp_path, vectors, ids, bad_row, message):
    values = vectors[:3].copy()
    if bad_row is not None:
        values[bad_row, 2] = np.nan
    tables = [batch(ids[:2], values[:2]), batch(ids[2:], values[2:])]
    write_shards(tables, tmp_path / "out", INFO)
    with pytest.raises(ValueError, match=message):
        read_embeddings(tmp_path / "out")


def test_a_changed_folder_is_refused(tmp_path, vectors):
    out = tmp_path / "out"
    write_shards([batch(["a", "b"], vectors[:2]), batch([1], vectors[2:3])], out, INFO)
    shard = out / "shards" / "part-00001.parquet"
    shard.rename(out / "shards" / "extra.parquet")
    with pytest.raises(ValueError, match=r"shards/extra.parquet not listed in sentsim.json"):
        read_embeddings(out)
    (out / "shards" / "extra.parquet").unlink()
    with pytest.raises(ValueError, match="part-00001.parquet is missing"):
        read_embeddings(out)
    wrong = pa.table({"id": [1], "embedding": pa.array([[0.0] * 4], pa.list_(pa.float64()))})
    pq.write_table(wrong, shard)
    with pytest.raises(ValueError, match=r"'embedding' is list<.*double>; expected fixed_size_list<float>\[4\]"):
        read_embeddings(out)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": 2}, "embeddings format 2 is newer than this sentsim reads"),
        ({"format": None}, "records no embeddings format"),
        ({"count": 3}, "the shards hold 2 rows; sentsim.json records 3"),
        ({"count": 1}, "the shards hold more than the 1 rows"),
        ({"shards": ["../elsewhere.parquet"]}, "'shards' must list files shards/"),
        ({"dim": "4"}, "'dim' is missing or not a valid count"),
    ],
)
def test_a_bad_record_is_refused(tmp_path, vectors, change, message):
    out = tmp_path / "out"
    info = write_shards([batch(["a", "b"], vectors[:2])], out, INFO)
    (out / "sentsim.json").write_text(
        json.dumps({key: value for key, value in (info | change).items() if value is not None})
    )
    with pytest.raises(ValueError, match=message):
        read_embeddings(out)


def test_a_folder_without_a_record(tmp_path):
    with pytest.raises(FileNotFoundError, match="no embeddings in .*: sentsim.json is missing"):
        read_embeddings(tmp_path)
