import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from sentsim import SentenceEncoder
from sentsim.cli import main

TEXTS = ["The cat sat on the mat.", "A dog is running in the park.", "Rain is expected over the weekend."]


@pytest.fixture
def model_dir(tiny_transformer, tmp_path):
    SentenceEncoder(tiny_transformer, normalize=True).save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def test_encode_lines(model_dir, tmp_path, capsys):
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    assert (
        main(["encode", "--model", str(model_dir), "--input", str(source), "--output", str(tmp_path / "out.npy")]) == 0
    )
    embeddings = np.load(tmp_path / "out.npy")
    np.testing.assert_allclose(embeddings, SentenceEncoder.from_pretrained(model_dir).encode(TEXTS), atol=1e-6)
    assert "out.npy" in capsys.readouterr().out


def test_encode_with_onnx_runtime(model_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    out = tmp_path / "onnx.npy"
    assert (
        main(["encode", "--model", str(model_dir), "--input", str(source), "--output", str(out), "--runtime", "onnx"])
        == 0
    )
    np.testing.assert_allclose(np.load(out), SentenceEncoder.from_pretrained(model_dir).encode(TEXTS), atol=1e-5)


def test_encode_jsonl_and_stdin(model_dir, tmp_path, monkeypatch):
    source = tmp_path / "texts.jsonl"
    source.write_text("\n".join(json.dumps({"text": t}) for t in TEXTS), encoding="utf-8")
    main(["encode", "--model", str(model_dir), "--input", str(source), "--output", str(tmp_path / "a.npy")])
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("\n".join(TEXTS)))
    main(["encode", "--model", str(model_dir), "--input", "-", "--output", str(tmp_path / "b.npy"), "--no-progress"])
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    assert np.load(tmp_path / "a.npy").shape == (3, 32)


def test_similarity_prints_the_score(model_dir, capsys):
    assert main(["similarity", "--model", str(model_dir), TEXTS[0], TEXTS[1]]) == 0
    expected = SentenceEncoder.from_pretrained(model_dir).similarity(TEXTS[0], TEXTS[1])
    assert float(capsys.readouterr().out) == pytest.approx(expected, abs=1e-5)


def test_similarity_of_a_pairs_file(model_dir, tmp_path, capsys):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(f"{TEXTS[0]}\t{TEXTS[1]}\n{TEXTS[1]}\t{TEXTS[2]}\n", encoding="utf-8")
    main(["similarity", "--model", str(model_dir), "--pairs", str(pairs), "--metric", "dot"])
    lines = capsys.readouterr().out.splitlines()
    encoder = SentenceEncoder.from_pretrained(model_dir)
    assert len(lines) == 2
    assert float(lines[1].split("\t")[0]) == pytest.approx(encoder.similarity(TEXTS[1], TEXTS[2], "dot"), abs=1e-5)


def test_similarity_of_pairs_on_stdin(model_dir, tmp_path, capsys, monkeypatch):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(f"{TEXTS[0]}\t{TEXTS[1]}\r\n \n{TEXTS[1]}\t{TEXTS[2]}\r\n", encoding="utf-8")  # CRLF, a blank
    assert main(["similarity", "--model", str(model_dir), "--pairs", str(pairs)]) == 0
    from_file = capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(pairs.read_text(encoding="utf-8")))
    assert main(["similarity", "--model", str(model_dir), "--pairs", "-"]) == 0
    assert capsys.readouterr().out == from_file and len(from_file.splitlines()) == 2
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("a\tb\nonly one field\n"))
    assert main(["similarity", "--model", str(model_dir), "--pairs", "-"]) == 2
    assert "standard input:2: expected text_a<TAB>text_b, got 1 field(s)" in capsys.readouterr().err


def test_eval_sts_json(model_dir, tmp_path, capsys):
    data = tmp_path / "sts.csv"
    data.write_text(
        "".join(
            f"{a},{b},{s}\n"
            for a, b, s in [(TEXTS[0], TEXTS[1], 1.0), (TEXTS[0], TEXTS[0], 5.0), (TEXTS[1], TEXTS[2], 2.5)]
        )
    )
    assert main(["eval", "sts", "--model", str(model_dir), "--data", str(data), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 3 and -100 <= result["spearman"] <= 100 and "pearson" in result
    assert {"dot_spearman", "euclidean_spearman", "manhattan_spearman"} <= set(result)
    assert main(["evaluate", "sts", "--model", str(model_dir), "--data", str(data), "--json"]) == 0  # the long name
    assert json.loads(capsys.readouterr().out) == result


def test_errors_are_short_and_on_stderr(model_dir, tmp_path, capsys):
    assert main(["encode", "--model", str(model_dir), "--input", str(tmp_path / "nope.txt"), "--output", "x.npy"]) == 2
    captured = capsys.readouterr()
    assert "input file not found" in captured.err and captured.out == ""
    assert main(["similarity", "--model", str(tmp_path / "no-model-here"), "a", "b"]) == 2
    assert "not found" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["similarity", "--model", str(model_dir), "--device", "cuda", "a", "b"]) == 2
        assert "device 'cuda' was asked for, but torch here has no CUDA GPU" in capsys.readouterr().err
    else:
        assert (
            main(["similarity", "--model", str(model_dir), "--device", f"cuda:{torch.cuda.device_count()}", "a", "b"])
            == 2
        )
        assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], ["encode"], ["similarity"], ["eval"], ["eval", "sts"]])
def test_help_on_every_subcommand(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: sentsim" in capsys.readouterr().out


def test_module_and_console_script_entry_points():
    result = subprocess.run([sys.executable, "-m", "sentsim", "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("sentsim ")
    script = shutil.which("sentsim")
    if script is None:
        pytest.skip("sentsim is not installed as a console script in this environment")
    assert subprocess.run([script, "--help"], capture_output=True, text=True, check=True).stdout.startswith(
        "usage: sentsim"
    )


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_eval_pairs_tuned_on_one_file_applied_to_another(model_dir, tmp_path, capsys):
    pairs = _write(
        tmp_path / "pairs.csv",
        f"sentence1,sentence2,label\n{TEXTS[0]},{TEXTS[0]},1\n{TEXTS[0]},{TEXTS[2]},0\n{TEXTS[1]},{TEXTS[1]},1\n",
    )
    code = main(
        [
            "eval",
            "pairs",
            "--model",
            str(model_dir),
            "--data",
            pairs,
            "--tune-data",
            pairs,
            "--json",
            "--output",
            str(tmp_path / "r.csv"),
        ]
    )
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["accuracy"] == 100.0 and result["n"] == 3
    assert (tmp_path / "r.csv").read_text().startswith("metric,value")


def test_eval_pairs_from_sts_scores(model_dir, tmp_path, capsys):
    data = _write(
        tmp_path / "sts.csv", f"{TEXTS[0]},{TEXTS[0]},5.0\n{TEXTS[0]},{TEXTS[2]},0.5\n{TEXTS[1]},{TEXTS[2]},3.0\n"
    )
    main(["eval", "pairs", "--model", str(model_dir), "--data", data, "--from-sts", "--threshold", "0.99", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 2 and result["threshold"] == 0.99 and result["accuracy"] == 100.0


def test_eval_retrieval_from_sts(model_dir, tmp_path, capsys):
    data = _write(tmp_path / "sts.csv", f"{TEXTS[0]},{TEXTS[1]},4.5\n{TEXTS[1]},{TEXTS[2]},1.0\n")
    main(["eval", "retrieval", "--model", str(model_dir), "--sts", data, "--json", "--device", "cpu"])
    result = json.loads(capsys.readouterr().out)
    # One query, two other documents: the relevant one is at rank 1 or 2.
    assert result["queries"] == 1 and result["corpus"] == 3 and result["mrr@10"] in (50.0, 100.0)
    assert result["recall@10"] == 100.0
    for mode in ("dense", "keyword", "hybrid"):
        main(["eval", "retrieval", "--model", str(model_dir), "--sts", data, "--json", "--mode", mode])
        through_index = json.loads(capsys.readouterr().out)
        assert through_index["search"] == mode and through_index["recall@10"] == 100.0
        if mode == "dense":  # an exact (flat) index ranks as exact search does
            assert through_index["mrr@10"] == result["mrr@10"]
    assert main(["eval", "retrieval", "--model", str(model_dir), "--sts", data, "--weight", "keyword=1"]) == 2
    assert "--weight applies to a search through an index: add --mode" in capsys.readouterr().err


def test_eval_triplets(model_dir, tmp_path, capsys):
    data = _write(tmp_path / "t.csv", f"anchor,positive,negative\n{TEXTS[0]},{TEXTS[0]},{TEXTS[2]}\n")
    main(["eval", "triplets", "--model", str(model_dir), "--data", data, "--json"])
    assert json.loads(capsys.readouterr().out)["accuracy"] == 100.0


def test_eval_and_run_classify(model_dir, tmp_path, capsys):
    support = _write(
        tmp_path / "support.csv", f"text,label\n{TEXTS[0]},animal\n{TEXTS[1]},animal\n{TEXTS[2]},weather\n"
    )
    test = _write(tmp_path / "test.csv", f"text,label\n{TEXTS[0]},animal\n{TEXTS[2]},weather\n")
    main(["eval", "classify", "--model", str(model_dir), "--support", support, "--data", test, "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["accuracy"] == 100.0 and result["classes"] == 2 and result["support"] == 3
    texts = _write(tmp_path / "in.txt", f"{TEXTS[2]}\n{TEXTS[0]}\n")
    main(["classify", "--model", str(model_dir), "--support", support, "--input", texts])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["weather", "animal"]
    assert float(lines[0].split("\t")[1]) == pytest.approx(1.0, abs=1e-5)
    main(["classify", "--model", str(model_dir), "--support", support, "--input", texts, "--strategy", "logistic"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["weather", "animal"]
    assert all(0.5 < float(line.split("\t")[1]) <= 1.0 for line in lines)  # the head's probability
    named_none = _write(tmp_path / "none.csv", f"text,label\n{TEXTS[0]},none\n{TEXTS[2]},weather\n")
    classify = ["classify", "--model", str(model_dir), "--support", named_none, "--input", texts]
    assert main(classify) == 2 and "reserved" in capsys.readouterr().err  # a class called "none" ...
    assert main([*classify, "--unknown-label", "unknown", "--threshold", "0.9999"]) == 0  # ... with another answer
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == ["weather", "none"]


def test_eval_classify_reports_out_of_scope(model_dir, tmp_path, capsys):
    support = _write(tmp_path / "support.csv", f"text,label\n{TEXTS[0]},animal\n{TEXTS[2]},weather\n")
    outside = _write(tmp_path / "oos.csv", f"text,label\n{TEXTS[1]},oos\n")
    main(
        [
            "eval",
            "classify",
            "--model",
            str(model_dir),
            "--support",
            support,
            "--data",
            support,
            "--out-of-scope",
            outside,
            "--threshold",
            "0.999",
            "--json",
        ]
    )
    result = json.loads(capsys.readouterr().out)
    assert result["accuracy"] == 100.0 and result["n_out_of_scope"] == 1 and result["oos_recall"] in (0.0, 100.0)


def test_eval_mistakes_are_reported_before_any_work(model_dir, tmp_path, capsys):
    pairs = _write(
        tmp_path / "pairs.csv", f"sentence1,sentence2,label\n{TEXTS[0]},{TEXTS[0]},1\n{TEXTS[0]},{TEXTS[2]},0\n"
    )
    support = _write(tmp_path / "support.csv", f"text,label\n{TEXTS[0]},animal\n{TEXTS[2]},weather\n")
    with pytest.raises(SystemExit):  # argparse: before the model loads
        main(["eval", "pairs", "--model", str(model_dir), "--data", pairs, "--output", str(tmp_path / "r.txt")])
    assert "r.txt: results are written as .json or .csv" in capsys.readouterr().err
    assert main(["eval", "pairs", "--model", str(model_dir), "--data", pairs, "--threshold", "nan", "--json"]) == 2
    assert "threshold must be a finite number or None, got nan" in capsys.readouterr().err
    classify = ["eval", "classify", "--model", str(model_dir), "--support", support, "--data", support]
    assert main([*classify, "--shots", "0"]) == 2  # was read as "no --shots"
    assert "shots" in capsys.readouterr().err
    assert main([*classify, "--tune-data", support]) == 2
    assert "--tune-data (labelled in-scope texts) and --tune-out-of-scope" in capsys.readouterr().err
    both = ["--threshold", "0.1", "--tune-data"]  # which would apply? pairs and classify answered differently
    assert main(["eval", "pairs", "--model", str(model_dir), "--data", pairs, *both, pairs]) == 2
    assert "give --threshold or --tune-data (which tunes the threshold), not both" in capsys.readouterr().err
    assert main([*classify, *both, support, "--tune-out-of-scope", support]) == 2
    assert "give --threshold or --tune-data" in capsys.readouterr().err


@pytest.mark.parametrize("task", ["pairs", "retrieval", "triplets", "classify"])
def test_help_on_eval_tasks(task, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", task, "--help"])
    assert exit_info.value.code == 0 and "--json" in capsys.readouterr().out


def test_classify_help(capsys):
    with pytest.raises(SystemExit):
        main(["classify", "--help"])
    assert "--support" in capsys.readouterr().out


def test_classify_fine_tunes_on_the_support_set_and_saves_the_model(model_dir, tmp_path, capsys):
    from sentsim.decisions import FewShotClassifier
    from sentsim.training import TrainingConfig
    from sentsim.training.few_shot import FEW_SHOT_CONFIG

    rows = [(TEXTS[0], "animal"), ("A cat sleeps all day.", "animal"), (TEXTS[1], "sport")]
    rows += [("Runners race in the park.", "sport"), (TEXTS[2], "weather"), ("Snow falls all night.", "weather")]
    support = _write(tmp_path / "support.csv", "text,label\n" + "".join(f"{t},{label}\n" for t, label in rows))
    texts = _write(tmp_path / "in.txt", "".join(f"{t}\n" for t, _ in rows))
    saved = tmp_path / "tuned"
    assert (
        main(
            ["classify", "--model", str(model_dir), "--support", support, "--input", texts, "--fine-tune"]
            + ["--rounds", "3", "--save-model", str(saved), "--no-progress"]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    # The same fine-tuning through the Python API gives the same weights and the same answers.
    reference = FewShotClassifier(SentenceEncoder.from_pretrained(model_dir), show_progress=False)
    reference.add_examples([t for t, _ in rows], [label for _, label in rows])
    reference.fine_tune(rounds=3, config=TrainingConfig.from_dict(FEW_SHOT_CONFIG.to_dict() | {"show_progress": False}))
    tuned, original = SentenceEncoder.from_pretrained(saved), SentenceEncoder.from_pretrained(model_dir)
    texts_list = [t for t, _ in rows]
    np.testing.assert_allclose(tuned.encode(texts_list), reference.encoder.encode(texts_list), atol=1e-5)
    assert not np.allclose(tuned.encode(texts_list), original.encode(texts_list), atol=1e-4)
    scores = reference.scores(texts_list)
    expected = [
        f"{reference.classes[i]}\t{row.max():.4f}" for row, i in zip(scores, scores.argmax(axis=1), strict=True)
    ]
    assert [line.rsplit("\t", 1)[0] for line in lines] == expected
    assert (
        main(["classify", "--model", str(model_dir), "--support", support, "--input", texts, "--save-model", "x"]) == 2
    )
    assert "--save-model needs --fine-tune" in capsys.readouterr().err
    again = ["classify", "--model", str(model_dir), "--support", support, "--input", texts, "--fine-tune"]
    assert main(again + ["--save-model", str(saved), "--no-progress"]) == 2  # refused before any training
    assert f"--save-model {saved} exists; choose a new folder or pass --overwrite" in capsys.readouterr().err
    mine = saved.parent / "mine"
    mine.mkdir()
    (mine / "data.txt").write_text("keep me")
    assert main(again + ["--save-model", str(mine), "--overwrite", "--no-progress"]) == 2
    assert "holds files that are not a model; --overwrite replaces a model only" in capsys.readouterr().err
    assert (mine / "data.txt").read_text() == "keep me"
    assert main(["classify", "--model", str(model_dir), "--support", support, "--input", texts, "--rounds", "3"]) == 2
    assert "--rounds needs --fine-tune" in capsys.readouterr().err
    eval_args = ["eval", "classify", "--model", str(model_dir), "--support", support, "--data", support, "--json"]
    assert main(eval_args + ["--fine-tune", "--rounds", "3", "--no-progress"]) == 0
    expected_accuracy = np.mean(
        [reference.classes[i] == label for i, (_, label) in zip(scores.argmax(axis=1), rows, strict=True)]
    )
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(100 * expected_accuracy)


def test_messages_name_the_full_subcommand_and_verbose_works_after_it(model_dir, tmp_path, capsys, caplog):
    assert main(["eval", "sts", "--model", str(model_dir), "--data", str(tmp_path / "nope.csv")]) == 2
    assert capsys.readouterr().err.startswith("sentsim eval sts: error: ")
    assert main(["index", "build", "--docs", str(tmp_path / "nope.txt"), "--output", str(tmp_path / "i")]) == 2
    assert capsys.readouterr().err.startswith("sentsim index build: error: ")
    parser_args = __import__("sentsim.cli", fromlist=["build_parser"]).build_parser()
    assert parser_args.parse_args(["similarity", "a", "b", "-v"]).verbose is True
    assert parser_args.parse_args(["-v", "similarity", "a", "b"]).verbose is True
    assert parser_args.parse_args(["similarity", "a", "b"]).verbose is False
    assert parser_args.parse_args(["index", "delete", "x", "--ids", "1", "-v"]).verbose is True


def test_options_that_would_be_ignored_are_refused(model_dir, tmp_path, capsys):
    support = _write(tmp_path / "support.csv", f"text,label\n{TEXTS[0]},animal\n{TEXTS[2]},weather\n")
    texts = _write(tmp_path / "texts.txt", TEXTS[1] + "\n")
    classify = ["classify", "--model", str(model_dir), "--support", support, "--input", texts]
    assert main([*classify, "--k", "2"]) == 2  # prototypes have no neighbours
    assert "--k is the neighbours per class of --strategy knn; --strategy prototype has none" in capsys.readouterr().err
    assert main([*classify, "--k", "1", "--strategy", "knn"]) == 0
    assert capsys.readouterr().out.split("\t")[0] in {"animal", "weather"}
    pairs = _write(tmp_path / "pairs.csv", f"{TEXTS[0]},{TEXTS[1]},1.0\n{TEXTS[0]},{TEXTS[2]},4.0\n")
    sts = ["eval", "sts", "--model", str(model_dir)]
    assert main([*sts, "--data", "stsb:test", "--split", "dev"]) == 2  # the name carries its split
    assert "--split dev applies to files and Hub datasets; named sets (stsb:test) carry their own split" in (
        capsys.readouterr().err
    )
    assert main([*sts, "--data", "stbs:test"]) == 2  # a typo: refused at once, not looked up on the Hub
    assert "unknown named set 'stbs'; the named sets are stsb:SPLIT and clinc150:SPLIT" in capsys.readouterr().err
    assert main([*sts, "--data", "clinc150:test"]) == 2
    assert "clinc150:test holds labelled texts; scored pairs are expected here" in capsys.readouterr().err
    assert main(["eval", "pairs", "--model", str(model_dir), "--data", "stsb:test"]) == 2
    assert "stsb:test holds scored pairs; labelled pairs are expected here (add --from-sts" in capsys.readouterr().err
    assert main(["eval", "pairs", "--model", str(model_dir), "--data", "clinc150:val"]) == 2
    assert "clinc150:val holds labelled texts; labelled pairs are expected here" in capsys.readouterr().err
    assert main(["eval", "triplets", "--model", str(model_dir), "--data", "stsb:test"]) == 2
    assert "stsb:test holds scored pairs; anchor,positive,negative triplets are expected here" in (
        capsys.readouterr().err
    )
    assert main(["eval", "triplets", "--model", str(model_dir), "--data", "my:triplets"]) == 2
    assert "my:triplets: unknown named set 'my'" in capsys.readouterr().err
    from sentsim.data import read_triplets

    with pytest.raises(FileNotFoundError, match="my:triplets is not a file, a saved dataset folder or a Hub dataset"):
        read_triplets("my:triplets")  # the library: at once, not after retries on the Hub
    train = ["train", "--train", pairs, "--loss", "cosent", "--output", str(tmp_path / "run"), "--no-progress"]
    assert main([*train, "--model", str(model_dir), "--lstm-from", str(model_dir)]) == 2
    assert "both choose the tower; give one" in capsys.readouterr().err
    assert main(["train", "--train", "clinc150:train", "--loss", "mnrl", "--output", str(tmp_path / "run")]) == 2
    assert "clinc150:train holds labelled texts; training takes pairs or triplets" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    docs = ["index", "build", "--model", str(model_dir), "--docs", texts, "--output", str(tmp_path / "idx")]
    assert main([*docs, "--chunk-overlap", "4"]) == 2
    assert "chunk_overlap (4) needs chunk_size" in capsys.readouterr().err


def test_split_picks_the_split_of_every_dataset_source(model_dir, tmp_path, capsys):
    import datasets

    rows = {"text": [TEXTS[0], TEXTS[2], TEXTS[1]], "label": ["animal", "weather", "animal"]}
    datasets.DatasetDict(
        {
            "validation": datasets.Dataset.from_dict(rows),
            "test": datasets.Dataset.from_dict({k: v[:2] for k, v in rows.items()}),
        }
    ).save_to_disk(str(tmp_path / "dd"))
    classify = ["eval", "classify", "--model", str(model_dir), "--support", str(tmp_path / "dd"), "--json"]
    assert main([*classify, "--data", str(tmp_path / "dd"), "--split", "validation"]) == 0
    assert json.loads(capsys.readouterr().out)["support"] == 3  # support and data both from validation
    assert main([*classify, "--data", str(tmp_path / "dd")]) == 0
    assert json.loads(capsys.readouterr().out)["support"] == 2  # default: test


def test_sigterm_stops_a_command_with_one_line(tmp_path, monkeypatch, capsys):
    """SIGTERM unwinds like Ctrl-C (cleanup runs) and says so on stderr, exit status 143."""
    import os
    import signal

    from sentsim.cli import encode, main

    def terminated(args):
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(encode, "run", terminated)
    (tmp_path / "texts.txt").write_text("a text\n")
    code = main(["encode", "--input", str(tmp_path / "texts.txt"), "--output", str(tmp_path / "out.npy")])
    assert code == 143
    assert capsys.readouterr().err.strip() == "sentsim encode: terminated; unfinished outputs were removed"


def test_bad_data_files_are_one_line_errors_in_every_command(model_dir, tmp_path, capsys):
    """Local .json/.jsonl data went through `datasets` (train, eval, classify; index build for .json) and
    ended in StopIteration or DatasetGenerationError tracebacks."""
    (tmp_path / "bad.jsonl").write_text('{"text": "a", "label": "x"}\n{"text": oops}\n', encoding="utf-8")
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00\x01")
    (tmp_path / "empty.json").write_bytes(b"")
    (tmp_path / "texts.txt").write_text("hello\n", encoding="utf-8")
    expected = {"bad.jsonl": "bad.jsonl:2: not valid JSON", "binary.json": "binary.json:1: not valid UTF-8"}
    expected["empty.json"] = "empty.json: empty file"
    for name, message in expected.items():
        data = str(tmp_path / name)
        for command in (
            ["train", "--train", data, "--loss", "mnrl", "--output", str(tmp_path / "run")],
            ["eval", "sts", "--data", data],
            ["eval", "classify", "--support", data, "--data", data],
            ["classify", "--support", data, "--input", str(tmp_path / "texts.txt")],
            ["index", "build", "--docs", data, "--output", str(tmp_path / "index")],
        ):
            assert main([*command, "--model", str(model_dir)]) == 2, command
            error = capsys.readouterr().err
            assert message in error and error.count("\n") == 1, (command, error)


def test_an_error_no_command_names_is_one_line_not_a_traceback(tmp_path, monkeypatch, capsys):
    from sentsim.cli import encode

    deep = tmp_path / "deep.jsonl"
    deep.write_text('{"text": ' + "[" * 100_000 + "]" * 100_000 + "}\n")  # json's RecursionError
    assert main(["encode", "--input", str(deep), "--output", str(tmp_path / "out.npy")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sentsim: RecursionError: maximum recursion depth") and err.count("\n") == 1

    def fails(args):
        raise RuntimeError("a library said:\n  something went wrong")

    monkeypatch.setattr(encode, "run", fails)
    assert main(["encode", "--input", "in.txt", "--output", "out.npy"]) == 1
    assert capsys.readouterr().err == "sentsim: RuntimeError: a library said: something went wrong\n"
    monkeypatch.setattr(encode, "run", lambda args: [][0])
    assert main(["encode", "--input", "in.txt", "--output", "out.npy"]) == 1
    assert capsys.readouterr().err == "sentsim: IndexError: list index out of range\n"
