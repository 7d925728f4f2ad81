"""Model folders: read sentsim, sentence-transformers and plain Hugging Face folders; write sentsim ones.

A transformer encoder is saved in sentence-transformers' classic layout, which every version of
sentence-transformers loads::

    config.json, model.safetensors, tokenizer files   the transformer (HF layout, at the root)
    sentence_bert_config.json                         max_seq_length, do_lower_case
    modules.json                                      Transformer -> Pooling [-> Dense] [-> Normalize]
    1_Pooling/config.json                             pooling mode
    2_Dense/{config.json, model.safetensors}          optional projection
    N_Normalize/                                      when embeddings are L2-normalized
    config_sentence_transformers.json                 prompts, default prompt name (read from here)
    config_sentsim.json                               sentsim's own description (the Matryoshka dimensions the
                                                      model was trained for too), its format and the sentsim version

An LSTM encoder keeps its weights and ``tokenizer.json`` at the root and is described, prompts
included, by ``config_sentsim.json`` alone (sentence-transformers cannot load it).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
import transformers

from sentsim._version import __version__
from sentsim.pooling import Pooling
from sentsim.projection import Dense, DenseConfig
from sentsim.prompts import check_prompts
from sentsim.storage.adapter_folder import ADAPTER_CONFIG
from sentsim.storage.atomic import atomic_folder, check_replaceable
from sentsim.storage.formats import check_format
from sentsim.storage.weights import WeightsError, inside
from sentsim.towers import LSTMTower, Tower, TransformerTower
from sentsim.truncation import check_dims

logger = logging.getLogger(__name__)

SENTSIM_CONFIG = "config_sentsim.json"
MODEL_FORMAT = 1  # of config_sentsim.json; any other is refused
SAVED_KEYS = (
    "tower",
    "pooling",
    "normalize",
    "max_seq_length",
    "dense",
    "include_prompt",
    "matryoshka_dims",
)  # what save writes
TOWER_KEYS = {"transformer": ("do_lower_case",), "lstm": ("lstm", "prompts", "default_prompt_name")}
MODEL_MARKERS = (SENTSIM_CONFIG, "modules.json", "config.json", ADAPTER_CONFIG)  # a folder holding one holds a model
DENSE_DIR = "2_Dense"
ST_CONFIG = "config_sentence_transformers.json"
ST_TYPES = {
    "Transformer": "sentence_transformers.models.Transformer",
    "Pooling": "sentence_transformers.models.Pooling",
    "Dense": "sentence_transformers.models.Dense",
    "Normalize": "sentence_transformers.models.Normalize",
}
ST_POOLING_FLAGS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


@dataclass
class EncoderParts:
    """What a folder holds: a tower, its pooling, an optional projection and normalization, prompts."""

    tower: Tower
    pooling: Pooling = Pooling.MEAN
    normalize: bool = False
    dense: Dense | None = None
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    include_prompt: bool = True  # False: the pooling leaves out prompt tokens (sentence-transformers' option)
    matryoshka_dims: tuple[int, ...] | None = None  # the truncations it was trained for (MatryoshkaLoss)


def load_parts(folder: Path, *, max_seq_length: int | None = None, trust_remote_code: bool = False) -> EncoderParts:
    """Read a sentsim, sentence-transformers or plain Hugging Face model folder."""
    if (folder / SENTSIM_CONFIG).exists():
        return _load_sentsim(folder, max_seq_length=max_seq_length, trust_remote_code=trust_remote_code)
    if (folder / "modules.json").exists():
        return _load_sentence_transformers(folder, max_seq_length=max_seq_length, trust_remote_code=trust_remote_code)
    if (folder / "config.json").exists():
        tower = TransformerTower.from_pretrained(
            folder, max_seq_length=max_seq_length, trust_remote_code=trust_remote_code
        )
        return EncoderParts(tower=tower)
    raise WeightsError(f"{folder} is not a model folder: it has no {SENTSIM_CONFIG}, modules.json or config.json")


def save_parts(
    parts: EncoderParts,
    folder: Path,
    *,
    overwrite: bool = False,
    extra: dict[str, bytes] | None = None,
    links: dict[str, str] | None = None,
) -> None:
    """Write ``parts`` into ``folder`` atomically (an existing folder is replaced only on success;
    one that holds no model only with ``overwrite``), with ``extra`` files (relative path -> bytes)
    beside them, e.g. an exported ``onnx/model.onnx``, and ``links`` (relative path -> an extra
    file's path) hard-linked to them (copied where the filesystem has no hard links)."""
    check_replaceable(folder, MODEL_MARKERS, "model", overwrite=overwrite)
    with atomic_folder(folder) as staging:
        for name, content in (extra or {}).items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_bytes(content)
        for name, target in (links or {}).items():
            try:
                os.link(staging / target, staging / name)
            except OSError:
                shutil.copyfile(staging / target, staging / name)
        parts.tower.save(staging)
        if parts.dense is not None:
            (staging / DENSE_DIR).mkdir()
            _write_json(staging / DENSE_DIR / "config.json", parts.dense.config.to_st_dict())
            parts.dense.save(staging / DENSE_DIR)
        if isinstance(parts.tower, TransformerTower):
            _write_sentence_transformers_files(parts, staging)
        config = {
            "format": MODEL_FORMAT,
            "sentsim_version": __version__,
            "tower": parts.tower.kind,
            "pooling": parts.pooling.value,
            "normalize": parts.normalize,
            "max_seq_length": parts.tower.max_seq_length,
            "dense": parts.dense.config.to_dict() if parts.dense is not None else None,
            "include_prompt": parts.include_prompt,
            "matryoshka_dims": list(parts.matryoshka_dims) if parts.matryoshka_dims else None,
        }
        if isinstance(parts.tower, TransformerTower):  # its prompts are in config_sentence_transformers.json
            config["do_lower_case"] = parts.tower.do_lower_case
        else:
            config |= {"lstm": parts.tower.config_dict(), "prompts": parts.prompts}
            config["default_prompt_name"] = parts.default_prompt_name
        _write_json(staging / SENTSIM_CONFIG, config)


def _load_sentsim(folder: Path, *, max_seq_length: int | None, trust_remote_code: bool) -> EncoderParts:
    config = _read_json(folder / SENTSIM_CONFIG, dict)
    check_format(folder / SENTSIM_CONFIG, config, MODEL_FORMAT, "model")
    if config.get("tower") not in TOWER_KEYS:
        raise ValueError(
            f"{folder / SENTSIM_CONFIG}: unknown tower {config.get('tower')!r}; expected 'transformer' or 'lstm'"
        )
    missing = [key for key in (*SAVED_KEYS, *TOWER_KEYS[config["tower"]]) if key not in config]
    if missing:
        raise ValueError(f"{folder / SENTSIM_CONFIG} lacks {', '.join(map(repr, missing))}")
    length = max_seq_length if max_seq_length is not None else config["max_seq_length"]
    if config["tower"] == "lstm":
        tower: Tower = LSTMTower.load(folder, config["lstm"])
        if length is not None:
            tower.max_seq_length = length
    else:
        tower = TransformerTower.from_pretrained(
            folder,
            max_seq_length=length,
            do_lower_case=config["do_lower_case"],
            trust_remote_code=trust_remote_code,
        )
    dense = None
    if config["dense"]:
        dense = Dense.load(folder / DENSE_DIR, DenseConfig(**config["dense"]))
    # a transformer's prompts are where sentence-transformers reads (and a user edits) them
    prompt_file = folder / ST_CONFIG if config["tower"] == "transformer" else folder / SENTSIM_CONFIG
    return EncoderParts(
        tower,
        Pooling.parse(config["pooling"]),
        bool(config["normalize"]),
        dense,
        *_read_prompts(prompt_file),
        include_prompt=config["include_prompt"] is not False,
        matryoshka_dims=None
        if config["matryoshka_dims"] is None
        else check_dims(config["matryoshka_dims"], name=f"{folder / SENTSIM_CONFIG}: matryoshka_dims"),
    )


def _load_sentence_transformers(folder: Path, *, max_seq_length: int | None, trust_remote_code: bool) -> EncoderParts:
    modules = sorted(_read_json(folder / "modules.json", list), key=lambda module: module.get("idx", 0))
    tower, pooling, normalize, dense, include_prompt = None, Pooling.MEAN, False, None, True
    for module in modules:
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        if not isinstance(module.get("path", ""), str) or not inside(folder, module.get("path", "")):
            raise ValueError(f"{folder / 'modules.json'}: module path {module.get('path')!r} is not inside {folder}")
        path = folder / module.get("path", "")
        if kind == "Transformer":
            st_config = (
                _read_json(path / "sentence_bert_config.json") if (path / "sentence_bert_config.json").exists() else {}
            )
            tower = TransformerTower.from_pretrained(
                path,
                max_seq_length=max_seq_length if max_seq_length is not None else st_config.get("max_seq_length"),
                do_lower_case=st_config.get("do_lower_case", False),
                trust_remote_code=trust_remote_code,
            )
        elif kind == "Pooling":
            pooling, include_prompt = _read_st_pooling(path / "config.json")
        elif kind == "Dense" and dense is None:
            dense = Dense.load(path, DenseConfig.from_st_dict(_read_json(path / "config.json")))
        elif kind == "Normalize":
            normalize = True
        else:
            raise ValueError(
                f"{folder / 'modules.json'}: module {module.get('type')!r} is not supported "
                f"(sentsim reads one each of: {', '.join(ST_TYPES)})"
            )
    if tower is None:
        raise ValueError(f"{folder / 'modules.json'} lists no Transformer module")
    return EncoderParts(
        tower, pooling, normalize, dense, *_read_prompts(folder / ST_CONFIG), include_prompt=include_prompt
    )


def _read_prompts(file: Path) -> tuple[dict[str, str], str | None]:
    """The ``prompts`` and ``default_prompt_name`` of a model config ``file`` (none without one), checked
    (a null prompt is "", as sentence-transformers reads it)."""
    config = _read_json(file) if file.exists() else {}
    default_prompt_name = config.get("default_prompt_name")
    prompts = config.get("prompts")
    if isinstance(prompts, dict):
        prompts = {name: "" if text is None else text for name, text in prompts.items()}
    try:
        return check_prompts(prompts, default_prompt_name), default_prompt_name
    except (TypeError, ValueError) as error:
        raise ValueError(f"{file}: {error}") from None


def _read_st_pooling(file: Path) -> tuple[Pooling, bool]:
    """The pooling mode, and whether it includes prompt tokens."""
    config = _read_json(file)
    if "pooling_mode" in config:
        mode = config["pooling_mode"]
        modes = [mode] if isinstance(mode, str) else list(mode)
    else:
        modes = [name for flag, name in ST_POOLING_FLAGS.items() if config.get(flag)]
    if len(modes) != 1 or modes[0] not in {p.value for p in Pooling}:
        valid = ", ".join(p.value for p in Pooling)
        raise ValueError(f"{file}: pooling {modes} is not supported; sentsim supports exactly one of {valid}")
    return Pooling(modes[0]), config.get("include_prompt", True) is not False


def _write_sentence_transformers_files(parts: EncoderParts, folder: Path) -> None:
    tower = parts.tower
    _write_json(
        folder / "sentence_bert_config.json",
        {"max_seq_length": tower.max_seq_length, "do_lower_case": tower.do_lower_case},
    )
    modules = [("Transformer", "")]
    (folder / "1_Pooling").mkdir()
    flags = {flag: name == parts.pooling.value for flag, name in ST_POOLING_FLAGS.items()}
    include_prompt = {} if parts.include_prompt else {"include_prompt": False}  # older readers lack the key
    _write_json(
        folder / "1_Pooling" / "config.json", {"word_embedding_dimension": tower.dim, **flags, **include_prompt}
    )
    modules.append(("Pooling", "1_Pooling"))
    if parts.dense is not None:
        modules.append(("Dense", DENSE_DIR))
    if parts.normalize:
        path = f"{len(modules)}_Normalize"
        (folder / path).mkdir()
        modules.append(("Normalize", path))
    entries = [
        {"idx": i, "name": str(i), "path": path, "type": ST_TYPES[kind]} for i, (kind, path) in enumerate(modules)
    ]
    _write_json(folder / "modules.json", entries)
    versions = {"transformers": transformers.__version__, "pytorch": torch.__version__}
    _write_json(
        folder / ST_CONFIG,
        {
            "__version__": versions,
            "prompts": parts.prompts,
            "default_prompt_name": parts.default_prompt_name,
            "similarity_fn_name": "cosine",
        },
    )


def _read_json(file: Path, kind: type = dict) -> dict | list:
    """The JSON document in ``file``, which must be a ``kind`` (an object, or a list)."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WeightsError(f"missing file {file}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{file} is not valid JSON: {error}") from None
    if not isinstance(data, kind):
        expected = "a JSON object" if kind is dict else "a JSON list"
        raise ValueError(f"{file}: expected {expected}, got {type(data).__name__}")
    return data


def _write_json(file: Path, data: object) -> None:
    file.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
