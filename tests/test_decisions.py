import json
import math
import re

import numpy as np
import pytest

from sentsim.decisions import FewShotClassifier, IsotonicCalibration, PairClassifier, PlattScaling
from sentsim.decisions.logistic import LogisticHead

from .fake_encoder import FakeEncoder

ANGLES = {f"t{i}": i * 10 for i in range(36)}  # texts on the unit circle, 10 degrees apart


def circle_encoder(extra: dict | None = None) -> FakeEncoder:
    vectors = {text: [math.cos(math.radians(a)), math.sin(math.radians(a))] for text, a in ANGLES.items()}
    return FakeEncoder(vectors | (extra or {}))


# ---------------------------------------------------------------- calibration
def test_isotonic_by_hand():
    calibrator = IsotonicCalibration().fit(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1, 0, 0, 1]))
    # PAV pools the first three (1, 0, 0) into 1/3 at mean score 2; the last stays 1 at 4.
    np.testing.assert_allclose(calibrator.x, [2.0, 4.0])
    np.testing.assert_allclose(calibrator.y, [1 / 3, 1.0])
    np.testing.assert_allclose(calibrator.predict(np.array([0.0, 3.0, 9.0])), [1 / 3, 2 / 3, 1.0])


def test_isotonic_pools_tied_scores_whatever_their_order():
    scores = np.array([0.2, 0.5, 0.5, 0.8])
    one = IsotonicCalibration().fit(scores, np.array([0, 0, 1, 1]))
    other = IsotonicCalibration().fit(scores, np.array([0, 1, 0, 1]))
    np.testing.assert_allclose(one.predict([0.4, 0.5, 0.6]), other.predict([0.4, 0.5, 0.6]))
    np.testing.assert_allclose(one.predict([0.5]), [0.5])
    for calibrator in (IsotonicCalibration(), PlattScaling()):
        with pytest.raises(ValueError, match="needs both similar"):
            calibrator.fit(np.array([0.1, 0.9]), np.array([1, 1]))


@pytest.mark.parametrize("loc, spread", [(0.0, 1.0), (-12.0, 1.5), (24.0, 2.0)])  # cosine-like, manhattan, dot
def test_platt_matches_a_direct_minimization(loc, spread):
    optimize = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=400)
    scores = loc + spread * rng.normal(loc=labels * 1.5, scale=1.0)
    calibrator = PlattScaling().fit(scores, labels)
    n_pos, n_neg = labels.sum(), len(labels) - labels.sum()
    targets = np.where(labels == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))

    def loss(params):
        p = 1 / (1 + np.exp(-(params[0] * scores + params[1])))
        return -np.sum(targets * np.log(p) + (1 - targets) * np.log(1 - p))

    start = [1 / spread, -loc / spread]  # near the answer: the reference needs no luck
    reference = optimize.minimize(loss, start, method="BFGS", options={"gtol": 1e-10}).x
    assert [calibrator.a, calibrator.b] == pytest.approx(reference, rel=1e-4, abs=1e-4)
    probabilities = calibrator.predict(scores)
    assert ((probabilities > 0) & (probabilities < 1)).all()


# ------------------------------------------------------------ pair classifier
def pair_data():
    left, right, labels = [], [], []
    for i in range(36):
        for step in (1, 2, 12, 15):  # 10-20 degrees apart: similar; 120-150: not
            left.append(f"t{i}")
            right.append(f"t{(i + step) % 36}")
            labels.append(int(step <= 2))
    return left, right, np.array(labels)


def test_pair_classifier_fits_threshold_and_probabilities():
    left, right, labels = pair_data()
    classifier = PairClassifier(circle_encoder()).fit(left, right, labels)
    assert math.cos(math.radians(120)) < classifier.threshold < math.cos(math.radians(20))
    assert classifier.predict("t0", "t1") is True and classifier.predict("t0", "t12") is False
    np.testing.assert_array_equal(classifier.predict(left, right), labels == 1)
    probabilities = classifier.predict_proba(left, right)
    assert probabilities.shape == (len(left),) and probabilities[labels == 1].min() > probabilities[labels == 0].max()
    report = classifier.evaluate(left, right, labels)
    assert report["accuracy"] == 100.0 and report["average_precision"] == 100.0 and report["brier"] < 0.05


def test_pair_classifier_save_and_load(tmp_path):
    left, right, labels = pair_data()
    encoder = circle_encoder()
    classifier = PairClassifier(encoder).fit(left, right, labels, calibration="isotonic")
    classifier.save(tmp_path / "pairs.json")
    loaded = PairClassifier.load(tmp_path / "pairs.json", encoder)
    assert loaded.threshold == classifier.threshold
    np.testing.assert_allclose(loaded.predict_proba(left, right), classifier.predict_proba(left, right))
    saved = json.loads((tmp_path / "pairs.json").read_text())
    results = {"accuracy": 93.2, "threshold": 0.66, "metric": "cosine", "primary_metric": "accuracy"}  # eval output
    no_digest = {key: value for key, value in saved.items() if key != "model_sha256"}
    (tmp_path / "pairs.json").write_text("[]")
    with pytest.raises(ValueError, match=r"pairs.json: expected a JSON object \(saved pair classifier\), got list"):
        PairClassifier.load(tmp_path / "pairs.json", encoder)
    for broken in (
        saved | {"calibrator": saved["calibrator"] | {"extra": 1}},
        {"threshold": 0.5},
        results,
        no_digest,
    ):
        (tmp_path / "pairs.json").write_text(json.dumps(broken))
        with pytest.raises(ValueError, match="pairs.json is not a saved pair classifier"):
            PairClassifier.load(tmp_path / "pairs.json", encoder)
    assert saved["format"] == 1
    for written, message in ((2, r"format 2 is newer than this sentsim reads \(1\)"), ("1", "format '1' is unknown")):
        (tmp_path / "pairs.json").write_text(json.dumps(saved | {"format": written}))
        with pytest.raises(ValueError, match="pairs.json: pair classifier " + message):
            PairClassifier.load(tmp_path / "pairs.json", encoder)
    (tmp_path / "notes.json").write_text('{"mine": 1}')
    with pytest.raises(FileExistsError, match="notes.json exists and is not a saved pair classifier; pass overwrite"):
        classifier.save(tmp_path / "notes.json")  # was replaced silently
    assert json.loads((tmp_path / "notes.json").read_text()) == {"mine": 1}
    with pytest.raises(IsADirectoryError, match="is a folder; give a .json file path"):
        classifier.save(tmp_path)
    classifier.save(tmp_path / "notes.json", overwrite=True)
    classifier.save(tmp_path / "notes.json")  # a saved classifier is replaced
    assert PairClassifier.load(tmp_path / "notes.json", encoder).threshold == classifier.threshold


def test_pair_classifier_bad_input():
    left, right, labels = pair_data()
    for options, message in [
        ({"threshold": float("nan")}, "threshold must be a finite number or None, got nan"),
        ({"threshold": "0.5"}, "threshold must be a finite number or None, got '0.5'"),
        ({"batch_size": 0}, "batch_size must be an int >= 1, got 0"),
    ]:
        with pytest.raises(ValueError, match=message):
            PairClassifier(circle_encoder(), **options)
    assert PairClassifier(circle_encoder(), threshold=0.5).predict([], []).shape == (0,)
    classifier = PairClassifier(circle_encoder())
    with pytest.raises(RuntimeError, match="call fit"):
        classifier.predict("t0", "t1")
    with pytest.raises(ValueError, match="column 'labels', row 0: expected a label 0 or 1"):
        classifier.fit(left, right, labels * 2)
    import pandas as pd

    with pytest.raises(ValueError, match="column 'labels', row 1: expected a label 0 or 1, got <NA>"):
        classifier.fit(left, right, pd.Series([1, None, *labels[2:]], dtype="Int64"))
    frame = pd.DataFrame({"s1": left, "s2": right, "label": labels})
    with pytest.raises(TypeError, match="calibration_pairs must be a tuple or list of three.*got DataFrame"):
        classifier.fit(left, right, labels, calibration_pairs=frame)
    with pytest.raises(TypeError, match="seed must be an int, got 1.5"):
        classifier.fit(left, right, labels, seed=1.5)
    with pytest.raises(ValueError, match="held_out must be between 0 and 1"):
        classifier.fit(left, right, labels, held_out="0.3")
    bools = PairClassifier(circle_encoder()).fit(frame.s1, frame.s2, frame.label.astype(bool))
    assert bools.threshold == PairClassifier(circle_encoder()).fit(left, right, labels).threshold
    numpy_bools = PairClassifier(circle_encoder()).fit(left, right, list(np.asarray(labels) == 1))  # np.True_ items
    assert numpy_bools.threshold == bools.threshold
    with pytest.raises(TypeError, match=r"calibration_pairs must be a tuple or list of three.*got list of 2"):
        classifier.fit(left, right, labels, calibration_pairs=[left, right])
    assert json.loads(json.dumps(PlattScaling(a=np.float32(3), b=np.float64(1)).to_dict()))["a"] == 3.0
    assert bools.score(np.array("t0"), np.array("t1")) == bools.score("t0", "t1")  # 0-d string arrays
    with pytest.raises(ValueError, match="single class"):
        classifier.fit(left, right, np.ones_like(labels))
    with pytest.raises(ValueError, match="too few pairs of label 0"):
        classifier.fit(left[:6], right[:6], labels[:6])
    with pytest.raises(TypeError, match=r"sentences2\[1\] is NoneType"):
        classifier.fit(left[:2], ["t1", None], labels[:2])
    with pytest.raises(ValueError, match="pairwise scores need inputs of the same length"):
        classifier.score(["t0", "t1"], ["t2"])


# ------------------------------------------------------- few-shot classifier
SUPPORT = (["t0", "t1", "t9", "t18", "t19"], ["east", "east", "north", "west", "west"])


def test_prototype_predictions_and_scores():
    classifier = FewShotClassifier(circle_encoder()).add_examples(*SUPPORT)
    assert classifier.classes == ["east", "north", "west"]
    assert classifier.predict(["t2", "t8", "t20", "t13"]) == ["east", "north", "west", "north"]
    scores = classifier.scores(["t0"])
    # Prototype of east is at 5 degrees; cosine to t0 = cos(5 deg).
    assert scores[0, 0] == pytest.approx(math.cos(math.radians(5)), abs=1e-6)


def test_knn_uses_the_nearest_examples_of_each_class():
    classifier = FewShotClassifier(circle_encoder(), strategy="knn", k=1).add_examples(*SUPPORT)
    scores = classifier.scores(["t3"])
    expected = [math.cos(math.radians(20)), math.cos(math.radians(60)), math.cos(math.radians(150))]
    np.testing.assert_allclose(scores[0], expected, atol=1e-6)


def test_logistic_head_matches_scikit_learn():
    linear_model = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(60, 8))
    targets = np.repeat(np.arange(6), 10)
    head = LogisticHead.fit(embeddings, targets, 6, c=10.0)
    reference = linear_model.LogisticRegression(C=10.0, tol=1e-10, max_iter=10_000).fit(embeddings, targets)
    queries = rng.normal(size=(20, 8))
    np.testing.assert_allclose(head.probabilities(queries), reference.predict_proba(queries), atol=1e-3)


def test_logistic_strategy_refits_when_the_support_set_changes():
    classifier = FewShotClassifier(circle_encoder(), strategy="logistic").add_examples(*SUPPORT)
    texts = [f"t{i}" for i in range(36)]
    probabilities = classifier.predict_proba(texts)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(probabilities, classifier.scores(texts))
    assert classifier.predict(["t1", "t9", "t19"]) == ["east", "north", "west"]
    classifier.add_examples(["t27", "t28"], ["south", "south"])  # a new class: the head is refitted
    assert classifier.classes[-1] == "south" and classifier.predict_proba(["t27"]).shape == (1, 4)
    assert classifier.predict(["t27"]) == ["south"]
    classifier.remove_class("south")
    assert classifier.predict_proba(["t27"]).shape == (1, 3)


def test_predict_proba_sums_to_one_and_agrees_with_predict():
    classifier = FewShotClassifier(circle_encoder()).add_examples(*SUPPORT)
    texts = [f"t{i}" for i in range(36)]
    probabilities = classifier.predict_proba(texts)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert [classifier.classes[i] for i in probabilities.argmax(axis=1)] == classifier.predict(texts)


def test_new_classes_without_retraining():
    encoder = circle_encoder()
    classifier = FewShotClassifier(encoder).add_examples(*SUPPORT)
    assert classifier.predict(["t27"]) == ["west"]  # 85 degrees from west's prototype, 95 from east's
    classifier.add_examples(["t27"], ["south"])  # one example is enough
    assert classifier.predict(["t27", "t26"]) == ["south", "south"]
    classifier.remove_class("south")
    assert "south" not in classifier.classes
    with pytest.raises(KeyError, match="no class 'south'"):
        classifier.remove_class("south")


def test_none_of_these_threshold_and_tuning():
    classifier = FewShotClassifier(circle_encoder(), threshold=math.cos(math.radians(30)), unknown_label="oos")
    classifier.add_examples(*SUPPORT)
    assert classifier.predict(["t1", "t27"]) == ["east", "oos"]
    classifier.threshold = None
    tune_texts = ["t2", "t10", "t17", "t26", "t28", "t5"]
    tune_labels = ["east", "north", "west", "oos", "oos", "oos"]
    threshold = classifier.fit_threshold(tune_texts, tune_labels)
    assert classifier.predict(tune_texts) == tune_labels  # separable: the tuned threshold gets all right
    assert threshold == classifier.threshold


def test_few_shot_bad_input(caplog):
    classifier = FewShotClassifier(circle_encoder())
    with pytest.raises(RuntimeError, match="support set is empty"):
        classifier.predict(["t0"])
    with pytest.raises(ValueError, match="2 texts but 1 labels"):
        classifier.add_examples(["t0", "t1"], ["a"])
    with pytest.raises(ValueError, match="column 'labels', row 1: expected a class label"):
        classifier.add_examples(["t0", "t1"], ["a", None])
    with pytest.raises(ValueError, match="reserved"):
        classifier.add_examples(["t0"], ["none"])
    with pytest.raises(TypeError, match="labels must be a list with one label per text, got the str 'ab'"):
        classifier.add_examples(["t0", "t1"], "ab")
    for bad in (None, ["x"], "", True):
        with pytest.raises(TypeError, match="unknown_label must be a non-empty str or an int"):
            FewShotClassifier(circle_encoder(), unknown_label=bad)
    with pytest.raises(ValueError, match=r"texts\[1\] is empty \('   '\); every support example needs a text"):
        classifier.add_examples(["t0", "   "], ["a", "b"])
    classifier.add_examples(["t0"], ["a"])
    dim = classifier.encoder.dim
    with pytest.raises(ValueError, match=rf"embeddings must have shape \(1, {dim}\)"):
        classifier.add_examples(["t1"], ["b"], embeddings=np.ones((1, dim + 1)))
    assert classifier.support() == (["t0"], ["a"])  # the failed call changed nothing
    with pytest.raises(ValueError, match=rf"query embeddings must have shape \(n, {dim}\)"):
        classifier.scores(np.ones((2, 2 * dim)))
    with pytest.raises(ValueError, match="out-of-scope ones"):
        classifier.fit_threshold(["t1"], ["a"])
    with pytest.raises(ValueError, match="fit_threshold got 2 texts but 1 labels"):
        classifier.fit_threshold(["t1", "t2"], ["none"])
    with pytest.raises(ValueError, match=r"embeddings row 0 holds NaN or infinity"):
        classifier.add_examples(["t1"], ["b"], embeddings=np.full((1, dim), np.nan))
    with pytest.raises(ValueError, match=r"query embeddings row 1 holds NaN or infinity"):
        classifier.predict(np.vstack([np.ones(dim), np.full(dim, np.inf)]))
    with pytest.raises(ValueError, match="column 'labels', row 1: expected a class label"):
        classifier.fit_threshold(["t1", "t2"], ["none", None])
    assert FewShotClassifier(circle_encoder(), unknown_label=np.int64(-1)).unknown_label == -1
    with caplog.at_level("WARNING"):
        classifier.fit_threshold(["t1", "t2"], ["none", "CAT"])
    assert "1 label(s) name no class of the support set ('CAT')" in caplog.text
    with caplog.at_level("WARNING"):
        classifier.fit_threshold(["t1", "t2"], ["none", 1])  # the int 1 is not a class "1"
    assert "(1)" in caplog.text
    with pytest.raises(ValueError, match="unknown strategy 'svm'"):
        FewShotClassifier(circle_encoder(), strategy="svm")
    for options, message in [
        ({"threshold": "0.5"}, "threshold must be a finite number or None, got '0.5'"),
        ({"threshold": float("nan")}, "threshold must be a finite number"),
        ({"k": 0}, "k must be an int >= 1"),
        ({"temperature": float("nan")}, "temperature must be a finite number > 0, got nan"),
        ({"logistic_c": -1}, "logistic_c must be a finite number > 0"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            FewShotClassifier(circle_encoder(), **options)
    for options, message in [  # not an int at all: a TypeError
        ({"k": 2.5}, "k must be an int >= 1, got 2.5"),
        ({"batch_size": True}, "batch_size must be an int >= 1, got True"),
    ]:
        with pytest.raises(TypeError, match=re.escape(message)):
            FewShotClassifier(circle_encoder(), **options)


def test_few_shot_save_and_load(tmp_path):
    encoder = circle_encoder()
    classifier = FewShotClassifier(encoder, strategy="knn", k=2, threshold=0.5).add_examples(*SUPPORT)
    classifier.save(tmp_path / "clf")
    FewShotClassifier(encoder, strategy="logistic", logistic_c=5.0).add_examples(*SUPPORT).save(tmp_path / "lr")
    assert FewShotClassifier.load(tmp_path / "lr", encoder).logistic_c == 5.0
    calls = encoder.calls
    loaded = FewShotClassifier.load(tmp_path / "clf", encoder)
    assert encoder.calls == calls  # the stored embeddings are reused, not re-encoded
    assert (loaded.strategy, loaded.k, loaded.threshold, loaded.classes) == ("knn", 2, 0.5, classifier.classes)
    texts = [f"t{i}" for i in range(36)]
    np.testing.assert_array_equal(loaded.scores(texts), classifier.scores(texts))  # to the bit: a tuned
    for strategy in ("knn", "logistic"):  # one string in, one answer out
        loaded.strategy = strategy
        assert loaded.predict("t3") == loaded.predict(["t3"])[0]
        np.testing.assert_array_equal(loaded.scores(np.str_("t3")), loaded.scores(["t3"])[0])
        np.testing.assert_array_equal(loaded.predict_proba("t3"), loaded.predict_proba(["t3"])[0])
        assert loaded.predict(np.array("t3", dtype=object)) == loaded.predict(["t3"])[0]
        vector = encoder.encode(["t3"], normalize=True)  # (1, dim): one embedding, as a 1-D vector
        assert loaded.predict(vector[0]) == loaded.predict(vector)[0]
        np.testing.assert_array_equal(loaded.scores(vector[0]), loaded.scores(vector)[0])
    loaded.strategy = "knn"
    assert loaded.support() == classifier.support()  # threshold sits exactly on a score
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a saved few-shot classifier"):
        classifier.save(tmp_path / "notes")
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"
    classifier.save(tmp_path / "clf")  # its own folder: replaced
    (tmp_path / "clf").rename(tmp_path / ".clf.abcd1234.ready")  # a save killed between its two renames
    assert FewShotClassifier.load(tmp_path / "clf", encoder).classes == classifier.classes  # put back
    config = json.loads((tmp_path / "clf" / "few_shot.json").read_text())
    (tmp_path / "clf" / "few_shot.json").write_text("[]")
    with pytest.raises(
        ValueError, match=r"few_shot.json: expected a JSON object \(saved few-shot classifier\), got list"
    ):
        FewShotClassifier.load(tmp_path / "clf", encoder)
    for broken in ({k: v for k, v in config.items() if k != key} for key in ("k", "logistic_c", "model_sha256")):
        (tmp_path / "clf" / "few_shot.json").write_text(json.dumps(broken))
        with pytest.raises(ValueError, match="few_shot.json is not a saved few-shot classifier"):
            FewShotClassifier.load(tmp_path / "clf", encoder)
    assert config["format"] == 2
    for written, message in ((3, r"format 3 is newer than this sentsim reads \(2\)"), (1, "format 1 is unknown")):
        (tmp_path / "clf" / "few_shot.json").write_text(json.dumps(config | {"format": written}))
        with pytest.raises(ValueError, match="few_shot.json: few-shot classifier " + message):
            FewShotClassifier.load(tmp_path / "clf", encoder)


def test_a_classifier_loaded_with_another_model_is_embedded_again_and_warned(tiny_transformer, tmp_path, caplog):
    import copy

    import torch

    from sentsim import SentenceEncoder

    first = SentenceEncoder(tiny_transformer)
    second = copy.deepcopy(first)
    with torch.no_grad():
        next(second.parameters()).add_(0.5)  # same shape and dimension, other weights
    texts, labels = ["a cat sleeps", "stocks fell", "a dog runs"], ["animal", "market", "animal"]
    FewShotClassifier(first, threshold=0.5).add_examples(texts, labels).save(tmp_path / "clf")
    PairClassifier(first, threshold=0.5).save(tmp_path / "pairs.json")
    assert "another model" not in caplog.text
    FewShotClassifier.load(tmp_path / "clf", first)  # the same model: no warning
    assert "another model" not in caplog.text
    loaded = FewShotClassifier.load(tmp_path / "clf", second)
    assert "saved with another model: the support set is embedded again" in caplog.text
    fresh = FewShotClassifier(second).add_examples(texts, labels)
    np.testing.assert_allclose(loaded.scores(["a bird sings"]), fresh.scores(["a bird sings"]), atol=1e-6)
    PairClassifier.load(tmp_path / "pairs.json", second)
    assert "fitted with another model: its threshold and calibration may not fit" in caplog.text
