"""Inline filters (`city:london,sydney tag:beach after:2018-01-01`) to and from `Filters`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

from jointspace.errors import QueryError
from jointspace.records import Filters

from .lexer import FilterValue, Token
from .syntax import quote

_BARE_SAFE = re.compile(r"[^\s,()\"\[\]\\]+\Z")


def date_from_text(text: str) -> datetime:
    """An ISO 8601 date or date-time; a date means its midnight. Raises ValueError saying how to
    write one (the same words for an inline `after:` and an `after` parameter)."""
    try:
        return datetime.fromisoformat(text.strip().upper())  # RFC 3339 allows a lower-case `t` and `z`
    except ValueError:
        raise ValueError(f"'{text}' is not a date: write it as 2018-01-31 or 2018-01-31T12:00") from None


def parse_time(value: FilterValue, expression: str) -> datetime:
    try:
        return date_from_text(value.text)
    except ValueError as exc:
        raise QueryError(str(exc), value.position, expression) from None


def time_range_checked(filters: Filters) -> Filters:
    """The filters, once their time bounds leave room for a post: `after` at or past `before` (from
    the expression, the parameters or both) matches nothing, which is a mistake, not a query."""
    if filters.after is not None and filters.before is not None:
        try:
            empty = filters.after >= filters.before
        except TypeError:  # one bound with a time zone, one without: compared as UTC
            empty = _utc(filters.after) >= _utc(filters.before)
        if empty:
            raise QueryError(
                f"after {_time(filters.after)} is not before before {_time(filters.before)}: no post can match"
            )
    return filters


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def filters_from_tokens(tokens: Sequence[Token], expression: str) -> Filters:
    """One `Filters` holding every filter token (lists unioned, time bounds narrowed)."""
    result = Filters()
    for token in tokens:
        texts = tuple(v.text for v in token.values)
        if token.text == "city":
            part = Filters(cities=texts)
        elif token.text == "tag":
            part = Filters(hashtags=texts)
        elif token.text == "source":
            part = Filters(sources=texts)
        else:
            if len(token.values) > 1:
                raise QueryError(f"'{token.text}:' takes one date", token.values[1].position, expression)
            moment = parse_time(token.values[0], expression)
            part = Filters(after=moment) if token.text == "after" else Filters(before=moment)
        result = result.merge(part)
    return result


def _value(text: str) -> str:
    return text if _BARE_SAFE.match(text) else quote(text)


def _time(moment: datetime) -> str:
    if moment.tzinfo is None and moment.time() == datetime.min.time():
        return moment.date().isoformat()
    return moment.isoformat()


def filters_to_text(filters: Filters) -> str:
    """Inline filter syntax that parses back to an equal `Filters`."""
    pieces: list[str] = []
    for name, values in (("city", filters.cities), ("tag", filters.hashtags), ("source", filters.sources)):
        if values:
            pieces.append(f"{name}:" + ",".join(_value(v) for v in values))
    if filters.after:
        pieces.append(f"after:{_time(filters.after)}")
    if filters.before:
        pieces.append(f"before:{_time(filters.before)}")
    return " ".join(pieces)


def filters_to_json(filters: Filters) -> dict[str, object]:
    return {
        "cities": list(filters.cities),
        "hashtags": list(filters.hashtags),
        "sources": list(filters.sources),
        "after": filters.after.isoformat() if filters.after else None,
        "before": filters.before.isoformat() if filters.before else None,
    }
