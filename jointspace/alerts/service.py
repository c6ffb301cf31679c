"""Saving, listing and removing searches, and reading their matches: what the CLI and the API call."""

from __future__ import annotations

import builtins
import re
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from jointspace.errors import NotFoundError, QueryError
from jointspace.query.cutoff import parse_min_score as parse_search_min_score
from jointspace.query.filters import date_from_text
from jointspace.records import Filters
from jointspace.settings import Settings

from .checker import compile_search
from .records import MODES, Match, SavedSearch, utc_now
from .store import AlertStore


class AlertNotFound(NotFoundError):
    """No saved search has this id."""


def parse_min_score(value: float | str | None) -> float | None:
    """A similarity in [-1, 1], read as a search reads it (query.cutoff), but not `auto`: a saved
    search judges one new post at a time, with no ranking of its own to set a threshold from."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = parse_search_min_score(value)
    except (TypeError, ValueError):
        # The search's message offers 'auto', which a saved search refuses (below): not offered here.
        raise QueryError(f"min_score must be a similarity between -1 and 1 (e.g. 0.3), not {value!r}") from None
    if not isinstance(number, float):
        raise QueryError(
            "min_score 'auto' is not available for saved searches: give a similarity between -1 and 1 "
            "(e.g. 0.3; `jointspace search EXPR --json` shows the scores of good hits)"
        )
    return number


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def since_from_text(text: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 date or time (naive: UTC), read as `after` is (query.filters.date_from_text), or a
    duration back from now: `90s`, `15m`, `2h`, `7d`, `1w`. Raises ValueError saying how to write one."""
    found = _DURATION.match(text)
    if found:
        try:
            return (now or utc_now()) - timedelta(seconds=float(found[1]) * _UNITS[found[2].lower()])
        except OverflowError:  # back before the year 1 (`99999999d`): every match there is
            return datetime.min.replace(tzinfo=UTC)
    try:
        moment = date_from_text(text)
    except ValueError:
        raise ValueError(
            f"'{text}' is neither a date nor a duration: write it as 2018-01-31 or 2018-01-31T12:00, "
            "or as a time back from now: 15m, 2h, 7d"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """`since_from_text`, None for nothing given; raises QueryError (the CLI's exit 2)."""
    if text is None or not str(text).strip():
        return None
    try:
        return since_from_text(str(text), now)
    except ValueError as exc:
        raise QueryError(f"since: {exc}") from None


def check_webhook(url: str | None) -> str | None:
    if url is None or not url.strip():
        return None
    parts = urlsplit(url.strip())
    # A space or a control character inside is no URL a receiver answers (the POST would fail every time).
    if any(ch.isspace() or not ch.isprintable() for ch in url.strip()):
        raise QueryError(f"webhook must be one URL, without spaces or control characters: {url!r}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise QueryError(f"webhook must be an http:// or https:// URL with a host, not {url!r}")
    return url.strip()


@dataclass
class AlertService:
    """`search` is a `query.SearchService` over the index (it parses and embeds the expression);
    `model` names the bundle whose vector is saved with the search."""

    store: AlertStore
    search: Any
    model: str
    settings: Settings

    def add(
        self,
        expression: str,
        mode: str = "semantic",
        min_score: float | str | None = None,
        webhook: str | None = None,
        name: str | None = None,
        filters: Filters | None = None,
    ) -> SavedSearch:
        """Validates and saves; raises QueryError (with the position in the expression where there is one)."""
        return self.add_or_existing(expression, mode, min_score, webhook, name, filters)[0]

    def add_or_existing(
        self,
        expression: str,
        mode: str = "semantic",
        min_score: float | str | None = None,
        webhook: str | None = None,
        name: str | None = None,
        filters: Filters | None = None,
    ) -> tuple[SavedSearch, bool]:
        """`add`, and whether it saved a new search: a search saved already under the same given
        name, with the same expression, mode, cut-off, filters and webhook, is answered instead of a
        second copy (which would record every match twice and POST it twice), so a script may
        re-run its setup. Without a name every call saves a search of its own."""
        from jointspace.query.filters import filters_to_text

        if mode not in MODES:
            raise QueryError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
        threshold = parse_min_score(min_score)
        if mode == "keyword" and threshold is not None:
            raise QueryError(
                "min_score applies to the semantic side (similarity); a keyword alert matches "
                "every new post that mentions its words: leave min_score out"
            )
        if mode != "keyword" and threshold is None:
            raise QueryError(
                f"a {mode} alert needs min_score: the similarity (-1..1) a new post must reach "
                f"(e.g. 0.3; `jointspace search` shows the scores of hits you would want)"
            )
        self.search.parse(expression)  # syntax errors first, with their position
        saved = SavedSearch(
            id=uuid.uuid4().hex[:12],
            name=(name or "").strip() or expression.strip(),
            expression=expression.strip(),
            mode=mode,
            min_score=threshold,
            filters=filters_to_text(filters) if filters is not None else "",
            webhook=check_webhook(webhook),
        )
        compiled = compile_search(saved, self.settings)
        if compiled.keywords is not None and compiled.keywords.is_empty():
            raise QueryError(
                f"a {mode} alert needs at least one word or phrase with a positive weight",
                0 if expression else None,
                expression or None,
            )
        vectors = {}
        if mode != "keyword":
            if self.search.parse(expression).expression is None:
                raise QueryError(f"a {mode} alert needs at least one term besides its filters", None, expression)
            vectors[self.model] = self.search.query_vector(expression)
        saved_already = self.store.searches()
        # Only a search named by its owner is the same search when saved again: unnamed ones (the
        # page's "Watch this query") belong to whoever saved them, and one's "Stop" must not end another's.
        if (name or "").strip():
            saved = replace(saved, id=saved.definition_id())
            for existing in saved_already:
                if existing.same_definition(saved):
                    return existing, False
        if len(saved_already) >= self.settings.alerts_max_searches:
            raise QueryError(
                f"{self.settings.alerts_max_searches} searches are saved already "
                "(JOINTSPACE_ALERTS_MAX_SEARCHES): remove some first"
            )
        self.store.add(saved, vectors)
        return saved, True

    def get(self, search_id: str) -> SavedSearch:
        found = self.store.get(search_id)
        if found is None:
            raise AlertNotFound(f"no saved search with id {search_id!r} (see `jointspace alerts list`)")
        return found

    def with_matches(self, search: SavedSearch) -> dict[str, Any]:
        """The saved search as JSON with how many matches it has (`matches`): as listed, and as the
        alert that its matches are read with."""
        return {**search.to_json(), "matches": self.store.count_matches(search.id)}

    def list(self) -> list[dict[str, Any]]:
        """Every saved search as JSON, with how many matches it has."""
        return [self.with_matches(s) for s in self.store.searches()]

    def remove(self, search_id: str) -> bool:
        return self.store.remove(search_id)

    # builtins.list: inside the class, `list` is the method above
    def matches(self, search_id: str, since: datetime | None = None, limit: int | None = None) -> builtins.list[Match]:
        """Newest first; raises AlertNotFound for an unknown id."""
        self.get(search_id)
        return self.store.matches(search_id, since, limit)
