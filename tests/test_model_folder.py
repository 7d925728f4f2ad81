import json
import shutil

import numpy as np
import pytest
import torch

import sentsim
from sentsim import DenseConfig, ModelNotFoundError, SentenceEncoder, WeightsError

TEXTS = ["The cat sat on the mat.", "A dog is running in the park.", "", "Rain is expected over the weekend."]


@pytest.fixture
def rich_encoder(tiny_transformer):
    """Transformer tower + cls pooling + dense + normalize: every module of the saved layout."""
    torch.manual_seed(1)
    return SentenceEncoder(
        tiny_transformer, pooling="cls", normalize=True, dense=DenseConfig(in_features=32, out_features=8)
    )


def test_transformer_round_trip(rich_encoder, tmp_path):
    rich_encoder.save_pretrained(tmp_path / "model")
    loaded = SentenceEncoder.from_pretrained(tmp_path / "model", device="cpu")
    assert (loaded.pooling.value, loaded.normalize, loaded.dim, loaded.max_seq_length) == ("cls", True, 8, 32)
    np.testing.assert_allclose(loaded.encode(TEXTS), rich_encoder.encode(TEXTS), atol=1e-6)


def test_saved_layout(rich_encoder, tmp_path):
    folder = tmp_path / "model"
    rich_encoder.save_pretrained(folder)
    modules = json.loads((folder / "modules.json").read_text())
    assert [(m["path"], m["type"].rsplit(".", 1)[-1]) for m in modules] == [
        ("", "Transformer"),
        ("1_Pooling", "Pooling"),
        ("2_Dense", "Dense"),
        ("3_Normalize", "Normalize"),
    ]
    pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_cls_token"] and not pooling["pooling_mode_mean_tokens"]
    assert json.loads((folder / "sentence_bert_config.json").read_text()) == {
        "max_seq_length": 32,
        "do_lower_case": False,
    }
    config = json.loads((folder / "config_sentsim.json").read_text())
    assert config["sentsim_version"] == sentsim.__version__ and config["tower"] == "transformer"
    assert (folder / "model.safetensors").exists() and (folder / "2_Dense" / "model.safetensors").exists()
    assert not list(folder.rglob("*.bin")) and not list(tmp_path.glob(".*tmp"))


def test_lstm_round_trip(tiny_lstm, tmp_path):
    encoder = SentenceEncoder(
        tiny_lstm, pooling="max", dense=DenseConfig(in_features=24, out_features=5, activation="relu")
    )
    encoder.save_pretrained(tmp_path / "lstm")
    loaded = SentenceEncoder.from_pretrained(tmp_path / "lstm")
    assert loaded.tower.kind == "lstm" and loaded.tower.config == tiny_lstm.config
    np.testing.assert_allclose(loaded.encode(TEXTS), encoder.encode(TEXTS), atol=1e-6)


def test_plain_hugging_face_folder_uses_mean_pooling(tiny_transformer, tmp_path):
    tiny_transformer.save(tmp_path)  # config.json + model.safetensors + tokenizer, nothing else
    loaded = SentenceEncoder.from_pretrained(tmp_path)
    assert loaded.pooling.value == "mean" and not loaded.normalize
    np.testing.assert_allclose(loaded.encode(TEXTS), SentenceEncoder(tiny_transformer).encode(TEXTS), atol=1e-6)


def test_a_config_asking_for_a_hub_attention_kernel_gets_sdpa(rich_encoder, tmp_path, caplog):
    rich_encoder.save_pretrained(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    config["attn_implementation"] = "kernels-community/flash-attn"  # would download and run compiled code
    (tmp_path / "model" / "config.json").write_text(json.dumps(config))
    loaded = SentenceEncoder.from_pretrained(tmp_path / "model")
    assert loaded.tower.model.config._attn_implementation == "sdpa"
    assert "asks for the attention kernel kernels-community/flash-attn; using sdpa instead" in caplog.text
    np.testing.assert_allclose(loaded.encode(["a cat"]), rich_encoder.encode(["a cat"]), atol=1e-5)


def test_failed_save_keeps_the_existing_folder(rich_encoder, tiny_lstm, tmp_path, monkeypatch):
    folder = tmp_path / "model"
    rich_encoder.save_pretrained(folder)
    before = rich_encoder.encode(TEXTS)
    encoder = SentenceEncoder(tiny_lstm)

    def crash(_folder):
        (_folder / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(tiny_lstm, "save", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        encoder.save_pretrained(folder)
    np.testing.assert_allclose(SentenceEncoder.from_pretrained(folder).encode(TEXTS), before, atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_save_replaces_an_existing_folder(rich_encoder, tiny_lstm, tmp_path):
    folder = tmp_path / "model"
    rich_encoder.save_pretrained(folder)
    SentenceEncoder(tiny_lstm).save_pretrained(folder)
    assert SentenceEncoder.from_pretrained(folder).tower.kind == "lstm"
    assert not (folder / "modules.json").exists()


def test_save_refuses_a_folder_of_other_files(rich_encoder, tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    with pytest.raises(FileExistsError, match="holds files that are not a saved model"):
        rich_encoder.save_pretrained(folder)
    assert [p.name for p in folder.iterdir()] == ["thesis.tex"]
    with pytest.raises(TypeError, match="overwrite must be True or False"):
        rich_encoder.save_pretrained(folder, overwrite="yes")
    rich_encoder.save_pretrained(folder, overwrite=True)  # asked for: replaced
    assert not (folder / "thesis.tex").exists() and SentenceEncoder.from_pretrained(folder).dim == rich_encoder.dim
    empty = tmp_path / "empty"
    empty.mkdir()
    rich_encoder.save_pretrained(empty)  # an empty folder is fine


def test_folder_without_weights(rich_encoder, tmp_path):
    rich_encoder.save_pretrained(tmp_path / "model")
    (tmp_path / "model" / "model.safetensors").unlink()
    with pytest.raises(WeightsError, match=r"no weights in .*model: expected model.safetensors"):
        SentenceEncoder.from_pretrained(tmp_path / "model")


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupted_safetensors_names_the_file(rich_encoder, tmp_path, damage):
    rich_encoder.save_pretrained(tmp_path / "model")
    weights = tmp_path / "model" / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00\x01garbage" * 50)
    with pytest.raises(WeightsError, match=r"corrupted or truncated safetensors file .*model.safetensors"):
        SentenceEncoder.from_pretrained(tmp_path / "model")


def test_malformed_configs_and_pickled_dense_weights_name_the_file(rich_encoder, tmp_path):
    rich_encoder.save_pretrained(tmp_path / "model")
    config = tmp_path / "model" / "config_sentsim.json"
    saved = json.loads(config.read_text())
    config.write_text("[]")
    with pytest.raises(ValueError, match=r"config_sentsim.json: expected a JSON object, got list"):
        SentenceEncoder.from_pretrained(tmp_path / "model")
    assert saved["format"] == 1
    for written, message in (
        (2, "model format 2 is newer than this sentsim reads \\(1\\)"),
        ("1", "model format '1' is unknown"),
    ):
        config.write_text(json.dumps(saved | {"format": written}))
        with pytest.raises(ValueError, match=r"config_sentsim.json: " + message):
            SentenceEncoder.from_pretrained(tmp_path / "model")
    config.write_text(json.dumps({key: value for key, value in saved.items() if key != "format"}))
    with pytest.raises(ValueError, match=r"config_sentsim.json records no model format; this sentsim reads format 1"):
        SentenceEncoder.from_pretrained(tmp_path / "model")
    config.write_text(json.dumps({key: value for key, value in saved.items() if key != "include_prompt"}))
    with pytest.raises(ValueError, match=r"config_sentsim.json lacks 'include_prompt'"):
        SentenceEncoder.from_pretrained(tmp_path / "model")
    config.write_text(json.dumps(saved))
    dense = tmp_path / "model" / "2_Dense"
    (dense / "model.safetensors").rename(dense / "pytorch_model.bin")
    with pytest.raises(WeightsError, match=r"2_Dense holds only pickled weights \(pytorch_model.bin\)"):
        SentenceEncoder.from_pretrained(tmp_path / "model")


def test_corrupted_lstm_weights_name_the_file(tiny_lstm, tmp_path):
    SentenceEncoder(tiny_lstm).save_pretrained(tmp_path / "lstm")
    weights = tmp_path / "lstm" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(WeightsError, match=r"lstm/model.safetensors"):
        SentenceEncoder.from_pretrained(tmp_path / "lstm")


def test_pickled_weights_are_never_loaded(rich_encoder, tmp_path, monkeypatch):
    rich_encoder.save_pretrained(tmp_path / "model")
    (tmp_path / "model" / "model.safetensors").rename(tmp_path / "model" / "pytorch_model.bin")

    def forbidden(*args, **kwargs):
        raise AssertionError("torch.load must not be called")

    monkeypatch.setattr(torch, "load", forbidden)
    with pytest.raises(
        WeightsError, match=r"only pickled weights \(pytorch_model.bin\); sentsim loads safetensors only"
    ):
        SentenceEncoder.from_pretrained(tmp_path / "model")


def test_not_a_model_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(WeightsError, match="is not a model folder"):
        SentenceEncoder.from_pretrained(tmp_path)


def test_unknown_name_lists_what_was_tried(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("sentsim.storage.hub._download", _offline)
    with pytest.raises(ModelNotFoundError) as error:
        SentenceEncoder.from_pretrained("no-such-model-xyz")
    message = str(error.value)
    assert "local folder" in message
    assert "Hugging Face Hub 'no-such-model-xyz'" in message
    assert "Hugging Face Hub 'sentence-transformers/no-such-model-xyz'" in message
    with pytest.raises(ModelNotFoundError, match="local folder"):
        SentenceEncoder.from_pretrained(str(tmp_path / "missing" / "folder"))


def test_embedded_name_without_its_package_is_reported(monkeypatch):
    monkeypatch.setitem(sentsim.storage.hub.EMBEDDED_MODELS, "all-MiniLM-L6-v2", "not_installed_package_xyz")
    monkeypatch.setattr("sentsim.storage.hub._download", _offline)
    with pytest.raises(ModelNotFoundError, match="package not-installed-package-xyz is not installed"):
        SentenceEncoder.from_pretrained("all-MiniLM-L6-v2")


def _offline(repo_id, **kwargs):
    raise OSError(f"offline: cannot reach the Hub for {repo_id}")


def test_unsupported_sentence_transformers_pooling(rich_encoder, tmp_path):
    rich_encoder.save_pretrained(tmp_path / "model")
    (tmp_path / "model" / "config_sentsim.json").unlink()
    (tmp_path / "model" / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode": "weightedmean"}))
    with pytest.raises(ValueError, match=r"pooling \['weightedmean'\] is not supported.*mean, cls, max"):
        SentenceEncoder.from_pretrained(tmp_path / "model")


def test_unsupported_sentence_transformers_module(rich_encoder, tmp_path):
    rich_encoder.save_pretrained(tmp_path / "model")
    (tmp_path / "model" / "config_sentsim.json").unlink()
    modules = json.loads((tmp_path / "model" / "modules.json").read_text())
    modules.append({"idx": 4, "name": "4", "path": "4_CNN", "type": "sentence_transformers.models.CNN"})
    (tmp_path / "model" / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ValueError, match="module 'sentence_transformers.models.CNN' is not supported"):
        SentenceEncoder.from_pretrained(tmp_path / "model")


def test_module_paths_and_weight_shards_must_stay_in_the_model_folder(rich_encoder, tmp_path):
    rich_encoder.save_pretrained(tmp_path / "other")
    folder = tmp_path / "model"
    rich_encoder.save_pretrained(folder)
    (folder / "config_sentsim.json").unlink()
    modules = json.loads((folder / "modules.json").read_text())
    for outside in ("../other", str(tmp_path / "other")):
        (folder / "modules.json").write_text(json.dumps([{**modules[0], "path": outside}, *modules[1:]]))
        with pytest.raises(ValueError, match="module path .* is not inside"):
            SentenceEncoder.from_pretrained(folder)
    (folder / "modules.json").write_text(json.dumps(modules))
    index = {"metadata": {}, "weight_map": {"embeddings.word_embeddings.weight": "../other/model.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(WeightsError, match="names the shard '../other/model.safetensors', which is not a file of"):
        SentenceEncoder.from_pretrained(folder)
    (folder / "model.safetensors.index.json").unlink()
    assert SentenceEncoder.from_pretrained(folder).dim == rich_encoder.dim


class TestSentenceTransformersInterop:
    st = pytest.importorskip("sentence_transformers")

    def test_sentence_transformers_loads_what_sentsim_saves(self, rich_encoder, tmp_path):
        rich_encoder.save_pretrained(tmp_path / "model")
        model = self.st.SentenceTransformer(str(tmp_path / "model"), device="cpu")
        np.testing.assert_allclose(model.encode(TEXTS), rich_encoder.encode(TEXTS), atol=1e-5)

    def test_sentsim_loads_what_sentence_transformers_saves(self, rich_encoder, tmp_path):
        rich_encoder.save_pretrained(tmp_path / "model")
        model = self.st.SentenceTransformer(str(tmp_path / "model"), device="cpu")
        model.save(str(tmp_path / "st"))  # sentence-transformers' own, current layout
        assert not (tmp_path / "st" / "config_sentsim.json").exists()
        loaded = SentenceEncoder.from_pretrained(tmp_path / "st")
        assert (loaded.pooling.value, loaded.normalize, loaded.dim) == ("cls", True, 8)
        np.testing.assert_allclose(loaded.encode(TEXTS), model.encode(TEXTS), atol=1e-5)
        shutil.rmtree(tmp_path / "st")
