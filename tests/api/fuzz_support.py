"""The OpenAPI document as the fuzz test reads it: the served one, with seeded ids as examples."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any


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
                        label = request.get("method", "?")
                    seen.setdefault(label, set()).add(int(response["status_code"]))
    return seen
