import json

import numpy as np
import pytest

from sentsim import DenseConfig, LSTMTower, SentenceEncoder
from sentsim.cli import main
from sentsim.decisions import FewShotClassifier
from sentsim.evaluation import classification_metrics
from sentsim.training import TrainingConfig, distill

from .toy_task import TOPICS, toy_encoder, toy_pairs

QUIET = {"show_progress": False}
TEXTS = [text for texts in TOPICS.values() for text in texts]


def test_distillation_brings_the_student_to_the_teacher():
    teacher = toy_encoder()
    teacher.normalize = True
    tower = LSTMTower.from_transformer(teacher, hidden_size=16)
    student = SentenceEncoder(
        tower, pooling="max", normalize=True, dense=DenseConfig(in_features=32, out_features=32, activation="identity")
    )
    target = teacher.encode(TEXTS)
    before = float(np.mean((student.encode(TEXTS) - target) ** 2))
    distill(student, teacher, TEXTS * 2, TrainingConfig(epochs=40, batch_size=8, learning_rate=5e-3, **QUIET))
    after = float(np.mean((student.encode(TEXTS) - target) ** 2))
    assert after < 0.3 * before


def test_distillation_needs_matching_dimensions():
    teacher = toy_encoder()
    student = SentenceEncoder(LSTMTower.from_transformer(teacher, hidden_size=5))
    with pytest.raises(
        ValueError, match=r"student embeds in 10 dimensions, the teacher in 32: give the student dense="
    ):
        distill(student, teacher, TEXTS)
    with pytest.raises(ValueError, match="at least one non-empty text"):
        distill(student, teacher, ["", "  "])


def _class_margin(encoder, texts, labels):
    """Mean cosine within classes minus mean cosine across classes."""
    embeddings = encoder.encode(texts, normalize=True)
    cosines = embeddings @ embeddings.T
    same = np.equal.outer(np.asarray(labels, dtype=object), np.asarray(labels, dtype=object))
    off_diagonal = ~np.eye(len(texts), dtype=bool)
    return cosines[same & off_diagonal].mean() - cosines[~same].mean()


def test_few_shot_fine_tuning_separates_the_classes():
    encoder = toy_encoder(seed=1)
    texts = [texts[i] for texts in TOPICS.values() for i in range(4)]
    labels = [topic for topic in TOPICS for _ in range(4)]
    classifier = FewShotClassifier(encoder, **QUIET).add_examples(texts, labels)
    frozen_margin, frozen_scores = _class_margin(encoder, texts, labels), classifier.scores(texts)
    result = classifier.fine_tune(rounds=10, config=TrainingConfig(epochs=1, batch_size=8, learning_rate=1e-3, **QUIET))
    assert result.steps == 20
    assert _class_margin(encoder, texts, labels) > frozen_margin + 0.15
    # The support set is re-embedded: prototypes now come from the tuned encoder.
    assert not np.allclose(classifier.scores(texts), frozen_scores)
    assert classification_metrics(labels, classifier.predict(texts))["accuracy"] == 100.0


def test_fine_tuning_with_the_default_recipe_follows_the_classifier_progress_setting(capsys):
    texts = [texts[i] for texts in TOPICS.values() for i in range(2)]
    labels = [topic for topic in TOPICS for _ in range(2)]
    classifier = FewShotClassifier(toy_encoder(), show_progress=False).add_examples(texts, labels)
    assert classifier.fine_tune(rounds=1).steps == 1  # the batch shrinks to the support set's size
    assert "train:" not in capsys.readouterr().err


def test_fine_tuning_needs_two_classes():
    classifier = FewShotClassifier(toy_encoder()).add_examples(["the cat sleeps"], ["cat"])
    with pytest.raises(ValueError, match="at least 2 classes"):
        classifier.fine_tune()
    classifier.add_examples(["the market fell"], ["market"])
    with pytest.raises(ValueError, match="rounds must be an int >= 1, got 0"):
        classifier.fine_tune(rounds=0)
    with pytest.raises(TypeError, match="seed must be an int, got 1.5"):
        classifier.fine_tune(seed=1.5)


def _write_sts(path, pairs):
    path.write_text(
        "".join(f"{a},{b},{5 * s}\n" for a, b, s in zip(pairs.sentences1, pairs.sentences2, pairs.scores, strict=True))
    )
    return str(path)


def test_cli_train_evaluate_and_resume(tmp_path, capsys):
    model = tmp_path / "model"
    toy_encoder().save_pretrained(model)
    data = _write_sts(tmp_path / "train.csv", toy_pairs())
    common = [
        "--model",
        str(model),
        "--train",
        data,
        "--eval",
        data,
        "--loss",
        "cosent",
        "--batch-size",
        "8",
        "--lr",
        "1e-3",
        "--no-progress",
    ]
    assert main(["train", *common, "--epochs", "2", "--score-range", "0", "5", "--output", str(tmp_path / "run")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 8 and summary["best_metric"] > 0
    assert SentenceEncoder.from_pretrained(summary["model"]).dim == 32
    assert main(["train", *common, "--epochs", "2", "--score-range", "0", "5", "--output", str(tmp_path / "run")]) == 2
    assert "already holds a training run" in capsys.readouterr().err
    other = ["--output", str(tmp_path / "other"), "--resume", str(tmp_path / "run")]
    assert main(["train", *common, "--epochs", "2", "--score-range", "0", "5", *other]) == 2
    assert "continues the run in that folder; drop --output" in capsys.readouterr().err
    assert main(["train", *common, "--epochs", "2", "--score-range", "0", "5", "--resume", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["steps"] == 8 and "NaN" not in out  # the run had finished: nothing left to do
    assert json.loads(out)["final_loss"] is None
    logged = [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert logged[-2:] == [8, 8]  # the last step's loss (8 steps, log_steps 10) and the evaluation


def test_cli_train_refuses_an_eval_file_that_cannot_be_scored_before_training(tmp_path, capsys):
    model = tmp_path / "model"
    toy_encoder().save_pretrained(model)
    data = _write_sts(tmp_path / "train.csv", toy_pairs())
    flat = tmp_path / "flat.csv"
    flat.write_text("a cat,a dog,3\nthe sun,the moon,3\nred,blue,3\n")  # every gold score equal
    run = tmp_path / "run"
    args = ["train", "--model", str(model), "--train", data, "--eval", str(flat), "--loss", "cosent"]
    assert main([*args, "--output", str(run), "--no-progress"]) == 2
    assert "all 3 gold scores equal 3.0; correlation is undefined" in capsys.readouterr().err
    assert not run.exists()  # refused before the run folder was made, not at the first evaluation


def test_cli_train_refuses_a_loss_that_does_not_fit(tmp_path, capsys):
    model = tmp_path / "model"
    toy_encoder().save_pretrained(model)
    data = _write_sts(tmp_path / "train.csv", toy_pairs())
    code = main(
        [
            "train",
            "--model",
            str(model),
            "--train",
            data,
            "--loss",
            "triplet",
            "--output",
            str(tmp_path / "run"),
            "--no-progress",
        ]
    )
    assert code == 2 and "TripletLoss needs the columns anchor, positive, negative" in capsys.readouterr().err
    code = main(
        [
            "train",
            "--model",
            str(model),
            "--train",
            data,
            "--loss",
            "cosine",
            "--output",
            str(tmp_path / "run2"),
            "--no-progress",
        ]
    )
    assert code == 2 and "rescale with score_range" in capsys.readouterr().err
    assert not (tmp_path / "run").exists() and not (tmp_path / "run2" / "final").exists()


def test_cli_train_fresh_lstm_and_distill(tmp_path, capsys):
    teacher = tmp_path / "teacher"
    toy_encoder().save_pretrained(teacher)
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS), encoding="utf-8")
    code = main(
        [
            "distill",
            "--teacher",
            str(teacher),
            "--texts",
            str(texts),
            "--output",
            str(tmp_path / "student"),
            "--hidden-size",
            "8",
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--no-progress",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    again = ["distill", "--teacher", str(teacher), "--texts", str(texts), "--hidden-size", "8", "--epochs", "2"]
    again += ["--batch-size", "8", "--no-progress"]
    assert main([*again, "--resume", str(tmp_path / "student")]) == 0  # --resume DIR, as in train
    assert json.loads(capsys.readouterr().out)["steps"] == summary["steps"]  # a finished run: nothing more to do
    assert main([*again, "--resume", str(tmp_path / "student"), "--output", str(tmp_path / "other")]) == 2
    assert "continues the run in that folder; drop --output" in capsys.readouterr().err
    student = SentenceEncoder.from_pretrained(summary["model"])
    assert student.tower.kind == "lstm" and student.dim == 32 and student.pooling.value == "max"
    data = _write_sts(tmp_path / "train.csv", toy_pairs())
    code = main(
        [
            "train",
            "--lstm-from",
            str(teacher),
            "--hidden-size",
            "8",
            "--train",
            data,
            "--loss",
            "cosent",
            "--output",
            str(tmp_path / "lstm"),
            "--batch-size",
            "8",
            "--no-progress",
        ]
    )
    assert code == 0 and SentenceEncoder.from_pretrained(tmp_path / "lstm" / "final").dim == 16
    transformer = ["train", "--model", str(teacher), "--train", data, "--loss", "cosent", "--no-progress"]
    assert main([*transformer, "--output", str(tmp_path / "t"), "--hidden-size", "8", "--unidirectional"]) == 2
    assert "--hidden-size, --unidirectional shape an LSTM tower: add --lstm-from MODEL" in capsys.readouterr().err
