"""The Ray runtime a command runs on: a cluster at an address, or a local one started for the command."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5.0  # ray.init waits minutes on an address where no cluster answers


def require_ray():
    """The ``ray`` module with Ray Data, or an ImportError saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 - Ray Data is an extra of Ray
    except ImportError as error:
        raise ImportError(f"sentsim.distributed needs Ray Data: pip install 'sentsim[ray]' ({error})") from error
    return ray


@contextlib.contextmanager
def ray_runtime(address: str | None = None, *, log_to_driver: bool = False) -> Iterator[None]:
    """Run the block connected to the Ray cluster at ``address``, or on a local runtime started
    for it (no dashboard, no usage stats) when ``address`` is None; disconnect (and stop a local
    runtime) after it.

    ``address`` is ``"auto"`` (the cluster this machine belongs to, or ``RAY_ADDRESS``, as inside
    ``ray job submit``), ``HOST:PORT`` or ``ray://HOST:PORT``. An address where nothing answers is
    a ConnectionError naming it within seconds. A process already connected to Ray (``ray.init``
    called before) keeps its connection, which the block uses and leaves open; an address is then
    refused. ``log_to_driver`` forwards the workers' output (warnings, logs) to this process.
    """
    ray = require_ray()
    if address is not None:
        _check_address(address)
    if ray.is_initialized():
        if address is not None:
            raise ValueError(f"this process is already connected to Ray, so it cannot connect to {address}")
        yield
        return
    level = logging.INFO if logger.isEnabledFor(logging.INFO) else logging.WARNING
    if address is None:
        with _usage_stats_off():
            ray.init(address="local", include_dashboard=False, log_to_driver=log_to_driver, logging_level=level)
    else:
        try:
            ray.init(address=address, log_to_driver=log_to_driver, logging_level=level)
        except ConnectionError as error:
            raise ConnectionError(f"no Ray cluster at {address}: {error}") from None
    try:
        yield
    finally:
        ray.shutdown()


def _check_address(address: str) -> None:
    """A ValueError for an address of the wrong shape; a ConnectionError naming ``address`` unless
    something answers there within ``CONNECT_TIMEOUT_SECONDS``. For ``"auto"``, the address in
    ``RAY_ADDRESS`` is checked, where set; else finding the cluster is Ray's (it fails at once)."""
    if not isinstance(address, str):
        raise TypeError(f"address must be a str, got {type(address).__name__}")
    named = address
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS", "")
        if address in ("", "auto", "local"):
            return
        named = f"{address} (RAY_ADDRESS)"
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"Ray address {named!r}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_SECONDS).close()
    except OSError as error:
        reason = "no answer" if isinstance(error, TimeoutError) else error.strerror or str(error)
        raise ConnectionError(
            f"no Ray cluster answers at {named} ({reason} within {CONNECT_TIMEOUT_SECONDS:g} s); "
            "check the address, or start a cluster there with `ray start --head`"
        ) from None


@contextlib.contextmanager
def _usage_stats_off() -> Iterator[None]:
    """``RAY_USAGE_STATS_ENABLED=0`` (unless set) while a local runtime starts: its processes read it then."""
    previous = os.environ.get("RAY_USAGE_STATS_ENABLED")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("RAY_USAGE_STATS_ENABLED", None)
