"""Versioned posts indices behind one alias: create `<alias>-<model>-<version>`, point the alias, swap, drop.

A new model bundle means a new index: it is filled while the alias still points at the old one, then
the alias moves in one atomic `_aliases` call, so searches never see a missing or half-filled index.
"""

from __future__ import annotations

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
