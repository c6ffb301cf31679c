"""The saved searches in a backup (`jointspace backup` / `restore`): their definitions and their
query vectors for the index's bundle, so that a restore into a new home keeps alerting. Their
matches stay behind: they name posts of the old home's history, and a restored search matches
the posts indexed from the restore on."""

from __future__ import annotations

import json
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jointspace.atomic_write import atomic_open
from jointspace.errors import ConfigurationError
from jointspace.settings import Settings

from .records import SavedSearch
from .store import has_alert_store, open_alert_store

FILE = "saved_searches.json"


@dataclass(frozen=True)
class SavedSearchesPart:
    """A `backends.backup.BackupPart`: `saved_searches` in the manifest and the restore report."""

    settings: Settings
    name: str = "saved_searches"
    files: tuple[str, ...] = (FILE,)

    def save(self, folder: Path, model: str) -> int:
        rows: list[dict[str, Any]] = []
        if has_alert_store(self.settings):  # else no search was ever saved here: none is created
            with closing(open_alert_store(self.settings)) as store:
                searches = store.searches()
                vectors = store.vectors(model)
            rows = [
                {"search": s.to_json(), "vector": vectors[s.id].tolist() if s.id in vectors else None} for s in searches
            ]
        with atomic_open(folder / FILE, "w") as out:
            json.dump(rows, out, indent=1, ensure_ascii=False)
        return len(rows)

    def check(self, folder: Path, manifest: dict[str, Any]) -> None:
        """Before a restore changes anything: the file reads, the store answers, and the searches
        it would add fit under JOINTSPACE_ALERTS_MAX_SEARCHES."""
        rows = self._rows(folder, manifest)
        if not rows:
            return
        with closing(open_alert_store(self.settings)) as store:
            present = store.searches()
        new = _missing(rows, present)
        if len(present) + len(new) > self.settings.alerts_max_searches:
            raise ConfigurationError(
                f"the backup would add {len(new)} saved searches to the {len(present)} here, over "
                f"JOINTSPACE_ALERTS_MAX_SEARCHES ({self.settings.alerts_max_searches}): remove some or raise "
                "the limit first; nothing was changed"
            )

    def load(self, folder: Path, model: str) -> int:
        """Adds the searches this home lacks (by id, or the same definition under another id: a
        second copy would record and POST every match twice); returns how many."""
        rows = self._rows(folder, None)
        if not rows:
            return 0
        with closing(open_alert_store(self.settings)) as store:
            new = _missing(rows, store.searches())
            for search, vector in new:
                store.add(search, {model: vector} if vector is not None else {})
        return len(new)

    def _rows(self, folder: Path, manifest: dict[str, Any] | None) -> list[tuple[SavedSearch, np.ndarray | None]]:
        path = folder / FILE
        if not path.is_file():
            if manifest is not None and manifest.get(self.name):
                raise ConfigurationError(
                    f"{path} is missing, and the manifest names {manifest[self.name]} saved searches: "
                    "the backup is damaged; nothing was changed"
                )
            return []  # a backup from before saved searches were carried
        try:
            return [
                (
                    SavedSearch.from_json(row["search"]),
                    None if row.get("vector") is None else np.asarray(row["vector"], dtype=np.float32),
                )
                for row in json.loads(path.read_text(encoding="utf-8"))
            ]
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ConfigurationError(f"{path} is damaged ({type(exc).__name__}: {exc}); nothing was changed") from None


def _missing(
    rows: list[tuple[SavedSearch, np.ndarray | None]], present: list[SavedSearch]
) -> list[tuple[SavedSearch, np.ndarray | None]]:
    kept = list(present)
    new = []
    for search, vector in rows:
        if any(search.id == other.id or search.same_definition(other) for other in kept):
            continue
        kept.append(search)
        new.append((search, vector))
    return new
