"""Prompts: the instructions some models expect before a text, such as ``"query: "`` for e5.

A model folder names its prompts (``{"query": "query: ", "passage": "passage: "}``) and may name
a default one, as sentence-transformers' ``config_sentence_transformers.json`` does. ``encode``
prepends the prompt chosen by ``prompt`` or ``prompt_name`` (else the default) to every text.
Search and retrieval evaluation use a model's ``query`` prompt for queries and its
``document`` / ``passage`` / ``corpus`` prompt for documents, never the default.
"""

from __future__ import annotations

from collections.abc import Mapping

QUERY_PROMPT_NAMES = ("query",)
DOCUMENT_PROMPT_NAMES = ("document", "passage", "corpus")


def check_prompts(prompts: object, default_prompt_name: object, source: str = "prompts") -> dict[str, str]:
    """``prompts`` as a dict of name -> prompt text; ``default_prompt_name`` must name one of them."""
    if prompts is None:
        prompts = {}
    if not isinstance(prompts, Mapping):
        raise TypeError(f"{source} must map prompt names to prompt texts, got {type(prompts).__name__}")
    bad = next(((k, v) for k, v in prompts.items() if not isinstance(k, str) or not isinstance(v, str)), None)
    if bad is not None:
        raise TypeError(f"{source} must map str names to str prompt texts, got {bad[0]!r}: {bad[1]!r}")
    if default_prompt_name is not None and default_prompt_name not in prompts:
        raise ValueError(f"default_prompt_name {default_prompt_name!r} is not one of the prompts ({_names(prompts)})")
    return dict(prompts)


def choose_prompt(
    prompts: Mapping[str, str], default_prompt_name: str | None, prompt: object, prompt_name: object
) -> str:
    """The text to prepend: ``prompt`` itself, the prompt named ``prompt_name``, else the default ("" for none)."""
    if prompt is not None and prompt_name is not None:
        raise ValueError("give prompt (a text) or prompt_name (one of the model's prompts), not both")
    if prompt is not None:
        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be a str, got {type(prompt).__name__}")
        return prompt
    if prompt_name is not None and not isinstance(prompt_name, str):
        raise TypeError(f"prompt_name must be a str, got {type(prompt_name).__name__}")
    name = prompt_name if prompt_name is not None else default_prompt_name
    if name is None:
        return ""
    if name not in prompts:
        raise ValueError(f"unknown prompt_name {name!r}; this model's prompts: {_names(prompts)}")
    return prompts[name]


def search_prompts(prompts: Mapping[str, str]) -> dict[str, str]:
    """``{"query": ..., "document": ...}``: the prompts of a search's two sides ("" where the model names none)."""
    return {  # an empty prompt is skipped: sentence-transformers saves "document": "" beside a "passage" one
        "query": next((prompts[name] for name in QUERY_PROMPT_NAMES if prompts.get(name)), ""),
        "document": next((prompts[name] for name in DOCUMENT_PROMPT_NAMES if prompts.get(name)), ""),
    }


def encoder_search_prompts(encoder) -> dict[str, str]:
    """:func:`search_prompts` of ``encoder``, refused (ValueError) where the model would pool without
    them (``include_prompt=False``): a search built on it would ignore its own prompts."""
    prompts = search_prompts(encoder.prompts)
    if any(prompts.values()) and not encoder.include_prompt:
        raise ValueError(
            f"the model's search prompts {prompts} would be pooled, but it pools without them "
            "(include_prompt=False), which sentsim does not support"
        )
    return prompts


def with_prompt(prompt: str, texts: list[str]) -> list[str]:
    return [prompt + text for text in texts] if prompt else texts


def _names(prompts: Mapping[str, str]) -> str:
    return ", ".join(map(repr, prompts)) or "none"
