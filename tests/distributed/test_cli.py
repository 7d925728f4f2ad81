"""``sentsim encode --engine ray``: shards readable without Ray, sentsim.json, and the error paths."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sentsim import SentenceEncoder
from sentsim.cli import main
from sentsim.distributed import read_embeddings
from sentsim.fingerprint import model_fingerprint

from .conftest import toy_texts


def test_cli_writes_shards_that_pyarrow_and_pandas_read(ray_session, toy_dir, tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    texts = toy_texts(1000, seed=2)
    source = tmp_path / "corpus.jsonl"
    source.write_text("".join(json.dumps({"key": i, "body": t, "lang": "en"}) + "\n" for i, t in enumerate(texts)))
    out = tmp_path / "out"
    argv = ["encode", "--engine", "ray", "--model", str(toy_dir), "--input", str(source), "--output", str(out)]
    argv += ["--field", "body", "--id-field", "key", "--prompt-name", "query", "--normalize", "--no-progress"]
    assert main([*argv, "--workers", "2", "--cpus-per-worker", "0.5"]) == 0
    assert capsys.readouterr().out == f"{out}\t1000x32\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["corpus.jsonl", "out"]  # no temporaries left

    table = pq.read_table(out / "shards")  # plain pyarrow, no Ray, no sentsim
    assert table.schema.field("embedding").type == pa.list_(pa.float32(), 32)
    assert table.schema.field("id").type == pa.int64() and table.num_rows == 1000
    frame = pd.read_parquet(out / "shards")
    assert sorted(frame["id"]) == list(range(1000)) and frame["embedding"].iloc[0].dtype == np.float32

    encoder = SentenceEncoder.from_pretrained(toy_dir)
    info = json.loads((out / "sentsim.json").read_text())
    assert info["format"] == 1 and info["count"] == 1000 and info["dim"] == 32 and info["normalize"] is True
    assert info["prompt"] == {"name": "query", "text": "it rains "}
    assert info["model"] == model_fingerprint(encoder, str(toy_dir.resolve()))
    _, ids, vectors = read_embeddings(out)
    expected = encoder.encode(texts, prompt_name="query", normalize=True)
    np.testing.assert_allclose(vectors, expected[[int(doc_id) for doc_id in ids]], atol=1e-5)

    assert main(argv) == 2  # the folder exists now
    assert "exists; choose a new folder, or overwrite it" in capsys.readouterr().err


def test_a_parquet_input_without_the_text_column(ray_session, toy_dir, tmp_path, capsys):
    pq.write_table(pa.table({"id": ["a"], "body": ["text"]}), tmp_path / "in.parquet")
    argv = ["encode", "--engine", "ray", "--model", str(toy_dir), "--input", str(tmp_path / "in.parquet")]
    assert main([*argv, "--output", str(tmp_path / "out")]) == 2
    assert "no column 'text' (texts); its columns: ['id', 'body']" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_dead_ray_address_fails_fast_and_names_it(tmp_path, capsys, monkeypatch):
    with socket.socket() as unused:  # a port where nothing listens
        unused.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{unused.getsockname()[1]}"
    (tmp_path / "in.jsonl").write_text('{"id": 1, "text": "a"}\n')
    argv = ["encode", "--engine", "ray", "--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "out")]
    started = time.monotonic()
    assert main([*argv, "--ray-address", address]) == 2
    assert time.monotonic() - started < 10  # ray.init alone waits minutes there
    assert f"no Ray cluster answers at {address} (Connection refused" in capsys.readouterr().err
    monkeypatch.setenv("RAY_ADDRESS", address)  # as ray job submit sets it; auto goes there
    assert main([*argv, "--ray-address", "auto"]) == 2
    assert f"no Ray cluster answers at {address} (RAY_ADDRESS)" in capsys.readouterr().err
    assert main([*argv, "--ray-address", "localhost"]) == 2
    assert "expected auto, HOST:PORT or ray://HOST:PORT" in capsys.readouterr().err


def test_existing_output_and_options_of_the_other_engine(tmp_path, capsys):
    (tmp_path / "in.jsonl").write_text('{"id": 1, "text": "a"}\n')
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    base = ["encode", "--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "mine")]
    cases = [
        (["--engine", "ray"], "exists; choose a new folder"),
        (["--engine", "ray", "--overwrite"], "holds files that are not sentsim embeddings"),
        (["--workers", "2"], "--workers applies to --engine ray"),
        (["--engine", "ray", "--dtype", "bf16"], "--dtype applies to --engine local"),
    ]
    for extra, message in cases:
        assert main([*base, *extra]) == 2
        assert message in capsys.readouterr().err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


@pytest.mark.slow
def test_the_command_starts_its_own_local_ray_runtime(toy_dir, tmp_path):
    """The real command in a fresh process: a local Ray runtime started and stopped by it."""
    pq.write_table(pa.table({"id": [f"d{i}" for i in range(300)], "text": toy_texts(300)}), tmp_path / "in.parquet")
    command = [sys.executable, "-m", "sentsim", "encode", "--engine", "ray", "--model", str(toy_dir), "--no-progress"]
    command += ["--input", str(tmp_path / "in.parquet"), "--output", str(tmp_path / "out")]
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**__import__("os").environ, **env})
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{tmp_path / 'out'}\t300x32\n"
    _, ids, vectors = read_embeddings(tmp_path / "out")
    expected = SentenceEncoder.from_pretrained(toy_dir).encode(toy_texts(300))
    np.testing.assert_allclose(vectors, expected[[int(doc_id[1:]) for doc_id in ids]], atol=1e-5)


@pytest.mark.slow
def test_a_null_text_fails_the_command_naming_the_id(ray_session, toy_dir, tmp_path, capsys):
    (tmp_path / "in.jsonl").write_text('{"id": 1, "text": "the cat"}\n{"id": 2, "text": null}\n')
    argv = ["encode", "--engine", "ray", "--model", str(toy_dir), "--input", str(tmp_path / "in.jsonl")]
    assert main([*argv, "--output", str(tmp_path / "out"), "--cpus-per-worker", "0.5"]) == 1
    assert "a Ray worker failed: ValueError: column 'text' is null at id 2" in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.jsonl"]  # nothing half-written


def test_an_index_built_from_ray_embeddings_equals_one_that_encodes(ray_session, toy_dir, tmp_path, capsys):
    from sentsim.search import DocumentIndex

    texts = toy_texts(300, seed=5)
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": f"d{i}", "text": t, "n": i}) + "\n" for i, t in enumerate(texts)))
    embedded, prompted = tmp_path / "embedded", tmp_path / "prompted"
    encode = ["encode", "--engine", "ray", "--model", str(toy_dir), "--input", str(docs), "--no-progress"]
    assert main([*encode, "--output", str(embedded), "--workers", "1"]) == 0
    assert main([*encode, "--output", str(prompted), "--workers", "1", "--prompt-name", "query"]) == 0
    build = ["index", "build", "--model", str(toy_dir), "--backend", "flat", "--no-progress"]
    first = tmp_path / "first.jsonl"
    first.write_text("".join(docs.read_text().splitlines(keepends=True)[:200]))
    assert main([*build, "--docs", str(docs), "--output", str(tmp_path / "encoded")]) == 0
    assert main([*build, "--docs", str(first), "--output", str(tmp_path / "given"), "--embeddings", str(embedded)]) == 2
    assert "embeddings without a document, e.g. ids ['d200'" in capsys.readouterr().err  # 100 more than documents
    assert main([*build, "--docs", str(docs), "--output", str(tmp_path / "given"), "--embeddings", str(prompted)]) == 2
    assert "was encoded with the prompt 'it rains '; the index encodes documents with ''" in capsys.readouterr().err
    assert not (tmp_path / "given").exists()
    assert main([*build, "--docs", str(docs), "--output", str(tmp_path / "given"), "--embeddings", str(embedded)]) == 0
    with (
        DocumentIndex.open(tmp_path / "encoded") as encoded,
        DocumentIndex.open(tmp_path / "given") as given,
    ):
        assert len(given) == 300 and given.get("d7") == (texts[7], {"n": 7})
        for query in texts[:5]:
            expected = [(hit.id, round(hit.score, 5)) for hit in encoded.search(query, k=10)]
            assert [(hit.id, round(hit.score, 5)) for hit in given.search(query, k=10)] == expected
    add = ["index", "add", str(tmp_path / "given"), "--docs", str(first), "--embeddings", str(embedded)]
    assert main(add) == 2 and "embeddings without a document" in capsys.readouterr().err
