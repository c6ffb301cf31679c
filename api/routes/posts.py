"""Posts: read one, its image and thumbnail (from the media root only), its describing words;
write (submit, delete) with the API key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from jointspace.api.deps import BackendDep, ContainerDep, MediaDep, MetricsDep, SearchDep, WriteAccess
from jointspace.api.media import MediaFile, MediaNotFound
from jointspace.api.render import post_out, word_scores
from jointspace.api.schemas import DeleteOut, DescribeOut, ErrorOut, PostOut, SubmitOut, SubmitRefusedOut
from jointspace.api.submission import parse_submission, submit
from jointspace.ingest.takedown import take_down
from jointspace.query.vocabulary import VocabularyNotReady

from jointspace.protocols import SearchBackend
from jointspace.records import Post

router = APIRouter(prefix="/posts", tags=["posts"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "No such post"}}
_BINARY = {"schema": {"type": "string", "format": "binary"}}
IMAGE_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The picture; its type comes from its bytes",
        "content": {t: _BINARY for t in ("image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp")},
    },
    304: {"description": "Not modified (If-None-Match matched the ETag)"},
    **NOT_FOUND,
}
THUMBNAIL_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "A JPEG thumbnail", "content": {"image/jpeg": _BINARY}},
    304: {"description": "Not modified (If-None-Match matched the ETag)"},
    **NOT_FOUND,
}


def _submission_body() -> dict[str, Any]:
    """The request body of POST /posts for the OpenAPI document (read by hand in parse_submission,
    since it is either JSON or multipart)."""
    post = {"$ref": "#/components/schemas/PostIn"}
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"anyOf": [post, {"type": "array", "items": post}, {"$ref": "#/components/schemas/PostsIn"}]}
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "posts": {"type": "string", "description": "The posts as JSON text (as for application/json)"},
                        "images": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "Image files; a post's `image` names one by its file name",
                        },
                    },
                }
            },
        },
    }


# Images change only when a post is re-ingested (new mtime → new ETag), so browsers may keep them
# a day and revalidate cheaply after.
CACHE_CONTROL = "public, max-age=86400"


def load_post(backend: SearchBackend, post_id: str) -> Post:
    doc = backend.get(post_id, with_vector=False)
    if doc is None:
        raise HTTPException(404, f"no post with id {post_id!r}")
    return doc.post


def file_response(request: Request, media: MediaFile) -> Response:
    headers = {"ETag": media.etag, "Cache-Control": CACHE_CONTROL, "X-Content-Type-Options": "nosniff"}
    if media.etag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    return FileResponse(
        media.path,
        media_type=media.media_type,
        headers=headers,
        stat_result=media.stat,
        content_disposition_type="inline",
    )


@router.get("/{post_id}", response_model=PostOut, responses=NOT_FOUND)
def get_post(post_id: str, backend: BackendDep) -> PostOut:
    return post_out(load_post(backend, post_id))


@router.get("/{post_id}/image", responses=IMAGE_ANSWERS, response_class=FileResponse)
def get_image(post_id: str, request: Request, backend: BackendDep, media: MediaDep) -> Response:
    return _media_answer(request, post_id, load_post(backend, post_id), media.original)


@router.get("/{post_id}/thumbnail", responses=THUMBNAIL_ANSWERS, response_class=FileResponse)
def get_thumbnail(post_id: str, request: Request, backend: BackendDep, media: MediaDep) -> Response:
    return _media_answer(request, post_id, load_post(backend, post_id), media.thumbnail)


def _media_answer(request: Request, post_id: str, post: Post, fetch: Callable[[str], MediaFile]) -> Response:
    """The post's picture as `fetch` gives it (original or thumbnail), or a 404 that says why not."""
    try:
        return file_response(request, fetch(post.image))
    except MediaNotFound as exc:
        raise HTTPException(404, f"the image of post {post_id!r} is not available: {exc.reason}") from None


@router.get("/{post_id}/describe", response_model=DescribeOut, responses=NOT_FOUND)
def describe_post(
    post_id: str, backend: BackendDep, service: SearchDep, k: Annotated[int, Query(ge=1, le=100)] = 10
) -> DescribeOut:
    load_post(backend, post_id)
    try:
        return DescribeOut(subject=post_id, words=word_scores(service.describe_post(post_id, k=k)))
    except VocabularyNotReady as exc:  # a cold start: answer now, without the words
        return DescribeOut(subject=post_id, words=[], ready=False, note=str(exc))


@router.post(
    "",
    response_model=SubmitOut,
    status_code=200,
    responses={
        202: {"model": SubmitOut, "description": "Queued for the workers"},
        400: {
            "model": SubmitRefusedOut,
            "description": "Nothing was accepted (each post's reason), or the body is unreadable",
        },
        401: {"model": ErrorOut, "description": "Missing or wrong X-API-Key"},
        403: {"model": ErrorOut, "description": "Writes are off: no API key is configured"},
        413: {"model": ErrorOut, "description": "Too large: the body, an image or the batch"},
        415: {"model": ErrorOut, "description": "Neither application/json nor multipart/form-data"},
    },
    openapi_extra={"requestBody": _submission_body()},
)
async def create_posts(request: Request, _: WriteAccess, container: ContainerDep, metrics: MetricsDep) -> JSONResponse:
    """One post or a batch. JSON: a post object, a list of them, or `{"posts": [...]}`; image refs
    are paths below the media root (relative ones are taken from it). Multipart: a `posts` field
    holding that JSON, and image files in `images`; a post's `image` names a file by its file name
    (or, if absent, the files are paired with the posts in order). Without posts, each file is a
    post of its own."""
    batch = await parse_submission(request, container.settings, container.media)
    outcome = await submit(batch, container)
    metrics.posts_submitted.labels("accepted").inc(len(outcome.accepted))
    metrics.posts_submitted.labels("rejected").inc(len(outcome.rejected))
    if not outcome.accepted:
        reasons = "; ".join(f"post {r.index}: {r.reason}" for r in outcome.rejected[:3])
        refused = SubmitRefusedOut(
            error="rejected", message=f"no post was accepted ({reasons})", **outcome.model_dump()
        )
        return JSONResponse(refused.model_dump(), status_code=400)
    return JSONResponse(outcome.model_dump(), status_code=202 if outcome.queued else 200)


@router.delete(
    "/{post_id}",
    response_model=DeleteOut,
    responses={
        **NOT_FOUND,
        401: {"model": ErrorOut, "description": "Missing or wrong X-API-Key"},
        403: {"model": ErrorOut, "description": "Writes are off: no API key is configured"},
    },
)
def delete_post(post_id: str, _: WriteAccess, container: ContainerDep) -> DeleteOut:
    """Takes the post down: out of the index, with its kept image features, alert matches and dead
    letter, and recorded so that it is not indexed again (`jointspace takedowns lift` allows it)."""
    alerts = container.alerts.store if container.alerts is not None else None
    report = take_down(
        container.settings, container.backend, container.ingestion.dead_letters, alerts, container.takedowns, [post_id]
    )
    if report.missing:
        # Recorded all the same: a post still queued is left out when its batch runs.
        raise HTTPException(
            404, f"no post with id {post_id!r} in the index (recorded as taken down: it is not indexed if it arrives)"
        )
    return DeleteOut(id=post_id, deleted=True)
