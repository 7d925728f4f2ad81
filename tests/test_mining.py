"""Hard-negative mining against a brute-force reference; its output trains (numbered negatives)."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow.parquet
import pytest
import torch

from sentsim import SentenceEncoder
from sentsim.training import load_training_data, make_loss
from sentsim.training.mining import mine_hard_negatives

from .conftest import CORPUS

SENTENCES = list(dict.fromkeys(CORPUS))


def corpus_texts() -> list[str]:
    """100 distinct texts (halves of the corpus sentences recombined), plus copies of some that
    differ in case and spacing only."""
    halves = [(s.split()[: len(s.split()) // 2], s.split()[len(s.split()) // 2 :]) for s in SENTENCES]
    texts = [" ".join(a + b) for (a, _), (_, b) in itertools.product(halves, halves)]
    return texts + [texts[0].upper(), "  " + texts[11].replace(" ", "   "), texts[0]]


def pairs(texts: list[str]) -> tuple[list[str], list[str]]:
    anchors = [texts[i] for i in (0, 12, 25, 37, 48, 61, 77, 93)]
    positives = [texts[i] for i in (11, 0, 26, 3, 49, 60, 70, 99)]  # 0 and 11 have copies in the corpus
    return anchors, positives


def key(text: str) -> str:
    return " ".join(text.split()).casefold()


def reference(encoder, anchors, positives, corpus, negatives, rank_range, margin):
    """Brute force: every corpus text scored, the anchor's and positive's copies dropped, the window taken."""
    first: dict[str, str] = {}
    for text in corpus:
        first.setdefault(key(text), text)  # each text once, up to case and spacing
    distinct = list(first.values())
    vectors = encoder.encode(distinct, normalize=True)
    keys = [key(text) for text in distinct]
    mined = []
    for anchor, positive in zip(anchors, positives, strict=True):
        query = encoder.encode(anchor, normalize=True)
        scores = vectors @ query
        positive_score = scores[keys.index(key(positive))]
        ranked = [j for j in np.argsort(-scores, kind="stable") if keys[j] not in (key(anchor), key(positive))]
        window = ranked[rank_range[0] : rank_range[1]]
        chosen = [distinct[j] for j in window if margin is None or scores[j] < positive_score - margin][:negatives]
        mined.append(chosen if len(chosen) == negatives else None)
    return mined


@pytest.fixture
def encoder(tiny_transformer):
    return SentenceEncoder(tiny_transformer).eval()


@pytest.mark.parametrize(
    ("negatives", "rank_range", "margin"), [(3, (0, 10), None), (2, (5, 40), 0.0), (3, (2, 30), 0.002)]
)
def test_mining_equals_a_brute_force_reference(encoder, negatives, rank_range, margin):
    corpus = corpus_texts()
    anchors, positives = pairs(corpus)
    mined = mine_hard_negatives(
        anchors,
        positives,
        corpus,
        encoder=encoder,
        negatives=negatives,
        rank_range=rank_range,
        margin=margin,
        show_progress=False,
    )
    expected = reference(encoder, anchors, positives, corpus, negatives, rank_range, margin)
    assert mined.dropped == [row for row, chosen in enumerate(expected) if chosen is None]
    assert mined.negatives == [chosen for chosen in expected if chosen is not None]
    assert mined.anchors == [a for a, chosen in zip(anchors, expected, strict=True) if chosen is not None]
    for anchor, positive, chosen in zip(mined.anchors, mined.positives, mined.negatives, strict=True):
        assert len(chosen) == negatives and len({key(text) for text in chosen}) == negatives
        assert not {key(anchor), key(positive)} & {key(text) for text in chosen}  # never the pair or a copy


def test_the_margin_and_the_range_shape_what_is_taken(encoder):
    corpus = corpus_texts()
    anchors, positives = pairs(corpus)
    options = {"encoder": encoder, "negatives": 3, "show_progress": False}
    closest = mine_hard_negatives(anchors, positives, corpus, rank_range=(0, 3), margin=None, **options)
    later = mine_hard_negatives(anchors, positives, corpus, rank_range=(3, 6), margin=None, **options)
    vectors = {text: encoder.encode(text, normalize=True) for text in corpus}
    for anchor, near, far in zip(anchors, closest.negatives, later.negatives, strict=True):
        near_scores = [vectors[anchor] @ vectors[t] for t in near]
        far_scores = [vectors[anchor] @ vectors[t] for t in far]
        assert near_scores == sorted(near_scores, reverse=True)  # hardest first
        assert min(near_scores) >= max(far_scores) and not set(near) & set(far)
    margined = mine_hard_negatives(anchors, positives, corpus, rank_range=(0, 60), margin=0.002, **options)
    assert margined.negatives != closest.negatives  # the margin skipped some of the closest
    for anchor, positive, chosen in zip(margined.anchors, margined.positives, margined.negatives, strict=True):
        positive_score = vectors[anchor] @ vectors[positive]
        assert all(vectors[anchor] @ vectors[t] < positive_score - 0.002 for t in chosen)


def test_an_index_gives_what_exact_search_gives(encoder, tmp_path):
    pytest.importorskip("faiss")
    from sentsim.search import DocumentIndex

    corpus = corpus_texts()[:-3]  # an index keeps one document a text
    anchors, positives = pairs(corpus)
    options = {"negatives": 2, "rank_range": (1, 12), "margin": 0.0, "show_progress": False}
    with DocumentIndex.create(tmp_path / "index", encoder, backend="flat") as index:
        index.add(corpus)
        from_index = mine_hard_negatives(anchors, positives, index, **options)
        with pytest.raises(ValueError, match=r"the index in .* lacks 1 of the 8 positives \(row 2: 'not held'\)"):
            mine_hard_negatives(anchors, [*positives[:2], "not held", *positives[3:]], index, **options)
    exact = mine_hard_negatives(anchors, positives, corpus, encoder=encoder, **options)
    assert from_index == exact


def test_bad_input_is_refused_before_any_encoding(encoder):
    corpus = corpus_texts()
    anchors, positives = pairs(corpus)
    unusable = object()  # an encoder that would fail if anything were encoded
    lacking = [*positives[:3], "absent one", *positives[4:6], "absent two", positives[7]]
    with pytest.raises(
        ValueError, match=r"corpus lacks 2 of the 8 positives \(row 3: 'absent one'; row 6: 'absent two'\)"
    ):
        mine_hard_negatives(anchors, lacking, corpus, encoder=unusable)
    for options, message in [
        ({"negatives": 0}, "negatives must be"),
        ({"rank_range": (10, 5)}, "rank_range 10:5 holds 0 ranks"),
        ({"rank_range": (10, 11), "negatives": 3}, "holds 1 ranks, fewer than the 3 negatives"),
        ({"rank_range": (-1, 5)}, "rank_range must be"),
        ({"rank_range": "10:50"}, "rank_range must be"),
        ({"margin": -0.1}, "margin must be >= 0"),
        ({"margin": float("nan")}, "margin must be a finite number"),
    ]:
        with pytest.raises(ValueError, match=message):
            mine_hard_negatives(anchors, positives, corpus, encoder=unusable, **options)
    with pytest.raises(ValueError, match="differ in length"):
        mine_hard_negatives(anchors, positives[:3], corpus, encoder=unusable)
    with pytest.raises(TypeError, match="needs an encoder"):
        mine_hard_negatives(anchors, positives, corpus)


def test_numbered_negatives_train_each_loss_on_every_negative(encoder, tmp_path):
    from sentsim.training.trainer import _batch_inputs, _batch_loss

    corpus = corpus_texts()
    anchors, positives = pairs(corpus)
    mined = mine_hard_negatives(
        anchors, positives, corpus, encoder=encoder, negatives=2, rank_range=(0, 5), margin=None, show_progress=False
    )
    mined.save(tmp_path / "mined.parquet")
    assert pyarrow.parquet.read_table(tmp_path / "mined.parquet").column_names == [
        "anchor",
        "positive",
        "negative_1",
        "negative_2",
    ]
    data = load_training_data(tmp_path / "mined.parquet")
    rows = data.rows(np.arange(4))
    with torch.no_grad():
        embed = {t: encoder(**{k: v for k, v in encoder.tokenize([t]).items()})[0] for t in corpus}
    anchor = torch.stack([embed[t] for t in rows["anchor"]])
    positive = torch.stack([embed[t] for t in rows["positive"]])
    negative = torch.stack([embed[rows[c][i]] for i in range(4) for c in ("negative_1", "negative_2")])  # row by row
    for name in ("mnrl", "triplet"):
        loss = make_loss(name, **({"distance": "cosine", "margin": 0.5} if name == "triplet" else {}))
        columns, targets = _batch_inputs(loss, rows, torch.device("cpu"))
        assert ("negative_labels" in targets) == (name == "mnrl")  # text ids of the negatives, row by row
        with torch.no_grad():
            got = _batch_loss(encoder, encoder, loss, columns, targets, torch.device("cpu"), packed=False)
            want = loss(anchor, positive, negative, **targets)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    triplet = make_loss("triplet", distance="cosine", margin=0.5)
    per_negative = [triplet(anchor, positive, negative[j::2]) for j in range(2)]  # a triplet loss for each column
    torch.testing.assert_close(triplet(anchor, positive, negative), sum(per_negative) / 2)


def test_numbered_negative_columns_are_checked():
    base = {"anchor": ["a b"], "positive": ["c d"]}
    with pytest.raises(ValueError, match="without gaps, found negative_1, negative_3"):
        load_training_data({**base, "negative_1": ["x"], "negative_3": ["y"]})
    with pytest.raises(ValueError, match="both 'negative' and 'negative_1'"):
        load_training_data({**base, "negative": ["x"], "negative_1": ["y"]})
    with pytest.raises(ValueError, match="column 'negative_2', row 0"):
        load_training_data({**base, "negative_1": ["x"], "negative_2": [""]})
    data = load_training_data({**base, "negative_1": ["x"], "negative_2": ["y"]}, prompts={"negative": "p: "})
    assert (data.columns["negative_1"], data.columns["negative_2"], data.columns["anchor"]) == (
        ["p: x"],
        ["p: y"],
        ["a b"],
    )


def test_cli_mines_and_its_output_trains(encoder, tmp_path, capsys):
    import json

    from sentsim.cli import main

    corpus = corpus_texts()
    anchors, positives = pairs(corpus)
    encoder.save_pretrained(tmp_path / "model")
    (tmp_path / "corpus.txt").write_text("\n".join(corpus) + "\n")
    (tmp_path / "pairs.jsonl").write_text(
        "".join(json.dumps({"anchor": a, "positive": p}) + "\n" for a, p in zip(anchors, positives, strict=True))
    )
    model, out = ["--model", str(tmp_path / "model")], tmp_path / "mined.parquet"
    command = [
        "mine",
        *model,
        "--data",
        str(tmp_path / "pairs.jsonl"),
        "--corpus",
        str(tmp_path / "corpus.txt"),
        "--output",
        str(out),
        "--negatives",
        "2",
        "--range",
        "1:12",
        "--margin",
        "none",
        "--no-progress",
    ]
    assert main(command) == 0
    summary = json.loads(capsys.readouterr().out)
    written = pyarrow.parquet.read_table(out).to_pydict()
    loaded = SentenceEncoder.from_pretrained(tmp_path / "model", device="cpu")
    expected = mine_hard_negatives(
        anchors, positives, corpus, encoder=loaded, negatives=2, rank_range=(1, 12), margin=None, show_progress=False
    )
    assert written == expected.columns() and summary["rows"] == len(expected) == 8
    assert main(command) == 2 and "exists; choose a new file or pass --overwrite" in capsys.readouterr().err
    for name in ("mnrl", "triplet"):
        train = ["train", *model, "--train", str(out), "--loss", name, "--batch-size", "4", "--no-progress"]
        assert main([*train, "--output", str(tmp_path / name)]) == 0
        assert json.loads(capsys.readouterr().out)["steps"] == 2
    base = ["mine", *model, "--data", str(tmp_path / "pairs.jsonl"), "--output", str(tmp_path / "x.parquet")]
    base += ["--corpus", str(tmp_path / "corpus.txt")]
    for extra, message in [
        (["--negatives", "0"], "--negatives must be >= 1"),
        (["--range", "5:2"], "5:2 holds 0 ranks"),
    ]:
        assert main([*base, *extra]) == 2
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--range", "five"])
    assert "expected START:END" in capsys.readouterr().err
    base[-1] = str(tmp_path / "short.txt")
    (tmp_path / "short.txt").write_text("\n".join(corpus[:50]) + "\n")
    assert main(base) == 2
    assert "the corpus lacks 3 of the 8 positives (row 5: " in capsys.readouterr().err
    assert not (tmp_path / "x.parquet").exists()
