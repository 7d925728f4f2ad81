"""Connections to Milvus: a server or cluster by URI, or a Milvus Lite database file.

A server that does not answer is reported within :data:`CONNECT_TIMEOUT` seconds, naming its URI.
Milvus Lite runs inside this process, one server per database file; it is stopped when the last
index handle on that file closes, so the file can then be moved (``index build`` moves its staging
folder into place) or opened by another process.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

try:
    from pymilvus import DataType, MilvusClient, MilvusException
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("the Milvus store needs pymilvus: pip install 'sentsim[milvus]'") from error

logger = logging.getLogger(__name__)

__all__ = [
    "CALL_TIMEOUT",
    "DataType",
    "MilvusClient",
    "MilvusException",
    "check_uri",
    "connect",
    "disconnect",
    "is_server",
    "refused",
    "resolve_uri",
    "token_or_environment",
]

CONNECT_TIMEOUT = 5.0  # seconds
CALL_TIMEOUT = 120.0  # seconds a Milvus call may take, retries included (pymilvus retries for minutes)
SERVER_SCHEMES = ("http", "https", "tcp")

_lite_lock = threading.Lock()
_lite_handles: dict[str, int] = {}  # Milvus Lite database path -> open handles


def is_server(uri: str) -> bool:
    """Whether ``uri`` names a Milvus server (``http://``, ``https://``, ``tcp://``, ``unix:``), not a Lite file."""
    return urlparse(uri).scheme.lower() in SERVER_SCHEMES or uri.startswith("unix:")


def check_uri(uri: object) -> str:
    """``uri`` as a str: a server URI without credentials (the manifest records it), or a ``.db`` file."""
    if not isinstance(uri, (str, os.PathLike)):
        raise TypeError(f"milvus_uri must be a str (a server URI or a .db file), got {type(uri).__name__}")
    uri = str(uri)
    if is_server(uri) and (urlparse(uri).username or urlparse(uri).password):
        raise ValueError(
            "milvus_uri holds credentials, which would be written to manifest.json; "
            "pass them as milvus_token (or the MILVUS_TOKEN environment variable)"
        )
    if not is_server(uri) and not uri.endswith(".db"):
        raise ValueError(
            "milvus_uri must be a Milvus server (http://host:19530, https://..., tcp://..., unix:...) "
            f"or a Milvus Lite database file ending in .db, got {uri!r}"
        )
    return uri


def resolve_uri(folder: Path, uri: str) -> str:
    """The server URI, or the Milvus Lite file as an absolute path (a relative one lies inside ``folder``)."""
    if is_server(uri):
        return uri
    path = Path(uri).expanduser()
    return str((path if path.is_absolute() else folder / path).absolute())


def token_or_environment(token: object) -> str | None:
    """``token``, else the ``MILVUS_TOKEN`` environment variable (read now, never stored)."""
    if token is not None and not isinstance(token, str):
        raise TypeError(f"milvus_token must be a str or None, got {type(token).__name__}")
    return token if token is not None else os.environ.get("MILVUS_TOKEN")


def connect(uri: str, token: str | None) -> MilvusClient:
    """A client of the server at ``uri``, or of the Milvus Lite database file ``uri`` (an absolute
    path); a ConnectionError naming ``uri`` where it cannot be reached."""
    lite = not is_server(uri)
    if lite:
        try:
            import milvus_lite  # noqa: F401 - pymilvus starts it for a .db file
        except ImportError:
            raise ImportError(
                f"{uri} is a Milvus Lite database, which needs milvus-lite: pip install 'sentsim[milvus]'"
            ) from None
        with _lite_lock:
            _lite_handles[uri] = _lite_handles.get(uri, 0) + 1
    try:
        return MilvusClient(uri=uri, token=token or "", timeout=CONNECT_TIMEOUT)
    except BaseException as error:
        if lite:
            _release(uri)
        if not isinstance(error, MilvusException):
            raise
        where = "open the Milvus Lite database" if lite else "reach Milvus at"
        hint = " (another process may hold it: Milvus Lite serves one process)" if lite else ""
        raise ConnectionError(f"cannot {where} {uri}{hint}: {error.message}") from None


def disconnect(client: MilvusClient, uri: str) -> None:
    """Close ``client``; the last handle on a Milvus Lite file stops its server."""
    try:
        client.close()
    finally:
        if not is_server(uri):
            _release(uri)


@contextmanager
def refused(uri: str, collection: str, what: str) -> Iterator[None]:
    """A refusal of Milvus as a RuntimeError naming the server, the collection and what was refused."""
    try:
        yield
    except MilvusException as error:
        raise RuntimeError(f"Milvus at {uri} refused to {what} (collection {collection!r}): {error.message}") from None


def _release(path: str) -> None:
    with _lite_lock:
        left = _lite_handles.get(path, 0) - 1
        if left > 0:
            _lite_handles[path] = left
            return
        _lite_handles.pop(path, None)
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(path)
        logger.debug("stopped Milvus Lite for %s", Path(path).name)
