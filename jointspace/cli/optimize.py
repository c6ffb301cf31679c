"""`jointspace optimize`: merge the Elasticsearch index's segments (a task on the node, polled)."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer


def optimize(
    segments: Annotated[int, typer.Option(min=1, help="Merge down to at most this many segments.")] = 1,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Start the merge and return; the node finishes it alone.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was done as JSON on stdout.")] = False,
) -> None:
    """Merge the Elasticsearch index into one segment, so that each kNN search walks one HNSW graph.

    Faster unfiltered, slower filtered kNN at 1M posts (docs/scale.md); `ingest` merges by itself
    when JOINTSPACE_ES_MERGE_AFTER_POSTS is set.
    A merge already running is waited for. The embedded store keeps one graph: nothing to merge."""
    from jointspace.es_mappings.client import connect
    from jointspace.es_mappings.manager import IndexManager
    from jointspace.settings import get_settings

    settings = get_settings()
    if not settings.es_url:
        message = "the embedded store keeps one graph: nothing to merge"
        print(json.dumps({"merged": False, "reason": message}) if as_json else message)
        return
    client = connect(settings)
    try:
        manager = IndexManager(client, settings)
        report = manager.force_merge(
            max_segments=segments,
            wait=not no_wait,
            poll_s=10.0,
            progress=None if as_json else lambda line: print(line, file=sys.stderr),
        )
    finally:
        client.close()
    if as_json:
        print(
            json.dumps(
                {
                    "merged": report.done and report.task is not None,
                    "index": report.index,
                    "segments_before": report.before,
                    "segments_after": report.after,
                    "seconds": round(report.seconds, 1),
                    "task": report.task,
                    "done": report.done,
                }
            )
        )
    elif report.task is None:
        print(f"{report.index}: {report.before} segment(s) already, nothing to merge")
    elif not report.done:
        print(f"{report.index}: merging {report.before} segments on the node (task {report.task})")
    else:
        print(f"{report.index}: {report.before} → {report.after} segment(s) in {report.seconds:.0f} s")


def register(app: typer.Typer) -> None:
    app.command("optimize")(optimize)
