"""The OpenAPI document as the fuzz test reads it: the served one, with seeded ids as examples."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def schema_with_examples(document: dict[str, Any], post_id: str, doomed_id: str, city: str) -> dict[str, Any]:
    """A copy of `document` whose `post_id` and `city` path parameters carry indexed values as
    examples, so schemathesis's examples phase reaches real posts on every route that takes one
    (its other phases fuzz the parameters as usual). DELETE gets `doomed_id`, a post of its own,
    so that the other routes still find `post_id`."""
    document = copy.deepcopy(document)
    for operations in document.get("paths", {}).values():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") != "path":
                    continue
                if parameter["name"] == "post_id":
                    parameter["example"] = doomed_id if method == "delete" else post_id
                elif parameter["name"] == "city":
                    parameter["example"] = city
    return document


def statuses_by_operation(ndjson_report: Path) -> dict[str, set[int]]:
    """From schemathesis's NDJSON report: each operation's label → the statuses it answered."""
    seen: dict[str, set[int]] = {}
    with ndjson_report.open(encoding="utf-8") as lines:
        for line in lines:
            event = json.loads(line)
            finished = event.get("ScenarioFinished")
            if not finished:
                continue
            for interaction in (finished["recorder"].get("interactions") or {}).values():
                response = interaction.get("response") or {}
                request = interaction.get("request") or {}
                if "status_code" in response:
                    label = finished["recorder"]["label"]
                    if label == "Stateful tests":  # one scenario of many operations: name each by its request
                        label = f"{request.get('method', '?')} {route_of(request.get('uri', ''))}"
                    seen.setdefault(label, set()).add(int(response["status_code"]))
    return seen


def route_of(uri: str) -> str:
    """The route template of a request's URI, for the routes that take a post id or a city: the
    stateful phase follows the API's links to real posts (and may delete the seeded one, so its
    answers count as much as the examples phase's)."""
    path = urlsplit(uri).path
    path = re.sub(r"^/posts/[^/]+", "/posts/{post_id}", path)
    return re.sub(r"^/cities/[^/]+", "/cities/{city}", path)
