"""Dense projection: an optional linear layer (with activation) after pooling."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from torch import Tensor, nn

from sentsim.storage.weights import load_safetensors, safetensors_files, save_safetensors
from sentsim.validation import check_choice, check_flag, check_int

# Activation name -> (module factory, the class path sentence-transformers writes in 2_Dense/config.json).
ACTIVATIONS: dict[str, tuple[type[nn.Module], str]] = {
    "identity": (nn.Identity, "torch.nn.modules.linear.Identity"),
    "tanh": (nn.Tanh, "torch.nn.modules.activation.Tanh"),
    "relu": (nn.ReLU, "torch.nn.modules.activation.ReLU"),
    "gelu": (nn.GELU, "torch.nn.modules.activation.GELU"),
    "sigmoid": (nn.Sigmoid, "torch.nn.modules.activation.Sigmoid"),
}


@dataclass(frozen=True, kw_only=True)
class DenseConfig:
    """A ``Linear(in_features, out_features)`` followed by ``activation`` (one of ``ACTIVATIONS``)."""

    in_features: int
    out_features: int
    bias: bool = True
    activation: str = "tanh"

    def __post_init__(self) -> None:  # numpy values stored plain: the config is written as JSON
        for name in ("in_features", "out_features"):
            object.__setattr__(self, name, check_int(f"DenseConfig.{name}", getattr(self, name), minimum=1))
        object.__setattr__(self, "bias", check_flag("DenseConfig.bias", self.bias))
        check_choice("activation", self.activation, ACTIVATIONS)

    def to_st_dict(self) -> dict:
        """The ``2_Dense/config.json`` that sentence-transformers reads."""
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.bias,
            "activation_function": ACTIVATIONS[self.activation][1],
        }

    @classmethod
    def from_st_dict(cls, data: dict) -> DenseConfig:
        """Read a sentence-transformers Dense config; only the activations above are accepted."""
        path = data.get("activation_function", ACTIVATIONS["tanh"][1])
        by_path = {st_path: name for name, (_, st_path) in ACTIVATIONS.items()}
        if path not in by_path:
            raise ValueError(f"unsupported Dense activation {path!r}; supported: {', '.join(by_path)}")
        return cls(
            in_features=data["in_features"],
            out_features=data["out_features"],
            bias=data.get("bias", True),
            activation=by_path[path],
        )

    def to_dict(self) -> dict:
        return asdict(self)


class Dense(nn.Module):
    """Linear projection of pooled embeddings, saved in sentence-transformers' ``Dense`` layout."""

    WEIGHTS_NAME = "model.safetensors"

    def __init__(self, config: DenseConfig) -> None:
        super().__init__()
        self.config = config
        self.linear = nn.Linear(config.in_features, config.out_features, bias=config.bias)
        self.activation = ACTIVATIONS[config.activation][0]()

    def forward(self, embeddings: Tensor) -> Tensor:
        return self.activation(self.linear(embeddings))  # (B, out_features)

    def save(self, folder: Path) -> None:
        save_safetensors(self.state_dict(), folder / self.WEIGHTS_NAME)

    @classmethod
    def load(cls, folder: Path, config: DenseConfig) -> Dense:
        dense = cls(config)
        safetensors_files(folder)  # a folder with only pickled weights is named as such
        state = load_safetensors(folder / cls.WEIGHTS_NAME)
        try:
            dense.load_state_dict(state)
        except RuntimeError as error:
            raise ValueError(f"{folder / cls.WEIGHTS_NAME} does not fit {config}: {error}") from None
        return dense
