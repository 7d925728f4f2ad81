"""LoRA adapters: only the adapter trains; saved apart from its base, reloaded onto that base only,
merged into a plain folder that sentence-transformers loads; a resumed run equals an uninterrupted one."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sentsim import SentenceEncoder
from sentsim.lora import LoraSettings, add_lora, merge_lora, trainable_parameters
from sentsim.storage.adapter_folder import load_adapter
from sentsim.training import TrainingConfig, load_training_data, make_loss, train

from .toy_task import columns, toy_encoder, toy_pairs

pytest.importorskip("peft")

TEXTS = toy_pairs().sentences1
CONFIG = TrainingConfig(epochs=2, batch_size=8, learning_rate=1e-2, warmup_ratio=0.0, show_progress=False)


class Interrupted(BaseException):  # past the CLI's handler of errors
    pass


@pytest.fixture
def base(tmp_path):
    """A tiny model saved in a folder and loaded from it, so an adapter can name its base."""
    toy_encoder(dropout=0.0).save_pretrained(tmp_path / "base")
    return tmp_path / "base"


def tuned(base, rank: int = 4) -> SentenceEncoder:
    encoder = SentenceEncoder.from_pretrained(base, device="cpu")
    add_lora(encoder, LoraSettings(rank=rank))
    train(encoder, load_training_data(columns(toy_pairs())), make_loss("cosent"), CONFIG)
    return encoder.eval()


def test_only_the_adapter_trains_and_the_round_trip_keeps_the_embeddings(base, tmp_path):
    encoder = SentenceEncoder.from_pretrained(base, device="cpu")
    frozen = encoder.encode(TEXTS)
    add_lora(encoder, LoraSettings(rank=4, targets=("query", "value")))
    np.testing.assert_array_equal(encoder.encode(TEXTS), frozen)  # B starts at zero
    trainable, total = trainable_parameters(encoder)
    assert trainable == 2 * 2 * 4 * (32 + 32)  # 2 layers x (query, value) x rank 4 x (A: 32 in + B: 32 out)
    before = {name: parameter.detach().clone() for name, parameter in encoder.named_parameters()}
    train(encoder, load_training_data(columns(toy_pairs())), make_loss("cosent"), CONFIG)
    changed = {name for name, parameter in encoder.named_parameters() if not torch.equal(parameter, before[name])}
    assert changed == {name for name in before if ".lora_" in name} and len(changed) == 8
    encoder.eval()
    trained = encoder.encode(TEXTS)
    assert np.abs(trained - frozen).max() > 1e-3  # the adapter moved the embeddings
    encoder.save_pretrained(tmp_path / "adapter")
    files = {path.name for path in (tmp_path / "adapter").iterdir()}
    assert files == {"adapter_model.safetensors", "adapter_config.json", "adapter_sentsim.json"}
    record = json.loads((tmp_path / "adapter" / "adapter_sentsim.json").read_text())
    assert record["base"] == str(base.resolve()) and record["lora"]["rank"] == 4 and record["format"] == 1
    loaded = SentenceEncoder.from_pretrained(tmp_path / "adapter", device="cpu")
    np.testing.assert_array_equal(loaded.encode(TEXTS), trained)
    assert loaded.adapter.settings == encoder.adapter.settings


def test_peft_reads_the_adapter_folder(base, tmp_path):
    from peft import PeftModel
    from transformers import AutoModel

    encoder = tuned(base)
    encoder.save_pretrained(tmp_path / "adapter")
    model = PeftModel.from_pretrained(AutoModel.from_pretrained(base), tmp_path / "adapter").eval()
    batch = encoder.tokenize(TEXTS)
    with torch.no_grad():
        theirs = model(**batch).last_hidden_state
        ours = encoder.tower(batch["input_ids"], batch["attention_mask"])
    torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=1e-5)


def test_merged_equals_unmerged_and_sentence_transformers_loads_it(base, tmp_path):
    from sentence_transformers import SentenceTransformer

    from sentsim.cli import main

    encoder = tuned(base)
    adapted = encoder.encode(TEXTS)
    merged = merge_lora(encoder)
    assert merged.adapter is None and encoder.adapter is not None  # the original keeps its adapter
    assert not any(".lora_" in name for name in merged.state_dict())
    np.testing.assert_allclose(merged.encode(TEXTS), adapted, atol=1e-5)
    encoder.save_pretrained(tmp_path / "merged", merge=True)
    st = SentenceTransformer(str(tmp_path / "merged"), device="cpu")
    np.testing.assert_allclose(st.encode(TEXTS), adapted, atol=1e-5)
    encoder.save_pretrained(tmp_path / "adapter")
    assert main(["export", "merged", str(tmp_path / "adapter"), str(tmp_path / "exported")]) == 0
    exported = SentenceEncoder.from_pretrained(tmp_path / "exported", device="cpu")
    assert exported.adapter is None
    np.testing.assert_allclose(exported.encode(TEXTS), adapted, atol=1e-5)
    assert main(["export", "merged", str(tmp_path / "exported"), str(tmp_path / "again")]) == 2


def test_an_adapter_for_another_base_is_refused(base, tmp_path):
    encoder = tuned(base)
    encoder.save_pretrained(tmp_path / "adapter")
    other = toy_encoder(dropout=0.0, seed=7)
    with pytest.raises(ValueError, match=r"is an adapter for another base model .*differs in weights_sha256"):
        load_adapter(other, tmp_path / "adapter")
    toy_encoder(dropout=0.0, seed=7).save_pretrained(base, overwrite=True)  # another model where the base was
    with pytest.raises(ValueError, match="adapter for another base model"):
        SentenceEncoder.from_pretrained(tmp_path / "adapter")
    with pytest.raises(ValueError, match="already has a LoRA adapter"):
        add_lora(encoder)


def test_bad_settings_are_refused_before_any_change(base, tiny_lstm):
    encoder = SentenceEncoder.from_pretrained(base, device="cpu")
    for settings, message in [
        ({"rank": 0}, "LoRA rank must be"),
        ({"rank": 4, "alpha": -1}, "LoRA alpha"),
        ({"rank": 4, "dropout": 1.5}, r"LoRA dropout must be a number in \[0, 1\)"),
        ({"rank": 4, "targets": ()}, "LoRA targets must be module names"),
    ]:
        with pytest.raises(ValueError, match=message):
            LoraSettings(**settings)
    with pytest.raises(
        ValueError, match=r"unknown LoRA target module\(s\) 'qkv': .*linear layers: dense, key, query, value"
    ):
        add_lora(encoder, LoraSettings(rank=4, targets=("query", "qkv")))
    assert encoder.adapter is None and trainable_parameters(encoder)[0] == trainable_parameters(encoder)[1]
    with pytest.raises(TypeError, match="LoRA adapters go on a transformer tower"):
        add_lora(SentenceEncoder(tiny_lstm))


def test_cli_trains_an_adapter_and_resume_equals_uninterrupted(base, tmp_path, capsys, monkeypatch):
    from sentsim.cli import main
    from sentsim.cli import train as train_cli

    data = tmp_path / "pairs.jsonl"
    pairs = toy_pairs()
    data.write_text(
        "".join(
            json.dumps({"sentence1": a, "sentence2": b, "score": float(s)}) + "\n"
            for a, b, s in zip(pairs.sentences1, pairs.sentences2, pairs.scores, strict=True)
        )
    )
    command = ["train", "--model", str(base), "--train", str(data), "--loss", "cosent", "--epochs", "2"]
    command += ["--batch-size", "8", "--lr", "1e-2", "--checkpoint-steps", "2", "--lora-rank", "4", "--no-progress"]
    command += ["--lora-targets", "query,key,value", "--lora-alpha", "16"]
    assert main([*command, "--output", str(tmp_path / "straight")]) == 0
    capsys.readouterr()
    straight = SentenceEncoder.from_pretrained(tmp_path / "straight" / "final", device="cpu")
    assert straight.adapter.settings == LoraSettings(rank=4, alpha=16, targets=("query", "key", "value"))

    real_train = train_cli.train

    def crashing(*args, **kwargs):
        def crash(step, loss):
            if step == 3:  # after the checkpoint of step 2
                raise Interrupted

        return real_train(*args, **kwargs, on_step=crash)

    monkeypatch.setattr(train_cli, "train", crashing)
    with pytest.raises(Interrupted):
        main([*command, "--output", str(tmp_path / "run")])
    monkeypatch.setattr(train_cli, "train", real_train)
    torch.manual_seed(123)  # a fresh process: another RNG state (the new adapter's A differs until loaded)
    assert main([*command, "--resume", str(tmp_path / "run")]) == 0
    resumed = SentenceEncoder.from_pretrained(tmp_path / "run" / "final", device="cpu")
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)
    capsys.readouterr()
    for extra, message in [
        (["--lora-rank", "0"], "--lora-rank must be >= 1"),
        (["--lora-targets", "query,qkv"], "unknown LoRA target module(s) 'qkv'"),
    ]:
        assert main([*command, *extra, "--output", str(tmp_path / "bad")]) == 2
        assert message in capsys.readouterr().err
    plain = [arg for arg in command if arg not in ("--lora-rank", "4")]
    assert main([*plain, "--output", str(tmp_path / "bad")]) == 2
    assert "--lora-alpha, --lora-targets shape a LoRA adapter: add --lora-rank" in capsys.readouterr().err
    assert not (tmp_path / "bad" / "checkpoint").exists()
