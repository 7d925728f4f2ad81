"""The named data sets the project uses: STS Benchmark and CLINC150.

Each loads from a local data folder when one is given (the ``data_dir`` argument, else the
``SENTSIM_DATA_DIR`` environment variable), laid out as ``stsb/{train,dev,test}.csv`` and
``clinc150/data_full.json``; otherwise from the Hugging Face Hub (``sentence-transformers/stsb``,
``clinc_oos`` config ``plus``) where the machine is online.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sentsim.data.classification import LabelledTexts
from sentsim.data.jsonl import read_json
from sentsim.data.sts import SentencePairs, read_sts

STSB_SPLITS = {"train": "train", "dev": "validation", "test": "test"}
CLINC_SPLITS = {"train": "train", "val": "validation", "test": "test"}
OUT_OF_SCOPE = "oos"


def data_dir(path: str | Path | None = None) -> Path | None:
    """The local data folder: ``path``, else ``$SENTSIM_DATA_DIR``, else None (use the Hub)."""
    chosen = path or os.environ.get("SENTSIM_DATA_DIR")
    return Path(chosen).expanduser() if chosen else None


def load_stsb(split: str = "test", *, data_dir: str | Path | None = None) -> SentencePairs:
    """STS Benchmark ``train`` / ``dev`` / ``test`` with scores in [0, 5]."""
    if split not in STSB_SPLITS:
        raise ValueError(f"unknown STS-B split {split!r}; expected one of {', '.join(STSB_SPLITS)}")
    folder = _local(data_dir, "stsb")
    if folder is not None:
        return read_sts(folder / f"{split}.csv")
    import datasets

    dataset = datasets.load_dataset("sentence-transformers/stsb", split=STSB_SPLITS[split])
    pairs = read_sts(dataset)
    return SentencePairs(pairs.sentences1, pairs.sentences2, pairs.scores * 5.0)  # the Hub copy is scaled to [0, 1]


def load_clinc150(split: str = "test", *, data_dir: str | Path | None = None) -> LabelledTexts:
    """CLINC150 intents: ``train`` / ``val`` / ``test`` (in-scope) or ``oos_train`` / ``oos_val`` / ``oos_test``.

    Labels are intent names; out-of-scope queries have the label ``"oos"``.
    """
    base = split.removeprefix("oos_")
    if base not in CLINC_SPLITS:
        raise ValueError(f"unknown CLINC150 split {split!r}; expected train, val, test or oos_train, oos_val, oos_test")
    folder = _local(data_dir, "clinc150")
    if folder is not None:
        path = folder / "data_full.json"
        document = read_json(path)
        rows = document.get(split) if isinstance(document, dict) else None
        if not isinstance(rows, list) or not all(isinstance(row, list) and len(row) == 2 for row in rows):
            raise ValueError(f"{path}: expected {split!r}, a list of [text, label] pairs")
        return LabelledTexts([text for text, _ in rows], [label for _, label in rows])
    import datasets

    dataset = datasets.load_dataset("clinc_oos", "plus", split=CLINC_SPLITS[base])
    names = dataset.features["intent"].names
    labels = np.asarray([names[i] for i in dataset["intent"]], dtype=object)
    keep = (labels == OUT_OF_SCOPE) if split.startswith("oos_") else (labels != OUT_OF_SCOPE)
    texts = dataset["text"]
    return LabelledTexts([texts[i] for i in np.flatnonzero(keep)], labels[keep].tolist())


def _local(path: str | Path | None, name: str) -> Path | None:
    root = data_dir(path)
    if root is None:
        return None
    folder = root / name
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} not found (data folder {root}); unset it to load from the Hub")
    return folder
