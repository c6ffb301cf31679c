"""The embedded backend's SQLite schema and pure builders for its filter and full-text clauses."""

from __future__ import annotations

import json
import re

from jointspace.records import Filters, epoch_seconds

SCHEMA_VERSION = "1"

# doc_key is stable per post (FTS rowid, tags); row is the post's row in the vector file and changes
# on overwrite (a new row is appended) and on compaction.
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs(
    doc_key INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    row INTEGER NOT NULL,
    city TEXT,
    source TEXT,
    created_ts REAL,
    post TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS docs_row ON docs(row);
-- Filter indexes also hold row (and doc_key, the rowid), so a filtered kNN reads only the index.
CREATE INDEX IF NOT EXISTS docs_city ON docs(city, row);
CREATE INDEX IF NOT EXISTS docs_source ON docs(source, row);
CREATE INDEX IF NOT EXISTS docs_created ON docs(created_ts, row);
CREATE TABLE IF NOT EXISTS tags(tag TEXT NOT NULL, doc_key INTEGER NOT NULL, PRIMARY KEY(tag, doc_key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_doc ON tags(doc_key);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(caption, hashtags, tokenize='porter unicode61');
-- Folders whose pictures may be served (recorded by `jointspace ingest`); travels with the index.
CREATE TABLE IF NOT EXISTS media_roots(path TEXT PRIMARY KEY, added_at TEXT NOT NULL);
"""


def filter_sql(filters: Filters | None, table: str = "docs") -> tuple[str, list[object]]:
    """A WHERE condition on `table` (always valid SQL, "1" when unrestricted) and its parameters.

    Each field matches any of its values; fields combine with AND, as in the Elasticsearch filter.
    """
    if filters is None or filters.is_empty():
        return "1", []
    clauses: list[str] = []
    params: list[object] = []
    if filters.cities:
        clauses.append(f"{table}.city IN ({','.join('?' * len(filters.cities))})")
        params += filters.cities
    if filters.sources:
        # Stored as ingested; compared ignoring the case of ASCII letters, as Elasticsearch's
        # `case_insensitive` term does (NOCASE folds A-Z only, whatever SQLite was built with).
        clauses.append(f"{table}.source COLLATE NOCASE IN ({','.join('?' * len(filters.sources))})")
        params += filters.sources
    if filters.hashtags:
        clauses.append(
            f"{table}.doc_key IN (SELECT doc_key FROM tags WHERE tag IN ({','.join('?' * len(filters.hashtags))}))"
        )
        params += filters.hashtags
    if filters.after:
        clauses.append(f"{table}.created_ts >= ?")
        params.append(epoch_seconds(filters.after))
    if filters.before:
        clauses.append(f"{table}.created_ts < ?")
        params.append(epoch_seconds(filters.before))
    return " AND ".join(clauses), params


def mentions_any(post_json: str, words: frozenset[str]) -> bool:
    """Whether a stored post's caption holds one of `words` as a whole word, or its hashtags do
    (lower-cased): the exclusion rule of keyword queries (query/keyword.py), on the stored JSON."""
    post = json.loads(post_json)
    tokens = {t.lower() for t in re.findall(r"\w+", post.get("caption") or "")}
    tokens.update(str(h).lower().lstrip("#") for h in post.get("hashtags") or ())
    return not tokens.isdisjoint(words)


def fts_match_expression(text: str) -> str | None:
    """Any of the words, each quoted so that FTS5 syntax in user text is taken literally; None if no word."""
    words = re.findall(r"\w+", text.lower())
    if not words:
        return None
    return " OR ".join(f'"{word}"' for word in dict.fromkeys(words))


# --- facets, trends and newest-first over a set of doc keys (issue 17) ------------------------------
# The set comes in as one JSON array parameter read by json_each: any size, one bound parameter
# (SQLite caps their number), and the planner uses docs' primary key for the lookup.
IN_KEYS = "{table}.doc_key IN (SELECT value FROM json_each(?))"
PERIOD_FORMATS = {"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}


def period_sql(interval: str, table: str = "docs") -> str:
    """The UTC period (YYYY, YYYY-MM or YYYY-MM-DD) of a post's created_ts, as Elasticsearch's
    date_histogram labels it."""
    return f"strftime('{PERIOD_FORMATS[interval]}', {table}.created_ts, 'unixepoch')"


def _value_source(field: str) -> tuple[str, str]:
    """(column expression, FROM clause) of a term field: hashtags come from the tags table. Sources
    group, compare and sort ignoring the case of ASCII letters (NOCASE, as the source filter): a
    row holds one of the group's spellings, which the caller folds with `facet_key`."""
    if field == "hashtags":
        return "tags.tag", "docs JOIN tags ON tags.doc_key = docs.doc_key"
    if field == "source":
        return "docs.source COLLATE NOCASE", "docs"
    if field == "city":
        return "docs.city", "docs"
    raise ValueError(f"not a term field: {field!r}")


def term_counts_sql(field: str) -> str:
    """Posts per value of `field` among the keys (parameters: JSON keys, limit), most first, ties by value."""
    column, source = _value_source(field)
    return (
        f"SELECT {column} AS value, count(*) AS n FROM {source} WHERE {IN_KEYS.format(table='docs')} "
        f"AND {column} IS NOT NULL GROUP BY value ORDER BY n DESC, value LIMIT ?"
    )


def period_counts_sql(interval: str) -> str:
    """Posts per period among the keys (parameter: JSON keys), in time order; undated posts left out."""
    period = period_sql(interval)
    return (
        f"SELECT {period} AS period, count(*) FROM docs WHERE {IN_KEYS.format(table='docs')} "
        f"AND docs.created_ts IS NOT NULL GROUP BY period ORDER BY period"
    )


def trend_counts_sql(by: str, interval: str, where: str, n_values: int) -> str:
    """(value, period, posts) for the given values of `by` among the rows matching `where`
    (parameters: where's, then the values)."""
    column, source = _value_source(by)
    return (
        f"SELECT {column}, {period_sql(interval)} AS period, count(*) FROM {source} "
        f"WHERE {where} AND docs.created_ts IS NOT NULL AND {column} IN ({','.join('?' * n_values)}) "
        f"GROUP BY {column}, period"
    )


def newest_sql() -> str:
    """A page of the keys' posts, newest first, undated last, ties by id (parameters: JSON keys,
    limit, offset). Times compare in whole milliseconds, as Elasticsearch stores dates, so both
    backends break the same ties by id."""
    return (
        f"SELECT doc_key, post FROM docs WHERE {IN_KEYS.format(table='docs')} "
        f"ORDER BY created_ts IS NULL, CAST(created_ts * 1000 AS INTEGER) DESC, id LIMIT ? OFFSET ?"
    )
