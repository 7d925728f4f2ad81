import io
import json

import numpy as np
import pytest

from sentsim import similarity
from sentsim.search import DocumentIndex

from ..toy_task import toy_encoder
from .corpus import IDS, META, TEXTS


def test_search_tuning_through_the_index_and_cli(encoder, tmp_path, capsys):
    from sentsim.cli import main

    folder, model = tmp_path / "ivf", tmp_path / "model"
    encoder.save_pretrained(model)
    index = DocumentIndex.create(folder, encoder, backend="IVF4,Flat", model_name=str(model))
    index.add(TEXTS, ids=IDS, metadata=META)
    scores = similarity(encoder.encode(["the cat sleeps"]), encoder.encode(TEXTS))[0]
    expected = [IDS[i] for i in np.argsort(-scores, kind="stable")[:5]]
    calls = []
    search = index.store.backend.search
    index.store.backend.search = lambda *args, **kwargs: calls.append(kwargs) or search(*args, **kwargs)
    assert [h.id for h in index.search("the cat sleeps", k=5, nprobe=3)] == expected
    assert calls == [{"nprobe": 3, "ef_search": None}]  # the knob reaches FAISS
    index.store.backend.search = search
    with pytest.raises(ValueError, match="ef_search applies to HNSW"):
        index.search("the cat sleeps", ef_search=64)
    index.close()
    empty = DocumentIndex.create(tmp_path / "empty", encoder)  # no FAISS index yet: values are still checked
    with pytest.raises(ValueError, match="nprobe must be an int between 1 and 2147483647 or None, got 0"):
        empty.search("the cat sleeps", nprobe=0)
    empty.close()
    assert main(["search", str(folder), "the cat sleeps", "-k", "5", "--nprobe", "4", "--json"]) == 0
    assert [h["id"] for h in json.loads(capsys.readouterr().out)["hits"]] == expected
    assert main(["search", str(folder), "the cat sleeps", "--ef-search", "64"]) == 2
    assert "ef_search applies to HNSW indexes" in capsys.readouterr().err


def test_cli_search_lines_escape_tabs_and_newlines_and_id_field_must_exist(tmp_path, capsys):
    from sentsim.cli import main

    model = tmp_path / "model"
    toy_encoder().save_pretrained(model)
    docs = tmp_path / "docs.csv"
    docs.write_bytes('\ufeffid,text\nd1,"the cat\r\nsleeps\there"\nd2,the market fell\n'.encode())  # BOM, as Excel
    build = ["index", "build", "--model", str(model), "--docs", str(docs), "--no-progress"]
    assert main(build + ["--output", str(tmp_path / "bad"), "--id-field", "nope"]) == 2
    assert "no id field 'nope'" in capsys.readouterr().err
    assert main(build + ["--output", str(tmp_path / "idx")]) == 0
    capsys.readouterr()
    assert main(["search", str(tmp_path / "idx"), "the cat", "-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(line.count("\t") == 2 for line in lines[1:])  # one hit a line, three fields
    assert {line.split("\t")[1] for line in lines[1:]} == {"d1", "d2"}  # the BOM is not part of the id column
    assert any(line.endswith("\tthe cat\\r\\nsleeps\\there") for line in lines)


def test_cli_build_search_add_delete(tmp_path, capsys):
    from sentsim.cli import main

    model = tmp_path / "model"
    toy_encoder().save_pretrained(model)
    docs = tmp_path / "docs.jsonl"
    docs.write_text(
        "".join(json.dumps({"id": i, "text": t, **m}) + "\n" for i, t, m in zip(IDS, TEXTS, META, strict=True))
    )
    folder = str(tmp_path / "idx")
    assert (
        main(["index", "build", "--model", str(model), "--docs", str(docs), "--output", folder, "--no-progress"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["documents"] == len(TEXTS)
    assert main(["search", folder, "the cat sleeps", "-k", "3", "--filter", "topic=rain", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["hits"]) == 3 and all(h["metadata"]["topic"] == "rain" for h in result["hits"])
    assert main(["search", folder, "the cat sleeps", "-k", "2", "--where", '{"n": {"lt": 2}}']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "# the cat sleeps" and {line.split("\t")[1] for line in lines[1:]} == {"d0", "d1"}
    assert main(["search", folder, "x", "--where", '{"n": {"gte": 1000000000000000000000000000000}}']) == 2
    assert "filter 'n': 1000000000000000000000000000000 is outside the 64-bit" in capsys.readouterr().err
    assert main(["index", "delete", folder, "--ids", "d0"]) == 0
    assert json.loads(capsys.readouterr().out) == {"index": folder, "deleted": 1, "documents": len(TEXTS) - 1}
    extra = tmp_path / "extra.txt"
    extra.write_text("one more cat text\n")
    assert main(["index", "add", folder, "--docs", str(extra), "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["documents"] == len(TEXTS)
    assert main(["index", "build", "--model", str(model), "--docs", str(docs), "--output", folder]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert (
        main(
            [
                "index",
                "build",
                "--model",
                str(model),
                "--docs",
                str(docs),
                "--output",
                folder,
                "--overwrite",
                "--no-progress",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["documents"] == len(TEXTS)
    assert main(["search", folder, "x", "--filter", "colour=red", "--json"]) == 0  # a key no document has
    assert json.loads(capsys.readouterr().out)["hits"] == []
    assert main(["search", folder, "the cat sleeps", "-k", "2", "--device", "cpu", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["hits"]) == 2
    assert main(["search", folder, "x", "--device", "gpu"]) == 2
    assert "unknown device 'gpu'; expected cpu, cuda, cuda:N or mps" in capsys.readouterr().err
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.md").write_text("years of notes")
    build = ["index", "build", "--model", str(model), "--docs", str(docs), "--no-progress", "--overwrite"]
    assert main(build + ["--output", str(mine)]) == 2  # --overwrite replaces an index, not any folder
    assert "holds files that are not an index; --overwrite replaces an index only" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["notes.md"]


def test_cli_where_must_be_an_object_and_filters_must_not_overlap_it(index, tmp_path, capsys):
    from sentsim.cli import main

    index.close()
    folder = str(tmp_path / "index")
    deep, long = "[" * 100_000 + "]" * 100_000, "1" * 5000  # json: RecursionError; int(): a ValueError
    for where in ("[1]", '"a"', "{bad", deep, '{"n": ' + long + "}"):
        assert main(["search", folder, "x", "--where", where]) == 2
        assert "--where" in capsys.readouterr().err
    for value in (deep, long):
        assert main(["search", folder, "x", "--filter", "n=" + value]) == 2
        assert "a --filter value cannot be read as JSON" in capsys.readouterr().err
    assert main(["search", folder, "x", "--where", '{"n": {"gte": 3}}', "--filter", "n=4"]) == 2
    assert "the key 'n' already has a condition" in capsys.readouterr().err


def test_read_documents_ids_and_csv_types(tmp_path):
    from sentsim.data.documents import read_documents

    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text('{"id": "a", "text": "x"}\n\n{"text": "y"}\n')
    with pytest.raises(ValueError, match=r"mixed.jsonl:3: no id, though other documents have one"):
        read_documents(mixed)
    clash = tmp_path / "clash.jsonl"
    clash.write_text('{"id": 7, "text": "x"}\n{"id": "7", "text": "y"}\n')
    with pytest.raises(ValueError, match=r"clash.jsonl:2: id '7' is the same id as 7 at .*clash.jsonl:1"):
        read_documents(clash)
    for line, kind in (('{"id": {"a": 1}, "text": "x"}', "dict"), ('{"id": [1], "text": "x"}', "list")):
        (tmp_path / "odd.jsonl").write_text('{"id": "a", "text": "x"}\n' + line + "\n")  # stored as its repr
        with pytest.raises(TypeError, match=rf"odd.jsonl:2: id is {kind} .*; ids are str or int"):
            read_documents(tmp_path / "odd.jsonl")
    ok = tmp_path / "ok.jsonl"
    ok.write_text('{"id": 7, "text": "x"}\n{"id": "8", "text": "y"}\n')
    assert read_documents(ok).ids == ["7", "8"]
    table = tmp_path / "docs.csv"
    table.write_text(
        "id,text,year,score,zip,lang,code\n1,a,2021,0.5,02134,en,1.10\n2,b,,1,10001,,2\n3,c,2019,2.5,,de,1E5\n"
    )
    documents = read_documents(table)
    assert documents.ids == ["1", "2", "3"]
    assert documents.metadata == [  # numbers only where every cell reads back as the same text
        {"year": 2021, "score": 0.5, "zip": "02134", "lang": "en", "code": "1.10"},
        {"score": 1.0, "zip": "10001", "code": "2"},
        {"year": 2019, "score": 2.5, "lang": "de", "code": "1E5"},
    ]


def test_cli_documents_on_stdin_as_json_lines_or_text_lines(tmp_path, capsys, monkeypatch):
    from sentsim.cli import main

    model = tmp_path / "model"
    toy_encoder().save_pretrained(model)
    records = "".join(json.dumps({"id": i, "text": t, **m}) + "\n" for i, t, m in zip(IDS, TEXTS, META, strict=True))
    monkeypatch.setattr("sys.stdin", io.StringIO("\n" + records))  # a blank first line
    folder = str(tmp_path / "idx")
    assert main(["index", "build", "--model", str(model), "--docs", "-", "--output", folder, "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["documents"] == len(TEXTS)
    with DocumentIndex.open(folder) as index:
        assert index.get("d1") == (TEXTS[1], META[1])
    monkeypatch.setattr("sys.stdin", io.StringIO("a plain text: {not json}\none more cat text\n"))
    assert main(["index", "add", folder, "--docs", "-", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["documents"] == len(TEXTS) + 2
    pretty = json.dumps([{"id": "p", "text": "a cat"}], indent=2)  # an array, pretty-printed: not JSON Lines
    monkeypatch.setattr("sys.stdin", io.StringIO(pretty))
    assert main(["index", "add", folder, "--docs", "-", "--no-progress"]) == 2
    assert "starts like JSON but is not JSON Lines (one object a line); e.g. pipe through `jq -c" in (
        capsys.readouterr().err
    )
    monkeypatch.setattr("sys.stdin", io.StringIO('{"id": "x", "text": "ok"}\n{"id": "y"}\n'))
    assert main(["index", "add", folder, "--docs", "-", "--no-progress"]) == 2
    assert "standard input" in capsys.readouterr().err


def test_cli_compact_drops_tombstones(tmp_path, capsys):
    from sentsim.cli import main

    model = tmp_path / "model"
    toy_encoder().save_pretrained(model)
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in zip(IDS, TEXTS, strict=True)))
    folder = str(tmp_path / "idx")
    build = ["index", "build", "--model", str(model), "--docs", str(docs), "--output", folder, "--no-progress"]
    assert main([*build, "--backend", "hnsw"]) == 0
    assert main(["index", "delete", folder, "--ids", *IDS[:3]]) == 0
    with DocumentIndex.open(folder) as index:
        assert len(index.store.backend.tombstones) == 3  # HNSW cannot remove: deleted vectors are masked
    capsys.readouterr()
    assert main(["index", "compact", folder]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["documents"], summary["chunks"]) == (len(TEXTS) - 3, len(TEXTS) - 3)
    with DocumentIndex.open(folder) as index:
        assert not index.store.backend.tombstones and {h.id for h in index.search("cat", k=50)} == set(IDS[3:])


def test_cli_keyword_and_hybrid_search(tmp_path, capsys):
    from sentsim.cli import main

    model = tmp_path / "model"
    toy_encoder().save_pretrained(model)
    docs = tmp_path / "docs.jsonl"
    rows = [*zip(IDS, TEXTS, META, strict=True), ("code", "part SKU-12345 in stock", {"topic": "part"})]
    docs.write_text("".join(json.dumps({"id": i, "text": t, **m}) + "\n" for i, t, m in rows))
    folder = str(tmp_path / "idx")
    build = ["index", "build", "--model", str(model), "--docs", str(docs), "--no-progress", "--output", folder]
    assert main([*build, "--keyword-tokenizer", "trigram"]) == 0
    capsys.readouterr()
    assert json.loads((tmp_path / "idx" / "manifest.json").read_text())["keywords"] == {"tokenizer": "trigram"}
    assert main(["search", folder, "2345", "--mode", "keyword", "--json"]) == 0  # a substring: trigram
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert [h["id"] for h in hits] == ["code"] and hits[0]["keyword_rank"] == 1 and hits[0]["dense_rank"] is None
    assert main(["search", folder, "the cat sleeps", "-k", "3", "--mode", "hybrid", "--weight", "keyword=0.5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and all(line.count("\t") == 4 for line in lines[1:])  # score, id, text, two ranks
    assert lines[1].split("\t")[1] == "d0" and lines[1].endswith("\tdense:1\tkeyword:1")
    assert main(["search", folder, "cat", "--mode", "hybrid", "--weight", "keyword"]) == 2
    assert "--weight needs ARM=NUMBER (dense=1 or keyword=0.5), got 'keyword'" in capsys.readouterr().err
    assert main(["search", folder, "cat", "--weight", "keyword=2"]) == 2
    assert "weights weigh the two arms of mode='hybrid'; this search is mode='dense'" in capsys.readouterr().err
