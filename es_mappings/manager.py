"""Versioned posts indices behind one alias: create `<alias>-<model>-<version>`, point the alias, swap, drop.

A new model bundle means a new index: it is filled while the alias still points at the old one, then
the alias moves in one atomic `_aliases` call, so searches never see a missing or half-filled index.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from jointspace.es_mappings.client import unavailable_as_error
from jointspace.es_mappings.template import check_model_name, index_body

from jointspace.errors import ConfigurationError, ModelMismatchError
from jointspace.settings import Settings

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch


@dataclass(frozen=True, slots=True)
class IndexInfo:
    """One posts index: the bundle and dimension recorded in its mapping, and whether the alias is on it."""

    name: str
    model: str | None
    dim: int | None
    docs: int
    aliased: bool
    created_at: str | None


@dataclass(frozen=True, slots=True)
class MergeReport:
    """A force merge of one index: its segments before and after, and how long it took (0 when the
    index already had few enough segments; `task` is None then, and while `wait` is off `after` is
    the count when the merge was started)."""

    index: str
    before: int
    after: int
    seconds: float
    task: str | None
    done: bool


FORCE_MERGE_ACTION = "indices:admin/forcemerge"


class IndexManager:
    """Index lifecycle for the alias `settings.es_index_alias` (or `alias`)."""

    def __init__(self, client: Elasticsearch, settings: Settings, alias: str | None = None) -> None:
        self.client = client
        self.settings = settings
        self.alias = alias or settings.es_index_alias
        self._url = settings.es_url or "Elasticsearch"

    def index_name(self, model: str, version: str | None = None) -> str:
        """`<alias>-<model>-<version>`; the version defaults to a UTC timestamp (sorts by age)."""
        version = version or datetime.now(UTC).strftime("%Y%m%dt%H%M%S%f")
        return f"{self.alias}-{check_model_name(model)}-{version.lower()}"

    def create(self, model: str, dim: int, version: str | None = None, aliased: bool = False) -> str:
        """Creates an empty index for `model` from the template; returns its name. The alias is
        untouched unless `aliased`: then the new index is the alias's write index in the same request,
        which Elasticsearch refuses when another index already is (of processes racing to create
        the first index, one wins and the others fail, rather than each moving the alias)."""
        name = self.index_name(model, version)
        body = index_body(self.settings, model, dim, self.alias)
        if aliased:
            body["aliases"] = {self.alias: {"is_write_index": True}}
        with unavailable_as_error(self._url):
            self.client.indices.create(index=name, **body)
        return name

    def current(self) -> str | None:
        """The index the alias points at, or None when there is no alias yet."""
        with unavailable_as_error(self._url):
            if not self.client.indices.exists_alias(name=self.alias):
                return None
            names = sorted(self.client.indices.get_alias(name=self.alias))
        if len(names) != 1:
            raise ConfigurationError(
                f"alias {self.alias!r} points at {len(names)} indices ({', '.join(names)}); "
                f"point it at one with `IndexManager.point_alias`"
            )
        return names[0]

    def meta(self, index: str) -> dict[str, Any]:
        """The `_meta` the template recorded in the index mapping (model, dim, alias, ...)."""
        with unavailable_as_error(self._url):
            mapping = self.client.indices.get_mapping(index=index)
        return dict(next(iter(mapping.values()))["mappings"].get("_meta") or {})

    def point_alias(self, index: str) -> None:
        """Moves the alias onto `index` in one atomic request, off every index that held it."""
        with unavailable_as_error(self._url):
            holders = (
                list(self.client.indices.get_alias(name=self.alias))
                if self.client.indices.exists_alias(name=self.alias)
                else []
            )
            actions: list[dict[str, Any]] = [
                {"remove": {"index": old, "alias": self.alias}} for old in holders if old != index
            ]
            actions.append({"add": {"index": index, "alias": self.alias, "is_write_index": True}})
            self.client.indices.update_aliases(actions=actions)

    def indices(self) -> list[IndexInfo]:
        """This alias's indices (those whose `_meta.alias` is it), oldest first."""
        with unavailable_as_error(self._url):
            found = self.client.indices.get(index=f"{self.alias}-*", allow_no_indices=True, expand_wildcards="open")
            # format=json: a list of rows, which the client's annotations (text or object) do not say
            rows = cast(
                list[dict[str, str]],
                self.client.cat.indices(index=f"{self.alias}-*", format="json", h="index,docs.count") if found else [],
            )
            counts = {row["index"]: int(row.get("docs.count") or 0) for row in rows}
        infos = []
        for name, body in found.items():
            meta = body.get("mappings", {}).get("_meta") or {}
            if meta.get("alias") != self.alias:
                continue
            infos.append(
                IndexInfo(
                    name=name,
                    model=meta.get("model"),
                    dim=meta.get("dim"),
                    docs=counts.get(name, 0),
                    aliased=self.alias in body.get("aliases", {}),
                    created_at=meta.get("created_at"),
                )
            )
        return sorted(infos, key=lambda info: (info.created_at or "", info.name))

    def drop(self, index: str) -> None:
        """Deletes one index; refuses the one the alias points at, so search cannot lose its data."""
        if index == self.current():
            raise ConfigurationError(
                f"index {index!r} is behind alias {self.alias!r}; point the alias elsewhere before dropping it"
            )
        with unavailable_as_error(self._url):
            self.client.indices.delete(index=index)

    def drop_old(self, keep: int = 0) -> list[str]:
        """Deletes this alias's indices the alias does not point at, except the `keep` newest
        (kept for a quick rollback); returns the names deleted."""
        old = [info.name for info in self.indices() if not info.aliased]
        doomed = old[: len(old) - keep] if keep else old
        for name in doomed:
            self.drop(name)
        return doomed

    def open(self, model: str, dim: int, read_only: bool = False) -> str:
        """The index behind the alias, checked to hold `model`'s vectors; created when missing.

        ModelMismatchError when another bundle (or dimension) built it; ConfigurationError when it is
        missing and `read_only`.
        """
        from elasticsearch import ApiError  # here: the embedded store's commands never load the client

        index = self.current()
        if index is None:
            if read_only:
                raise ConfigurationError(
                    f"no index behind alias {self.alias!r} at {self._url}: ingest "
                    f"posts first (`jointspace ingest FILE`)"
                )
            try:
                return self.create(model, dim, aliased=True)
            except ApiError:
                # Workers and the producer open a fresh alias at once: the first index created wins
                # (creating then pointing the alias raced: two write indices, or posts written to
                # an index the alias then left). The others take the winner's, checked below.
                index = self.current()
                if index is None:
                    raise
        meta = self.meta(index)
        if meta.get("model") != model or meta.get("dim") != dim:
            raise ModelMismatchError(
                f"index {index!r} behind alias {self.alias!r} was built by model bundle "
                f"{meta.get('model')!r} ({meta.get('dim')} dims), not {model!r} ({dim} dims): search with "
                f"JOINTSPACE_MODEL set to the bundle {meta.get('model')!r}, or re-embed the stored posts "
                f"with the new one: `jointspace reindex --bundle DIR` (DIR: the folder of bundle {model!r})"
            )
        return index

    # --- segments: each is a separate HNSW graph that every kNN request walks --------------------------

    def segments(self, index: str | None = None) -> int:
        """Lucene segments of the index's primaries (default: the one behind the alias)."""
        index = index or self.current()
        if index is None:
            return 0
        with unavailable_as_error(self._url):
            stats = self.client.indices.stats(index=index, metric="segments")
        return int(stats["_all"]["primaries"]["segments"]["count"])

    def merging(self, index: str | None = None) -> list[str]:
        """Ids of the force merges now running on the cluster (on `index` when given)."""
        from elasticsearch.exceptions import GeneralAvailabilityWarning

        # The task list's API is marked "technical preview" by the client; it has been stable since 5.x.
        with unavailable_as_error(self._url), warnings.catch_warnings():
            warnings.simplefilter("ignore", GeneralAvailabilityWarning)
            answer = self.client.tasks.list(actions=FORCE_MERGE_ACTION, detailed=True)
        running = []
        for node_id, node in answer.get("nodes", {}).items():
            for task_id, task in node.get("tasks", {}).items():
                # "Force-merge indices [a, b], maxSegments[1], ..."
                named = str(task.get("description", "")).partition("[")[2].partition("]")[0].split(", ")
                if index is None or index in named:
                    running.append(task_id if ":" in task_id else f"{node_id}:{task_id}")
        return running

    def force_merge(
        self,
        index: str | None = None,
        max_segments: int = 1,
        wait: bool = True,
        poll_s: float = 5.0,
        progress: Callable[[str], None] | None = None,
    ) -> MergeReport:
        """Merges the index (default: the one behind the alias) down to `max_segments` segments.

        The merge runs as a task on the node (`wait_for_completion=false`), so no request has to
        outlive it (a 1M-vector index takes tens of minutes): with `wait` this polls the task until
        it ends, else it returns at once and the node finishes alone. A merge already running on the
        index is waited for (or reported) rather than started twice. Searches keep answering on the
        old segments meanwhile; a write during the merge lands in new segments beside the merged one.
        """
        index = index or self.current()
        if index is None:
            raise ConfigurationError(f"no index behind alias {self.alias!r} at {self._url}: nothing to merge")
        before = self.segments(index)
        started = time.perf_counter()
        running = self.merging(index)
        if before <= max_segments and not running:
            return MergeReport(index, before, before, 0.0, None, True)
        if running:
            task = running[0]
        else:
            with unavailable_as_error(self._url):
                answer = self.client.indices.forcemerge(
                    index=index, max_num_segments=max_segments, wait_for_completion=False
                )
            task = str(answer["task"])
        if not wait:
            return MergeReport(index, before, before, 0.0, task, False)
        while self.merging(index):
            if progress:
                progress(f"merging {index}: {self.segments(index)} segments, {time.perf_counter() - started:.0f} s")
            time.sleep(poll_s)
        with unavailable_as_error(self._url):
            self.client.indices.refresh(index=index)
        return MergeReport(index, before, self.segments(index), time.perf_counter() - started, task, True)
