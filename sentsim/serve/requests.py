"""Request bodies, read and checked at the door: each route gets plain, valid values or a 400 naming the field."""

from __future__ import annotations

from dataclasses import dataclass

from sentsim.serve.errors import bad_request
from sentsim.validation import is_integer, validate_texts

TOKEN_IDS_HINT = (
    "input holds token ids; this server embeds text. LangChain's OpenAIEmbeddings sends token ids unless "
    "check_embedding_ctx_length=False"
)


@dataclass(frozen=True)
class EmbeddingsRequest:
    texts: list[str]
    model: str | None
    base64: bool
    dimensions: int | None
    prompt_name: str | None


def object_body(body: object) -> dict:
    if not isinstance(body, dict):
        raise bad_request(f"the request body must be a JSON object, got {type(body).__name__}")
    return body


def texts_field(body: dict, name: str, *, max_inputs: int, required: bool = True) -> tuple[list[str], bool] | None:
    """``body[name]`` as a list of non-empty texts, and whether it was one string."""
    value = body.get(name)
    if value is None:
        if required:
            raise bad_request(f"'{name}' is required: a string or a list of strings", code="missing_field")
        return None
    if isinstance(value, str):
        texts, single = [value], True
    elif isinstance(value, list):
        if value and (is_integer(value[0]) or isinstance(value[0], list) and value[0] and is_integer(value[0][0])):
            raise bad_request(TOKEN_IDS_HINT, code="token_ids")
        try:
            texts, single = validate_texts(value, name), False
        except (TypeError, ValueError) as error:
            raise bad_request(str(error)) from None
    else:
        raise bad_request(f"'{name}' must be a string or a list of strings, got {_kind(value)}")
    if not texts:
        raise bad_request(f"'{name}' is an empty list; send at least one text")
    if len(texts) > max_inputs:
        raise bad_request(f"'{name}' holds {len(texts)} texts; at most {max_inputs} a request", code="too_many_inputs")
    for row, text in enumerate(texts):
        if not text:
            where = name if single else f"{name}[{row}]"
            raise bad_request(f"{where} is an empty string; every text needs at least one character")
    return texts, single


def embeddings_request(body: object, *, max_inputs: int, dim: int) -> EmbeddingsRequest:
    body = object_body(body)
    texts, _ = texts_field(body, "input", max_inputs=max_inputs)
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise bad_request(f"encoding_format must be 'float' or 'base64', got {encoding!r}")
    dimensions = body.get("dimensions")
    if dimensions is not None and (not is_integer(dimensions) or not 1 <= dimensions <= dim):
        raise bad_request(f"dimensions must be an int between 1 and {dim}, got {dimensions!r}")
    return EmbeddingsRequest(
        texts,
        _optional_str(body, "model"),
        encoding == "base64",
        dimensions,
        _optional_str(body, "prompt_name"),
    )


def optional_object(body: dict, name: str) -> dict | None:
    value = body.get(name)
    if value is not None and not isinstance(value, dict):
        raise bad_request(f"'{name}' must be a JSON object, got {_kind(value)}")
    return value


def _optional_str(body: dict, name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise bad_request(f"'{name}' must be a string, got {_kind(value)}")
    return value


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )
