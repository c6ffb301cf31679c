"""GET /search and POST /search on both backends."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.api.api_support import Api


def ids(body: dict) -> list[str]:
    return [h["id"] for h in body["hits"]]


def test_search_returns_hits_with_urls_and_explanation(api: Api) -> None:
    r = api.client.get("/search", params={"q": "dog+park", "k": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["query"] == "dog+park" and body["mode"] == "semantic" and body["page"] == 1
    assert len(body["hits"]) == 5
    scores = [h["score"] for h in body["hits"]]
    assert scores == sorted(scores, reverse=True)
    known = {p["id"]: p for p in api.corpus.posts}
    for hit in body["hits"]:
        assert hit["id"] in known
        assert hit["caption"] == known[hit["id"]]["caption"]
        assert hit["city"] == known[hit["id"]]["city"]
        assert hit["image_url"] == f"/posts/{hit['id']}/image"
        assert hit["thumbnail_url"] == f"/posts/{hit['id']}/thumbnail"
        assert hit["vector"] is None
    words = [w["word"] for w in body["explain"]["nearest_words"]]
    assert "dog" in words and "park" in words
    assert [t["term"] for t in body["explain"]["terms"]] == ["dog", "park"]


def test_city_filter_returns_only_that_city(api: Api) -> None:
    # Without collapsing near-duplicates (tested on its own below): two look-alike tokyo drawings
    # would otherwise count as one hit, and this test is about the filter alone.
    r = api.client.get("/search", params={"q": "dog", "city": "tokyo", "k": 20, "collapse": "false"})
    assert r.status_code == 200
    hits = r.json()["hits"]
    expected = sum(1 for p in api.corpus.posts if p["city"] == "tokyo")
    assert len(hits) == expected  # the filter runs inside the kNN: every tokyo post, nothing else
    assert {h["city"] for h in hits} == {"tokyo"}


def test_inline_city_filter_matches_parameter(api: Api) -> None:
    inline = api.client.get("/search", params={"q": "dog city:paris", "k": 5}).json()
    param = api.client.get("/search", params={"q": "dog", "city": "paris", "k": 5}).json()
    assert ids(inline) == ids(param)
    assert {h["city"] for h in inline["hits"]} == {"paris"}


def test_keyword_mode_finds_caption_words(api: Api) -> None:
    r = api.client.get("/search", params={"q": "dog", "mode": "keyword", "k": 50})
    assert r.status_code == 200
    hits = r.json()["hits"]
    mentioning = {p["id"] for p in api.corpus.posts if "dog" in p["caption"].lower() or "dog" in p["hashtags"]}
    assert hits and {h["id"] for h in hits} <= mentioning


def test_hybrid_mode_runs(api: Api) -> None:
    r = api.client.get("/search", params={"q": "dog+park", "mode": "hybrid", "k": 5})
    assert r.status_code == 200
    assert len(r.json()["hits"]) == 5
    assert r.json()["mode"] == "hybrid"


def test_image_term_finds_its_own_post_first(api: Api) -> None:
    target = api.corpus.posts[3]["id"]
    r = api.client.get("/search", params={"q": f"[img:{target}]", "k": 3})
    assert r.status_code == 200
    top = r.json()["hits"][0]
    assert top["id"] == target
    assert top["score"] == pytest.approx(1.0, abs=0.02)


def test_include_vector_returns_unit_vectors(api: Api) -> None:
    body = api.client.get("/search", params={"q": "park", "k": 3, "include_vector": "true"}).json()
    for hit in body["hits"]:
        vector = np.asarray(hit["vector"], dtype=np.float32)
        assert vector.shape == (api.container.bundle.dim,)
        assert float(np.linalg.norm(vector)) == pytest.approx(1.0, abs=1e-3)


def test_pages_do_not_overlap(api: Api) -> None:
    first = api.client.get("/search", params={"q": "dog", "k": 4, "page": 1}).json()
    second = api.client.get("/search", params={"q": "dog", "k": 4, "page": 2}).json()
    assert first["has_more"] is True
    assert len(ids(second)) == 4 and not set(ids(first)) & set(ids(second))


@pytest.mark.parametrize(
    "q, position", [("dog+", 4), ("dog + (park", 11), ("dog wher:paris", 4), ('dog tag:"new york"', 8)]
)
def test_query_errors_are_400_with_position(api: Api, q: str, position: int) -> None:
    r = api.client.get("/search", params={"q": q})
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == "query" and body["position"] == position and body["message"]


def test_k_is_bounded(api: Api) -> None:
    too_many = api.client.get("/search", params={"q": "dog", "k": api.settings.max_k + 1})
    assert too_many.status_code == 400 and "k must be between" in too_many.json()["message"]
    assert api.client.get("/search", params={"q": "dog", "k": 0}).status_code == 400


def test_ten_thousand_character_query_is_a_clean_400(api: Api) -> None:
    r = api.client.get("/search", params={"q": "dog+" * 2500})
    assert r.status_code == 400
    assert r.json()["error"] == "query" and "longer than" in r.json()["message"]


def png_bytes(path: str, fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    with Image.open(path) as img:
        img.convert("RGB").save(buffer, fmt)
    return buffer.getvalue()


def test_search_by_uploaded_photo(api: Api) -> None:
    post = api.corpus.posts[0]
    photo = png_bytes(str(api.corpus.root / post["image"]))  # the same picture, re-encoded: not indexed as such
    r = api.client.post("/search", files={"image": ("mine.jpg", photo, "image/jpeg")}, data={"k": "3"})
    assert r.status_code == 200, r.text
    assert r.json()["hits"][0]["id"] == post["id"]
    with_terms = api.client.post(
        "/search", files={"image": ("mine.jpg", photo, "image/jpeg")}, data={"k": "3", "q": "+park", "city": "london"}
    ).json()
    assert [t["term"] for t in with_terms["explain"]["terms"]] == ["(uploaded photo)", "park"]
    assert {h["city"] for h in with_terms["hits"]} == {"london"}


def test_uploaded_copy_of_an_indexed_picture_finds_it_at_similarity_one(api: Api) -> None:
    # Upload and ingestion share one image path (jointspace.images), so the very file that was
    # indexed, uploaded as a query photo, lands on its own vector: score = dot product of the two.
    for post in api.corpus.posts[:3]:
        data = (api.corpus.root / post["image"]).read_bytes()
        r = api.client.post(
            "/search",
            files={"image": ("copy.png", data, "image/png")},
            data={"k": "1", "collapse": "false", "include_vector": "true"},
        )
        assert r.status_code == 200, r.text
        top = r.json()["hits"][0]
        assert top["id"] == post["id"]
        assert top["score"] >= 0.999, (post["id"], top["score"])
        assert float(np.linalg.norm(top["vector"])) == pytest.approx(1.0, abs=1e-3)


def test_search_by_photo_refuses_non_images(api: Api) -> None:
    r = api.client.post("/search", files={"image": ("notes.txt", b"not an image at all", "text/plain")})
    message = r.json()["message"]
    assert r.status_code == 400 and "not a readable image" in message
    # Words for the person who dropped the file, not Python's class name (UnidentifiedImageError).
    assert "Error" not in message and "JPEG" in message, message


# -- one request model for GET /search, POST /search and `jointspace search` ---------------------------
def photo_of(api: Api, index: int = 0) -> bytes:
    return png_bytes(str(api.corpus.root / api.corpus.posts[index]["image"]))


def test_photo_search_honours_k_page_and_mode_from_the_query_string(api: Api) -> None:
    photo = photo_of(api)
    r = api.client.post("/search?k=3", files={"image": ("mine.jpg", photo, "image/jpeg")})
    assert r.status_code == 200, r.text
    assert len(r.json()["hits"]) == 3 and r.json()["k"] == 3
    first = api.client.post("/search?k=2&page=1", files={"image": ("mine.jpg", photo, "image/jpeg")}).json()
    second = api.client.post("/search?k=2&page=2", files={"image": ("mine.jpg", photo, "image/jpeg")}).json()
    assert second["page"] == 2 and not {h["id"] for h in first["hits"]} & {h["id"] for h in second["hits"]}
    hybrid = api.client.post("/search?mode=hybrid&q=dog", files={"image": ("mine.jpg", photo, "image/jpeg")})
    assert hybrid.status_code == 200 and hybrid.json()["explain"]["mode"] == "hybrid"


def test_photo_search_takes_time_and_source_filters(api: Api) -> None:
    photo = photo_of(api)
    r = api.client.post(
        "/search",
        files={"image": ("mine.jpg", photo, "image/jpeg")},
        data={"k": "50", "after": "2024-03-01", "before": "2024-05-01"},
    )
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]
    assert hits and all("2024-03-01" <= h["created_at"][:10] < "2024-05-01" for h in hits)
    assert r.json()["explain"]["filters"]["after"].startswith("2024-03-01")
    source = api.corpus.posts[0]["source"]
    by_source = api.client.post(
        "/search", files={"image": ("mine.jpg", photo, "image/jpeg")}, data={"k": "50", "source": source}
    ).json()["hits"]
    assert by_source and {h["source"] for h in by_source} == {source}


def test_get_search_takes_a_source_filter(api: Api) -> None:
    sources = sorted({p["source"] for p in api.corpus.posts})
    r = api.client.get("/search", params={"q": "dog", "source": sources[0], "k": 50})
    assert r.status_code == 200, r.text
    assert r.json()["hits"] and {h["source"] for h in r.json()["hits"]} == {sources[0]}
    assert r.json()["explain"]["filters"]["sources"] == [sources[0]]


def test_min_score_and_collapse_are_honoured_by_both_doors(api: Api) -> None:
    photo = photo_of(api)
    high = api.client.get("/search", params={"q": "dog", "min_score": 0.99, "k": 10}).json()
    assert all(h["score"] >= 0.99 for h in high["hits"]) and high["explain"]["min_score"] == 0.99
    posted = api.client.post(
        "/search", files={"image": ("mine.jpg", photo, "image/jpeg")}, data={"min_score": "0.999", "k": "10"}
    ).json()
    assert posted["explain"]["min_score"] == 0.999 and all(h["score"] >= 0.999 for h in posted["hits"])
    off = api.client.get("/search", params={"q": "dog", "collapse": "false"}).json()
    assert off["explain"]["collapse_threshold"] is None
    auto = api.client.get("/search", params={"q": "dog", "min_score": "auto", "k": 10}).json()
    assert auto["explain"]["min_score"] == "auto"
    cut = auto["explain"]["min_score_auto"]
    assert cut is None or all(h["score"] >= cut for h in auto["hits"])
    posted = api.client.post(
        "/search", files={"image": ("mine.jpg", photo, "image/jpeg")}, data={"min_score": "auto", "k": "10"}
    ).json()
    assert posted["explain"]["min_score"] == "auto" and "min_score_auto" in posted["explain"]
    bad = api.client.get("/search", params={"q": "dog", "min_score": "often"})
    # A value of the wrong kind is the request model's validation error (422, as for any parameter).
    assert bad.status_code == 422 and "min_score must be a number or 'auto'" in bad.text


@pytest.mark.parametrize(
    "params, message",
    [
        ({"k": "0"}, "k must be between 1 and"),
        ({"page": "0"}, "page must be 1 or more"),
        ({"k": "100", "page": "6"}, "would need the top 600 results"),
    ],
)
def test_bounds_are_the_same_400_on_both_doors(api: Api, params: dict[str, str], message: str) -> None:
    got = api.client.get("/search", params={"q": "dog", **params})
    posted = api.client.post("/search", files={"image": ("mine.jpg", photo_of(api), "image/jpeg")}, data=params)
    in_url = api.client.post("/search", params=params, files={"image": ("mine.jpg", photo_of(api), "image/jpeg")})
    for r in (got, posted, in_url):
        assert r.status_code == 400 and r.json()["error"] == "query" and message in r.json()["message"], r.text


@pytest.mark.parametrize(
    "params, message",
    [
        ({"city": ""}, "city: needs a value, e.g. london"),
        ({"city": " "}, "city: needs a value, e.g. london"),
        ({"tag": ""}, "tag: needs a value, e.g. beach"),
        ({"tag": "#"}, "tag: needs a value, e.g. beach"),
        ({"tag": "new york"}, "tag: 'new york' is not one hashtag: hashtags hold no space"),
        ({"after": "notadate"}, "after: 'notadate' is not a date: write it as 2018-01-31 or 2018-01-31T12:00"),
        ({"before": "2019-13-01"}, "before: '2019-13-01' is not a date: write it as 2018-01-31"),
    ],
)
def test_a_blank_or_unreadable_filter_parameter_is_refused_in_the_inline_words(
    api: Api, params: dict[str, str], message: str
) -> None:
    """Ignoring a blank `city=` would search every city while the user meant one."""
    got = api.client.get("/search", params={"q": "dog", **params})
    posted = api.client.post("/search", files={"image": ("mine.jpg", photo_of(api), "image/jpeg")}, data=params)
    for r in (got, posted):
        assert r.status_code in (400, 422) and message in r.json()["message"], r.text
        assert "Value error" not in r.json()["message"] and "city.0" not in r.json()["message"]


def test_describing_a_blank_city_is_not_describing_every_post(api: Api) -> None:
    assert api.client.get("/cities/%20/describe").status_code == 404
    assert api.client.get("/cities/atlantis/describe").status_code == 404
    city = api.corpus.posts[0]["city"]
    assert api.client.get(f"/cities/{city}/describe").status_code == 200


def test_a_parameter_given_twice_with_different_values_is_refused(api: Api) -> None:
    r = api.client.post("/search?k=3", files={"image": ("mine.jpg", photo_of(api), "image/jpeg")}, data={"k": "4"})
    assert r.status_code == 400 and "'k' is given twice" in r.json()["message"]
    same = api.client.post("/search?k=3", files={"image": ("mine.jpg", photo_of(api), "image/jpeg")}, data={"k": "3"})
    assert same.status_code == 200 and len(same.json()["hits"]) == 3


def test_search_routes_document_the_same_parameters(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]["/search"]
    get_names = {p["name"] for p in paths["get"]["parameters"]}
    assert {
        "q",
        "mode",
        "city",
        "tag",
        "source",
        "after",
        "before",
        "k",
        "page",
        "min_score",
        "include_vector",
        "collapse",
    } <= get_names
    post_names = {p["name"] for p in paths["post"]["parameters"]}
    assert get_names | {"weight"} == post_names


def test_every_error_body_is_the_one_error_model(api: Api) -> None:
    """docs/api.md: every 4xx body holds error, message, position and suggestions, whichever layer answers."""
    answers = {
        400: api.client.get("/search", params={"q": "dog+"}),  # the query's own error
        404: api.client.get("/posts/no-such-post"),  # a route's HTTPException
        405: api.client.delete("/cities"),  # the methods middleware, before any route
        422: api.client.get("/search", params={"q": "dog", "k": "many"}),  # parameter validation
    }
    for status, r in answers.items():
        assert r.status_code == status, r.text
        assert {"error", "message", "position", "suggestions"} <= set(r.json()), (status, r.json())
