"""`jointspace search EXPR`: run a query against the configured backend and print hits + explanation."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from jointspace.choices import SearchMode, SortOrder
from jointspace.cli import filter_options, terminal

if TYPE_CHECKING:
    from jointspace.query.service import SearchResult
    from jointspace.records import Hit


def hit_json(hit: Hit) -> dict[str, Any]:
    from jointspace.records import hit_json as post_and_score

    return post_and_score(hit.post, hit.score)


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def render_text(result: SearchResult) -> str:
    """A ranked table, then the explanation: terms, nearest words, filters, plan and timings."""
    explain = result.explain
    lines: list[str] = []
    start = (result.page - 1) * result.k
    cutoff = explain.get("min_score_auto") if explain.get("min_score") == "auto" else None
    if not result.hits:
        lines.append("no results")
        if cutoff is not None:  # a bare "no results" read as an empty index
            lines.append(
                f"  none scored above {cutoff:.3f}, the cut-off --min-score auto read from the nearest"
                " posts' scores: nothing stood out from the rest (leave --min-score out to see the nearest)"
            )
    else:
        dated = result.sort == "newest"  # the order is by time: show it
        # Ids in full, never shortened: they are what `[img:ID]` takes in the next query.
        id_width = max(14, *(len(hit.id) for hit in result.hits))
        posted = "posted           " if dated else ""
        lines.append(f"{'#':>4}  {'score':>8}  {'id':<{id_width}} {posted}city         caption")
        for rank, hit in enumerate(result.hits, start=start + 1):
            when = f"{hit.post.created_at:%Y-%m-%d %H:%M} " if dated and hit.post.created_at else "-" + " " * 16
            lines.append(
                f"{rank:>4}  {hit.score:>8.4f}  {hit.id:<{id_width}} {when if dated else ''}"
                f"{_shorten(hit.post.city or '-', 12):<12} {_shorten(hit.post.caption, 60)}"
            )
    lines.append("")
    lines.append(f"query   {explain.get('parsed') or '(filters only)'}   [{explain['mode']}]")
    for term in explain.get("terms", []):
        share = f"  contribution {term['contribution']:+.3f}" if "contribution" in term else ""
        lines.append(f"  term  {term['term']:<24} weight {term['weight']:+g}{share}")
    if explain.get("nearest_words"):
        words = ", ".join(f"{w['word']} {w['score']:.2f}" for w in explain["nearest_words"])
        lines.append(f"nearest words  {words}")
    elif explain.get("nearest_words_note"):
        lines.append(explain["nearest_words_note"])
    if explain.get("min_score_note"):
        lines.append(explain["min_score_note"])
    elif cutoff is not None and result.hits:
        lines.append(f"min score  auto: {cutoff:.3f}")
    if "keyword" in explain:
        kw = explain["keyword"]
        excluded = f"  (excluding {', '.join(kw['excluded'])})" if kw["excluded"] else ""
        lines.append(f"keywords  {kw['text']}{excluded}")
    if explain.get("keyword_note"):
        lines.append(f"note  {explain['keyword_note']}")
    active = {k: v for k, v in explain["filters"].items() if v}
    if active:
        lines.append(
            "filters  " + "  ".join(f"{k}={','.join(v) if isinstance(v, list) else v}" for k, v in active.items())
        )
    if explain.get("collapsed"):
        lines.append(
            f"collapsed {len(explain['collapsed'])} near-duplicate(s) (similarity ≥ {explain['collapse_threshold']})"
        )
    if result.facets is not None:
        lines.append(f"facets over {result.facets.matching} matching posts")
        for name, buckets in result.facets.fields.items():
            counts = ", ".join(f"{b.value} {b.count}" for b in buckets) or "-"
            lines.append(f"  {name:<9} {counts}")
    if result.sort == "newest":
        lines.append("sorted newest first")
    more = "more on the next page" if result.has_more else "no more results"
    lines.append(f"page {result.page}, {result.k} per page; {more}")
    timings = "  ".join(f"{k} {v:.1f}" for k, v in explain["timings_ms"].items())
    lines.append(f"ms  {timings}")
    return "\n".join(lines)


def search(
    expression: Annotated[
        str,
        typer.Argument(
            help="E.g. 'beach+sunrise', 'bike-park', '\\[img:42]+park', "
            "'2*dog city:paris'. See docs/query.md for the grammar."
        ),
    ],
    city: filter_options.City = None,
    tag: filter_options.Tag = None,
    source: filter_options.Source = None,
    after: filter_options.After = None,
    before: filter_options.Before = None,
    mode: Annotated[SearchMode, typer.Option(help="semantic (kNN), keyword (BM25) or hybrid (fused).")] = "semantic",
    k: Annotated[int | None, typer.Option("-k", "--k", help="Hits per page (default JOINTSPACE_DEFAULT_K).")] = None,
    page: Annotated[int, typer.Option(help="1-based page.")] = 1,
    # Text, read by the shared request model: whatever forms it accepts, this flag accepts.
    min_score: Annotated[
        str | None,
        typer.Option(
            metavar="X",
            help="Drop kNN hits whose similarity is below this; `auto`: a threshold per query from its own top scores.",
        ),
    ] = None,
    no_collapse: Annotated[bool, typer.Option("--no-collapse", help="Keep near-duplicate images.")] = False,
    facets: Annotated[
        str | None,
        typer.Option(
            metavar="FIELDS",
            help="Count these over the matching posts "
            "(above --min-score, else the JOINTSPACE_FACET_DEPTH nearest): "
            "any of city,hashtags,source,month.",
        ),
    ] = None,
    sort: Annotated[SortOrder, typer.Option(help="relevance, or newest first among the matching posts.")] = "relevance",
    nearest_words: Annotated[
        bool,
        typer.Option(
            "--nearest-words",
            help="Wait for the nearest-word vocabulary when this home has not embedded it yet (once, "
            "about a minute); without it the first search answers at once, without nearest words.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print {\"hits\": [...], \"explain\": {...}}.")] = False,
) -> None:
    """Search the index with word and image arithmetic; errors point at the offending character."""
    from jointspace.app import open_bundle, open_search_backend, open_search_service
    from jointspace.query.parser import QueryLimits, parse
    from jointspace.query.request import SearchRequest
    from jointspace.query.vocabulary import NearestWords
    from jointspace.settings import get_settings

    settings = get_settings()
    given = {
        "q": expression,
        "city": city or [],
        "tag": tag or [],
        "source": source or [],
        "after": after,
        "before": before,
        "mode": mode,
        "k": k,
        "page": page,
        "min_score": min_score,
        "collapse": not no_collapse,
        "facets": [] if facets is None else [facets],  # `--facets ''` is refused, not ignored
        "sort": sort,
    }
    request = SearchRequest.from_values({name: v for name, v in given.items() if v is not None}, settings)
    # A malformed expression is reported before the model and the index are opened (seconds saved,
    # and the syntax error shows even where there is no index yet).
    parse(expression, QueryLimits.from_settings(settings))
    bundle = open_bundle(settings)  # JOINTSPACE_BUNDLE_FACTORY too, as serve, ingest and the workers
    backend = open_search_backend(settings, bundle, read_only=True)
    try:
        words = NearestWords(bundle.text, blocking=True, only_if_cached=not nearest_words)
        service = open_search_service(settings, bundle, backend, nearest=words)
        result = service.search(request.q, **request.search_arguments())
    finally:
        backend.close()
    if as_json:
        # The fields of GET /search's answer, in its order (the hits as `hit_json` writes them).
        printed: dict[str, Any] = {
            "query": request.q,
            "mode": request.mode,
            "k": result.k,
            "page": result.page,
            "total": result.total,
            "has_more": result.has_more,
            "sort": result.sort,
            "hits": [hit_json(h) for h in result.hits],
            "explain": result.explain,
        }
        if result.facets is not None:
            from jointspace.query.matching import facets_json

            printed["facets"] = facets_json(result.facets)
        json.dump(printed, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
    else:
        print(terminal.safe(render_text(result)))


def register(app: typer.Typer) -> None:
    app.command("search")(search)
