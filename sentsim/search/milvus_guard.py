"""The record a Milvus collection keeps of the sentsim index it holds: refused when it is another's.

The collection's ``sentsim.index`` property names the index (an id the manifest records too), its
model's fingerprint and its metric. A collection of another index, or of another model's
vectors, is refused at create and at open, and so is one without the property.
"""

from __future__ import annotations

import json
from pathlib import Path

from sentsim.fingerprint import fingerprint_mismatch
from sentsim.search.milvus_connection import CALL_TIMEOUT, MilvusClient
from sentsim.search.model_guard import ModelMismatchError
from sentsim.search.store import IndexCorruptedError

MARKER = "sentsim.index"  # the collection property naming the index and model it holds


def collection_marker(manifest: dict) -> str:
    """What the collection records of its index: the index's id, model and metric."""
    return json.dumps(
        {
            "format": 1,
            "index_id": manifest["store"]["index_id"],
            "model": manifest["model"],
            "metric": manifest["metric"],
        }
    )


def read_marker(client: MilvusClient, name: str) -> dict | None:
    """The collection's record of its index (``{}`` where it cannot be read), or None without one."""
    raw = client.describe_collection(name, timeout=CALL_TIMEOUT).get("properties", {}).get(MARKER)
    if raw is None:
        return None
    try:
        marker = json.loads(raw)
    except ValueError:
        return {}
    return marker if isinstance(marker, dict) else {}


def refuse_existing_collection(client: MilvusClient, uri: str, name: str, manifest: dict) -> None:
    """Refuse a collection that exists: another index's, another model's, or not sentsim's."""
    where = f"the collection {name!r} at {uri}"
    marker = read_marker(client, name)
    if marker is None:
        raise FileExistsError(f"{where} exists and is not a sentsim index; pick another collection")
    different = fingerprint_mismatch(marker.get("model") or {}, manifest["model"])
    if different:
        raise ModelMismatchError(
            f"{where} holds the vectors of another model ({(marker.get('model') or {}).get('name') or 'unnamed'}; "
            f"it differs in {', '.join(different)}); pick another collection"
        )
    raise FileExistsError(f"{where} already holds a sentsim index; open its folder, or pick another collection")


def refuse_other_index(marker: dict, manifest: dict, where: str, folder: Path) -> None:
    different = fingerprint_mismatch(marker.get("model") or {}, manifest["model"])
    if different:
        raise ModelMismatchError(
            f"{where} holds the vectors of another model ({(marker.get('model') or {}).get('name') or 'unnamed'}; "
            f"it differs in {', '.join(different)}) than the index in {folder} was built with"
        )
    raise IndexCorruptedError(
        f"{where} holds another sentsim index than the one in {folder} (built again into that collection?)"
    )
