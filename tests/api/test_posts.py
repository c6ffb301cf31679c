"""Reading posts, their images and words; writing posts (JSON and multipart) and deleting them."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

from PIL import Image

from tests.api.api_support import Api


def test_get_post(api: Api) -> None:
    post = api.corpus.posts[5]
    body = api.client.get(f"/posts/{post['id']}").json()
    assert body["id"] == post["id"] and body["caption"] == post["caption"] and body["city"] == post["city"]
    assert body["created_at"].startswith(post["created_at"][:10])
    assert api.client.get("/posts/no-such-post").status_code == 404


def test_image_is_the_file_with_type_and_cache_headers(api: Api) -> None:
    post = api.corpus.posts[0]
    r = api.client.get(f"/posts/{post['id']}/image")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/png"
    assert r.content == (api.corpus.root / post["image"]).read_bytes()
    assert "max-age" in r.headers["cache-control"] and r.headers["x-content-type-options"] == "nosniff"
    again = api.client.get(f"/posts/{post['id']}/image", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_thumbnail_is_a_small_cached_jpeg(api: Api) -> None:
    post = api.corpus.posts[1]
    r = api.client.get(f"/posts/{post['id']}/thumbnail")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(r.content)) as thumb:
        assert thumb.format == "JPEG"
        assert max(thumb.size) <= api.settings.api_thumbnail_px
    cached = list((api.settings.home / "cache" / "thumbnails").rglob("*.jpg"))
    assert cached, "the thumbnail is written under JOINTSPACE_HOME"
    second = api.client.get(f"/posts/{post['id']}/thumbnail")
    assert second.content == r.content and second.headers["etag"] == r.headers["etag"]
    assert (
        api.client.get(f"/posts/{post['id']}/thumbnail", headers={"If-None-Match": r.headers["etag"]}).status_code
        == 304
    )


def test_describe_post_and_city(api: Api) -> None:
    post = api.corpus.posts[0]
    words = api.client.get(f"/posts/{post['id']}/describe", params={"k": 7}).json()["words"]
    assert len(words) == 7 and all(isinstance(w["word"], str) and -1 <= w["score"] <= 1 for w in words)
    assert api.client.get("/posts/nope/describe").status_code == 404
    city = api.client.get("/cities/Paris/describe", params={"k": 5}).json()
    assert city["subject"] == "paris" and len(city["words"]) == 5
    assert api.client.get("/cities/atlantis/describe").status_code == 404


def test_cities_with_counts(api: Api) -> None:
    cities = {c["city"]: c["count"] for c in api.client.get("/cities").json()["cities"]}
    expected: dict[str, int] = {}
    for p in api.corpus.posts:
        expected[p["city"]] = expected.get(p["city"], 0) + 1
    assert cities == expected


def new_image(api: Api, name: str, colour: str) -> str:
    """A picture below the media root that no post uses yet; returns its path relative to the root."""
    folder = api.corpus.root / f"extra-{api.backend_name}"
    folder.mkdir(exist_ok=True)
    Image.new("RGB", (64, 48), colour).save(folder / name)
    return f"{folder.name}/{name}"


def test_post_json_batch_accepts_and_rejects_with_reasons(api: Api) -> None:
    before = api.container.backend.count()
    good = {
        "id": f"new-{api.backend_name}-1",
        "image": new_image(api, "red.png", "red"),
        "caption": "A red square #red",
        "city": "Lyon",
    }
    batch = [
        good,
        {"id": "missing-image", "image": "nowhere/none.png", "caption": "x"},
        {"id": "outside", "image": "/etc/hostname", "caption": "x"},
        {"id": "bad-time", "image": good["image"], "created_at": "yesterday"},
        dict(good),  # the same post twice in one request
    ]
    r = api.client.post("/posts", json=batch, headers=api.write_headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == [good["id"]] and body["queued"] is False
    reasons = {item["index"]: item["reason"] for item in body["rejected"]}
    assert set(reasons) == {0, 1, 2, 3}  # the first copy of the post given twice is the one replaced
    assert "not found" in reasons[1] and "outside the allowed media roots" in reasons[2]
    assert "created_at" in reasons[3] and "replaced by post 4" in reasons[0]
    assert api.container.backend.count() == before + 1
    found = api.client.get("/search", params={"q": f"[img:{good['id']}]", "k": 1}).json()["hits"][0]
    assert found["id"] == good["id"] and found["city"] == "lyon" and found["hashtags"] == ["red"]

    again = api.client.post("/posts", json={"posts": [good]}, headers=api.write_headers).json()
    assert again["accepted"] == [good["id"]]
    assert api.container.backend.count() == before + 1  # upserted by id, not duplicated

    assert api.client.delete(f"/posts/{good['id']}", headers=api.write_headers).json() == {
        "id": good["id"],
        "deleted": True,
    }
    assert api.client.get(f"/posts/{good['id']}").status_code == 404
    assert api.client.delete(f"/posts/{good['id']}", headers=api.write_headers).status_code == 404
    assert api.container.backend.count() == before
    # Taken down is kept out: the same post sent again is refused, with the reason.
    refused = api.client.post("/posts", json=[good], headers=api.write_headers)
    assert refused.status_code == 400 and "taken down" in refused.json()["rejected"][0]["reason"], refused.text
    assert api.container.backend.count() == before


def test_an_id_given_twice_in_one_request_keeps_the_last_copy_as_ingest_does(api: Api) -> None:
    post_id = f"twice-{api.backend_name}"
    image = new_image(api, "twice.png", "green")
    first = {"id": post_id, "image": image, "caption": "the first copy", "city": "Oslo"}
    last = {"id": post_id, "image": image, "caption": "the last copy", "city": "Bergen"}
    broken = {"id": post_id, "image": image, "created_at": "not a time"}  # invalid: replaces nothing
    r = api.client.post(
        "/posts", json=[first, {**last, "caption": "a middle copy"}, last, broken], headers=api.write_headers
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == [post_id]
    reasons = {item["index"]: item["reason"] for item in body["rejected"]}
    assert set(reasons) == {0, 1, 3}
    assert "replaced by post 1" in reasons[0] and "replaced by post 2" in reasons[1] and "created_at" in reasons[3]
    stored = api.client.get(f"/posts/{post_id}").json()
    assert (stored["caption"], stored["city"]) == ("the last copy", "bergen")
    assert api.client.delete(f"/posts/{post_id}", headers=api.write_headers).status_code == 200


def test_listed_hashtags_with_spaces_are_split_into_tags_and_the_post_kept(api: Api) -> None:
    post_id = f"spaced-tags-{api.backend_name}"
    post = {
        "id": post_id,
        "image": new_image(api, "spaced.png", "orange"),
        "caption": "An orange square",
        "hashtags": ["New York", "#Orange  #SQUARE", " ", "#"],
    }
    r = api.client.post("/posts", json=[post], headers=api.write_headers)
    assert r.status_code == 200 and r.json()["accepted"] == [post_id] and r.json()["rejected"] == [], r.text
    assert api.client.get(f"/posts/{post_id}").json()["hashtags"] == ["new", "york", "orange", "square"]
    for tag in ("york", "SQUARE"):  # each word is a tag a filter finds
        found = api.client.get("/search", params={"q": f"[img:{post_id}]", "tag": tag, "k": 3}).json()["hits"]
        assert [h["id"] for h in found] == [post_id], tag
    assert api.client.delete(f"/posts/{post_id}", headers=api.write_headers).status_code == 200


def test_post_with_nothing_acceptable_is_400(api: Api) -> None:
    r = api.client.post("/posts", json=[{"id": "x", "image": "missing.png"}], headers=api.write_headers)
    assert r.status_code == 400
    assert r.json()["accepted"] == [] and r.json()["rejected"][0]["index"] == 0


def test_post_multipart_with_uploaded_images(api: Api) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), "navy").save(buffer, "PNG")
    posts = (
        f'[{{"id": "upload-{api.backend_name}", "caption": "A navy tile", "city": "oslo", "image": "tile.png"}},'
        f' {{"id": "broken-{api.backend_name}", "image": "broken.png"}}]'
    )
    r = api.client.post(
        "/posts",
        headers=api.write_headers,
        data={"posts": posts},
        files=[
            ("images", ("tile.png", buffer.getvalue(), "image/png")),
            ("images", ("broken.png", b"\x89PNG not really", "image/png")),
        ],
    )
    assert r.status_code == 200, r.text
    body = r.json()
    post_id = f"upload-{api.backend_name}"
    assert body["accepted"] == [post_id]
    assert len(body["rejected"]) == 1 and "not a readable image" in body["rejected"][0]["reason"]
    stored = api.client.get(f"/posts/{post_id}/image")
    assert stored.status_code == 200 and stored.content == buffer.getvalue()
    assert list((api.settings.home / "uploads").rglob("*.png"))
    api.client.delete(f"/posts/{post_id}", headers=api.write_headers)
    shutil.rmtree(api.settings.home / "uploads")


def test_batch_size_is_bounded(api: Api) -> None:
    too_many = [{"image": "x.png"}] * (api.settings.api_max_batch_posts + 1)
    r = api.client.post("/posts", json=too_many, headers=api.write_headers)
    assert r.status_code == 413 and "JOINTSPACE_API_MAX_BATCH_POSTS" in r.json()["message"]


def test_refusals_of_post_posts_are_the_error_model(api: Api) -> None:
    nothing = api.client.post("/posts", json=[{"id": "x", "image": "missing.png"}], headers=api.write_headers).json()
    assert nothing["error"] == "rejected" and "file not found" in nothing["message"]
    assert nothing["rejected"][0]["reason"] and nothing["accepted"] == [] and nothing["queued"] is False
    for body, headers in ((b"{not json", {"content-type": "application/json"}), (b"", {})):
        r = api.client.post("/posts", content=body, headers={**api.write_headers, **headers})
        assert r.status_code == 400 and {"error", "message"} <= set(r.json()), r.text
    not_a_list = api.client.post("/posts", json={"posts": {"image": "a.png"}}, headers=api.write_headers)
    assert not_a_list.status_code == 400 and not_a_list.json()["message"] == "posts: must be a list of posts, not dict"
    wrong_type = api.client.post("/posts", content=b"x", headers={**api.write_headers, "content-type": "text/plain"})
    assert wrong_type.status_code == 415 and wrong_type.json()["error"] == "request"


def test_image_names_that_break_the_os_calls_are_rejected_not_500(api: Api) -> None:
    for image in ("a\x00.png", "x" * 5000 + ".png", "~no-such-user-here/a.png"):
        r = api.client.post("/posts", json=[{"id": "odd", "image": image}], headers=api.write_headers)
        assert r.status_code == 400 and r.json()["rejected"][0]["reason"].startswith("image:"), r.text
        r = api.client.post("/posts", json=[{"image": image}], headers=api.write_headers)
        assert r.status_code == 400, r.text


def test_two_posts_naming_one_uploaded_file_both_work(api: Api) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), "teal").save(buffer, "PNG")
    ids = [f"twin-{n}-{api.backend_name}" for n in (1, 2)]
    posts = [
        {"id": ids[0], "caption": "teal", "image": "teal.png"},
        {"id": ids[1], "caption": "teal again", "image": "teal.png"},
    ]
    r = api.client.post(
        "/posts",
        headers=api.write_headers,
        data={"posts": json.dumps(posts)},
        files=[("images", ("teal.png", buffer.getvalue(), "image/png"))],
    )
    assert r.status_code == 200, r.text
    assert sorted(r.json()["accepted"]) == sorted(ids) and not r.json()["rejected"]
    for post_id in ids:
        assert api.client.get(f"/posts/{post_id}/image").content == buffer.getvalue()
        api.client.delete(f"/posts/{post_id}", headers=api.write_headers)


def test_the_post_posts_example_of_docs_api_md_works(api: Api) -> None:
    """The JSON of the doc's example, sent as written, once its picture is where the doc says."""
    doc = (Path(__file__).parents[2] / "docs" / "api.md").read_text(encoding="utf-8")
    body = re.search(r"localhost:8000/posts \\\n\s+-d '(\[.*?\])'", doc).group(1)
    posts = json.loads(body)
    photos = api.corpus.root / "photos"
    photos.mkdir(exist_ok=True)
    shutil.copy(api.corpus.root / api.corpus.posts[0]["image"], photos / Path(posts[0]["image"]).name)
    try:
        r = api.client.post("/posts", content=body, headers={**api.write_headers, "content-type": "application/json"})
        assert r.status_code == 200 and r.json()["accepted"] == [posts[0]["id"]], r.text
        assert api.client.get(f"/posts/{posts[0]['id']}").json()["city"] == "sydney"
    finally:
        api.client.delete(f"/posts/{posts[0]['id']}", headers=api.write_headers)
        shutil.rmtree(photos)
