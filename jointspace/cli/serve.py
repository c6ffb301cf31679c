"""`jointspace serve` (the API and the web page) and `jointspace demo` (a small corpus, then serve)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from fastapi import FastAPI

# On SIGTERM or Ctrl-C, requests still running after this long are abandoned: a server stops in
# seconds, whatever its clients are doing.
GRACEFUL_SHUTDOWN_S = 5  # seconds (uvicorn takes a whole number)


def configure_logging() -> None:
    """jointspace's own messages (the vocabulary prepared in the background, ...) beside uvicorn's;
    faiss's loader only from WARNING: at INFO it logs each CPU build it could not load, with a
    ModuleNotFoundError, before the one it loads (six alarming lines at the first search)."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)


def _run(app: FastAPI, host: str, port: int) -> None:
    import uvicorn

    configure_logging()
    typer.echo(f"jointspace is serving on http://{host}:{port}/  (API docs: http://{host}:{port}/docs; Ctrl-C stops)")
    # Open event streams (/alerts/{id}/events) must not hold a shutdown: 5 s, then they are cut;
    # so must requests still running.
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        proxy_headers=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    _exit_despite_stuck_threads(GRACEFUL_SHUTDOWN_S)


def _exit_despite_stuck_threads(grace_s: float) -> None:
    """uvicorn has returned, but request handlers run in (non-daemon) worker threads, which Python
    joins before exiting: one stuck in a long call would keep the process alive after SIGTERM."""
    import os
    import sys
    import threading
    import time

    deadline = time.monotonic() + grace_s
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
    stuck = [
        t.name for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon and t.is_alive()
    ]
    if stuck:
        print(f"stopping with {len(stuck)} request thread(s) still busy", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on [default: JOINTSPACE_API_HOST or 127.0.0.1]")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port [default: JOINTSPACE_API_PORT or 8000]")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1, help="Server processes (uvicorn's workers); each loads the model once and opens the backend itself."
        ),
    ] = 1,
) -> None:
    """Serve the search API and the web page (loads the model bundle and opens the backend at start)."""
    from jointspace.api.app import create_app
    from jointspace.settings import get_settings

    settings = get_settings()
    host, port = host or settings.api_host, port or settings.api_port
    if workers > 1:
        import uvicorn

        # Each worker process imports the factory and builds its own container from the same
        # JOINTSPACE_* environment; this process only supervises them (and restarts a dead one).
        typer.echo(f"jointspace is serving on http://{host}:{port}/ with {workers} worker processes (Ctrl-C stops)")
        uvicorn.run(
            "jointspace.api.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="info",
            proxy_headers=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
        return
    _run(create_app(settings), host, port)


def demo(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on [default: JOINTSPACE_API_HOST or 127.0.0.1]")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port [default: JOINTSPACE_API_PORT or 8000]")
    ] = None,
    posts: Annotated[
        int,
        typer.Option(
            help="At most how many sample posts to prepare, split evenly over four packages (one with"
            " fewer pictures gives what it has: 173 of 200 when last measured)"
        ),
    ] = 200,
    prepare_only: Annotated[
        bool, typer.Option("--prepare-only", help="Prepare and index, then exit without serving")
    ] = False,
) -> None:
    """Prepare a small sample corpus (first run: fetch, rasterise, index), then serve the page.

    Uses the bundle trained here when there is one, else the one shipped with jointspace; indexes in
    this process (no broker needed). A second run finds everything in place and starts at once.
    """
    from jointspace.api.app import create_app
    from jointspace.api.container import build_container
    from jointspace.api.demo import index_demo_posts, prepare_demo_posts
    from jointspace.settings import get_settings

    # In-process indexing: the demo must not wait on a Celery worker that may not be running.
    settings = get_settings().model_copy(update={"broker_url": None})
    typer.echo(f"preparing up to {posts} sample posts (cached after the first run)…")
    posts_file = prepare_demo_posts(settings, n=posts)
    typer.echo("loading the model bundle and opening the backend…")
    container = build_container(settings)
    try:
        report = index_demo_posts(container, posts_file)
        typer.echo(
            f"model {container.bundle.name}: {report.posts} sample posts, {report.added} newly indexed"
            + (f", {len(report.failed)} failed" if report.failed else "")
        )
        for post_id, reason in list(report.failed.items())[:5]:
            typer.echo(f"  {post_id}: {reason}", err=True)
        # The explanation's nearest words need the vocabulary embedded (minutes with the sentence
        # model, once per user: cached in JOINTSPACE_CACHE_DIR): pay it here, not in the first
        # search. Said only when it will happen: encoders without `vocabulary_prepared` prepare
        # theirs cheaply, and a cached one loads in a moment.
        text = container.bundle.text
        prepared = getattr(text, "vocabulary_prepared", None)
        if prepared is not None and not prepared():
            typer.echo("preparing the nearest-word lookup (once per user: a few minutes on a laptop CPU)…")
        text.nearest_words(text.embed_words([text.vocabulary()[0]])[0], 1)
        if not prepare_only:
            _run(create_app(settings, container), host or settings.api_host, port or settings.api_port)
    finally:
        container.close()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("demo")(demo)
