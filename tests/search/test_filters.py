import sqlite3

import numpy as np
import pandas as pd
import pytest

from .conftest import BOTH_STORES
from .corpus import META, TEXTS


@BOTH_STORES
def test_filters_return_k_matching_hits(index):
    hits = index.search("the cat sleeps", k=4, filter={"topic": "rain"})
    assert len(hits) == 4 and {h.metadata["topic"] for h in hits} == {"rain"}
    hits = index.search("the cat sleeps", k=10, filter={"topic": {"in": ["rain", "music"]}, "n": {"gte": 10}})
    assert sorted(h.metadata["n"] for h in hits) == [10, 11, 12, 13, 14, 15]
    assert {h.id for h in index.search("stocks", k=20, filter={"even": True})} == {f"d{i}" for i in range(0, 16, 2)}
    assert index.search("stocks", k=3, filter={"topic": "nothing"}) == []
    assert index.search(np.array("stocks"), k=3) == index.search("stocks", k=3)  # a 0-d string array

    frame = pd.DataFrame(META)  # values picked from a DataFrame are numpy scalars, arrays or Series
    for numpy_spec, plain_spec in (
        ({"n": {"gte": frame.n.iloc[10]}}, {"n": {"gte": 10}}),
        ({"n": {"lt": np.float32(4.5)}}, {"n": {"lt": 4.5}}),
        ({"even": frame.even.iloc[0]}, {"even": True}),
        ({"topic": {"in": frame.topic.unique()}}, {"topic": {"in": sorted(set(frame.topic))}}),
        ({"topic": {"in": frame.topic[frame.n < 5]}}, {"topic": {"in": ["cat", "market"]}}),
        ({"n": {"in": np.arange(3)}}, {"n": {"in": [0, 1, 2]}}),
    ):
        found = {h.id for h in index.search("stocks", k=20, filter=numpy_spec)}
        assert found == {h.id for h in index.search("stocks", k=20, filter=plain_spec)} != set(), numpy_spec


@pytest.mark.parametrize(
    "spec, expected",
    [
        ({"tags": "cat"}, {"d0", "d2"}),  # a list holding the value, or the value itself
        ({"tags": {"in": ["dog", "pet"]}}, {"d0", "d1"}),
        ({"tags": {"ne": "cat"}}, {"d1", "d3", "d4"}),  # a missing key is not "cat"
        ({"year": {"gte": 2020}}, {"d0", "d3"}),  # the string "2021" is not a number
        ({"year": {"lt": 2020}}, {"d2"}),
        ({"lang": None}, {"d1", "d2"}),  # null or missing
        ({"lang": {"ne": None}}, {"d0", "d3", "d4"}),
        ({"lang": {"ne": "en"}}, {"d1", "d2", "d3"}),
        ({"lang": "en", "tags": {"ne": "cat"}}, {"d4"}),
    ],
)
@BOTH_STORES
def test_filter_semantics_for_lists_nulls_and_types(make_index, encoder, tmp_path, spec, expected):
    metadata = [
        {"tags": ["cat", "pet"], "year": 2021, "lang": "en"},
        {"tags": ["dog"], "year": "2021", "lang": None},
        {"tags": "cat", "year": 2019},
        {"lang": "de", "year": 2023.5},
        {"tags": [], "lang": "en"},
    ]
    with make_index(tmp_path / "index", encoder, backend="flat") as index:
        index.add(TEXTS[:5], ids=[f"d{i}" for i in range(5)], metadata=metadata)
        assert {hit.id for hit in index.search("cats", k=10, filter=spec)} == expected


def test_a_long_in_list_is_bound_as_one_parameter(index):
    database = index.store.database.db
    database.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 100)  # SQLite's limit is 32,766 in many builds
    hits = index.search("the cat sleeps", k=100, filter={"n": {"in": list(range(2, 5000))}})
    assert {h.metadata["n"] for h in hits} == set(range(2, len(TEXTS)))


@BOTH_STORES
def test_filters_on_keys_with_accents_escapes_and_json_path_syntax(make_index, encoder, tmp_path):
    keys = ["café", "emoji😀", "back\\slash", "new\nline", "a.b", "$x", "[0]"]
    index = make_index(tmp_path / "keys", encoder, backend="flat")
    index.add(["one", "two"], ids=["d1", "d2"], metadata=[{key: "yes" for key in keys}, {key: "no" for key in keys}])
    for key in keys:
        assert [h.id for h in index.search("one", k=5, filter={key: "yes"})] == ["d1"], key
        assert [h.id for h in index.search("one", k=5, filter={key: {"ne": "yes"}})] == ["d2"], key
    with pytest.raises(ValueError, match="metadata keys cannot contain a double quote"):
        index.add(["three"], ids=["d3"], metadata=[{'q"uote': 1}])
    index.add(["three"], ids=["d3"], metadata=[{"info": {'the "best"': 1}}])  # nested keys are not filtered on
    with pytest.raises(ValueError, match="filter key 'q\"uote': metadata keys cannot contain a double quote"):
        index.search("one", filter={'q"uote': 1})
    assert len(index) == 3
    index.close()


@BOTH_STORES
def test_bad_filters(index):
    with pytest.raises(ValueError, match="'gte' needs a number"):
        index.search("x", filter={"n": {"gte": "ten"}})
    with pytest.raises(ValueError, match="unknown operator 'like'"):
        index.search("x", filter={"topic": {"like": "ca%"}})
    with pytest.raises(ValueError, match="filter values must be finite, got nan"):
        index.search("x", filter={"n": {"lt": float("nan")}})
    with pytest.raises(ValueError, match="'in' takes no None"):
        index.search("x", filter={"topic": {"in": ["rain", None]}})


@pytest.mark.parametrize(
    "spec, value",
    [
        ({"n": {"gte": 10**30}}, 10**30),
        ({"n": {"lt": -(2**63) - 1}}, -(2**63) - 1),
        ({"n": 2**63}, 2**63),
        ({"n": {"in": [1, 10**30]}}, 10**30),
        ({"n": {"ne": np.uint64(2**64 - 1)}}, 2**64 - 1),
    ],
)
def test_integers_beyond_64_bits_are_refused_in_any_condition(index, spec, value):
    # SQLite raised OverflowError, or compared them as floats (10**30 == 10**30 + 1)
    with pytest.raises(ValueError, match=f"filter 'n': {value} is outside the 64-bit integers"):
        index.search("x", filter=spec)


@BOTH_STORES
def test_the_64_bit_bounds_themselves_are_filters(index):
    assert {h.id for h in index.search("x", k=100, filter={"n": {"lte": 2**63 - 1, "gte": -(2**63)}})} == {
        f"d{i}" for i in range(len(TEXTS))
    }


@BOTH_STORES
def test_a_key_no_document_has_is_a_missing_key(make_index, encoder, tmp_path):
    index = make_index(tmp_path / "keys", encoder, backend="flat")
    assert index.search("cats", filter={"colour": "red"}) == []  # empty index
    index.add(TEXTS[:3], ids=["a", "b", "c"], metadata=[{"colour": "red"}, {}, {}])
    assert {h.id for h in index.search("cats", filter={"colour": "red"})} == {"a"}
    index.delete(["a"])  # the last document with the key
    assert index.search("cats", filter={"colour": "red"}) == []
    assert index.search("cats", filter={"colour": {"gte": 1}}) == []
    assert {h.id for h in index.search("cats", filter={"colour": {"ne": "red"}})} == {"b", "c"}
    assert {h.id for h in index.search("cats", filter={"colour": None})} == {"b", "c"}
    index.close()


@BOTH_STORES
def test_a_bad_filter_is_refused_on_an_empty_index_too(make_index, encoder, tmp_path):
    index = make_index(tmp_path / "empty", encoder, backend="flat")
    with pytest.raises(ValueError, match="'gte' needs a number"):
        index.search("the cat", filter={"year": {"gte": "2020"}})
    index.close()
