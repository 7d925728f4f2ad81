"""encode_dataset on a real local Ray runtime: equal to encode, ids intact, a killed actor's work redone."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pyarrow as pa
import pytest

from sentsim import SentenceEncoder
from sentsim.distributed import encode_dataset

from ..toy_task import toy_encoder
from .conftest import toy_texts


def collect(encoded) -> tuple[list, np.ndarray, pa.DataType]:
    """Ids, embeddings and the embedding type of every row of ``encoded``."""
    table = pa.concat_tables(encoded.iter_batches(batch_size=None, batch_format="pyarrow"))
    embedding = table.column("embedding").combine_chunks()
    return table.column("id").to_pylist(), embedding.flatten().to_numpy().reshape(table.num_rows, -1), embedding.type


def test_two_actors_equal_encode_and_keep_the_ids(ray_session, toy_dir):
    """An in-memory encoder (shipped to the actors as its saved files) with a prompt, str ids."""
    encoder = SentenceEncoder.from_pretrained(toy_dir)
    texts = toy_texts(3000)
    ids = [f"doc-{i}" for i in range(len(texts))]
    rows = [{"id": i, "text": t, "other": 1} for i, t in zip(ids, texts, strict=True)]
    ds = ray_session.data.from_items(rows, override_num_blocks=3)  # blocks of 1000 rows, split into tasks of 250
    encoded = encode_dataset(ds, encoder, prompt_name="query", workers=2, cpus_per_worker=0.5, rows_per_task=250)
    got_ids, vectors, kind = collect(encoded)
    assert kind == pa.list_(pa.float32(), 32)  # a fixed-size list, not Ray's tensor extension type
    assert sorted(got_ids) == sorted(ids)  # every id once, in some order
    rows = {doc_id: row for row, doc_id in enumerate(ids)}
    expected = encoder.encode(texts, prompt_name="query")
    np.testing.assert_allclose(vectors, expected[[rows[doc_id] for doc_id in got_ids]], atol=1e-5)
    assert encoder.name_or_path == str(toy_dir.resolve())  # shipping saved it elsewhere, and left this as it was


def test_a_killed_actor_is_restarted_and_its_rows_come_once(ray_session, toy_dir):
    """SIGKILL (as the OOM killer sends) to an actor while it encodes: Ray restarts it and runs its
    tasks again; the output has every row once. The model by folder (each actor checks the
    fingerprint of what it loaded), int ids."""
    texts = toy_texts(4000, seed=1)
    ds = ray_session.data.from_items([{"id": i, "text": t} for i, t in enumerate(texts)], override_num_blocks=2)
    encoded = encode_dataset(ds, toy_dir, workers=2, cpus_per_worker=0.5, rows_per_task=100)
    psutil = pytest.importorskip("psutil")  # Ray's own dependency
    killed = []
    stop = threading.Event()
    killer = threading.Thread(target=kill_a_busy_actor, args=(psutil, killed, stop), daemon=True)
    killer.start()
    try:
        got_ids, vectors, _ = collect(encoded)
    finally:
        stop.set()
        killer.join()
    assert killed, "no actor was seen encoding, so none was killed"
    assert sorted(got_ids) == list(range(len(texts)))  # int ids stay ints; none lost, none twice
    expected = SentenceEncoder.from_pretrained(toy_dir).encode(texts)
    np.testing.assert_allclose(vectors, expected[got_ids], atol=1e-5)


def kill_a_busy_actor(psutil, killed: list[int], stop: threading.Event) -> None:
    """SIGKILL the first encoding actor of this test's Ray runtime (a process of ours titled
    ``ray::MapWorker(MapBatches(Embedder)).submit`` while it runs a task) and record its pid."""
    while not stop.is_set():
        for process in psutil.Process().children(recursive=True):
            try:
                title = " ".join(process.cmdline())
            except psutil.Error:
                continue
            if title.startswith("ray::MapWorker(MapBatches(Embedder)).submit"):
                os.kill(process.pid, signal.SIGKILL)
                killed.append(process.pid)
                return
        time.sleep(0.01)


@pytest.mark.slow
def test_an_actor_that_loads_other_weights_fails_the_job(ray_session, toy_dir, tmp_path):
    """Each actor loads a model given by name itself: where that gives other weights than the
    driver's (another node's files, or, here, the folder changed before the job ran), it says so."""
    folder = tmp_path / "model"
    SentenceEncoder.from_pretrained(toy_dir).save_pretrained(folder)
    ds = ray_session.data.from_items([{"id": "a", "text": "the cat sleeps"}])
    encoded = encode_dataset(ds, folder, cpus_per_worker=0.5)  # the driver loads and fingerprints it now
    toy_encoder(seed=1).save_pretrained(folder, overwrite=True)  # the actors load it when the job runs
    with pytest.raises(Exception, match="loads another model on this Ray node than on the driver"):
        collect(encoded)


def test_a_missing_text_column_is_refused_before_any_actor(ray_session):
    ds = ray_session.data.from_items([{"id": "a", "body": "text"}])
    with pytest.raises(ValueError, match=r"no column 'text' \(texts\); its columns: \['id', 'body'\]"):
        encode_dataset(ds, "no-such-model-is-loaded")  # refused before the model is looked up
    with pytest.raises(ValueError, match=r"no column 'key' \(ids\).*add_column"):
        encode_dataset(ds, "no-such-model-is-loaded", text_column="body", id_column="key")
    numbers = ray_session.data.from_items([{"id": 1.5, "text": "a"}])
    with pytest.raises(ValueError, match="column 'id' holds double; ids must be strings or ints"):
        encode_dataset(numbers, "no-such-model-is-loaded")


def test_workers_that_take_every_cpu_are_refused(ray_session):
    ds = ray_session.data.from_items([{"id": "a", "text": "b"}])
    with pytest.raises(ValueError, match=r"2 worker\(s\) of 1 CPU .* wait forever.* 0\.5"):
        encode_dataset(ds, "no-such-model-is-loaded", workers=2)
