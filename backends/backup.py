"""`jointspace backup DIR` / `jointspace restore DIR`: the index (posts, vectors, recorded media
roots) and the uploaded pictures, for either backend.

A backup folder holds `manifest.json` (written last: a folder without one is an unfinished
backup), `uploads/` (the home's content-addressed uploads), and either `embedded/` (a consistent
copy of the store, see embedded_backup.py) or `elasticsearch/` (a snapshot repository the node
writes, see es_snapshot.py). A restore refuses a home whose index another model bundle built:
its vectors could not be searched together, and replacing it would lose that index silently.
Parts that live above storage (the saved searches) come in as `BackupPart`s, each with a file of
its own and its count in the manifest.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any, Protocol

from jointspace.backends import recorded_model
from tqdm import tqdm

from jointspace.atomic_write import atomic_open
from jointspace.errors import ConfigurationError, ModelMismatchError
from jointspace.media_roots import uploads_dir
from jointspace.records import IndexRef, utc_now_seconds
from jointspace.settings import Settings

MANIFEST = "manifest.json"
TAKEDOWNS = "takedowns.json"
FORMAT = 1


class BackupPart(Protocol):
    """Something beside the index that a backup carries, given by the layer that owns it (storage
    cannot import the layers above it). `name` is its key in the manifest and the restore report."""

    @property
    def name(self) -> str: ...

    @property
    def files(self) -> tuple[str, ...]:
        """The names (files or folders) it writes in the backup folder."""
        ...

    def save(self, folder: Path, model: str) -> int:
        """Writes the part into the backup folder; returns how many items it holds."""
        ...

    def check(self, folder: Path, manifest: dict[str, Any]) -> None:
        """Before a restore changes anything: raises ConfigurationError when `load` could not go through."""
        ...

    def load(self, folder: Path, model: str) -> int:
        """Adds the backup's items to this home (a backup without the part: none); returns how many."""
        ...


def backup(
    settings: Settings,
    folder: Path,
    es_location: str | None = None,
    progress: bool = True,
    parts: Sequence[BackupPart] = (),
) -> dict[str, Any]:
    """Backs up the configured index into `folder` (absent or empty) while it keeps serving and
    ingesting, with `parts`; returns the manifest. `es_location`: the folder as the Elasticsearch
    node sees it (default: `folder/elasticsearch`, right when the node shares this filesystem)."""
    folder = folder.expanduser().resolve()
    if folder.exists() and any(folder.iterdir()):
        raise ConfigurationError(f"{folder} is not empty: back up into a new folder")
    made = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    created_at = utc_now_seconds()
    present = recorded_model(settings)
    try:
        # The parts first (small, and the ones that may need another service, e.g. Redis): one
        # that fails leaves no half-made backup. Without an index the index part below says so.
        extra = {p.name: p.save(folder, present[0]) for p in parts} if present is not None else {}
        if settings.es_url:
            part = _backup_elasticsearch(settings, folder, es_location or str(folder / "elasticsearch"), created_at)
        else:
            part = _backup_embedded(settings, folder)
    except BaseException:
        # The folder was new or empty: what the parts wrote goes, and an emptied new folder too
        # (what the index part left, e.g. a snapshot repository the node knows, stays).
        part_files = _part_files(parts)
        for written in folder.iterdir():
            if written.name in part_files and written.is_dir() and not written.is_symlink():
                shutil.rmtree(written)
            elif written.name in part_files and written.is_file():
                written.unlink()
        if made and not any(folder.iterdir()):
            folder.rmdir()
        raise
    uploads = _copy_new_files(uploads_dir(settings), folder / "uploads", progress, "uploads")
    takedowns = _save_takedowns(settings, folder)
    manifest = {
        "format": FORMAT,
        "created_at": created_at,
        **part,
        "uploads": uploads,
        "takedowns": takedowns,
        **extra,
    }
    _write_json(folder / MANIFEST, manifest)
    return manifest


def _part_files(parts: Sequence[BackupPart]) -> set[str]:
    return {name for part in parts for name in part.files}


def restore(
    settings: Settings,
    folder: Path,
    es_location: str | None = None,
    progress: bool = True,
    parts: Sequence[BackupPart] = (),
) -> dict[str, Any]:
    """Restores the backup in `folder` into the configured home (embedded) or alias (Elasticsearch).

    The index there, when there is one, is kept beside the restored one (embedded: a renamed
    folder; Elasticsearch: the index the alias left) and named in the report. Raises
    ModelMismatchError when it was built by another model bundle, ConfigurationError for a folder
    that is no finished backup or a backup of the other backend.
    """
    folder = folder.expanduser().resolve()
    manifest = _read_manifest(folder)
    kind = "elasticsearch" if settings.es_url else "embedded"
    if manifest["backend"] != kind:
        raise ConfigurationError(
            f"{folder} is a backup of the {manifest['backend']} backend, and this home uses {kind} "
            f"({'JOINTSPACE_ES_URL is set' if settings.es_url else 'JOINTSPACE_ES_URL is unset'})"
        )
    present = recorded_model(settings)
    wanted = (manifest["model"], int(manifest["dim"]))
    if present is not None and present != wanted:
        raise ModelMismatchError(
            f"refusing to restore: the index here was built by model bundle {present[0]!r} ({present[1]} dims), "
            f"the backup in {folder} by {wanted[0]!r} ({wanted[1]} dims). Restore into another home "
            f"(JOINTSPACE_HOME{' or JOINTSPACE_ES_INDEX_ALIAS' if settings.es_url else ''}), or move this "
            f"index away first"
        )
    for extra in parts:  # before anything here changes
        extra.check(folder, manifest)
    if kind == "elasticsearch":
        report = _restore_elasticsearch(settings, folder, manifest, es_location)
    else:
        report = _restore_embedded(settings, folder, manifest)
    report["uploads"] = _copy_new_files(folder / "uploads", uploads_dir(settings), progress, "uploads")
    report["takedowns"] = _load_takedowns(settings, folder)
    report["withheld"] = _remove_taken_down(settings)
    for extra in parts:
        report[extra.name] = extra.load(folder, manifest["model"])
    return {
        "restored_from": str(folder),
        "backend": kind,
        "model": manifest["model"],
        "posts": manifest["posts"],
        **report,
    }


def _save_takedowns(settings: Settings, folder: Path) -> int:
    """The register goes with the backup (read after the index was copied, so it covers every post
    the copy holds): a restore into a new home must not bring back what was taken down."""
    from jointspace.backends.takedown_register import open_takedowns

    with closing(open_takedowns(settings)) as register:
        entries = register.entries()
    _write_json(folder / TAKEDOWNS, [{"id": pid, "time": at} for pid, at in entries])
    return len(entries)


def _load_takedowns(settings: Settings, folder: Path) -> int:
    """Adds the backup's takedowns to this home's register (which only ever grows by a restore)."""
    from jointspace.backends.takedown_register import open_takedowns

    path = folder / TAKEDOWNS
    entries = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []  # older backups: none
    by_time: dict[str, list[str]] = {}
    for entry in entries:
        by_time.setdefault(str(entry["time"]), []).append(str(entry["id"]))
    with closing(open_takedowns(settings)) as register:
        for at, ids in by_time.items():  # one write per takedown time (one per `delete` run)
            register.record(ids, at=at)
    return len(entries)


def _remove_taken_down(settings: Settings) -> int:
    """A backup older than a takedown holds the post again: the register, which no restore rolls
    back, takes it out."""
    from jointspace.backends import open_existing_backend
    from jointspace.backends.takedown_register import remove_taken_down

    backend = open_existing_backend(settings)
    try:
        return len(remove_taken_down(settings, backend))
    finally:
        backend.close()


# ---------------------------------------------------------------- embedded


def _backup_embedded(settings: Settings, folder: Path) -> dict[str, Any]:
    from jointspace.backends.embedded_backup import copy_store

    store = settings.embedded_dir
    try:
        copied = copy_store(store, folder / "embedded")
    except FileNotFoundError:
        raise ConfigurationError(f"no embedded index in {store}: nothing to back up") from None
    return {
        "backend": "embedded",
        "model": copied.model,
        "dim": copied.dim,
        "posts": copied.posts,
        "media_roots": _embedded_roots(folder / "embedded"),
        "embedded": {"generation": copied.generation, "rows": copied.rows, "vectors": copied.vector_file},
    }


def _embedded_roots(store: Path) -> list[str]:
    # immutable: the copy is finished and nobody writes it; a plain read-only connection to a WAL
    # database would leave its -wal and -shm files in the backup folder.
    db = sqlite3.connect(f"file:{store / 'index.sqlite'}?mode=ro&immutable=1", uri=True)
    try:
        return [row[0] for row in db.execute("SELECT path FROM media_roots ORDER BY path")]
    except sqlite3.OperationalError:  # a store from before media roots
        return []
    finally:
        db.close()


def _restore_embedded(settings: Settings, folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    from jointspace.backends.embedded import EmbeddedBackend
    from jointspace.backends.embedded_backup import stage_store, swap_in
    from jointspace.backends.store_lock import refuse_if_in_use

    refuse_if_in_use(settings.embedded_dir, "restore")
    staging = stage_store(folder / "embedded", settings.embedded_dir)
    # The staged copy must open as the manifest says before the store here is touched.
    check = EmbeddedBackend(staging, manifest["model"], int(manifest["dim"]))
    try:
        posts = check.count()
    finally:
        check.close()
    if posts != manifest["posts"]:
        shutil.rmtree(staging)
        raise ConfigurationError(
            f"{folder / 'embedded'} holds {posts} posts, its manifest {manifest['posts']}: "
            "the backup is damaged; nothing was changed"
        )
    retired = swap_in(staging, settings.embedded_dir)
    return {
        "store": str(settings.embedded_dir),
        "previous": str(retired) if retired else None,
        "note": "no process had the store open (a restore refuses while one has)",
    }


# ---------------------------------------------------------------- Elasticsearch


def _backup_elasticsearch(settings: Settings, folder: Path, location: str, created_at: str) -> dict[str, Any]:
    from jointspace.backends.es_snapshot import snapshot_alias
    from jointspace.es_mappings.client import connect
    from jointspace.es_mappings.manager import IndexManager

    client = connect(settings)
    try:
        manager = IndexManager(client, settings)
        index = manager.current()
        if index is None:
            raise ConfigurationError(
                f"no index behind alias {manager.alias!r} at {settings.es_url}: nothing to back up"
            )
        meta = manager.meta(index)
        # The snapshot holds whatever was indexed when it started; with writes going on, that lies
        # between the counts before and after it (restore checks it does).
        before = _refreshed_count(client, index)
        info = snapshot_alias(
            client,
            manager,
            settings.es_url or "",
            location,
            {"model": meta["model"], "dim": meta["dim"], "alias": manager.alias, "created_at": created_at},
        )
        after = _refreshed_count(client, index)
    finally:
        client.close()
    return {
        "backend": "elasticsearch",
        "model": meta["model"],
        "dim": int(meta["dim"]),
        "posts": after,
        "posts_range": [min(before, after), max(before, after)],
        "media_roots": sorted(meta.get("media_roots") or []),
        "elasticsearch": {
            "location": location,
            "repository": info.repository,
            "snapshot": info.snapshot,
            "index": index,
            "alias": manager.alias,
        },
    }


def _restore_elasticsearch(
    settings: Settings, folder: Path, manifest: dict[str, Any], es_location: str | None
) -> dict[str, Any]:
    from jointspace.backends.es_snapshot import find_snapshot, restore_as_new_index
    from jointspace.es_mappings.client import connect
    from jointspace.es_mappings.manager import IndexManager

    part = manifest["elasticsearch"]
    client = connect(settings)
    try:
        manager = IndexManager(client, settings)
        info = find_snapshot(client, settings.es_url or "", es_location or part["location"], part["snapshot"])
        new_index = restore_as_new_index(client, manager, settings.es_url or "", info, manifest["model"])
        count = _refreshed_count(client, new_index)
        low, high = manifest.get("posts_range") or (manifest["posts"], manifest["posts"])
        if not low <= count <= high:
            client.indices.delete(index=new_index)
            raise ConfigurationError(
                f"the restored index held {count} posts, the backup's manifest {low}..{high}: nothing was swapped"
            )
        # The lifecycle's swap, as a reindex's: it marks the index it leaves retired, for `jointspace rollback`.
        from jointspace.backends.lifecycle import ElasticsearchLifecycle

        restored = IndexRef(new_index, manifest["model"], int(manifest["dim"]))
        old = ElasticsearchLifecycle(settings, client).swap(restored)
        previous = old.name if old is not None else None
    finally:
        client.close()
    return {
        "index": new_index,
        "alias": settings.es_index_alias,
        "previous": previous,
        "restored_posts": count,
        "note": "the alias moved in one request: search kept answering",
    }


def _refreshed_count(client: Any, index: str) -> int:
    client.indices.refresh(index=index)
    return int(client.count(index=index)["count"])


# ---------------------------------------------------------------- files


def _copy_new_files(source: Path, target: Path, progress: bool, desc: str) -> int:
    """Copies the files of `source` missing from `target` (content-addressed: same name, same
    bytes); returns how many `source` holds."""
    if not source.is_dir():
        return 0
    # Links are skipped: a crafted backup must not copy files from elsewhere into the home.
    files = [p for p in source.rglob("*") if p.is_file() and not p.is_symlink() and not p.name.endswith(".part")]
    for path in tqdm(files, desc=desc, unit="file", disable=not progress or len(files) < 100):
        out = target / path.relative_to(source)
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, out)
    return len(files)


def _write_json(path: Path, data: dict[str, Any] | list[Any]) -> None:
    with atomic_open(path, suffix=".part") as fh:  # .part: never copied by _copy_new_files
        fh.write(json.dumps(data, indent=1) + "\n")


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not folder.is_dir():
        raise ConfigurationError(f"{folder} does not exist or is no folder: give the folder `jointspace backup` wrote")
    if not path.is_file():
        raise ConfigurationError(
            f"{folder} holds no finished backup (no {MANIFEST}): `jointspace backup DIR` writes it last"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"{path} cannot be read as a backup manifest ({exc}): the backup is damaged") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise ConfigurationError(f"{path}: backup format {found}, this version reads {FORMAT}")
    missing = [key for key in ("backend", "model", "dim", "posts") if key not in manifest]
    if manifest.get("backend") == "elasticsearch" and "elasticsearch" not in manifest:
        missing.append("elasticsearch")
    if missing:
        raise ConfigurationError(f"{path} lacks {', '.join(missing)}: the backup is damaged; nothing was changed")
    wrong = [
        key
        for key, kind in (("backend", str), ("model", str), ("dim", int), ("posts", int))
        if not isinstance(manifest[key], kind) or isinstance(manifest[key], bool)
    ]
    if wrong:
        raise ConfigurationError(
            f"{path}: {', '.join(wrong)} of the wrong type: the backup is damaged; nothing was changed"
        )
    return manifest
