"""Elasticsearch backups: the index behind the alias snapshotted into a filesystem repository, and
restored under a new name, then swapped in by the alias (search keeps answering meanwhile).

The repository's location is a folder as the node sees it, and must lie below the node's
`path.repo` (the local launcher sets it, JOINTSPACE_ES_LOCAL_PATH_REPO; compose mounts /backups).
A snapshot is consistent per shard while the index is written to.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jointspace.es_mappings.client import unavailable_as_error
from jointspace.es_mappings.manager import IndexManager

from jointspace.errors import ConfigurationError

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    repository: str
    location: str
    snapshot: str
    index: str
    metadata: dict[str, Any]


def repository_name(location: str) -> str:
    """One repository per folder, named by it, so two backups to two folders never collide."""
    return "jointspace-" + hashlib.sha256(location.encode()).hexdigest()[:12]


def register_repository(client: Elasticsearch, url: str, location: str, readonly: bool) -> str:
    """Registers (or re-registers) the fs repository at `location`; its name. ConfigurationError
    with what to do when the node may not write there."""
    from elasticsearch import ApiError

    name = repository_name(location)
    with unavailable_as_error(url):
        try:
            client.snapshot.create_repository(
                name=name,
                repository={"type": "fs", "settings": {"location": location, "readonly": readonly, "compress": True}},
            )
        except ApiError as exc:
            reason = str(exc)
            if "path.repo" in reason:
                raise ConfigurationError(
                    f"Elasticsearch at {url} may not use {location} for snapshots: it is not below the node's "
                    f"path.repo. Pick a folder below it (compose: /backups/NAME), or restart the local node "
                    f"(`jointspace es stop && jointspace es start`) so that it gets JOINTSPACE_ES_LOCAL_PATH_REPO "
                    f"({reason})"
                ) from exc
            raise ConfigurationError(f"Elasticsearch refused the snapshot repository at {location}: {reason}") from exc
    return name


def snapshot_alias(
    client: Elasticsearch, manager: IndexManager, url: str, location: str, metadata: dict[str, Any]
) -> SnapshotInfo:
    """Snapshots the index behind the manager's alias into `location`; blocks until done."""
    index = manager.current()
    if index is None:
        raise ConfigurationError(f"no index behind alias {manager.alias!r} at {url}: nothing to back up")
    repository = register_repository(client, url, location, readonly=False)
    name = f"{index}-{datetime.now(UTC).strftime('%Y%m%dt%H%M%S%f')}"
    with unavailable_as_error(url):
        answer = client.snapshot.create(
            repository=repository,
            snapshot=name,
            indices=index,
            include_global_state=False,
            wait_for_completion=True,
            metadata={**metadata, "index": index},
        )
    state = answer["snapshot"]["state"]
    if state != "SUCCESS":
        raise ConfigurationError(f"snapshot {name} ended {state}: {answer['snapshot'].get('failures')}")
    return SnapshotInfo(repository, location, name, index, dict(answer["snapshot"].get("metadata") or {}))


def find_snapshot(client: Elasticsearch, url: str, location: str, name: str | None) -> SnapshotInfo:
    """The snapshot `name` (default: the newest) in the repository at `location`."""
    repository = register_repository(client, url, location, readonly=True)
    with unavailable_as_error(url):
        snapshots = client.snapshot.get(repository=repository, snapshot=name or "_all")["snapshots"]
    done = sorted((s for s in snapshots if s.get("state") == "SUCCESS"), key=lambda s: s["start_time_in_millis"])
    if not done:
        raise ConfigurationError(f"no finished snapshot {name or ''} in {location}")
    chosen = done[-1]
    metadata = dict(chosen.get("metadata") or {})
    return SnapshotInfo(
        repository, location, chosen["snapshot"], metadata.get("index") or chosen["indices"][0], metadata
    )


def restore_as_new_index(client: Elasticsearch, manager: IndexManager, url: str, info: SnapshotInfo, model: str) -> str:
    """Restores the snapshot's index as a new versioned index of this alias (the live one is left
    alone) and records this alias in its `_meta`; returns the new index's name."""
    new_index = manager.index_name(model, "restored-" + datetime.now(UTC).strftime("%Y%m%dt%H%M%S%f"))
    with unavailable_as_error(url):
        client.snapshot.restore(
            repository=info.repository,
            snapshot=info.snapshot,
            indices=info.index,
            rename_pattern="(.+)",
            rename_replacement=new_index,
            include_aliases=False,
            include_global_state=False,
            wait_for_completion=True,
        )
        client.cluster.health(index=new_index, wait_for_status="yellow", timeout="120s")
        meta = manager.meta(new_index)
        if meta.get("alias") != manager.alias:  # restored under another alias than it was made for
            client.indices.put_mapping(index=new_index, meta={**meta, "alias": manager.alias})
    return new_index
