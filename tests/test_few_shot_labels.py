"""Label texts, zero-shot and multi-label few-shot classification."""

import json
import math

import numpy as np
import pytest

from sentsim.decisions import FewShotClassifier
from sentsim.decisions.label_text import humanize
from sentsim.decisions.logistic import LogisticHead
from sentsim.evaluation import evaluate_classifier, multi_label_metrics

from .fake_encoder import FakeEncoder

ANGLES = {f"t{i}": i * 10 for i in range(36)} | {"E": 40, "N": 90, "W": 170, "east": 30, "north": 100, "west": 200}
SUPPORT = (["t0", "t1", "t9", "t18", "t19"], ["east", "east", "north", "west", "west"])
DESCRIPTIONS = {"east": "E", "north": "N", "west": "W"}


def unit(angle: float) -> np.ndarray:
    return np.array([math.cos(math.radians(angle)), math.sin(math.radians(angle))])


def circle_encoder() -> FakeEncoder:
    return FakeEncoder({text: unit(angle).tolist() for text, angle in ANGLES.items()})


def test_names_in_words():
    assert humanize("card_arrival") == humanize("card-arrival") == humanize("CardArrival") == "card arrival"
    assert humanize("transferNotReceived_byRecipient") == "transfer not received by recipient"
    assert humanize("HTTPError") == "HTTP error" and humanize("rollover_401k") == "rollover 401k"
    with pytest.raises(ValueError, match="the label '__' has no words"):
        humanize("__")


@pytest.mark.parametrize("weight", [0.5, 2.0])
def test_label_texts_enter_prototype_and_knn_with_their_weight(weight):
    queries = [f"t{i}" for i in range(0, 36, 3)]
    q = np.stack([unit(ANGLES[t]) for t in queries])
    members = {"east": [0, 10], "north": [90], "west": [180, 190]}
    for label_text, texts in (
        ("names", {"east": 30, "north": 100, "west": 200}),
        (DESCRIPTIONS, {"east": 40, "north": 90, "west": 170}),
    ):
        classifier = FewShotClassifier(circle_encoder(), label_text=label_text, label_weight=weight).add_examples(
            *SUPPORT
        )
        prototypes = []
        for label, angles in members.items():  # the weighted mean of the examples and the label text
            total = sum(unit(a) for a in angles) + weight * unit(texts[label])
            prototypes.append(total / np.linalg.norm(total))
        np.testing.assert_allclose(classifier.scores(queries), q @ np.stack(prototypes).T, atol=1e-6)
        classifier.strategy, classifier.k = "knn", 1
        expected = [
            [
                (max(qi @ unit(a) for a in angles) + weight * qi @ unit(texts[label])) / (1 + weight)
                for label, angles in members.items()
            ]
            for qi in q
        ]
        np.testing.assert_allclose(classifier.scores(queries), expected, atol=1e-6)
    plain = FewShotClassifier(circle_encoder()).add_examples(*SUPPORT)
    zero = FewShotClassifier(circle_encoder(), label_text="names", label_weight=0).add_examples(*SUPPORT)
    np.testing.assert_allclose(zero.scores(queries), plain.scores(queries), atol=1e-6)  # weight 0: examples only


def test_logistic_head_takes_label_texts_as_weighted_points():
    linear_model = pytest.importorskip("sklearn.linear_model")
    classifier = FewShotClassifier(
        circle_encoder(), strategy="logistic", label_text=DESCRIPTIONS, label_weight=3.0, logistic_c=10.0
    ).add_examples(*SUPPORT)
    points = np.stack([unit(ANGLES[t]) for t in [*SUPPORT[0], "E", "N", "W"]])
    targets = [0, 0, 1, 2, 2, 0, 1, 2]
    reference = linear_model.LogisticRegression(C=10.0, tol=1e-10, max_iter=10_000)
    reference.fit(points, targets, sample_weight=[1, 1, 1, 1, 1, 3, 3, 3])
    queries = [f"t{i}" for i in range(36)]
    q = np.stack([unit(ANGLES[t]) for t in queries])
    np.testing.assert_allclose(classifier.predict_proba(queries), reference.predict_proba(q), atol=2e-3)
    rng = np.random.default_rng(0)  # one-vs-rest: one binary logistic regression per class
    x, y = rng.normal(size=(40, 5)), rng.random((40, 3)) < 0.4
    head = LogisticHead.fit(x, y, 3, c=5.0, multi_label=True)
    for c in range(3):
        binary = linear_model.LogisticRegression(C=5.0, tol=1e-10, max_iter=10_000).fit(x, y[:, c])
        np.testing.assert_allclose(head.probabilities(x)[:, c], binary.predict_proba(x)[:, 1], atol=2e-3)


def test_zero_shot_then_few_shot_without_retraining():
    encoder = circle_encoder()
    classifier = FewShotClassifier(encoder, labels=["east", "north", "west"], label_text="names")
    assert classifier.predict(["t2", "t11", "t21"]) == ["east", "north", "west"]  # nearest name: 30, 100, 200 degrees
    np.testing.assert_allclose(
        classifier.scores(["t3"]), [[1.0, math.cos(math.radians(70)), math.cos(math.radians(170))]], atol=1e-6
    )
    probabilities = classifier.predict_proba(["t3", "t10"])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    classifier.fit_threshold(["t3", "t10", "t27"], ["east", "north", "none"])  # south: none of these
    assert classifier.predict(["t3", "t27"]) == ["east", "none"]
    classifier.threshold = None
    assert classifier.predict("t6") == "east"  # 30 degrees from "east", 40 from "north"
    calls = encoder.calls
    classifier.add_examples(["t7", "t8"], ["north", "north"])  # examples join the label text: no retraining
    assert classifier.predict("t6") == "north" and encoder.calls == calls + 2  # the two examples, nothing else
    assert classifier.classes == ["east", "north", "west"]
    with pytest.raises(ValueError, match="class 'east' has no examples and no label text"):
        FewShotClassifier(encoder, labels=["east", "north"]).add_examples(["t9"], ["north"]).predict("t1")


def test_zero_shot_with_minilm_picks_the_class_its_name_says(minilm):
    classifier = FewShotClassifier(minilm, labels=["weather", "play_music", "book_flight"], label_text="names")
    texts = ["will it rain in Paris tomorrow?", "put on some jazz please", "I need a plane ticket to Rome"]
    assert classifier.predict(texts) == ["weather", "play_music", "book_flight"]
    descriptions = {"weather": "a question about the forecast", "book_flight": "reserving seats on an airplane"}
    described = FewShotClassifier(minilm, labels=["weather", "play_music", "book_flight"], label_text=descriptions)
    assert described.label_texts()["play_music"] == "play music"  # left out of the dict: its name
    assert described.predict(texts) == ["weather", "play_music", "book_flight"]


def test_label_texts_use_the_document_prompt(tiny_transformer):
    from sentsim import SentenceEncoder

    encoder = SentenceEncoder(tiny_transformer, prompts={"query": "query: ", "passage": "passage: "})
    classifier = FewShotClassifier(encoder, labels=["cat", "rain"], label_text="names", label_weight=1.0)
    expected = encoder.encode(["passage: cat", "passage: rain"], normalize=True)
    np.testing.assert_allclose(classifier.scores(expected), expected @ expected.T, atol=1e-5)


MULTI = (
    ["t0", "t1", "t4", "t9", "t10", "t18"],
    [["east"], ["east"], ["east", "north"], ["north"], ["north"], ["west"]],
)


def test_multi_label_thresholds_per_class_and_probabilities():
    classifier = FewShotClassifier(circle_encoder(), multi_label=True).add_examples(*MULTI)
    assert classifier.classes == ["east", "north", "west"]
    tune_texts = ["t0", "t2", "t4", "t5", "t8", "t9", "t13", "t18", "t20", "t27"]
    tune_labels = [
        ["east"],
        ["east"],
        ["east", "north"],
        ["east", "north"],
        ["north"],
        ["north"],
        ["north"],
        ["west"],
        ["west"],
        [],
    ]
    thresholds = classifier.fit_class_thresholds(tune_texts, tune_labels)
    scores = classifier.scores(tune_texts)
    for c, label in enumerate(classifier.classes):  # each threshold separates that class's tuning texts perfectly
        positive = np.array([label in row for row in tune_labels])
        assert scores[positive, c].min() >= thresholds[label] > scores[~positive, c].max()
    assert thresholds["east"] != thresholds["north"]
    assert classifier.predict(tune_texts) == [
        sorted(row, key=lambda label: -scores[i, classifier.classes.index(label)]) for i, row in enumerate(tune_labels)
    ]
    probabilities = classifier.predict_proba(tune_texts)  # independent sigmoids, 0.5 at each threshold
    assert ((probabilities >= 0.5) == (scores >= np.array(list(thresholds.values())))).all()
    assert not np.allclose(probabilities.sum(axis=1), 1.0)
    results = evaluate_classifier(classifier, tune_texts, tune_labels)
    assert (results["micro_f1"], results["subset_accuracy"], results["primary_metric"]) == (100.0, 100.0, "micro_f1")
    classifier.strategy = "logistic"  # one-vs-rest head: sigmoids, threshold on the probability
    classifier.class_thresholds, classifier.threshold = {}, 0.5
    assert classifier.predict("t0") == ["east"] and classifier.predict_proba(["t0"]).shape == (1, 3)
    classifier.remove_class("north")  # "t4" keeps east; "t9", "t10" leave
    assert classifier.support()[1] == [("east",), ("east",), ("east",), ("west",)]


def test_multi_label_metrics_by_hand():
    true = [["a", "b"], ["a"], [], ["c"]]
    predicted = [["a"], ["a", "c"], [], ["c"]]
    results = multi_label_metrics(true, predicted)
    # a: tp 2; b: fn 1; c: tp 1, fp 1 -> micro 2*3 / (2*3 + 1 + 1)
    assert results["micro_f1"] == pytest.approx(100 * 6 / 8)
    assert results["macro_f1"] == pytest.approx(100 * (1.0 + 0.0 + 2 / 3) / 3)
    assert results["subset_accuracy"] == 50.0


def test_save_and_load_keep_label_texts_and_settings(tmp_path):
    encoder = circle_encoder()
    ints = FewShotClassifier(
        encoder, labels=[1, 2, 3], label_text={1: "east", 2: "north", 3: "west"}, label_weight=1.5, threshold=0.6
    )
    ints.add_examples(["t0"], [1]).save(tmp_path / "ints")
    calls = encoder.calls
    loaded = FewShotClassifier.load(tmp_path / "ints", encoder)
    assert encoder.calls == calls  # examples and label texts: the saved embeddings, none encoded again
    assert (loaded.label_text, loaded.label_weight, loaded.threshold, loaded.classes) == (
        ints.label_text,
        1.5,
        0.6,
        [1, 2, 3],
    )
    texts = [f"t{i}" for i in range(36)]
    np.testing.assert_array_equal(loaded.scores(texts), ints.scores(texts))
    multi = FewShotClassifier(encoder, multi_label=True, label_text="names", strategy="knn", k=2).add_examples(*MULTI)
    multi.fit_class_thresholds(["t0", "t9", "t18", "t27"], [["east"], ["north"], ["west"], []])
    multi.save(tmp_path / "multi")
    loaded = FewShotClassifier.load(tmp_path / "multi", encoder)
    assert (loaded.multi_label, loaded.label_text, loaded.class_thresholds) == (True, "names", multi.class_thresholds)
    assert loaded.support() == multi.support() and loaded.predict(texts) == multi.predict(texts)
    config = json.loads((tmp_path / "multi" / "few_shot.json").read_text())
    assert config["format"] == 2 and config["example_labels"][2] == ["east", "north"]


def test_label_text_bad_input():
    encoder = circle_encoder()
    with pytest.raises(ValueError, match=r"label_text\['east'\] must be a non-empty text, got ''"):
        FewShotClassifier(encoder, label_text={"east": ""})
    with pytest.raises(ValueError, match="a label must be a non-empty str or an int, got ''"):
        FewShotClassifier(encoder, label_text={"": "the east"})
    with pytest.raises(ValueError, match="label_text must be 'names', a dict"):
        FewShotClassifier(encoder, label_text="name")
    with pytest.raises(TypeError, match="label_text='names' needs str labels; the label 3 is an int"):
        FewShotClassifier(encoder, labels=[3], label_text="names")
    with pytest.raises(TypeError, match="label_text='names' needs str labels"):
        FewShotClassifier(encoder, label_text="names").add_examples(["t0"], [3])
    with pytest.raises(ValueError, match=r"describes 1 label\(s\) that are no class \('sout'\)"):
        FewShotClassifier(encoder, labels=["east"], label_text={"sout": "S"}).predict("t1")
    declared = FewShotClassifier(encoder, labels=["east"], label_text={"west": "W"}).add_examples(["t18"], ["west"])
    assert declared.label_texts() == {"east": "east", "west": "W"}  # described classes may come with examples
    typo = FewShotClassifier(encoder, label_text={"east": "E", "sout": "S"}).add_examples(*SUPPORT)
    with pytest.raises(ValueError, match=r"no class \('sout'\)"):  # found when the classes are known
        typo.predict("t1")
    multi = FewShotClassifier(encoder, multi_label=True, label_text={"south": "S"}).add_examples(*MULTI)
    with pytest.raises(ValueError, match=r"no class \('south'\)"):  # a description of a label with no examples
        multi.label_texts()
    with pytest.raises(ValueError, match=r"column 'labels', row 1: no label"):
        FewShotClassifier(encoder, multi_label=True).add_examples(["t0", "t1"], [["east"], []])
    with pytest.raises(ValueError, match=r"row 0: expected class labels .* got None"):
        FewShotClassifier(encoder, multi_label=True).add_examples(["t0"], [["east", None]])
    with pytest.raises(ValueError, match="no threshold for class 'east'"):
        FewShotClassifier(encoder, multi_label=True).add_examples(*MULTI).predict("t0")
    with pytest.raises(ValueError, match="use fit_class_thresholds"):
        FewShotClassifier(encoder, multi_label=True).add_examples(*MULTI).fit_threshold(["t0"], ["east"])
    with pytest.raises(ValueError, match="label_weight must be a finite number >= 0"):
        FewShotClassifier(encoder, label_weight=-1)
    with pytest.raises(ValueError, match="class 'east' has no examples and no label text"):
        FewShotClassifier(encoder, labels=["east", "north"], label_text="names", label_weight=0).predict("t0")
    with pytest.raises(ValueError, match="label_share must be between 0 and 1"):
        FewShotClassifier(encoder, label_text="names").add_examples(*SUPPORT).fine_tune(label_share=1.5)


# ------------------------------------------------------------------------ CLI
@pytest.fixture
def model_dir(tiny_transformer, tmp_path):
    from sentsim import SentenceEncoder

    SentenceEncoder(tiny_transformer, normalize=True).save_pretrained(tmp_path / "model")
    return str(tmp_path / "model")


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_cli_zero_shot_and_label_texts(model_dir, tmp_path, capsys):
    from sentsim.cli import main

    labels = _write(tmp_path / "labels.txt", "rain_today\nthe_cat\n")
    texts = _write(tmp_path / "in.txt", "the cat\nrain today\n")  # each exactly a class name in words
    assert main(["classify", "--model", model_dir, "--labels", labels, "--label-text", "names", "--input", texts]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["the_cat", "rain_today"]
    assert float(lines[0].split("\t")[1]) == pytest.approx(1.0, abs=1e-5)
    data = _write(tmp_path / "test.csv", "text,label\nthe cat,the_cat\nrain today,rain_today\n")
    assert (
        main(
            [
                "eval",
                "classify",
                "--model",
                model_dir,
                "--labels",
                labels,
                "--label-text",
                "names",
                "--data",
                data,
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert (result["accuracy"], result["support"], result["classes"]) == (100.0, 0, 2)
    rows = [{"text": "the cat", "label": 1}, {"text": "rain today", "label": 2}]  # int labels
    support = _write(tmp_path / "support.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    descriptions = _write(tmp_path / "d.json", json.dumps({"1": "a cat", "2": "rain"}))  # JSON keys: int classes
    base = ["classify", "--model", model_dir, "--support", support, "--input", texts]
    assert main([*base, "--label-text", descriptions, "--label-weight", "0.5"]) == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == ["1", "2"]
    typo = _write(tmp_path / "typo.json", json.dumps({"1": "a cat", "3": "rain"}))
    assert main([*base, "--label-text", typo]) == 2 and "no class ('3')" in capsys.readouterr().err
    assert main([*base, "--label-text", "names"]) == 2 and "needs str labels" in capsys.readouterr().err
    assert main(["classify", "--model", model_dir, "--labels", labels, "--input", texts]) == 2
    assert "--labels and --label-text for zero-shot" in capsys.readouterr().err
    assert main([*base, "--label-weight", "2"]) == 2 and "--label-weight weighs" in capsys.readouterr().err


def test_cli_multi_label(model_dir, tmp_path, capsys):
    from sentsim.cli import main

    support = _write(tmp_path / "s.csv", "text,labels\nthe cat,pet|animal\na dog,pet\nrain today,weather\n")
    tune = _write(
        tmp_path / "t.jsonl",
        "\n".join(
            json.dumps(r)
            for r in [
                {"text": "the cat", "labels": ["pet", "animal"]},
                {"text": "a dog", "labels": ["pet"]},
                {"text": "rain today", "labels": ["weather"]},
                {"text": "stocks fell", "labels": []},
            ]
        )
        + "\n",
    )
    base = ["eval", "classify", "--model", model_dir, "--multi-label", "--support", support, "--data", tune]
    assert main([*base, "--tune-data", tune, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (
        result["primary_metric"] == "micro_f1"
        and result["micro_f1"] == 100.0
        and set(result["thresholds"]) == {"pet", "animal", "weather"}
    )
    assert main(base) == 2 and "--tune-data (a threshold per class) or --threshold" in capsys.readouterr().err
    assert main([*base, "--threshold", "0.5", "--out-of-scope", tune]) == 2
    texts = _write(tmp_path / "in.txt", "the cat\n")
    assert (
        main(
            [
                "classify",
                "--model",
                model_dir,
                "--multi-label",
                "--support",
                support,
                "--tune-data",
                tune,
                "--input",
                texts,
            ]
        )
        == 0
    )
    labels, scores, text = capsys.readouterr().out.strip().split("\t")
    assert set(labels.split("|")) == {"pet", "animal"} and len(scores.split("|")) == 2 and text == "the cat"
    empty = _write(tmp_path / "e.csv", "text,labels\nthe cat,pet\na dog,\n")
    assert (
        main(
            [
                "classify",
                "--model",
                model_dir,
                "--multi-label",
                "--support",
                empty,
                "--threshold",
                "0.5",
                "--input",
                texts,
            ]
        )
        == 2
    )
    assert "row 1: no label" in capsys.readouterr().err


def test_fine_tuning_pulls_label_texts_to_their_examples():
    from sentsim.training import TrainingConfig

    from .toy_task import TOPICS, toy_encoder

    descriptions = {topic: texts[3] for topic, texts in TOPICS.items()}  # a text of each topic, not an example
    texts = [texts[i] for texts in TOPICS.values() for i in range(2)]
    labels = [topic for topic in TOPICS for _ in range(2)]
    classifier = FewShotClassifier(toy_encoder(dropout=0.0, seed=1), label_text=descriptions, show_progress=False)
    classifier.add_examples(texts, labels)

    def margin():  # label text to its own examples minus to the others
        described = classifier.encoder.encode(list(descriptions.values()), normalize=True)
        cosines = described @ classifier.encoder.encode(texts, normalize=True).T
        own = np.equal.outer(list(descriptions), labels)
        return cosines[own].mean() - cosines[~own].mean()

    before, scores = margin(), classifier.scores(texts)
    config = TrainingConfig(epochs=1, batch_size=8, learning_rate=1e-3, show_progress=False)
    assert classifier.fine_tune(rounds=20, config=config, label_share=1.0).steps == 20
    assert margin() > before + 0.3
    assert not np.allclose(classifier.scores(texts), scores)  # examples and label texts embedded again


def test_multi_label_fine_tuning_never_takes_a_pair_sharing_a_class_as_a_negative(monkeypatch):
    from sentsim.training import TrainingConfig
    from sentsim.training import few_shot as few_shot_training

    from .toy_task import toy_encoder

    texts = ["the cat sleeps", "a kitten naps", "stocks fell", "markets dropped", "it rains today", "the rain came"]
    labels = [["cat"], ["cat", "rain"], ["market"], ["market", "cat"], ["rain"], ["rain"]]
    classifier = FewShotClassifier(toy_encoder(dropout=0.0), multi_label=True, show_progress=False)
    classifier.add_examples(texts, labels)
    seen = {}
    real_train = few_shot_training.train

    def recording_train(encoder, data, loss, config):
        seen["data"] = data
        return real_train(encoder, data, loss, config)

    monkeypatch.setattr(few_shot_training, "train", recording_train)
    config = TrainingConfig(epochs=1, batch_size=6, learning_rate=1e-3, show_progress=False)
    classifier.fine_tune(rounds=4, config=config)
    columns = seen["data"].columns
    classes = list(classifier.classes)
    by_text = dict(zip(texts, labels, strict=True))
    assert columns["label"].shape == (24, len(classes))  # multi-hot rows, one per pair
    for anchor, positive, hot in zip(columns["anchor"], columns["positive"], columns["label"], strict=True):
        expected = set(by_text[anchor]) | set(by_text[positive])  # the anchor's classes and the positive's
        assert {classes[i] for i in np.flatnonzero(hot)} == expected
