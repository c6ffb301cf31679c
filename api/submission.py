"""POST /posts: the request (JSON or multipart) → validated posts and per-item rejections, then
handed to the distributor (Celery with a broker, in-process without)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from jointspace.api.container import ApiContainer
from jointspace.api.media import MediaStore, media_root
from jointspace.api.schemas import Rejected, SubmitOut
from jointspace.api.uploads import BadImage, check_image, store_upload
from jointspace.ingest.sources.posts import PostsSource
from jointspace.ingest.validate import InvalidPost, ValidationLimits, validate_post
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile  # what request.form() yields (FastAPI's is a subclass)

from jointspace.records import Post
from jointspace.settings import Settings

SOURCE = "api"


@dataclass
class Batch:
    posts: list[Post] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    origin: dict[str, int] = field(default_factory=dict)  # post id → its index in the request


def _as_list(payload: Any) -> list[Any]:
    if isinstance(payload, dict) and "posts" in payload:
        if not isinstance(payload["posts"], list):  # read as one post it would be "image: missing"
            raise HTTPException(400, f"posts: must be a list of posts, not {type(payload['posts']).__name__}")
        return payload["posts"]
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        return [payload]
    raise HTTPException(400, "expected a post object, a list of posts, or {\"posts\": [...]}")


def _check_batch_size(n: int, settings: Settings) -> None:
    if n == 0:
        raise HTTPException(400, "no posts in the request")
    if n > settings.api_max_batch_posts:
        raise HTTPException(
            413,
            f"{n} posts in one request; at most {settings.api_max_batch_posts} "
            "(JOINTSPACE_API_MAX_BATCH_POSTS): split the batch",
        )


async def parse_submission(request: Request, settings: Settings, media: MediaStore) -> Batch:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        return await _parse_multipart(request, settings, media)
    if content_type.startswith("application/json") or not content_type:
        try:
            payload = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise HTTPException(400, f"the body is not valid JSON: {exc}") from None
        raws = _as_list(payload)
        _check_batch_size(len(raws), settings)
        return await run_in_threadpool(_validate_all, raws, settings, media)
    raise HTTPException(415, "send application/json or multipart/form-data")


def _validate_all(
    raws: list[Any],
    settings: Settings,
    media: MediaStore,
    uploaded: dict[int, Path] | None = None,
    pre_rejected: dict[int, str] | None = None,
) -> Batch:
    """Each raw post → Post or a rejection. Image refs must lie below an allowed media root
    (relative ones are taken from the configured root): a client must not make the workers read
    (and the API later serve) files from elsewhere. Uploaded bytes are already stored below one."""
    root = media_root(settings)
    limits = ValidationLimits.from_settings(settings)
    batch = Batch()
    kept: dict[str, tuple[int, Post]] = {}  # id → its last valid copy, in the order of those copies
    for index, raw in enumerate(raws):
        if pre_rejected and index in pre_rejected:
            batch.rejected.append(Rejected(index=index, id=_raw_id(raw), reason=pre_rejected[index]))
            continue
        try:
            if uploaded and index in uploaded:
                raw = {**raw, "image": str(uploaded[index])}
            post = validate_post(raw, root, limits, default_source=SOURCE)
            image = Path(post.image)
            if not media.contains(image.resolve()):
                raise InvalidPost(
                    "image",
                    "outside the allowed media roots (JOINTSPACE_MEDIA_ROOT, the "
                    "folders of `jointspace media roots`); or upload the picture",
                )
            try:
                if not image.is_file():
                    raise InvalidPost("image", "file not found below the allowed media roots")
                size = image.stat().st_size
            except OSError as exc:  # a name too long, a folder we may not read: say so, never a 500
                raise InvalidPost("image", f"cannot be read ({exc.strerror or exc})") from None
            if size > settings.image_max_bytes:
                raise InvalidPost("image", f"larger than {settings.image_max_bytes} bytes")
        except InvalidPost as exc:
            batch.rejected.append(Rejected(index=index, id=_raw_id(raw), reason=f"{exc.field}: {exc.reason}"))
            continue
        # An id given twice: the last copy wins, as in `jointspace ingest` (and as a later request
        # would upsert it); the earlier copy is answered as replaced.
        if post.id in kept:
            earlier, _ = kept.pop(post.id)
            batch.rejected.append(
                Rejected(
                    index=earlier,
                    id=post.id,
                    reason=f"duplicate: replaced by post {index} of this request (the last copy wins)",
                )
            )
        kept[post.id] = (index, post)
    batch.posts = [post for _, post in kept.values()]
    batch.origin = {post_id: index for post_id, (index, _) in kept.items()}
    return batch


def _raw_id(raw: Any) -> str | None:
    value = raw.get("id") if isinstance(raw, dict) else None
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None


async def _parse_multipart(request: Request, settings: Settings, media: MediaStore) -> Batch:
    form = await request.form(max_files=settings.api_max_batch_posts, max_fields=64, max_part_size=8 * 1024 * 1024)
    files = [f for f in form.getlist("images") if isinstance(f, UploadFile)]
    posts_field = form.get("posts")
    if posts_field is None:
        raws: list[Any] = [{} for _ in files]
    else:
        if not isinstance(posts_field, str):
            raise HTTPException(400, "the `posts` field must be JSON text, not a file")
        try:
            raws = _as_list(json.loads(posts_field))
        except json.JSONDecodeError as exc:
            raise HTTPException(400, f"the `posts` field is not valid JSON: {exc}") from None
    _check_batch_size(len(raws), settings)
    return await run_in_threadpool(_attach_uploads, raws, files, settings, media)


def _attach_uploads(raws: list[Any], files: list[UploadFile], settings: Settings, media: MediaStore) -> Batch:
    by_name = {f.filename: f for f in files if f.filename}
    pair_in_order = all(isinstance(r, dict) and not r.get("image") for r in raws) and len(files) == len(raws)
    uploaded: dict[int, Path] = {}
    rejected: dict[int, str] = {}
    # Each file is read and stored once, however many posts name it (a second read would find
    # the stream at its end).
    outcomes: dict[int, Path | str] = {}
    for index, raw in enumerate(raws):
        if not isinstance(raw, dict):
            continue  # validate_post names the problem
        name = raw.get("image")
        upload = files[index] if pair_in_order else by_name.get(name) if isinstance(name, str) else None
        if upload is None:
            if raw.get("image") and files:
                rejected[index] = f"image: no uploaded file named {raw.get('image')!r}"
            continue  # a path below the media root, checked by validation
        if id(upload) not in outcomes:
            outcomes[id(upload)] = _store_one(upload, settings)
        outcome = outcomes[id(upload)]
        if isinstance(outcome, Path):
            uploaded[index] = outcome
        else:
            rejected[index] = outcome
    return _validate_all(raws, settings, media, uploaded, rejected)


def _store_one(upload: UploadFile, settings: Settings) -> Path | str:
    """The stored file of an upload, or why it was refused."""
    data = upload.file.read(settings.image_max_bytes + 1)
    if len(data) > settings.image_max_bytes:
        return f"image: larger than {settings.image_max_bytes} bytes (JOINTSPACE_IMAGE_MAX_BYTES)"
    try:
        fmt = check_image(data, settings, upload.filename)
    except BadImage as exc:
        return f"image: {exc}"
    return store_upload(data, fmt, settings)


async def submit(batch: Batch, container: ApiContainer) -> SubmitOut:
    """Hands the accepted posts to the distributor in batches of `batch_size`. With a broker this
    returns once they are queued; without one, once they are indexed (per-post failures of the
    pipeline, such as an undecodable image, come back as rejections)."""
    if not batch.posts:
        return SubmitOut(accepted=[], rejected=batch.rejected, queued=False)
    return await run_in_threadpool(_hand_over, batch, container)


def _hand_over(batch: Batch, container: ApiContainer) -> SubmitOut:
    # The same ingest run as `jointspace ingest` (batching, the distributor, settling). In-process
    # it waits for every outcome; with Celery it answers once the batches are queued.
    in_process = container.ingestion.in_process
    summary = container.ingestion.run(
        PostsSource(batch.posts, SOURCE), wait=in_process, confirm_searchable=False, progress=False
    )
    accepted = summary.queued_ids + summary.settled_ids
    rejected = list(batch.rejected)
    rejected += [Rejected(index=batch.origin.get(pid, -1), id=pid, reason=why) for pid, why in summary.dead.items()]
    rejected += [
        Rejected(index=batch.origin.get(pid, -1), id=pid, reason="taken down earlier: not indexed again")
        for pid in summary.withheld_ids
    ]
    if not in_process:
        return SubmitOut(accepted=accepted, rejected=sorted(rejected, key=lambda r: r.index), queued=True)
    if accepted:
        container.backend.refresh()  # searchable when the answer arrives
    return SubmitOut(
        accepted=accepted,
        rejected=sorted(rejected, key=lambda r: r.index),
        queued=False,
        duplicates=summary.unchanged_ids,
    )
