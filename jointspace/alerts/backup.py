"""The saved searches in a backup (`jointspace backup` / `restore`): their definitions and their
query vectors for the index's bundle, so that a restore into a new home keeps alerting. Their
matches stay behind: they name posts of the old home's history, and a restored search matches
the posts indexed from the restore on."""

from __future__ import annotations

import json
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jointspace.atomic_write import atomic_open
from jointspace.settings import Settings

from .records import SavedSearch
from .store import open_alert_store

FILE = "saved_searches.json"


@dataclass(frozen=True)
class SavedSearchesPart:
    """A `backends.backup.BackupPart`: `saved_searches` in the manifest and the restore report."""

    settings: Settings
    name: str = "saved_searches"

    def save(self, folder: Path, model: str) -> int:
        with closing(open_alert_store(self.settings)) as store:
            searches = store.searches()
            vectors = store.vectors(model)
        rows = [
            {"search": s.to_json(), "vector": vectors[s.id].tolist() if s.id in vectors else None} for s in searches
        ]
        with atomic_open(folder / FILE, "w") as out:
            json.dump(rows, out, indent=1, ensure_ascii=False)
        return len(rows)

    def load(self, folder: Path, model: str) -> int:
        """Adds the searches this home lacks (by id); returns how many were added."""
        path = folder / FILE
        if not path.is_file():  # a backup from before saved searches were carried
            return 0
        rows = json.loads(path.read_text(encoding="utf-8"))
        added = 0
        with closing(open_alert_store(self.settings)) as store:
            present = {s.id for s in store.searches()}
            for row in rows:
                search = SavedSearch.from_json(row["search"])
                if search.id in present:
                    continue
                vector = row.get("vector")
                store.add(search, {model: np.asarray(vector, dtype=np.float32)} if vector is not None else {})
                added += 1
        return added
