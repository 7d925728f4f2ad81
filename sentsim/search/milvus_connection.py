"""Connections to Milvus: a server or cluster by URI, or a Milvus Lite database file.

A server that does not answer is reported within :data:`CONNECT_TIMEOUT` seconds, naming its URI.
The index handles of a process share one client per URI and token (pymilvus before 3.0 shares
its connection so, and closing any client closed it for all): the last handle to close closes
it. Milvus Lite runs inside this process, one server per database file; the last handle on the
file stops it, so the file can then be moved (``index build`` moves its staging folder into
place) or opened by another process.
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

_lock = threading.Lock()
_clients: dict[tuple[str, str], tuple[MilvusClient, int]] = {}  # (uri, token) -> (client, handles)


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
    """The client of the server at ``uri``, or of the Milvus Lite database file ``uri`` (an absolute
    path), shared by this process's handles; a ConnectionError naming ``uri`` where it cannot be
    reached. Pair each call with :func:`disconnect`."""
    lite = not is_server(uri)
    if lite:
        try:
            import milvus_lite  # noqa: F401 - pymilvus starts it for a .db file
        except ImportError:
            raise ImportError(
                f"{uri} is a Milvus Lite database, which needs milvus-lite: pip install 'sentsim[milvus]'"
            ) from None
    key = (uri, token or "")
    with _lock:  # one connect at a time: a second handle waits for the first's client
        if key in _clients:
            client, handles = _clients[key]
            _clients[key] = (client, handles + 1)
            return client
        try:
            client = MilvusClient(uri=uri, token=token or "", timeout=CONNECT_TIMEOUT)
        except MilvusException as error:
            if lite and not any(other == uri for other, _ in _clients):
                _stop_lite(uri)
            where = "open the Milvus Lite database" if lite else "reach Milvus at"
            hint = " (another process may hold it: Milvus Lite serves one process)" if lite else ""
            raise ConnectionError(f"cannot {where} {uri}{hint}: {error.message}") from None
        _clients[key] = (client, 1)
        return client


def disconnect(uri: str, token: str | None) -> None:
    """Let go of the client :func:`connect` gave; the last handle closes it (and stops Milvus Lite)."""
    key = (uri, token or "")
    with _lock:
        client, handles = _clients[key]
        if handles > 1:
            _clients[key] = (client, handles - 1)
            return
        del _clients[key]
        try:
            client.close()
        finally:
            if not is_server(uri) and not any(other == uri for other, _ in _clients):
                _stop_lite(uri)


@contextmanager
def refused(uri: str, collection: str, what: str) -> Iterator[None]:
    """A refusal of Milvus as a RuntimeError naming the server, the collection and what was refused."""
    try:
        yield
    except MilvusException as error:
        raise RuntimeError(f"Milvus at {uri} refused to {what} (collection {collection!r}): {error.message}") from None


def _stop_lite(path: str) -> None:
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(path)
    logger.debug("stopped Milvus Lite for %s", path)
