"""Health, metrics, the OpenAPI document and the page itself."""

from __future__ import annotations

import re
import socket
from dataclasses import replace

from fastapi.testclient import TestClient
from jointspace.api.app import create_app

from tests.api.api_support import Api


def test_health_reports_each_part(api: Api) -> None:
    r = api.client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert f"{len(api.corpus.posts)} documents" in body["backend"]["detail"]
    assert ("elasticsearch" if api.backend_name == "elasticsearch" else "embedded") in body["backend"]["detail"]
    assert body["model"]["detail"].startswith(api.container.bundle.name)
    assert "in-process" in body["broker"]["detail"]


def test_health_is_503_when_the_broker_is_down(api: Api) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = api.settings.model_copy(update={"broker_url": f"redis://127.0.0.1:{port}/0"})
    with TestClient(create_app(settings, replace(api.container, settings=settings))) as client:
        r = client.get("/health")
    assert r.status_code == 503
    assert r.json()["status"] == "degraded" and r.json()["broker"]["ok"] is False


def test_health_with_a_real_broker(api: Api, redis_url: str) -> None:
    settings = api.settings.model_copy(update={"broker_url": redis_url})
    with TestClient(create_app(settings, replace(api.container, settings=settings))) as client:
        body = client.get("/health").json()
    assert body["status"] == "ok" and body["broker"] == {"ok": True, "detail": "redis reachable"}


def test_metrics_count_requests_by_route(api: Api) -> None:
    post_id = api.corpus.posts[0]["id"]
    api.client.get(f"/posts/{post_id}")
    api.client.get("/search", params={"q": "dog", "k": 2})
    api.client.get("/search", params={"q": "dog+"})
    text = api.client.get("/metrics").text
    assert 'jointspace_http_requests_total{method="GET",route="/search",status="200"}' in text
    assert 'jointspace_http_requests_total{method="GET",route="/search",status="400"}' in text
    assert 'jointspace_searches_total{mode="semantic",outcome="query_error"}' in text
    assert f"jointspace_documents {float(len(api.corpus.posts))}" in text
    # Labelled by the route template, never the raw path (one series per post would explode).
    assert 'route="/posts/{post_id}",status="200"' in text and post_id not in text


def test_openapi_lists_the_routes(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    for path in (
        "/search",
        "/posts",
        "/posts/{post_id}",
        "/posts/{post_id}/image",
        "/posts/{post_id}/thumbnail",
        "/posts/{post_id}/describe",
        "/cities",
        "/cities/{city}/describe",
        "/health",
        "/metrics",
    ):
        assert path in paths, path
    assert api.client.get("/docs").status_code == 200


def test_page_and_its_assets_are_served(api: Api) -> None:
    page = api.client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'id="q"' in page.text and "/app.js" in page.text
    for asset, kind in (("/app.js", "javascript"), ("/style.css", "text/css")):
        r = api.client.get(asset)
        assert r.status_code == 200 and kind in r.headers["content-type"]
    assert not re.search(r'(src|href)="(https?:)?//', page.text), "everything is served locally: no CDN"


def test_options_and_405_list_the_methods_of_the_path(api: Api) -> None:
    for path, allow in (
        ("/posts", "POST, OPTIONS"),
        ("/posts/any-id", "GET, DELETE, OPTIONS"),
        ("/search", "GET, POST, OPTIONS"),
        ("/cities", "GET, OPTIONS"),
    ):
        options = api.client.options(path)
        assert options.status_code == 204 and options.headers["allow"] == allow, (path, options.headers)
    wrong = api.client.put("/search")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, POST, OPTIONS"
    assert wrong.json()["error"] == "method_not_allowed"
    get_posts = api.client.get("/posts")
    assert get_posts.status_code == 405 and get_posts.headers["allow"] == "POST, OPTIONS"
    page = api.client.post("/index.html")
    assert page.status_code == 405 and page.headers["allow"] == "GET, HEAD, OPTIONS"
    assert api.client.get("/").status_code == 200 and api.client.head("/posts/any-id").status_code == 404


def test_every_documented_error_is_the_error_model(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) < 400:
                    continue
                ref = response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
                if (path, status) == ("/health", "503"):
                    assert ref == "HealthOut"
                    continue
                assert {"error", "message"} <= set(schemas[ref]["required"]), (method, path, status, ref)
            assert "500" in operation["responses"], (method, path)
    assert "HTTPValidationError" not in schemas
    post_posts = document["paths"]["/posts"]["post"]
    assert set(post_posts["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert "415" in post_posts["responses"]
    assert "readable image" in document["paths"]["/search"]["post"]["responses"]["400"]["description"]
    assert "links" in document["paths"]["/search"]["get"]["responses"]["200"]


def test_docs_page_works_offline_from_packaged_assets(api: Api) -> None:
    page = api.client.get("/docs")
    assert page.status_code == 200 and "swagger-ui-bundle.js" in page.text
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*["']([^"']+)["']""", page.text)
    urls = [a or b for a, b in urls]
    assert urls and not [u for u in urls if "//" in u], urls  # nothing from another host
    for url in urls:
        asset = api.client.get(url)
        assert asset.status_code == 200 and asset.content, url
    assert "SwaggerUIBundle" in api.client.get("/docs/assets/swagger-ui-bundle.js").text
