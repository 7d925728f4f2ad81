"""The encode pipeline: token budgets, streaming to disk, dtypes, the background tokenizer."""

import copy

import numpy as np
import pytest
import torch

import sentsim.encode.precision
from sentsim.encode.batches import plan_batches
from sentsim.encode.chunks import chunk_bounds
from sentsim.encode.pipeline import prefetched

TEXTS = [("the cat sat on the mat " * (i % 5 + 1)).strip() for i in range(50)] + ["", "a dog"]


def test_token_budget_batches():
    lengths = np.array([3, 30, 7, 7, 12, 1, 30, 2])
    batches = plan_batches(lengths, batch_size=100, max_tokens=32)
    assert sorted(np.concatenate(batches).tolist()) == list(range(8))
    for rows in batches:
        assert len(rows) * lengths[rows].max() <= 32 or len(rows) == 1
    assert [lengths[rows].max() for rows in batches] == sorted((lengths[rows].max() for rows in batches), reverse=True)
    assert [len(b) for b in plan_batches(lengths, batch_size=3, max_tokens=None)] == [3, 3, 2]


def test_max_tokens_gives_the_same_embeddings(tiny_encoder):
    reference = tiny_encoder.encode(TEXTS, batch_size=8)
    np.testing.assert_allclose(tiny_encoder.encode(TEXTS, batch_size=64, max_tokens=64), reference, atol=1e-5)
    with pytest.raises(ValueError, match="max_tokens must be an int >= 1 or None"):
        tiny_encoder.encode(TEXTS, max_tokens=0)


def test_stream_to_a_memory_mapped_file(tiny_encoder, tmp_path, monkeypatch):
    import sentsim.encode.chunks
    import sentsim.encode.pipeline

    monkeypatch.setattr(sentsim.encode.chunks, "CHUNK", 7)  # many chunks
    result = tiny_encoder.encode(TEXTS, output=tmp_path / "out.npy", batch_size=4)
    assert isinstance(result, np.memmap) and result.shape == (len(TEXTS), tiny_encoder.dim)
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), tiny_encoder.encode(TEXTS), atol=1e-5)
    with pytest.raises(ValueError, match=r"must be a \.npy file"):
        tiny_encoder.encode(TEXTS, output=tmp_path / "out.bin")
    with pytest.raises(ValueError, match="does not combine"):
        tiny_encoder.encode("one", output=tmp_path / "one.npy")


def test_first_chunks_ramp_up_and_keep_the_embeddings(tiny_encoder, monkeypatch):
    import sentsim.encode.chunks
    import sentsim.encode.pipeline

    sizes = [stop - start for start, stop in chunk_bounds(40_000)]
    assert sizes == [1024, 2048, 4096, 8192, 16384, 40_000 - 31_744]
    assert list(chunk_bounds(0)) == [] and list(chunk_bounds(5)) == [(0, 5)]
    reference = tiny_encoder.encode(TEXTS, batch_size=4)
    monkeypatch.setattr(sentsim.encode.chunks, "CHUNK", 16)
    monkeypatch.setattr(sentsim.encode.chunks, "FIRST_CHUNK", 3)
    assert [stop - start for start, stop in chunk_bounds(len(TEXTS))] == [3, 6, 12, 16, 15]
    np.testing.assert_allclose(tiny_encoder.encode(TEXTS, batch_size=4), reference, atol=1e-6)


def test_bf16_is_close_to_fp32(tiny_encoder, monkeypatch):
    monkeypatch.setattr(sentsim.encode.precision, "cpu_computes", lambda precision: True)  # emulated where it is not
    fp32 = tiny_encoder.encode(TEXTS, normalize=True, dtype="fp32")
    bf16 = tiny_encoder.encode(TEXTS, normalize=True, dtype="bf16")
    assert bf16.dtype == np.float32
    assert (np.sum(fp32 * bf16, axis=1) > 0.99).all()
    with pytest.raises(ValueError, match="unknown dtype 'int4'"):
        tiny_encoder.encode(TEXTS, dtype="int4")


def test_bf16_on_a_cpu_without_it_runs_fp32_with_a_warning(tiny_encoder, monkeypatch):
    monkeypatch.setattr(sentsim.encode.precision, "cpu_computes", lambda precision: precision.value == "fp32")
    with pytest.warns(RuntimeWarning, match="no native bf16 arithmetic .* running in fp32"):
        bf16 = tiny_encoder.encode(TEXTS, dtype="bf16")
    np.testing.assert_array_equal(bf16, tiny_encoder.encode(TEXTS, dtype="fp32"))


def test_prefetched_keeps_order_and_raises_errors():
    assert list(prefetched(iter(range(100)), depth=2)) == list(range(100))

    def failing():
        yield 1
        raise RuntimeError("tokenizer broke")

    with pytest.raises(RuntimeError, match="tokenizer broke"):
        list(prefetched(failing()))


def test_pad_is_vectorized_and_exact(tiny_encoder):
    tokenizer = tiny_encoder.tower.tokenizer
    ids = [[5, 6, 7], [8], [9, 10]]
    input_ids, mask = tokenizer.pad(ids)
    expected = torch.tensor([[5, 6, 7], [8, tokenizer.pad_id, tokenizer.pad_id], [9, 10, tokenizer.pad_id]])
    assert torch.equal(input_ids, expected)
    assert torch.equal(mask, torch.tensor([[1, 1, 1], [1, 0, 0], [1, 1, 0]]))


@pytest.mark.slow
def test_compiled_tower_gives_the_same_embeddings(tiny_encoder):
    reference = tiny_encoder.encode(TEXTS)
    np.testing.assert_allclose(tiny_encoder.encode(TEXTS, runtime="compile"), reference, atol=1e-4)


def test_several_devices_split_the_chunks_and_keep_the_order(tiny_encoder, tmp_path, monkeypatch):
    import sentsim.encode.chunks
    import sentsim.encode.pipeline

    monkeypatch.setattr(sentsim.encode.chunks, "CHUNK", 5)  # 11 chunks for two devices
    used = []
    run_chunks = sentsim.encode.pipeline.run_chunks

    def spy(chunks, embed, device, *args):
        return run_chunks(((used.append(embed), chunk)[1] for chunk in chunks), embed, device, *args)

    monkeypatch.setattr(sentsim.encode.pipeline, "run_chunks", spy)
    reference = tiny_encoder.encode(TEXTS, batch_size=4)
    used.clear()
    both = tiny_encoder.encode(TEXTS, batch_size=4, device=["cpu", "cpu"])
    np.testing.assert_allclose(both, reference, atol=1e-6)
    assert len(used) == 11 and len(set(used)) == 2  # every chunk once, and both replicas worked
    streamed = tiny_encoder.encode(TEXTS, batch_size=4, device=["cpu", "cpu"], output=tmp_path / "out.npy")
    np.testing.assert_allclose(streamed, reference, atol=1e-6)

    encoder = copy.deepcopy(tiny_encoder)  # the towers are shared by other tests
    encoder.encode(TEXTS, device=["cpu", "cpu"])
    with torch.no_grad():  # the kept replica follows the encoder's new weights
        for parameter in encoder.parameters():
            parameter.add_(0.2 * torch.randn(parameter.shape, generator=torch.Generator().manual_seed(0)))
    changed = encoder.encode(TEXTS)
    assert not np.allclose(changed, reference, atol=1e-3)
    np.testing.assert_allclose(encoder.encode(TEXTS, device=["cpu", "cpu"]), changed, atol=1e-6)
    with pytest.raises(ValueError, match="names no device"):
        tiny_encoder.encode(TEXTS, device=[])
    with pytest.raises(ValueError, match="devices must be of one type"):
        tiny_encoder.encode(TEXTS, device=["cpu", "meta"])
    with pytest.raises(ValueError, match="runtime='onnx' runs on one CPU device"):
        tiny_encoder.encode(TEXTS, device=["cpu", "cpu"], runtime="onnx")


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_every_visible_gpu(tiny_encoder):
    gpus = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    reference = tiny_encoder.encode(TEXTS * 50, device="cuda:0", dtype="fp32")
    np.testing.assert_allclose(tiny_encoder.encode(TEXTS * 50, device=gpus, dtype="fp32"), reference, atol=1e-5)


def test_output_that_is_a_folder_is_refused_before_encoding_and_failures_leave_nothing(
    tiny_encoder, tmp_path, monkeypatch
):
    (tmp_path / "e.npy").mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder; give a .npy file path"):
        tiny_encoder.encode(TEXTS, output=tmp_path / "e.npy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.npy"]

    def broken(*args, **kwargs):
        raise RuntimeError("device lost")

    monkeypatch.setattr("sentsim.encode.pipeline.run_chunks", broken)
    with pytest.raises(RuntimeError, match="device lost"):  # the folders made for the output go again
        tiny_encoder.encode(TEXTS, output=tmp_path / "new" / "deeper" / "out.NPY")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.npy"]


def test_a_failed_encode_leaves_an_existing_output_file_as_it_was(tiny_encoder, tmp_path, monkeypatch):
    out = tmp_path / "out.npy"
    first = np.array(tiny_encoder.encode(TEXTS[:4], output=out))

    def broken(*args, **kwargs):
        raise RuntimeError("device lost")

    monkeypatch.setattr("sentsim.encode.pipeline.run_chunks", broken)
    with pytest.raises(RuntimeError, match="device lost"):
        tiny_encoder.encode(TEXTS, output=out)
    np.testing.assert_array_equal(np.load(out), first)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npy"]  # no staging file left behind
