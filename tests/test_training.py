import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sentsim import LSTMConfig, LSTMTower, SentenceEncoder
from sentsim.evaluation import evaluate_sts
from sentsim.training import TrainingConfig, load_training_data, make_loss, train

from .toy_task import TOPICS, columns, toy_encoder, toy_pairs, toy_tokenizer

QUIET = {"show_progress": False}


def test_thirty_steps_lower_the_loss_and_raise_spearman():
    pairs = toy_pairs()
    encoder = toy_encoder()
    before = evaluate_sts(encoder, pairs)["spearman"]
    losses = []
    train(
        encoder,
        load_training_data(columns(pairs)),
        make_loss("cosent"),
        TrainingConfig(epochs=10, batch_size=11, learning_rate=1e-3, warmup_ratio=0.1, **QUIET),
        on_step=lambda step, loss: losses.append(loss),
    )
    after = evaluate_sts(encoder, pairs)["spearman"]
    assert len(losses) == 30
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    assert after > before + 20 and after > 70


@pytest.mark.parametrize("loss_name", ["cosine", "contrastive", "triplet", "mnrl"])
def test_each_loss_trains(loss_name):
    pairs = toy_pairs()
    topics = list(TOPICS.values())
    if loss_name in ("cosine", "contrastive"):
        data = {"sentence1": pairs.sentences1, "sentence2": pairs.sentences2}
        data["score" if loss_name == "cosine" else "label"] = pairs.scores.astype(int).tolist()
    else:
        data = {
            "anchor": [t[i] for t in topics for i in range(4)],
            "positive": [t[(i + 1) % 4] for t in topics for i in range(4)],
            "negative": [topics[(k + 1) % 4][i] for k in range(4) for i in range(4)],
        }
    losses = []
    options = {"margin": 0.5, "distance": "cosine"} if loss_name == "triplet" else {}
    train(
        toy_encoder(),
        load_training_data(data),
        make_loss(loss_name, **options),
        TrainingConfig(epochs=8, batch_size=8, learning_rate=1e-3, **QUIET),
        on_step=lambda step, loss: losses.append(loss),
    )
    assert np.mean(losses[-4:]) < np.mean(losses[:4])


def test_lstm_tower_trains_from_scratch(tokenizer):
    pairs = toy_pairs()
    torch.manual_seed(0)
    vocab = toy_tokenizer()
    encoder = SentenceEncoder(
        LSTMTower(LSTMConfig(vocab_size=vocab.get_vocab_size(), embedding_dim=16, hidden_size=16), vocab)
    )
    before = evaluate_sts(encoder, pairs)["spearman"]
    train(
        encoder,
        load_training_data(columns(pairs)),
        make_loss("cosent"),
        TrainingConfig(epochs=15, batch_size=8, learning_rate=5e-3, **QUIET),
    )
    assert evaluate_sts(encoder, pairs)["spearman"] > max(before + 20, 60)


def test_runs_are_reproducible():
    pairs = toy_pairs()
    config = TrainingConfig(epochs=2, batch_size=8, learning_rate=1e-3, **QUIET)
    first, second = toy_encoder(), toy_encoder()
    for encoder in (first, second):
        train(encoder, load_training_data(columns(pairs)), make_loss("cosent"), config)
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


class Interrupted(Exception):
    pass


def test_kill_and_resume_equals_uninterrupted(tmp_path):
    pairs = toy_pairs()
    data = load_training_data(columns(pairs))
    config = TrainingConfig(
        epochs=3, batch_size=5, learning_rate=1e-3, checkpoint_steps=2, gradient_accumulation=2, log_steps=1, **QUIET
    )

    reference = toy_encoder()
    train(reference, data, make_loss("cosent"), config, output_dir=tmp_path / "straight")

    def crash(step, loss):
        if step == 5:  # the last checkpoint was written at step 4
            raise Interrupted

    crashed = toy_encoder()
    with pytest.raises(Interrupted):
        train(crashed, data, make_loss("cosent"), config, output_dir=tmp_path / "run", on_step=crash)
    checkpoint = tmp_path / "run" / "checkpoint"  # say the crash came as the checkpoint was being replaced:
    checkpoint.rename(tmp_path / "run" / ".checkpoint.x7q1ab2c.ready")  # the finished copy is put back on resume
    resumed = toy_encoder(seed=123)  # a fresh process: other weights, other RNG state
    result = train(resumed, data, make_loss("cosent"), config, output_dir=tmp_path / "run", resume=True)
    assert result.steps == 3 * 4  # 7 batches an epoch, 2 per step
    for (name, a), (_, b) in zip(reference.state_dict().items(), resumed.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)
    loaded = SentenceEncoder.from_pretrained(tmp_path / "run" / "final")
    np.testing.assert_allclose(loaded.encode(pairs.sentences1), reference.encode(pairs.sentences1), atol=1e-5)
    logged = [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert logged == list(range(1, 13))  # step 5, logged before the crash, is logged once
    assert _tensorboard_steps(tmp_path / "run", "loss") == list(range(1, 13))


def _tensorboard_steps(run: Path, tag: str) -> list[int]:
    """The steps TensorBoard shows for one scalar of a run (it reads every event file of the folder)."""
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    events = event_accumulator.EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    return [event.step for event in events.Scalars(tag)]


def test_metrics_records_past_a_step_are_dropped_even_after_a_torn_line(tmp_path):
    from sentsim.training.metrics_log import MetricsLog

    (tmp_path / "metrics.jsonl").write_text('{"step": 10, "loss": 1}\n{"step": 20, "loss": 0.5}\n{"step": 30, "lo')
    MetricsLog(tmp_path).drop_after(20)
    assert (tmp_path / "metrics.jsonl").read_text() == '{"step": 10, "loss": 1}\n{"step": 20, "loss": 0.5}\n'


def test_resume_of_a_run_that_failed_before_its_first_checkpoint_starts_again(tmp_path):
    pairs = toy_pairs()
    data = load_training_data(columns(pairs))
    config = TrainingConfig(epochs=1, batch_size=5, learning_rate=1e-3, log_steps=1, **QUIET)

    def failing(encoder):
        raise Interrupted

    with pytest.raises(Interrupted):  # the evaluator fails at the first epoch's end: no checkpoint yet
        train(toy_encoder(), data, make_loss("cosent"), config, output_dir=tmp_path / "run", evaluator=failing)
    with pytest.raises(ValueError, match="holds a run with another config"):
        train(
            toy_encoder(),
            data,
            make_loss("cosent"),
            TrainingConfig(epochs=2, batch_size=5, **QUIET),
            output_dir=tmp_path / "run",
            resume=True,
        )
    restarted, reference = toy_encoder(), toy_encoder()
    result = train(restarted, data, make_loss("cosent"), config, output_dir=tmp_path / "run", resume=True)
    train(reference, data, make_loss("cosent"), config, output_dir=tmp_path / "straight")
    assert result.steps == 7
    for (name, a), (_, b) in zip(reference.state_dict().items(), restarted.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)
    assert _tensorboard_steps(tmp_path / "run", "loss") == list(range(1, 8))  # not the failed attempt's too


def test_gradient_accumulation_equals_a_larger_batch():
    pairs = toy_pairs()
    data = load_training_data(columns(pairs))
    big, accumulated = toy_encoder(dropout=0.0), toy_encoder(dropout=0.0)
    common = {"epochs": 1, "learning_rate": 1e-3, "warmup_ratio": 0.0, "max_grad_norm": None, **QUIET}
    train(big, data, make_loss("cosine"), TrainingConfig(batch_size=32, **common))
    train(accumulated, data, make_loss("cosine"), TrainingConfig(batch_size=16, gradient_accumulation=2, **common))
    for (name, a), (_, b) in zip(big.state_dict().items(), accumulated.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=name)


def test_evaluation_best_checkpoint_and_metrics_log(tmp_path):
    pairs = toy_pairs()
    result = train(
        toy_encoder(),
        load_training_data(columns(pairs)),
        make_loss("cosent"),
        TrainingConfig(epochs=4, batch_size=8, learning_rate=1e-3, eval_steps=2, log_steps=2, **QUIET),
        output_dir=tmp_path / "run",
        evaluator=lambda encoder: evaluate_sts(encoder, pairs),
    )
    best = SentenceEncoder.from_pretrained(tmp_path / "run" / "best")
    assert evaluate_sts(best, pairs)["spearman"] == pytest.approx(result.best_metric, abs=1e-3)
    assert result.best_metric == max(h["eval"]["spearman"] for h in result.history)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {"loss", "lr"} <= set(records[0]) and any("eval" in r for r in records)


def test_early_stopping():
    pairs = toy_pairs()
    result = train(
        toy_encoder(),
        load_training_data(columns(pairs)),
        make_loss("cosent"),
        TrainingConfig(epochs=20, batch_size=8, learning_rate=1e-9, eval_steps=1, early_stopping_patience=2, **QUIET),
        evaluator=lambda encoder: {"primary_metric": "score", "score": 1.0},  # never improves
    )
    assert result.stopped_early and result.steps == 3


def test_config_and_evaluator_mistakes_are_named():
    with pytest.raises(TypeError, match="epochs must be an int >= 1, got 1.5"):
        TrainingConfig(epochs=1.5)
    with pytest.raises(TypeError, match="batch_size must be an int >= 1, got 2.5"):
        TrainingConfig(batch_size=2.5)
    with pytest.raises(ValueError, match="learning_rate must be a finite number > 0, got nan"):
        TrainingConfig(learning_rate=float("nan"))
    with pytest.raises(ValueError, match="warmup_ratio must be a number in"):
        TrainingConfig(warmup_ratio=1.0)
    with pytest.raises(ValueError, match="weight_decay must be a finite number >= 0"):
        TrainingConfig(weight_decay="0.1")
    with pytest.raises(ValueError, match="max_grad_norm must be a finite number > 0"):
        TrainingConfig(max_grad_norm=0)
    with pytest.raises(TypeError, match="show_progress must be True or False"):
        TrainingConfig(show_progress="no")
    # numpy numbers are accepted and stored plain, so the config can be written to run.json
    config = TrainingConfig(batch_size=np.int64(4), eval_steps=np.int64(3), learning_rate=np.float32(1e-3))
    assert json.loads(json.dumps(config.to_dict()))["eval_steps"] == 3
    assert type(config.batch_size) is int and type(config.learning_rate) is float
    with pytest.raises(TypeError, match="eval_steps must be an int >= 1 or None, got 0.5"):
        TrainingConfig(eval_steps=0.5)
    data = load_training_data(columns(toy_pairs()))
    with pytest.raises(ValueError, match="the evaluator must return a dict with 'primary_metric'"):
        train(
            toy_encoder(),
            data,
            make_loss("cosent"),
            TrainingConfig(batch_size=8, **QUIET),
            evaluator=lambda e: {"x": 1},
        )


def test_numpy_evaluation_results_are_logged_and_a_nan_primary_metric_is_no_improvement(tmp_path, caplog):
    data, config = load_training_data(columns(toy_pairs())), TrainingConfig(batch_size=8, **QUIET)
    result = train(
        toy_encoder(),
        data,
        make_loss("cosent"),
        config,
        output_dir=tmp_path / "run",
        evaluator=lambda e: {"x": np.float32(0.5), "n": np.int64(3), "primary_metric": "x"},
    )
    assert result.best_metric == 0.5
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {"x": 0.5, "n": 3, "primary_metric": "x"} in [r.get("eval") for r in records]
    scores = iter([0.5, float("nan"), 0.4])
    result = train(
        toy_encoder(),
        data,
        make_loss("cosent"),
        TrainingConfig(epochs=3, batch_size=8, **QUIET),
        output_dir=tmp_path / "nan",
        evaluator=lambda e: {"x": next(scores), "primary_metric": "x"},
    )
    assert result.best_metric == 0.5 and result.best_step == 4  # NaN is never the best
    assert "primary metric 'x' is nan: counted as no improvement" in caplog.text
    lines = (tmp_path / "nan" / "metrics.jsonl").read_text()
    assert "NaN" not in lines
    assert {"x": None, "primary_metric": "x"} in [json.loads(line).get("eval") for line in lines.splitlines()]
    with pytest.raises(ValueError, match="the evaluator's primary metric 'x' must be a number, got '0.5'"):
        train(toy_encoder(), data, make_loss("cosent"), config, evaluator=lambda e: {"x": "0.5", "primary_metric": "x"})


def test_bad_training_setups_fail_before_any_step(tmp_path):
    pairs = toy_pairs()
    data = load_training_data(columns(pairs))
    encoder = toy_encoder()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    with pytest.raises(ValueError, match="batch_size 64 is larger than the 32 training examples"):
        train(encoder, data, make_loss("cosent"), TrainingConfig(batch_size=64, **QUIET))
    with pytest.raises(
        ValueError,
        match="TripletLoss needs the columns anchor, positive, negative; training data has sentence1, sentence2, score",
    ):
        train(encoder, data, make_loss("triplet"), TrainingConfig(**QUIET))
    with pytest.raises(ValueError, match="ContrastiveLoss needs a 0/1 'label' column"):
        train(encoder, data, make_loss("contrastive"), TrainingConfig(**QUIET))

    class Undeclared(torch.nn.Module):  # a loss of the user's own, without config()
        columns, target = ("sentence1", "sentence2", "score"), "score"

    with pytest.raises(TypeError, match="Undeclared has no 'config'"):
        train(encoder, data, Undeclared(), TrainingConfig(**QUIET))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="exists and is not empty"):
        train(encoder, data, make_loss("cosent"), TrainingConfig(**QUIET), output_dir=tmp_path / "busy")
    with pytest.raises(ValueError, match="nothing to resume"):
        train(encoder, data, make_loss("cosent"), TrainingConfig(**QUIET), output_dir=tmp_path / "busy", resume=True)
    for name, tensor in encoder.state_dict().items():
        assert torch.equal(tensor, before[name]), name


def test_existing_run_and_resume_with_another_config(tmp_path):
    pairs = toy_pairs()
    data = load_training_data(columns(pairs))
    config = TrainingConfig(epochs=1, batch_size=8, **QUIET)
    train(toy_encoder(), data, make_loss("cosent"), config, output_dir=tmp_path / "run")
    with pytest.raises(ValueError, match="already holds a training run; resume it"):
        train(toy_encoder(), data, make_loss("cosent"), config, output_dir=tmp_path / "run")
    with pytest.raises(ValueError, match="holds a run with another config"):
        train(
            toy_encoder(),
            data,
            make_loss("cosent"),
            TrainingConfig(epochs=1, batch_size=4, **QUIET),
            output_dir=tmp_path / "run",
            resume=True,
        )
    with pytest.raises(ValueError, match="holds a run with another loss"):
        train(toy_encoder(), data, make_loss("cosine"), config, output_dir=tmp_path / "run", resume=True)
    flipped = load_training_data(columns(pairs) | {"score": [1 - s for s in pairs.scores]})  # same shape
    with pytest.raises(ValueError, match="holds a run with another data"):
        train(toy_encoder(), flipped, make_loss("cosent"), config, output_dir=tmp_path / "run", resume=True)
    shorter = toy_encoder()
    shorter.max_seq_length = 8
    with pytest.raises(ValueError, match="holds a run with another model"):
        train(shorter, data, make_loss("cosent"), config, output_dir=tmp_path / "run", resume=True)


def test_numpy_loss_options_and_bool_labels(tmp_path):
    pairs = toy_pairs()
    pair_columns = {name: values for name, values in columns(pairs).items() if name != "score"}
    data = load_training_data(pair_columns | {"label": np.asarray(pairs.scores) > 0.5})  # a bool column
    config = TrainingConfig(epochs=1, batch_size=8, **QUIET | {"show_progress": np.False_})
    assert config.show_progress is False
    train(toy_encoder(), data, make_loss("contrastive", online=np.True_), config, output_dir=tmp_path / "run")
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["loss"]["online"] is True  # recorded, so a resume with another setting is refused
    with pytest.raises(ValueError, match="holds a run with another loss"):
        train(
            toy_encoder(),
            data,
            make_loss("contrastive", online=np.False_),
            config,
            output_dir=tmp_path / "run",
            resume=True,
        )


def test_a_run_record_or_checkpoint_of_another_format_is_refused(tmp_path):
    import shutil

    data = load_training_data(columns(toy_pairs()))
    config = TrainingConfig(epochs=2, batch_size=8, checkpoint_steps=2, **QUIET)
    train(toy_encoder(), data, make_loss("cosent"), config, output_dir=tmp_path / "run")
    run_file, state_file = tmp_path / "run" / "run.json", tmp_path / "run" / "checkpoint" / "state.json"
    run, state = json.loads(run_file.read_text()), json.loads(state_file.read_text())
    assert run["format"] == state["format"] == state["run"]["format"] == 1
    assert run["loss"] == {"name": "CoSENTLoss", "scale": 20.0, "gather": True}  # its config(), not its attributes

    def resume():
        return train(toy_encoder(), data, make_loss("cosent"), config, output_dir=tmp_path / "run", resume=True)

    state_file.write_text(json.dumps(state | {"format": 2}))
    with pytest.raises(ValueError, match=r"state.json: checkpoint format 2 is newer than this sentsim reads \(1\)"):
        resume()
    state_file.write_text(json.dumps(state | {"run": state["run"] | {"format": 0}}))
    with pytest.raises(ValueError, match="state.json: run record format 0 is unknown; this sentsim reads format 1"):
        resume()
    shutil.rmtree(tmp_path / "run" / "checkpoint")  # as if it stopped before its first checkpoint: run.json is read
    run_file.write_text(json.dumps({key: value for key, value in run.items() if key != "format"}))
    with pytest.raises(ValueError, match="run.json records no run record format; this sentsim reads format 1"):
        resume()


@pytest.mark.parametrize(
    "data, options, message",
    [
        (
            {"sentence1": ["a", None], "sentence2": ["b", "c"], "score": [1, 2]},
            {},
            "column 'sentence1', row 1: expected a non-empty text, got None",
        ),
        (
            {"sentence1": ["a", ""], "sentence2": ["b", "c"], "score": [1, 2]},
            {},
            "column 'sentence1', row 1: expected a non-empty text",
        ),
        (
            {"sentence1": ["a", "b"], "sentence2": ["b", "c"], "score": [1, float("nan")]},
            {},
            "column 'score', row 1: expected a finite number",
        ),
        (
            {"sentence1": ["a", "b"], "sentence2": ["b", "c"], "score": [1, 7]},
            {"score_range": (0, 5)},
            "column 'score', row 1: 7.0 is outside the score range",
        ),
        (
            {"sentence1": ["a", "b"], "sentence2": ["b", "c"], "label": [1, "x"]},
            {},
            "column 'label', row 1: expected an integer label",
        ),
        (
            {"sentence1": ["a", "b"], "sentence2": ["b", "c"], "label": ["1.0", "0.5"]},
            {},
            "column 'label', row 1: expected an integer label, got 0.5",
        ),
        ({"sentence1": [], "sentence2": [], "score": []}, {}, "the dataset is empty"),
        ({"question": ["a"]}, {}, "no text columns"),
        (
            {"sentence1": ["a"], "sentence2": ["b"], "score": [1]},
            {"score_range": (5, 0)},
            r"score_range must be \(low, high\) with finite low < high, got \(5, 0\)",
        ),
        (
            {"sentence1": ["a"], "sentence2": ["b"], "score": [1]},
            {"columns": {"qq": "sentence1"}},
            "columns renames 'qq', not a column here",
        ),
    ],
)
def test_training_data_validation(data, options, message):
    with pytest.raises(ValueError, match=message):
        load_training_data(data, **options)


def test_labels_outside_their_range_for_contrastive():
    data = load_training_data({"sentence1": ["a", "b"], "sentence2": ["c", "d"], "label": [1, 2]})
    with pytest.raises(ValueError, match="column 'label', row 1: ContrastiveLoss needs 0 or 1, got 2"):
        train(toy_encoder(), data, make_loss("contrastive"), TrainingConfig(batch_size=2, **QUIET))


def test_score_range_rescales_and_files_load(tmp_path):
    path = tmp_path / "sts.csv"
    path.write_text("a cat,a kitten,5.0\nstocks,rain,0.0\nmusic,piano,2.5\n", encoding="utf-8")
    data = load_training_data(path, score_range=(0, 5))
    np.testing.assert_allclose(data.columns["score"], [1.0, 0.0, 0.5])
    assert data.columns["sentence1"] == ["a cat", "stocks", "music"]
    datasets = pytest.importorskip("datasets")
    dataset = datasets.Dataset.from_dict({"q": ["x", "y"], "a": ["z", "w"]})
    mapped = load_training_data(dataset, columns={"q": "anchor", "a": "positive"})
    assert mapped.columns == {"anchor": ["x", "y"], "positive": ["z", "w"]}
    splits = datasets.DatasetDict({"train": dataset, "test": dataset.select([0])})  # a dict of splits, not columns
    assert len(load_training_data(splits, columns={"q": "anchor", "a": "positive"})) == 2
    assert len(load_training_data(splits, split="test", columns={"q": "anchor", "a": "positive"})) == 1
    with pytest.raises(FileNotFoundError, match="missing.csv: no such file"):  # not a Hub lookup
        load_training_data("missing.csv")


def test_prompts_are_prepended_to_the_named_text_columns(tmp_path, capsys):
    source = {"anchor": ["a cat", "rain"], "positive": ["the cat sleeps", "wet weather"], "label": [0, 1]}
    data = load_training_data(source, prompts={"anchor": "query: ", "positive": "passage: "})
    assert data.columns["anchor"] == ["query: a cat", "query: rain"]
    assert data.columns["positive"] == ["passage: the cat sleeps", "passage: wet weather"]
    assert load_training_data(source, prompts="x: ").columns["positive"][0] == "x: the cat sleeps"
    with pytest.raises(ValueError, match=r"prompts names \['negative'\], not a text column here \(anchor, positive\)"):
        load_training_data(source, prompts={"negative": "passage: "})
    with pytest.raises(TypeError, match="prompts must be a str or a dict of text column -> str"):
        load_training_data(source, prompts={"anchor": 1})
    from sentsim.cli import main

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        "".join(
            json.dumps({"anchor": a, "positive": p}) + "\n"
            for a, p in zip(source["anchor"], source["positive"], strict=True)
        )
    )
    train_cli = ["train", "--train", str(pairs), "--loss", "mnrl", "--output", str(tmp_path / "run"), "--no-progress"]
    assert main([*train_cli, "--prompts", '{"question": "query: "}']) == 2
    assert "prompts names ['question'], not a text column here (anchor, positive)" in capsys.readouterr().err


def test_cli_loss_options_reach_the_loss(tmp_path, capsys, monkeypatch):
    from sentsim.cli import main
    from sentsim.cli import train as train_cli

    seen = []

    def stop(encoder, data, loss, *args, **kwargs):
        seen.append(loss)
        raise ValueError("stopped before training")

    monkeypatch.setattr(train_cli, "train", stop)
    toy_encoder().save_pretrained(tmp_path / "model")
    data = tmp_path / "t.jsonl"
    data.write_text('{"anchor": "a cat", "positive": "the cat", "negative": "rain"}\n' * 4)
    model = ["--model", str(tmp_path / "model")]
    command = ["train", "--train", str(data), "--loss", "triplet", "--output", str(tmp_path / "run"), *model]
    assert main([*command, "--loss-options", '{"margin": 0.25, "distance": "cosine", "batch_hard": true}']) == 2
    assert (seen[0].margin, seen[0].distance, seen[0].batch_hard) == (0.25, "cosine", True)
    assert main([*command, "--loss-options", '{"temperature": 0.1}']) == 2
    assert "--loss-options: the triplet loss has no option 'temperature'" in capsys.readouterr().err
    assert main([*command, "--loss-options", '{"name": "x"}']) == 2
    assert "--loss-options: the triplet loss has no option 'name'" in capsys.readouterr().err
    assert main([*command, "--loss-options", '{"margin": -1}']) == 2
    assert "margin" in capsys.readouterr().err


def test_a_start_killed_while_writing_run_json_can_start_again(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".run.json.k2j4h1x9.tmp").write_text('{"mod')  # the torn temporary file
    data = load_training_data(columns(toy_pairs()))
    config = TrainingConfig(epochs=1, batch_size=8, **QUIET)
    result = train(toy_encoder(), data, make_loss("cosent"), config, output_dir=tmp_path / "run")
    assert result.steps > 0 and not list((tmp_path / "run").glob(".run.json.*.tmp"))


def test_a_mined_negative_that_is_another_rows_positive_is_masked_for_that_row():
    from sentsim.training.losses import InBatchNegativesLoss
    from sentsim.training.trainer import _batch_inputs

    rows = {
        "anchor": ["a0", "a1", "a2"],
        "positive": ["p0", "p1", "p2"],
        "negative_1": ["p1", "n1", "n2"],  # row 0's mined negative is row 1's positive
        "negative_2": ["m0", "m1", "p0"],
    }
    columns, targets = _batch_inputs(InBatchNegativesLoss(), rows, torch.device("cpu"))
    assert columns[2] == ["p1", "m0", "n1", "m1", "n2", "p0"]  # row by row
    labels, negative_labels = targets["labels"].tolist(), targets["negative_labels"].tolist()
    assert negative_labels[0] == labels[1] and negative_labels[5] == labels[0]
    assert len(set(negative_labels[1:5]) | set(labels)) == 7  # the other texts share no id
    _, grouped = _batch_inputs(InBatchNegativesLoss(), rows | {"label": [0, 1, 2]}, torch.device("cpu"))
    assert "negative_labels" not in grouped  # class ids for the rows: negatives have none
