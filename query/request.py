"""One search request for every door: `GET /search`, `POST /search` (a photo) and `jointspace search`.

The doors only collect raw values (query string, form fields, command-line flags) into these
models; the names, defaults, filters and bounds live here, so a parameter means the same thing and
fails with the same message wherever it is given. The models are also the OpenAPI schema of the
search routes (FastAPI reads them as query-parameter and form models).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from jointspace.query.cutoff import parse_min_score
from jointspace.query.filters import TAG_PATTERN, date_from_text, tag_problem
from jointspace.query.lexer import FILTER_EXAMPLES
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WithJsonSchema

from jointspace.choices import SearchMode, SortOrder
from jointspace.errors import QueryError
from jointspace.records import FACET_FIELDS, Filters
from jointspace.settings import Settings

from .matching import facet_fields

Mode = SearchMode


# Parameters that may be left out are documented without `null`: a query string or a form field
# is absent or holds a value, never a null.
def _documented(schema: dict[str, Any], description: str) -> WithJsonSchema:
    return WithJsonSchema({**schema, "description": description})


def _no_default(schema: dict[str, Any]) -> None:
    """An absent parameter has no value to document (`"default": null` would be sent as "null")."""
    schema.pop("default", None)


_AFTER = "Posts created at or after this time (ISO 8601)"
_BEFORE = "Posts created before this time (ISO 8601)"
_K = "Hits per page, 1..JOINTSPACE_MAX_K (default JOINTSPACE_DEFAULT_K)"


def _min_score(value: Any) -> float | str | None:
    try:
        return parse_min_score(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(str(exc)) from None


# Drop kNN hits below this similarity: a number, or "auto" (a per-query threshold from the query's own
# scores, `query.cutoff`). A type of its own so that every door accepts the same forms.
_MIN_SCORE = (
    "Drop kNN hits whose similarity (dot product) is below this (semantic, and hybrid's semantic "
    "side); `auto`: a threshold per query, from its own top scores"
)
MinScore = Annotated[
    float | Literal["auto"] | None,
    BeforeValidator(_min_score),
    _documented(
        {"anyOf": [{"type": "number", "minimum": -1, "maximum": 1}, {"type": "string", "enum": ["auto"]}]}, _MIN_SCORE
    ),
    Field(description=_MIN_SCORE, json_schema_extra=_no_default),
]


_CITY = "Only these cities (repeatable)"
_TAG = "Only posts with these hashtags (repeatable)"
_SOURCE = "Only posts from these sources (repeatable)"


def _blank_refused(name: str) -> BeforeValidator:
    """A blank value is refused, as an inline `city:` without one is: ignoring it would search
    everything while the user meant a filter."""

    def check(values: Any) -> Any:
        for value in values if isinstance(values, list) else [values]:
            if isinstance(value, str) and not value.strip():
                raise ValueError(f"needs a value, e.g. {FILTER_EXAMPLES[name].split(',')[0]}")
        return values

    return BeforeValidator(check)


def _tags_checked(values: Any) -> Any:
    """Each value one hashtag, as an inline `tag:` reads it (`tag_problem`): a `#` alone is no tag,
    and `new york` is refused with `tag:newyork` suggested."""
    for value in values if isinstance(values, list) else [values]:
        problem = tag_problem(value) if isinstance(value, str) else None
        if problem:
            raise ValueError(problem[0] if problem[1] else f"needs a value, e.g. {FILTER_EXAMPLES['tag']}")
    return values


def _values(description: str, pattern: str = r"\S") -> WithJsonSchema:
    """The schema of a repeatable filter: strings with something in them (`_blank_refused`)."""
    return _documented({"type": "array", "items": {"type": "string", "pattern": pattern}}, description)


def _date(name: str) -> BeforeValidator:
    """Text is read as an inline `after:` is (ISO 8601, with the same message when it is not)."""

    def check(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if not value.strip():
            raise ValueError(f"needs a value, e.g. {FILTER_EXAMPLES[name]}")
        return date_from_text(value)

    return BeforeValidator(check)


_FACETS = "Count these over the matching posts: any of city, hashtags, source, month (comma-separated or repeated)"


def _facets_named(values: Any) -> Any:
    """A `facets` value naming none (`--facets ''`, `facets=`, `facets=,`) is refused, as a blank
    filter is: ignoring it would answer without the counts asked for."""
    for value in values if isinstance(values, list) else [values]:
        if isinstance(value, str) and not value.replace(",", " ").strip():
            raise ValueError(f"needs a facet name: any of {', '.join(FACET_FIELDS)}")
    return values


def check_query_length(q: str, max_chars: int) -> None:
    """Raises QueryError when `q` is longer than `max_chars` (JOINTSPACE_QUERY_MAX_CHARS): for a
    search as for a saved one, before the parser's own check of the expression."""
    if len(q) > max_chars:
        raise QueryError(f"query longer than {max_chars} characters ({len(q)}); shorten it", position=max_chars)


class SearchFilters(BaseModel):
    """Filters given as parameters; they add to the ones written inside the expression."""

    model_config = ConfigDict(extra="ignore")

    city: Annotated[list[str], _blank_refused("city"), _values(_CITY)] = Field(default_factory=list, description=_CITY)
    tag: Annotated[list[str], BeforeValidator(_tags_checked), _values(_TAG, TAG_PATTERN)] = Field(
        default_factory=list, description=_TAG
    )
    source: Annotated[list[str], _blank_refused("source"), _values(_SOURCE)] = Field(
        default_factory=list, description=_SOURCE
    )
    after: Annotated[
        datetime | None, _date("after"), _documented({"type": "string", "format": "date-time"}, _AFTER)
    ] = Field(default=None, description=_AFTER, json_schema_extra=_no_default)
    before: Annotated[
        datetime | None, _date("before"), _documented({"type": "string", "format": "date-time"}, _BEFORE)
    ] = Field(default=None, description=_BEFORE, json_schema_extra=_no_default)

    def to_filters(self) -> Filters:
        return Filters(
            cities=tuple(self.city),
            hashtags=tuple(self.tag),
            sources=tuple(self.source),
            after=self.after,
            before=self.before,
        )


def filters_from_values(values: Mapping[str, Any]) -> Filters:
    """Filter parameters alone (`jointspace alerts add`) read as a search reads them; raises QueryError."""
    try:
        return SearchFilters.model_validate(dict(values)).to_filters()
    except ValidationError as exc:
        raise QueryError(validation_message(exc)) from None


class SearchRequest(SearchFilters):
    """An expression, its filters and the page wanted. Build with `from_values`, which also checks
    the bounds that depend on Settings; every problem is a QueryError (the API's 400, the CLI's exit 2)."""

    q: str = Field(
        default="",
        description="Expression: `beach+sunrise`, `bike-park`, `[img:42]+park`, `2*dog city:paris`",
        examples=["dog+park", "beach-people"],
    )
    mode: Mode = Field(default="semantic", description="semantic (kNN), keyword (BM25) or hybrid (fused)")
    k: Annotated[int | None, _documented({"type": "integer", "minimum": 1}, _K)] = Field(
        default=None, description=_K, json_schema_extra=_no_default
    )
    page: int = Field(
        default=1, description="1-based page of k hits; k × page ≤ JOINTSPACE_MAX_K", json_schema_extra={"minimum": 1}
    )
    min_score: MinScore = None
    collapse: bool = Field(default=True, description="Collapse near-duplicate images into the better-ranked one")
    include_vector: bool = Field(default=False, description="Return each hit's image vector")
    # Issue 17: counts and order over the match set (query/matching.py): the kNN hits above
    # min_score, or the facet_depth nearest.
    facets: Annotated[list[str], BeforeValidator(_facets_named), _values(_FACETS, r"[^\s,]")] = Field(
        default_factory=list, description=_FACETS
    )
    sort: SortOrder = Field(
        default="relevance", description="relevance, or newest first among the matching posts (stable pages)"
    )

    @classmethod
    def from_values(cls, values: Mapping[str, Any], settings: Settings) -> Self:
        """The request from raw values (strings are converted), checked; raises QueryError."""
        try:
            request = cls.model_validate(dict(values))
        except ValidationError as exc:
            raise QueryError(validation_message(exc)) from None
        return request.checked(settings)

    def checked(self, settings: Settings) -> Self:
        """Self, once the bounds that depend on Settings hold; raises QueryError naming the limit."""
        check_query_length(self.q, settings.query_max_chars)
        if self.k is not None and not 1 <= self.k <= settings.max_k:
            raise QueryError(f"k must be between 1 and {settings.max_k} (JOINTSPACE_MAX_K), not {self.k}")
        if self.page < 1:
            raise QueryError(f"page must be 1 or more, not {self.page}")
        k = settings.default_k if self.k is None else self.k
        if k * self.page > settings.max_k:
            raise QueryError(
                f"page {self.page} of {k} would need the top {k * self.page} results; the limit "
                f"is {settings.max_k} (JOINTSPACE_MAX_K): narrow the query instead"
            )
        if isinstance(self.min_score, float) and not math.isfinite(self.min_score):
            raise QueryError("min_score must be a finite number")
        facet_fields(self.facets)  # an unknown facet is named here, before any search runs
        return self

    def search_arguments(self) -> dict[str, Any]:
        """Keyword arguments of `SearchService.search` / `search_vector` (the expression aside)."""
        return {
            "filters": self.to_filters(),
            "mode": self.mode,
            "k": self.k,
            "page": self.page,
            "min_score": self.min_score,
            "collapse": None if self.collapse else False,
            "include_vectors": self.include_vector,
            "facets": facet_fields(self.facets),
            "sort": self.sort,
        }


class TrendsRequest(SearchFilters):
    """`GET /trends`: per value of `by` and period, the posts of the query's match set (the kNN hits
    above `min_score`, or the facet_depth nearest; query/matching.py) and all posts passing the
    filters."""

    q: str = Field(description="Expression, as for /search: `beach+sunset city:paris`")
    by: Literal["city", "hashtags", "source"] = Field(default="city", description="One series per value of this field")
    interval: Literal["day", "month", "year"] = Field(default="month", description="Period of each point (UTC)")
    min_score: MinScore = None

    def checked(self, settings: Settings) -> TrendsRequest:
        """Self, once the bounds of a search hold (query length, a finite cut-off); raises QueryError."""
        SearchRequest(q=self.q, min_score=self.min_score).checked(settings)
        return self


class PhotoSearchRequest(SearchRequest):
    """`POST /search`: a search request plus the uploaded photo's weight against the terms."""

    weight: float = Field(default=1.0, description="Weight of the photo against the terms")


def merge_sources(first: BaseModel, second: BaseModel, door: str) -> dict[str, Any]:
    """The values given in either of two places (POST /search's query string and form). A
    parameter given in both must agree: two different values would silently drop one."""
    merged = {name: getattr(first, name) for name in first.model_fields_set}
    for name in second.model_fields_set:
        value = getattr(second, name)
        if name in merged and merged[name] != value:
            raise QueryError(f"'{name}' is given twice with different values ({door}): give it once")
        merged[name] = value
    return merged


def validation_message(exc: ValidationError) -> str:
    """pydantic's errors as one line: `k: Input should be a valid integer; page: ...`."""
    return error_line(exc.errors())


def error_line(errors: Sequence[Mapping[str, Any]], skip: tuple[str, ...] = ()) -> str:
    """Validation errors as one line, each named by its parameter: `city: needs a value, e.g.
    london`. A repeated parameter's index (`city.0`) and pydantic's "Value error, " prefix are
    left out (our validators' messages say all); an item's index in a request body stays
    (`posts.3.image`). `skip` drops location parts such as FastAPI's `query`."""
    parts = []
    for error in errors:
        loc = error["loc"]
        if error.get("type") == "json_invalid":  # FastAPI's loc is ("body", offset), its msg "JSON decode error"
            at = f" at character {loc[1]}" if len(loc) > 1 else ""
            reason = (error.get("ctx") or {}).get("error")
            parts.append(f"body: not valid JSON{at}" + (f": {reason}" if reason else ""))
            continue
        in_body = bool(loc) and loc[0] == "body"
        where = ".".join(str(p) for p in loc if (in_body or not isinstance(p, int)) and p not in skip)
        parts.append(f"{where or 'request'}: {str(error['msg']).removeprefix('Value error, ')}")
    return "; ".join(dict.fromkeys(parts))
