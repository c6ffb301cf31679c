"""`jointspace ingest`, `worker`, `dead-letters`, `reindex` and `rollback`: posts into the index."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from itertools import islice
from pathlib import Path
from typing import Annotated, Any

import click
import typer

from jointspace.cli import terminal
from jointspace.errors import ConfigurationError, JointspaceError, ServiceUnavailableError


class SourceKind(StrEnum):
    auto = "auto"
    jsonl = "jsonl"
    instacities = "instacities"
    watch = "watch"
    redis_stream = "redis-stream"


def _pending_webhooks(settings: Any, summary: Any) -> int | None:
    """In-process alerts: the webhook deliveries this run leaves pending (their receiver was slow or
    down); None when nothing was indexed or Celery delivers them."""
    if not summary.indexed:
        return None
    from jointspace.alerts import pending_in_process_deliveries

    return pending_in_process_deliveries(settings)


def _print_summary(summary: Any, as_json: bool, webhooks_pending: int | None = None) -> None:
    if as_json:
        print(json.dumps({**summary.to_json(), "webhooks_pending": webhooks_pending}, indent=1))
        return
    rate = f" ({summary.read / summary.seconds:.1f} posts/s)" if summary.seconds else ""
    print(
        f"read {summary.read} posts in {summary.seconds:.1f} s{rate}: {summary.indexed} indexed, "
        f"{summary.unchanged} already indexed, {summary.duplicates} duplicates in the input "
        f"(the last copy of an id wins), {len(summary.dead)} dead-lettered",
        file=sys.stderr,
    )
    if summary.withheld:
        print(
            f"  {summary.withheld} post(s) left out: taken down earlier (`jointspace takedowns list`; "
            "`jointspace takedowns lift ID` allows one again)",
            file=sys.stderr,
        )
    for reason, n in summary.reasons().most_common():
        print(f"  {n:6d} × {reason}", file=sys.stderr)
    if summary.dead:
        print("  (details: jointspace dead-letters list)", file=sys.stderr)
    if summary.stage_seconds:
        stages = ", ".join(f"{k} {v:.1f} s" for k, v in summary.stage_seconds.items())
        print(f"  time in stages (summed over batches): {stages}", file=sys.stderr)
    if summary.searchable is False:
        print("  warning: some indexed posts were not yet searchable when the wait timed out", file=sys.stderr)
    if webhooks_pending:
        print(
            f"  {webhooks_pending} webhook delivery(ies) of saved searches still pending (their receivers did not "
            "answer yet): the next jointspace process that checks alerts here (`serve`, an ingest) retries them; "
            "`jointspace alerts matches ID` shows each one's state",
            file=sys.stderr,
        )
    if summary.merge:
        print(
            f"  merging the index's {summary.merge['segments']} segments into one on the node, in the "
            f"background (task {summary.merge['task']}, JOINTSPACE_ES_MERGE_AFTER_POSTS): unfiltered searches "
            "get faster when it ends, filtered ones may get slower (docs/scale.md); "
            "`jointspace optimize` waits for it",
            file=sys.stderr,
        )


def _record_media_roots(src: Any, kind: str, settings: Any, backend: Any) -> Any:
    """Wraps a file source so that its pictures' folders become allowed media roots (recorded with
    the index: the page then shows them, see jointspace.media_roots). A Redis stream's posts come
    from other programs: their pictures must lie below a root already. Returns the wrapper or None."""
    if kind == "redis-stream":
        return None
    from jointspace.ingest.media_roots import RecordingSource
    from jointspace.media_roots import fixed_roots

    return RecordingSource(src, backend, fixed_roots(settings))


def _print_media_roots(recorder: Any) -> None:
    for folder in recorder.recorded:
        print(
            f"media root recorded: {folder} (its pictures are served; `jointspace media roots` lists them)",
            file=sys.stderr,
        )
    for folder, why in recorder.refused.items():
        print(
            f"warning: pictures in {folder} are not served: {why}; move them into a folder of their own "
            f"or run `jointspace media roots add DIR`",
            file=sys.stderr,
        )


_PICTURES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"}


def _hint_if_only_pictures(folder: Path) -> None:
    """A folder of pictures with no posts: jointspace reads posts (JSONL lines naming pictures)."""
    if any(folder.glob("*.jsonl")):
        return
    # Looked for no further than needed to say it (a photo library may hold millions of files).
    if any(p.suffix.lower() in _PICTURES for p in islice(folder.rglob("*"), 10_000)):
        print(
            f"  {folder} holds pictures but no .jsonl file: posts are JSONL lines that name their "
            'pictures, e.g. {"image": "img/p1.jpg", "caption": "..."} (README: the post format)',
            file=sys.stderr,
        )


def ingest(
    target: Annotated[
        str,
        typer.Argument(
            help="A JSONL file, `-` for stdin, an InstaCities folder, a folder "
            "to watch, or a stream key (with --source redis-stream)."
        ),
    ],
    source: Annotated[SourceKind, typer.Option(help="How to read TARGET; auto guesses from it.")] = SourceKind.auto,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Return once the posts are queued.")] = False,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Posts per batch (default: JOINTSPACE_BATCH_SIZE).")
    ] = None,
    idle_exit: Annotated[
        float | None,
        typer.Option(help="watch/redis-stream: stop after this many seconds without new posts (default: never)."),
    ] = None,
    consumer: Annotated[
        str | None, typer.Option(help="redis-stream: this consumer's name in the group (keep it across restarts).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Read posts, embed their images and index them; wait until they are searchable."""
    from jointspace.app import open_ingestion
    from jointspace.ingest.sources import guess_kind, open_source
    from jointspace.settings import get_settings

    settings = get_settings()
    if batch_size:
        settings = settings.model_copy(update={"batch_size": batch_size})
    kind = guess_kind(target) if source is SourceKind.auto else source.value
    if settings.broker_url:  # exit 2 with what to do before anything is read, not at the first batch
        from jointspace.broker import check_broker

        check_broker(settings.broker_url)
    src = open_source(kind, target, settings, idle_exit_s=idle_exit, consumer=consumer)
    try:
        # The backend confirms the posts are searchable, and records a file source's media roots
        # (with a broker and --no-wait the index may not exist yet: opened as the workers will).
        ingestion = open_ingestion(settings, with_backend=not no_wait or kind != "redis-stream")
    except BaseException:
        src.close()
        raise
    recorder = _record_media_roots(src, kind, settings, ingestion.backend)
    src = recorder or src
    if kind == "watch":  # runs until stopped: say so, or a folder of pictures looks like a hang
        until = f"stops after {idle_exit:g} s without new posts" if idle_exit is not None else "Ctrl-C stops"
        print(f"watching {target} for new *.jsonl files of posts ({until})", file=sys.stderr)
        _hint_if_only_pictures(Path(target))
    try:
        summary = ingestion.run(src, wait=not no_wait, progress=not quiet)
    except KeyboardInterrupt:
        print("interrupted: posts not yet settled stay unacknowledged and will be read again", file=sys.stderr)
        raise typer.Exit(130) from None
    except ServiceUnavailableError as exc:  # the broker or the backend went away during the run
        done = exc.done
        if not as_json and int(getattr(done, "read", 0)) > 0:  # --json: in the error object
            _print_summary(done, as_json=False)
        raise type(exc)(
            f"{exc}; then run the same `jointspace ingest` again: posts already indexed are skipped", done=done
        ) from exc
    finally:
        src.close()
        ingestion.close()
    _print_summary(summary, as_json, _pending_webhooks(settings, summary))
    if summary.read == 0 and kind != "redis-stream":
        print(f"  no posts were read from {target}", file=sys.stderr)
        if kind != "jsonl":
            _hint_if_only_pictures(Path(target))
    if recorder is not None:
        _print_media_roots(recorder)
    if summary.searchable is False:
        raise typer.Exit(1)


def worker(
    concurrency: Annotated[int, typer.Option(min=1, help="Worker processes (one model each).")] = 1,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "info",
    pool: Annotated[str, typer.Option(help="prefork (processes) or solo (this process; one GPU).")] = "prefork",
    hostname: Annotated[str | None, typer.Option(help="Celery node name (default: celery@host).")] = None,
) -> None:
    """Run a Celery worker that embeds and indexes batches from the queue (needs JOINTSPACE_BROKER_URL)."""
    from jointspace.settings import get_settings

    settings = get_settings()
    if not settings.broker_url:
        raise ConfigurationError(
            "jointspace worker needs a broker: set JOINTSPACE_BROKER_URL "
            "(e.g. redis://localhost:6379/0); without one, `jointspace ingest` works alone"
        )
    from jointspace.alerts.webhooks import alerts_queue
    from jointspace.broker import check_broker
    from jointspace.workers.celery_app import app

    # The ingest queue, and the alerts' webhook deliveries (a queue of their own: never behind the backlog).
    # No gossip or mingle: workers need not learn about each other (batches are independent, and a
    # dead worker's batches are found by workers/liveness.py); with many workers the gossip is the
    # parent's main work between batches. Heartbeats stay (Flower shows workers by them).
    argv = [
        "worker",
        "--concurrency",
        str(concurrency),
        "--loglevel",
        loglevel,
        "--pool",
        pool,
        "-O",
        "fair",
        "-Q",
        f"{settings.celery_queue},{alerts_queue(settings)}",
        "--without-gossip",
        "--without-mingle",
    ]
    if hostname:
        argv += ["--hostname", hostname]
    # Refused at once, in one line, when Redis is down (Celery would log an "Unrecoverable error"
    # with tracebacks); a worker that stops for a failure exits non-zero, so supervisors restart it.
    check_broker(settings.broker_url)
    # `worker_main` drops the worker's exit code (Celery runs its CLI without standalone mode); `start` returns it.
    code = app.start(argv)
    if code:
        print(f"error: the worker stopped with exit code {code} (its log above says why)", file=sys.stderr)
        raise typer.Exit(code)


dead_letters_app = typer.Typer(help="Posts that could not be indexed, with their reasons.", no_args_is_help=True)


@dead_letters_app.command("list")
def dead_letters_list(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per letter, as a JSON list.")] = False,
    limit: Annotated[int, typer.Option(min=0, help="Show at most this many (0: all).")] = 0,
) -> None:
    """List dead letters, oldest first."""
    from jointspace.app import open_dead_letter_store
    from jointspace.settings import get_settings

    store = open_dead_letter_store(get_settings())
    letters = store.list()
    store.close()
    shown = letters[:limit] if limit else letters
    if as_json:
        print(json.dumps([letter.to_json() for letter in shown], indent=1, ensure_ascii=False))
        return
    for letter in shown:
        where = f" ({letter.origin})" if letter.origin and letter.origin != letter.key else ""
        print(terminal.safe(f"{letter.time[:19]}  {letter.key}{where}  [{letter.stage}] {letter.reason}"))
    print(f"{len(letters)} dead letters", file=sys.stderr)


@dead_letters_app.command("retry")
def dead_letters_retry(
    keys: Annotated[list[str] | None, typer.Argument(help="Letters to retry (default: all).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Send dead letters through the pipeline again; those that fail again stay, with the new reason."""
    from jointspace.app import open_dead_letter_store, open_ingestion
    from jointspace.ingest.retry import DeadLetterSource
    from jointspace.ingest.validate import ValidationLimits
    from jointspace.settings import get_settings

    settings = get_settings()
    store = open_dead_letter_store(settings)
    letters = [letter for letter in store.list() if not keys or letter.key in keys]
    unknown = sorted(set(keys or ()) - {letter.key for letter in letters})
    if unknown:
        store.close()
        raise JointspaceError(
            f"no dead letter has the key {', '.join(map(repr, unknown))}; "
            "`jointspace dead-letters list` shows the keys (nothing was retried)"
        )
    source = DeadLetterSource(letters, ValidationLimits.from_settings(settings))
    try:
        ingestion = open_ingestion(settings, dead_letters=store)
        try:
            summary = ingestion.run(source)
            store.remove(source.moved)  # now tracked under their post ids
        finally:
            ingestion.close()
    finally:
        store.close()
    _print_summary(summary, as_json)


@dead_letters_app.command("purge")
def dead_letters_purge(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Delete every dead letter (the posts are not retried)."""
    from jointspace.app import open_dead_letter_store
    from jointspace.settings import get_settings

    store = open_dead_letter_store(get_settings())
    try:
        if not yes and as_json:  # a script: never ask, and never delete without being told to
            raise click.UsageError(f"purge would delete {store.count()} dead letters: add --yes (--json never asks)")
        if not yes and not typer.confirm(f"delete {store.count()} dead letters?"):
            raise typer.Exit(1)
        removed = store.purge()
    finally:
        store.close()
    print(json.dumps({"purged": removed}) if as_json else f"purged {removed} dead letters")


def reindex(
    bundle: Annotated[
        str, typer.Option(help="The new model bundle: its folder, or its name as `jointspace model list` shows it.")
    ],
    batch_size: Annotated[int | None, typer.Option(min=1)] = None,
    keep_old: Annotated[
        bool, typer.Option(help="Keep the old index (embedded: the old store folder) after the swap, for a rollback.")
    ] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    decode_again: Annotated[
        bool,
        typer.Option(
            "--decode-again",
            help="Embed from the pictures, never from kept features; also allows the bundle the index "
            "already holds (to redo its vectors after an upgrade that changed decoding).",
        ),
    ] = False,
) -> None:
    """Re-embed every stored post with another model bundle into a new index, then swap it in.

    Elasticsearch: the alias moves in one request. Embedded: the store folder is swapped; stop
    `serve`, ingest runs and workers first (refused while one holds the store open: it would go on
    writing into the retired folder)."""
    from jointspace.encoders.catalog import catalog
    from jointspace.settings import get_settings
    from jointspace.workers.reindex import reindex as run_reindex

    settings = get_settings()
    if batch_size:
        settings = settings.model_copy(update={"batch_size": batch_size})
    report = run_reindex(
        settings, catalog(settings).find(bundle), keep_old=keep_old, progress=not quiet, decode_again=decode_again
    )
    print(json.dumps(report, indent=1))


def rollback() -> None:
    """Make the index the last reindex or restore retired live again; the live one is retired in
    its turn, so a second rollback undoes the first. Prints a JSON report.

    Search, serve and ingest must then use the bundle that index was built by (the report names
    it). Posts taken down since are left out. Embedded: stop `serve`, ingest runs and workers first."""
    from jointspace.settings import get_settings
    from jointspace.workers.reindex import rollback as run_rollback

    print(json.dumps(run_rollback(get_settings()), indent=1))


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    app.command("worker")(worker)
    app.add_typer(dead_letters_app, name="dead-letters")
    app.command("reindex")(reindex)
    app.command("rollback")(rollback)
