import json
import os

import pytest
import torch

from sentsim.search import DocumentIndex, IndexCorruptedError, ModelMismatchError

from ..toy_task import toy_encoder
from .conftest import BOTH_STORES
from .corpus import IDS, TEXTS


@BOTH_STORES
def test_save_open_round_trip_and_model_mismatch(make_index, index, tmp_path):
    before = [h.id for h in index.search("the market fell", k=5)]
    index.close()
    reopened = DocumentIndex.open(tmp_path / "index", toy_encoder())
    assert [h.id for h in reopened.search("the market fell", k=5)] == before and len(reopened) == len(TEXTS)
    with pytest.raises(ModelMismatchError, match="differs in weights_sha256"):
        DocumentIndex.open(tmp_path / "index", toy_encoder(seed=5))
    with pytest.raises(FileExistsError, match="already holds an index"):
        make_index(tmp_path / "index", toy_encoder())
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "notes.txt").write_text("mine")  # a later build --overwrite would delete it
    with pytest.raises(FileExistsError, match="holds files that are not an index"):
        make_index(tmp_path / "notes", toy_encoder())
    assert os.listdir(tmp_path / "notes") == ["notes.txt"]


def test_manifest_records_the_model(index, tmp_path):
    manifest = json.loads((tmp_path / "index" / "manifest.json").read_text())
    assert manifest["model"]["dim"] == 32 and manifest["metric"] == "cosine" and manifest["factory"] == "Flat"
    assert len(manifest["model"]["weights_sha256"]) == 64


def test_search_options_are_checked_against_the_index_another_handle_built(tmp_path):
    first = DocumentIndex.create(tmp_path / "hnsw", toy_encoder(), backend="hnsw")  # empty: no FAISS index yet
    second = DocumentIndex.open(tmp_path / "hnsw", toy_encoder())
    first.add(TEXTS, ids=IDS)  # builds the HNSW index
    with pytest.raises(ValueError, match="nprobe applies to IVF indexes; this index is 'HNSW32"):
        second.search(TEXTS[0], k=2, nprobe=4)
    assert second.search(TEXTS[0], k=1, ef_search=16)[0].id == IDS[0]
    first.close()
    second.close()


def test_a_different_tokenizer_is_a_different_model(index, tmp_path):
    from tokenizers import normalizers

    index.close()
    other = toy_encoder()
    other.tower.tokenizer.tokenizer.normalizer = normalizers.Lowercase()  # same weights
    with pytest.raises(ModelMismatchError, match="differs in tokenizer_sha256"):
        DocumentIndex.open(tmp_path / "index", other)
    manifest_path = tmp_path / "index" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["model"]["tokenizer_sha256"]  # a field the manifest lacks is a difference too
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ModelMismatchError, match="differs in tokenizer_sha256"):
        DocumentIndex.open(tmp_path / "index", toy_encoder())


def test_open_applies_the_recorded_max_seq_length_and_absolute_model_path(tmp_path, monkeypatch, capsys):
    from sentsim.cli import main

    toy_encoder().save_pretrained(tmp_path / "model")
    (tmp_path / "docs.txt").write_text("\n".join(TEXTS) + "\n")
    monkeypatch.chdir(tmp_path)
    build = ["index", "build", "--model", "model", "--docs", "docs.txt", "--output", "idx", "--no-progress"]
    assert main([*build, "--max-seq-length", "8"]) == 0
    capsys.readouterr()
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["model"]["name"] == str((tmp_path / "model").resolve()) and manifest["model"]["max_seq_length"] == 8
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["search", "../idx", "the cat sleeps", "-k", "2", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["hits"]) == 2
    with DocumentIndex.open("../idx") as index:
        assert index.encoder.max_seq_length == 8 and len(index.search("a kitten naps", k=3)) == 3


def test_a_model_that_reads_fewer_tokens_is_another_model_not_a_length_error(tmp_path, capsys):
    from transformers import BertConfig

    from sentsim import SentenceEncoder
    from sentsim.cli import main
    from sentsim.towers.transformer import TransformerTower

    from ..toy_task import toy_tokenizer

    tokenizer = toy_tokenizer()
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=8,  # reads 8 tokens; the index's model read 16
    )
    SentenceEncoder(TransformerTower.from_config(config, tokenizer, max_seq_length=8)).save_pretrained(
        tmp_path / "short"
    )
    toy_encoder().save_pretrained(tmp_path / "model")
    DocumentIndex.create(tmp_path / "idx", str(tmp_path / "model")).close()
    assert json.loads((tmp_path / "idx" / "manifest.json").read_text())["model"]["max_seq_length"] == 16
    with pytest.raises(ModelMismatchError, match="differs in weights_sha256"):  # was: max_seq_length must be <= 8
        DocumentIndex.open(tmp_path / "idx", str(tmp_path / "short"))
    assert main(["search", str(tmp_path / "idx"), "a cat", "--model", str(tmp_path / "short")]) == 2
    assert "differs in weights_sha256" in capsys.readouterr().err


def test_an_index_whose_model_moved_opens_with_that_model_given(tmp_path, capsys):
    from sentsim.cli import main

    model, moved = tmp_path / "model", tmp_path / "moved-model"
    toy_encoder().save_pretrained(model)
    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(TEXTS) + "\n")
    folder = str(tmp_path / "idx")
    build = ["index", "build", "--model", str(model), "--docs", str(docs), "--output", folder, "--no-progress"]
    assert main(build) == 0
    assert main(["search", folder, "the cat sleeps", "-k", "2", "--json"]) == 0
    before = capsys.readouterr().out.splitlines()[-1]
    model.rename(moved)
    assert main(["search", folder, "the cat sleeps", "-k", "2"]) == 2
    assert "was built with this model; if its folder moved, pass the model" in capsys.readouterr().err
    assert main(["search", folder, "the cat", "--model", str(tmp_path / "typo")]) == 2  # the given model is missing
    assert "was built with this model" not in capsys.readouterr().err
    assert main(["search", folder, "the cat sleeps", "-k", "2", "--json", "--model", str(moved)]) == 0
    assert capsys.readouterr().out.strip() == before  # the same hits
    first_hit = json.loads(before)["hits"][0]["id"]
    assert main(["index", "delete", folder, "--ids", first_hit, "--model", str(moved)]) == 0
    assert json.loads(capsys.readouterr().out)["deleted"] == 1
    other = tmp_path / "other-model"
    toy_encoder(seed=1).save_pretrained(other)
    assert main(["search", folder, "the cat", "--model", str(other)]) == 2  # another model is refused
    assert "was built with model" in capsys.readouterr().err


def test_an_index_records_where_its_encoder_was_loaded_from(tmp_path):
    from sentsim import SentenceEncoder

    toy_encoder().save_pretrained(tmp_path / "model")
    encoder = SentenceEncoder.from_pretrained(tmp_path / "model")
    with DocumentIndex.create(tmp_path / "idx", encoder) as index:  # an encoder object, not a name
        index.add(TEXTS[:3], ids=IDS[:3])
        assert index.manifest["model"]["name"] == str((tmp_path / "model").resolve())
    with DocumentIndex.open(tmp_path / "idx") as index:  # reopens with no encoder given
        assert index.search(TEXTS[0], k=1)[0].id == IDS[0]
    with torch.no_grad():
        encoder.tower.model.embeddings.word_embeddings.weight.add_(0.1)  # fine-tuned after loading
    with DocumentIndex.create(tmp_path / "tuned", encoder) as index:
        index.add(TEXTS[:3], ids=IDS[:3])
    with pytest.raises(ModelMismatchError, match="now differs in weights_sha256 .*pass the encoder the index was"):
        DocumentIndex.open(tmp_path / "tuned")
    DocumentIndex.open(tmp_path / "tuned", encoder).close()


def test_the_recorded_model_is_absolute_and_follows_save_pretrained(tmp_path, monkeypatch):
    from sentsim import SentenceEncoder

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    toy_encoder().save_pretrained(tmp_path / "a" / "model")
    toy_encoder(seed=1).save_pretrained(tmp_path / "b" / "model")  # same relative name, another model
    monkeypatch.chdir(tmp_path / "a")
    encoder = SentenceEncoder.from_pretrained("model")  # relative to a/
    assert encoder.name_or_path == str((tmp_path / "a" / "model").resolve())
    monkeypatch.chdir(tmp_path / "b")
    with DocumentIndex.create(tmp_path / "idx", encoder) as index:  # created from b/: still a/model
        assert index.manifest["model"]["name"] == str((tmp_path / "a" / "model").resolve())
    encoder.save_pretrained(tmp_path / "copy")
    assert encoder.name_or_path == str((tmp_path / "copy").resolve())


def test_a_manifest_of_another_format_is_refused_before_its_fields(encoder, tmp_path):
    from sentsim.search.manifest import MANIFEST_FORMAT, read_manifest

    DocumentIndex.create(tmp_path / "idx", encoder).close()
    path = tmp_path / "idx" / "manifest.json"
    manifest = json.loads(path.read_text())
    current, newer = MANIFEST_FORMAT, MANIFEST_FORMAT + 1
    assert manifest["format"] == current
    path.write_text(json.dumps(manifest | {"format": newer, "chunk_overlap": None}))  # a field a newer format changed
    with pytest.raises(
        IndexCorruptedError,
        match=rf"manifest.json: index format {newer} is newer than this sentsim reads \({current}\)",
    ):
        read_manifest(tmp_path / "idx")
    for written in (current - 1, str(current), True):
        path.write_text(json.dumps(manifest | {"format": written}))
        with pytest.raises(
            IndexCorruptedError, match=f"index format {written!r} is unknown; this sentsim reads format {current}"
        ):
            read_manifest(tmp_path / "idx")
    path.write_text(json.dumps({k: v for k, v in manifest.items() if k != "format"}))
    with pytest.raises(
        IndexCorruptedError, match=f"manifest.json records no index format; this sentsim reads format {current}"
    ):
        read_manifest(tmp_path / "idx")


def test_reopening_with_the_recorded_model_passes_trust_remote_code_only_when_asked(tmp_path, monkeypatch, capsys):
    """A model that runs its own code (some Nomic, Jina models) is reloaded with trust_remote_code only
    on request: DocumentIndex.open(..., trust_remote_code=True) or --trust-remote-code."""
    from sentsim import SentenceEncoder
    from sentsim.cli import main

    toy_encoder().save_pretrained(tmp_path / "model")
    DocumentIndex.create(tmp_path / "idx", SentenceEncoder.from_pretrained(tmp_path / "model")).close()
    original, seen = SentenceEncoder.from_pretrained.__func__, []

    def recording(cls, *args, **kwargs):
        seen.append(kwargs.get("trust_remote_code", False))
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(SentenceEncoder, "from_pretrained", classmethod(recording))
    DocumentIndex.open(tmp_path / "idx").close()
    DocumentIndex.open(tmp_path / "idx", trust_remote_code=True).close()
    assert main(["search", str(tmp_path / "idx"), "a cat", "--trust-remote-code"]) == 0
    assert main(["index", "compact", str(tmp_path / "idx"), "--trust-remote-code"]) == 0
    DocumentIndex.create(tmp_path / "by-name", str(tmp_path / "model"), trust_remote_code=True).close()
    DocumentIndex.create(tmp_path / "by-name-2", str(tmp_path / "model")).close()
    assert seen == [False, True, True, True, True, False]
    with pytest.raises(TypeError, match="trust_remote_code"):
        DocumentIndex.open(tmp_path / "idx", trust_remote_code="yes")
