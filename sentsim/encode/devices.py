"""Where encode runs, and what runs there.

:func:`encode_devices` picks the devices (one, a list, or every visible GPU for a large
corpus). A :class:`DeviceRunner` owns everything that runs on one device: the model there (the
encoder itself, or a replica kept in step with its weights) and the tower forward of each
runtime, built once (``torch.compile`` costs seconds of warm-up, an ONNX export more) and
rebuilt only when the weights change. An encoder keeps its runners in a :class:`DeviceRunners`,
which a copy of the encoder does not share.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from sentsim.encode.batches import Batch
from sentsim.encode.onnx import OnnxForward
from sentsim.encode.runtimes import Runtime

MULTI_GPU_TEXTS = 65536  # from this many texts, encode runs on every visible GPU by default


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a ``torch.device`` that exists here (None: CUDA when available, else CPU).

    Raises a ValueError naming the device for a malformed name, or a GPU this machine lacks.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a str or torch.device, got {type(device).__name__}")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}; expected cpu, cuda, cuda:N or mps") from None
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {str(device)!r} was asked for, but torch here has no CUDA GPU; use cpu")
        if resolved.index is not None and resolved.index >= count:
            raise ValueError(f"device {str(device)!r} does not exist: {count} CUDA GPU(s) are visible")
    elif resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(device)!r} was asked for, but MPS is not available here; use cpu")
    return resolved


def encode_devices(
    device: str | torch.device | Sequence[str | torch.device] | None, main: torch.device, count: int
) -> list[torch.device]:
    """The devices to encode ``count`` texts on, the model's first: ``device`` as given (one or a
    list), or, by default, the model's device ``main`` plus every other visible GPU for a large
    corpus (at least ``MULTI_GPU_TEXTS`` texts) when the model is on a GPU."""
    if isinstance(device, (list, tuple)):
        if not device:
            raise ValueError("device=[] names no device")
        devices = [resolve_device(one) for one in device]
        if len({one.type for one in devices}) > 1:
            raise ValueError(f"devices must be of one type, got {[str(one) for one in devices]}")
        return devices
    if device is not None:
        return [resolve_device(device)]
    if main.type == "cuda" and torch.cuda.device_count() > 1 and count >= MULTI_GPU_TEXTS:
        return [main, *(torch.device("cuda", i) for i in range(torch.cuda.device_count()) if i != main.index)]
    return [main]


class DeviceRunner:
    """Runs one model (the encoder, or a replica of it) on one device, with the forward of a runtime.

    The model is any module with ``tower`` and ``embed(batch, normalize=, tower_forward=)``.
    """

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        self.model, self.device = model, device
        self._compiled: dict[bool, Callable] = {}  # packed -> compiled tower forward
        self._onnx: dict[bool, OnnxForward] = {}  # int8 -> the ONNX forward of the weights it was exported from

    def embedder(
        self, runtime: Runtime, *, packed: bool, normalize: bool, int8: bool = False, dim: int | None = None
    ) -> Callable[[Batch], Tensor]:
        """The function from a batch (on this device) to its embeddings ``(B, dim)`` (default: the model's dim)."""
        forward = self._tower_forward(runtime, packed, int8)
        return lambda batch: self.model.embed(batch, normalize=normalize, tower_forward=forward, dim=dim)

    def _tower_forward(self, runtime: Runtime, packed: bool, int8: bool) -> Callable | None:
        tower = self.model.tower
        if runtime is Runtime.ONNX or int8:
            if int8 not in self._onnx or not self._onnx[int8].is_current():
                self._onnx[int8] = OnnxForward(tower, int8=int8)
            return self._onnx[int8]
        if runtime is Runtime.COMPILE:
            if packed not in self._compiled:
                self._compiled[packed] = torch.compile(tower.forward_packed if packed else tower, dynamic=True)
            return self._compiled[packed]
        return None


class DeviceRunners:
    """An encoder's runners, kept between calls: one for the encoder itself, one per other device
    (with a replica loaded with the encoder's current weights each call, so it follows training).

    A copy (or pickle) of the encoder starts with no runners: compiled code and replicas stay here.
    """

    def __init__(self) -> None:
        self._own: DeviceRunner | None = None
        self._replicas: dict[str, DeviceRunner] = {}

    def __deepcopy__(self, memo: dict) -> DeviceRunners:
        return DeviceRunners()

    def __reduce__(self) -> tuple:
        return DeviceRunners, ()

    def for_devices(self, model: nn.Module, devices: list[torch.device]) -> list[DeviceRunner]:
        """Runners for ``devices``: ``model`` itself (already on ``devices[0]``), then replicas."""
        if self._own is None or self._own.model is not model:
            self._own = DeviceRunner(model, devices[0])
        self._own.device = devices[0]
        return [self._own] + [self._replica(model, device) for device in devices[1:]]

    def _replica(self, model: nn.Module, device: torch.device) -> DeviceRunner:
        runner = self._replicas.get(str(device))
        if runner is None:
            runner = self._replicas[str(device)] = DeviceRunner(copy.deepcopy(model).to(device), device)
        else:
            runner.model.load_state_dict(model.state_dict())
        return runner
