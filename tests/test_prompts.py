import json

import numpy as np
import pytest

from sentsim import SentenceEncoder
from sentsim.cli import main
from sentsim.data.retrieval import RetrievalData
from sentsim.evaluation import evaluate_retrieval
from sentsim.search import DocumentIndex
from sentsim.search.store import IndexCorruptedError

TEXTS = ["The cat sat on the mat.", "A dog is running in the park.", "Rain is expected over the weekend."]
PROMPTS = {"query": "query: ", "passage": "passage: ", "classification": "label this: "}


@pytest.fixture
def prompted(tiny_transformer):
    return SentenceEncoder(tiny_transformer, normalize=True, prompts=PROMPTS)


def test_encode_prepends_the_chosen_prompt(prompted):
    prefixed = prompted.encode(["query: " + text for text in TEXTS])
    np.testing.assert_array_equal(prompted.encode(TEXTS, prompt_name="query"), prefixed)
    np.testing.assert_array_equal(prompted.encode(TEXTS, prompt="query: "), prefixed)
    np.testing.assert_allclose(prompted.encode(TEXTS[0], prompt_name="query"), prefixed[0], atol=1e-6)  # one string
    plain = prompted.encode(TEXTS)  # no default prompt: the texts as they are
    assert not np.allclose(plain, prefixed, atol=1e-3)
    prompted.default_prompt_name = "classification"
    np.testing.assert_array_equal(prompted.encode(TEXTS), prompted.encode(TEXTS, prompt="label this: "))
    np.testing.assert_array_equal(prompted.encode(TEXTS, prompt=""), plain)  # "" overrides the default


def test_prompt_mistakes_are_named(prompted, tiny_transformer):
    with pytest.raises(ValueError, match="unknown prompt_name 'qeury'; this model's prompts: 'query', 'passage'"):
        prompted.encode(TEXTS, prompt_name="qeury")
    with pytest.raises(ValueError, match="give prompt .* or prompt_name .*, not both"):
        prompted.encode(TEXTS, prompt="q: ", prompt_name="query")
    with pytest.raises(TypeError, match="prompt must be a str, got int"):
        prompted.encode(TEXTS, prompt=1)
    with pytest.raises(ValueError, match="default_prompt_name 'document' is not one of the prompts"):
        SentenceEncoder(tiny_transformer, prompts=PROMPTS, default_prompt_name="document")
    with pytest.raises(TypeError, match="prompts must map str names to str prompt texts, got 'query': None"):
        SentenceEncoder(tiny_transformer, prompts={"query": None})
    with pytest.raises(ValueError, match="unknown prompt_name 'query'; this model's prompts: none"):
        SentenceEncoder(tiny_transformer).encode(TEXTS, prompt_name="query")


def test_prompts_survive_a_round_trip_and_are_read_from_sentence_transformers_folders(prompted, tiny_lstm, tmp_path):
    prompted.default_prompt_name = "query"
    prompted.save_pretrained(tmp_path / "model")
    loaded = SentenceEncoder.from_pretrained(tmp_path / "model")
    assert (loaded.prompts, loaded.default_prompt_name) == (PROMPTS, "query")
    np.testing.assert_allclose(loaded.encode(TEXTS), prompted.encode(TEXTS), atol=1e-6)
    st_config = json.loads((tmp_path / "model" / "config_sentence_transformers.json").read_text())
    assert (st_config["prompts"], st_config["default_prompt_name"]) == (PROMPTS, "query")
    (tmp_path / "model" / "config_sentsim.json").unlink()  # now read as a sentence-transformers folder
    assert SentenceEncoder.from_pretrained(tmp_path / "model").prompts == PROMPTS
    st_config["default_prompt_name"] = "nope"
    (tmp_path / "model" / "config_sentence_transformers.json").write_text(json.dumps(st_config))
    with pytest.raises(ValueError, match="config_sentence_transformers.json: default_prompt_name 'nope' is not one"):
        SentenceEncoder.from_pretrained(tmp_path / "model")
    lstm = SentenceEncoder(tiny_lstm, prompts={"query": "q: "})
    lstm.save_pretrained(tmp_path / "lstm")
    assert SentenceEncoder.from_pretrained(tmp_path / "lstm").prompts == {"query": "q: "}


def test_a_model_that_pools_without_its_prompt_loads_and_refuses_only_prompts(prompted, tmp_path, capsys):
    prompted.save_pretrained(tmp_path / "model")
    pooling = tmp_path / "model" / "1_Pooling" / "config.json"
    (tmp_path / "model" / "config_sentsim.json").unlink()  # a sentence-transformers folder
    pooling.write_text(json.dumps(json.loads(pooling.read_text()) | {"include_prompt": False}))
    loaded = SentenceEncoder.from_pretrained(tmp_path / "model")
    assert loaded.include_prompt is False
    np.testing.assert_allclose(loaded.encode(TEXTS), prompted.encode(TEXTS), atol=1e-6)  # no prompt: as before
    with pytest.raises(ValueError, match="pools without its prompt's tokens \\(include_prompt=False\\)"):
        loaded.encode(TEXTS, prompt_name="query")
    with pytest.raises(ValueError, match="pools without them \\(include_prompt=False\\)"):
        DocumentIndex.create(tmp_path / "idx", loaded)  # its query / passage prompts could not be used
    loaded.save_pretrained(tmp_path / "again")  # kept through a save, in both configs
    assert json.loads((tmp_path / "again" / "1_Pooling" / "config.json").read_text())["include_prompt"] is False
    assert SentenceEncoder.from_pretrained(tmp_path / "again").include_prompt is False
    from sentsim.cli import main

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"anchor": "a cat", "positive": "the cat sleeps"}\n{"anchor": "rain", "positive": "wet"}\n')
    command = ["train", "--model", str(tmp_path / "again"), "--train", str(pairs), "--loss", "mnrl"]
    assert main([*command, "--output", str(tmp_path / "run"), "--prompts", "query: ", "--no-progress"]) == 2
    assert "--prompts: this model pools without its prompt's tokens" in capsys.readouterr().err


def test_prompts_are_read_where_sentence_transformers_reads_them(prompted, tmp_path):
    prompted.save_pretrained(tmp_path / "model")
    st_file = tmp_path / "model" / "config_sentence_transformers.json"
    edited = json.loads(st_file.read_text()) | {
        "prompts": {"query": "q: ", "document": None},
        "default_prompt_name": "query",
    }
    st_file.write_text(json.dumps(edited))  # edited by hand in a folder sentsim saved; a null prompt reads as ""
    loaded = SentenceEncoder.from_pretrained(tmp_path / "model")
    assert (loaded.prompts, loaded.default_prompt_name) == ({"query": "q: ", "document": ""}, "query")


def test_an_empty_prompt_does_not_hide_the_passage_prompt():
    from sentsim.prompts import search_prompts

    # sentence-transformers saves "document": "" (its placeholder) beside a model's own "passage" prompt
    prompts = {"query": "query: ", "document": "", "passage": "passage: "}
    assert search_prompts(prompts) == {"query": "query: ", "document": "passage: "}
    assert search_prompts({"query": ""}) == {"query": "", "document": ""}


def test_a_saved_classifier_re_embeds_when_the_default_prompt_changed(prompted, tmp_path, caplog):
    from sentsim.decisions import FewShotClassifier

    classifier = FewShotClassifier(prompted, show_progress=False).add_examples(TEXTS[:2], ["animal", "animal"])
    classifier.add_examples(TEXTS[2:], ["weather"])
    classifier.save(tmp_path / "classifier")
    assert "another model" not in caplog.text
    prompted.default_prompt_name = "classification"  # encode() now prepends it: the saved embeddings are stale
    loaded = FewShotClassifier.load(tmp_path / "classifier", prompted)
    assert "saved with another model" in caplog.text
    np.testing.assert_allclose(
        loaded.scores(TEXTS),
        FewShotClassifier(prompted).add_examples(TEXTS, ["animal", "animal", "weather"]).scores(TEXTS),
        atol=1e-5,
    )


def test_sentence_transformers_applies_the_same_prompts(prompted, tmp_path):
    st = pytest.importorskip("sentence_transformers")
    prompted.save_pretrained(tmp_path / "model")
    theirs = st.SentenceTransformer(str(tmp_path / "model"), device="cpu")
    np.testing.assert_allclose(
        theirs.encode(TEXTS, prompt_name="query"), prompted.encode(TEXTS, prompt_name="query"), atol=1e-5
    )
    np.testing.assert_allclose(
        theirs.encode(TEXTS, prompt_name="passage"), prompted.encode(TEXTS, prompt_name="passage"), atol=1e-5
    )


def test_an_index_uses_the_query_and_document_prompts(prompted, tmp_path):
    index = DocumentIndex.create(tmp_path / "idx", prompted, backend="flat")
    index.add(TEXTS, ids=["cat", "dog", "rain"])
    assert index.manifest["prompts"] == {"query": "query: ", "document": "passage: "}
    hits = index.search("a cat on a mat", k=3)
    documents = prompted.encode(["passage: " + text for text in TEXTS])
    expected = documents @ prompted.encode("query: a cat on a mat")
    assert [hit.id for hit in hits] == [["cat", "dog", "rain"][i] for i in np.argsort(-expected)]
    np.testing.assert_allclose([hit.score for hit in hits], np.sort(expected)[::-1], atol=1e-5)
    index.close()
    reopened = DocumentIndex.open(tmp_path / "idx", prompted)
    assert reopened.prompts == {"query": "query: ", "document": "passage: "}
    reopened.close()
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    for broken in (manifest | {"prompts": {"query": 3}}, {k: v for k, v in manifest.items() if k != "prompts"}):
        (tmp_path / "idx" / "manifest.json").write_text(json.dumps(broken))
        with pytest.raises(IndexCorruptedError, match="'prompts' must hold a 'query' and a 'document' text"):
            DocumentIndex.open(tmp_path / "idx", prompted)


def test_chunks_leave_room_for_the_document_prompt(tiny_transformer, tmp_path):
    encoder = SentenceEncoder(tiny_transformer, prompts={"document": "passage: "})  # 32 tokens, 2 special
    prompt_tokens = len(tiny_transformer.tokenizer.tokenizer.encode("passage: ", add_special_tokens=False).ids)
    limit = 32 - 2 - prompt_tokens
    with pytest.raises(ValueError, match=f"less 2 special tokens and {prompt_tokens} prompt tokens .* is {limit}"):
        DocumentIndex.create(tmp_path / "too-long", encoder, chunk_size=limit + 1)
    DocumentIndex.create(tmp_path / "fits", encoder, chunk_size=limit).close()


def test_retrieval_evaluation_uses_the_same_prompts(prompted, tiny_transformer):
    data = RetrievalData(
        queries={"q1": "a cat on a mat", "q2": "rain this weekend"},
        corpus={"d1": TEXTS[0], "d2": TEXTS[1], "d3": TEXTS[2]},
        relevant={"q1": {"d1"}, "q2": {"d3"}},
    )
    prefixed = RetrievalData(
        queries={q: "query: " + text for q, text in data.queries.items()},
        corpus={d: "passage: " + text for d, text in data.corpus.items()},
        relevant=data.relevant,
    )
    plain = SentenceEncoder(tiny_transformer, normalize=True)
    assert evaluate_retrieval(prompted, data, show_progress=False) == evaluate_retrieval(
        plain, prefixed, show_progress=False
    )


def test_cli_encode_with_a_prompt(prompted, tmp_path, capsys):
    prompted.save_pretrained(tmp_path / "model")
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    common = ["encode", "--model", str(tmp_path / "model"), "--input", str(source), "--no-progress"]
    assert main([*common, "--prompt-name", "query", "--output", str(tmp_path / "a.npy")]) == 0
    assert main([*common, "--prompt", "query: ", "--output", str(tmp_path / "b.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "a.npy"), prompted.encode(TEXTS, prompt_name="query"), atol=1e-6)
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    assert main([*common, "--prompt-name", "nope", "--output", str(tmp_path / "c.npy")]) == 2
    assert "unknown prompt_name 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "c.npy").exists()
