"""`jointspace es start|status|stop`: the real Elasticsearch node (or cluster) the project starts itself.

Also registers `jointspace redis ...` (jointspace/cli/redis_commands.py). Only the standard library is
imported here, so these commands start fast.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from jointspace.cli import redis_commands
from jointspace.settings import get_settings


def _progress(message: str) -> None:
    typer.echo(message, err=True)


def register(app: typer.Typer) -> None:
    es = typer.Typer(
        help="Run a real Elasticsearch 8.19.21 node or cluster on this machine, without Docker.", no_args_is_help=True
    )

    @es.command("start")
    def start(
        nodes: Annotated[int, typer.Option("--nodes", "-n", min=1, help="Nodes in the cluster, each its own JVM.")] = 1,
        http_port: Annotated[
            int | None,
            typer.Option(
                help="HTTP port of the first node (the next ones: +1, +2...). Default: the last start's, if free."
            ),
        ] = None,
        heap: Annotated[
            str | None, typer.Option(help="JVM heap per node, e.g. 512m or 1g. Default: JOINTSPACE_ES_LOCAL_HEAP.")
        ] = None,
        timeout: Annotated[
            float | None,
            typer.Option(help="Seconds to wait for yellow/green. Default: JOINTSPACE_ES_LOCAL_START_TIMEOUT_S."),
        ] = None,
    ) -> None:
        """Build the launcher if needed (Maven, once), start the node(s), wait until healthy, print the URL."""
        from jointspace.services.elasticsearch_local import LocalElasticsearch

        service = LocalElasticsearch.from_settings(get_settings(), progress=_progress)
        last = service.last_url()
        result = service.start(nodes, http_port, heap, timeout)
        what = "already running" if result.already_running else f"{result.health} after {result.seconds:.1f}s"
        typer.echo(f"Elasticsearch ({len(result.state.nodes)} node(s)) {what} at {result.state.url}", err=True)
        if http_port is None and last is not None and last != result.state.url:
            typer.echo(
                f"note: Elasticsearch moved from {last} (busy, or another cluster size) to {result.state.url}:"
                " restart workers and `serve` with the new JOINTSPACE_ES_URL",
                err=True,
            )
        typer.echo(f"export JOINTSPACE_ES_URL={result.state.url}")

    @es.command("status")
    def status(as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False) -> None:
        """Health, node count and version of the local node/cluster (exit 1 when it is not running)."""
        from jointspace.services.elasticsearch_local import LocalElasticsearch

        info = LocalElasticsearch.from_settings(get_settings()).status()
        if as_json:
            typer.echo(json.dumps(info))
        elif info["url"] is None:
            typer.echo("Elasticsearch: stopped")
        else:
            typer.echo(
                f"Elasticsearch {info['version'] or '?'} at {info['url']}: {info['status']}, "
                f"{info['nodes']} of {info['expected_nodes']} node(s), pids {info['pids']}"
            )
        if info["status"] not in ("green", "yellow"):
            raise typer.Exit(1)

    @es.command("stop")
    def stop() -> None:
        """Stop every local node (SIGTERM, then SIGKILL after JOINTSPACE_ES_LOCAL_STOP_TIMEOUT_S). Data is kept."""
        from jointspace.services.elasticsearch_local import LocalElasticsearch

        stopped = LocalElasticsearch.from_settings(get_settings()).stop()
        typer.echo(f"stopped {', '.join(stopped)}" if stopped else "Elasticsearch was not running")

    app.add_typer(es, name="es")
    redis_commands.register(app)
