"""Label texts: what a class's name or description says about its texts, as a few-shot signal.

``label_text="names"`` turns each class name into words (``card_arrival``, ``card-arrival`` and
``CardArrival`` all read "card arrival"); a dict maps labels to descriptions, and a class it
leaves out falls back to its name in words (an int label, which has no words, then has no label
text and is scored by its examples alone).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from sentsim.prompts import search_prompts
from sentsim.validation import plain

__all__ = ["check_known", "check_label_text", "humanize", "label_prompt", "label_texts_for"]

NAMES = "names"
Label = str | int


def humanize(label: str) -> str:
    """A class name in words: underscores and hyphens become spaces, camelCase is split and
    lower-cased; acronyms keep their capitals (``HTTPError`` -> "HTTP error")."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", label)  # camelCase -> camel Case
    words = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", words)  # HTTPError -> HTTP Error
    parts = re.sub(r"[_\-\s]+", " ", words).split()
    if not parts:
        raise ValueError(f"the label {label!r} has no words to use as its label text; give it a description")
    return " ".join(part if part.isupper() and len(part) > 1 else part.lower() for part in parts)


def check_label_text(label_text: object) -> str | dict[Label, str] | None:
    """``None``, ``"names"`` or a dict of label -> non-empty description (labels as str or int)."""
    if label_text is None or label_text == NAMES:
        return label_text
    if isinstance(label_text, str):
        raise ValueError(f"label_text must be 'names', a dict of label -> description or None, got {label_text!r}")
    if not isinstance(label_text, Mapping):
        raise TypeError(
            f"label_text must be 'names', a dict of label -> description or None, got {type(label_text).__name__}"
        )
    descriptions: dict[Label, str] = {}
    for key, text in label_text.items():
        key = plain(key)
        if isinstance(key, bool) or not isinstance(key, (str, int)) or key == "":
            raise ValueError(f"label_text: a label must be a non-empty str or an int, got {key!r}")
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"label_text[{key!r}] must be a non-empty text, got {text!r}")
        descriptions[key] = text
    return descriptions


def label_texts_for(label_text: str | dict[Label, str] | None, classes: Sequence[Label]) -> dict[Label, str]:
    """The text of each class that has one: its description, else its name in words (str labels)."""
    if label_text is None:
        return {}
    descriptions = {} if label_text == NAMES else label_text
    texts = {}
    for label in classes:
        if label in descriptions:
            texts[label] = descriptions[label]
        elif isinstance(label, str):
            texts[label] = humanize(label)
        elif label_text == NAMES:
            raise TypeError(
                f"label_text='names' needs str labels; the label {label!r} is an int: give label_text a dict of "
                "descriptions instead"
            )
    return texts


def check_known(label_text: str | dict[Label, str] | None, classes: Sequence[Label]) -> None:
    """A ValueError naming the described labels that are no class (a typo would be a silent no-op)."""
    if not isinstance(label_text, dict):
        return
    unknown = [label for label in label_text if label not in set(classes)]
    if unknown:
        shown = ", ".join(map(repr, unknown[:5])) + (" ..." if len(unknown) > 5 else "")
        raise ValueError(
            f"label_text describes {len(unknown)} label(s) that are no class ({shown}); the classes are those given "
            f"as labels= or met in the examples ({', '.join(map(repr, list(classes)[:5]))}"
            f"{' ...' if len(classes) > 5 else ''})"
        )


def label_prompt(encoder) -> str | None:
    """The prompt label texts are embedded with: the model's document prompt (a label text is what a
    text is matched against) where it has one, else ``None`` (the encoder's default, as for examples)."""
    prompts = getattr(encoder, "prompts", None) or {}
    return search_prompts(prompts)["document"] or None
