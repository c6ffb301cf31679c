"""`jointspace redis start|status|stop`: a local redis-server for the Celery broker (registered by es.py)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from jointspace.settings import get_settings


def register(app: typer.Typer) -> None:
    redis = typer.Typer(
        help="Run Debian's redis-server on loopback with an append-only file (the Celery broker).", no_args_is_help=True
    )

    @redis.command("start")
    def start(
        port: Annotated[
            int | None, typer.Option(help="Port to listen on. Default: the last one if free, else a free one.")
        ] = None,
    ) -> None:
        """Start redis-server (or report the one running) and print the broker export line."""
        from jointspace.services.redis_local import LocalRedis

        service = LocalRedis.from_settings(get_settings())
        last = service.last_port()
        state, already = service.start(port)
        typer.echo(f"redis {'already running' if already else 'started'} at {state.url}", err=True)
        if port is None and last is not None and last != state.port:
            typer.echo(
                f"note: the broker moved from port {last} (busy) to {state.port}: restart workers and `serve`"
                " with the new JOINTSPACE_BROKER_URL",
                err=True,
            )
        typer.echo(f"export JOINTSPACE_BROKER_URL={state.url}")

    @redis.command("status")
    def status(as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False) -> None:
        """Whether the local redis-server runs and answers PING (exit 1 when it does not)."""
        from jointspace.services.redis_local import LocalRedis

        info = LocalRedis.from_settings(get_settings()).status()
        typer.echo(
            json.dumps(info) if as_json else f"redis: {info['status']}" + (f" at {info['url']}" if info["url"] else "")
        )
        if info["status"] != "running":
            raise typer.Exit(1)

    @redis.command("stop")
    def stop() -> None:
        """Stop the local redis-server (queued batches, dead letters and saved searches are kept on disk)."""
        from jointspace.services.redis_local import LocalRedis

        typer.echo("redis stopped" if LocalRedis.from_settings(get_settings()).stop() else "redis was not running")

    app.add_typer(redis, name="redis")
