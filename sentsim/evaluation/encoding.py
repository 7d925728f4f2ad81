"""Encode several text columns with each distinct text encoded once."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def encode_columns(
    encoder, *columns: Sequence[str], batch_size: int = 64, show_progress: bool | None = None
) -> list[np.ndarray]:
    """One ``(len(column), dim)`` array per column; duplicate texts across columns are encoded once."""
    unique = list(dict.fromkeys(text for column in columns for text in column))
    embeddings = encoder.encode(unique, batch_size=batch_size, show_progress=show_progress)
    index = {text: i for i, text in enumerate(unique)}
    return [embeddings[[index[text] for text in column]].reshape(len(column), -1) for column in columns]
