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


# A hashtag to filter by, as the `tag` parameter's schema states it: `#`s and spaces around, then
# one run without whitespace. A hashtag holds no space: ingest reads a caption's `#new york` as the
# tag `new` and a hashtags list's "New York" as the tags `new` and `york` (ingest/validate.py), so a
# value with a space inside would be one tag that no post has. Whitespace is what Python's split()
# splits on, spelt out: JSON Schema's `\s` (ECMA-262) is another set (no \x1c-\x1f or \x85).
SPACES = r"\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
TAG_PATTERN = rf"^[{SPACES}]*#*[{SPACES}]*[^{SPACES}#][^{SPACES}]*[{SPACES}]*$"


def tag_problem(text: str) -> tuple[str, str] | None:
    """None when `text` names one hashtag (`TAG_PATTERN`); else (why not, the one-word tag to write
    instead, or "" when it names none: blank, or `#`s alone). Refused rather than split, since
    `tag:` takes any of its values and `new` or `york` is not what `new york` asks for."""
    if re.search(TAG_PATTERN, text):
        return None
    words = [w.lstrip("#").casefold() for w in text.split()]
    words = [w for w in words if w]
    if not words:
        return "needs a value", ""
    given = " ".join(text.split())
    return (
        f"'{given}' is not one hashtag: hashtags hold no space (ingest reads \"{given}\" as the "
        f"tag{'s' if len(words) > 1 else ''} {' and '.join(words)}); write tag:{''.join(words)}",
        "".join(words),
    )


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
            for value in token.values:
                problem = tag_problem(value.text)
                if problem and not problem[1]:  # `tag:#`: Filters would drop it, leaving no filter
                    raise QueryError("'tag:' needs a value, e.g. tag:beach", value.position, expression)
                if problem:
                    raise QueryError(problem[0], value.position, expression, [f"tag:{problem[1]}"])
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
