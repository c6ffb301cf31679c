"""The posts index template (posts.template.json) rendered for one model bundle and the current Settings.

Vector storage, the choice made here: `vector` (the indexed `dense_vector`) is kept out of `_source`
and read back with `docvalue_fields`, which 8.19 serves for dense_vector from Lucene's own copy of
the float32 values (bbq_hnsw and int8_hnsw keep that copy anyway, to rescore). Why:
- The vector is then stored once. In `_source` it would be stored twice, the second time as ~7 KB
  of decimal JSON per 384-d vector (ELASTICSEARCH.md: the bulk of 800+ MB per 100,000 posts).
- The doc value is the exact float32, so `get` returns the very vector that was written.
- The price: doc values are read through search, so `get` sees a write after a refresh, like search
  does (the realtime GET API serves only `_source` and stored fields).
"""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from typing import Any

from jointspace.errors import ConfigurationError
from jointspace.settings import Settings

TEMPLATE_FILE = "posts.template.json"
VECTOR_FIELD = "vector"
MODEL_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@lru_cache(maxsize=1)
def load_template() -> dict[str, Any]:
    """The template file as shipped in the package (a composable index template body)."""
    text = resources.files("jointspace.es_mappings").joinpath(TEMPLATE_FILE).read_text()
    template: dict[str, Any] = json.loads(text)
    return template


def template_version() -> int:
    return int(load_template()["_meta"]["template_version"])


def check_model_name(model: str) -> str:
    """The name, if usable inside an index name; ConfigurationError otherwise."""
    if not MODEL_NAME.match(model):
        raise ConfigurationError(
            f"model bundle name {model!r} cannot name an index: use lower-case "
            f"letters, digits and '-' (the bundle manifest's `name`)"
        )
    return model


# Elasticsearch refuses bbq_hnsw below 64 dimensions ("bbq_hnsw does not support dimensions fewer
# than 64"): one bit a dimension leaves too little to rank by.
BBQ_MIN_DIMS = 64


def vector_index_type(requested: str, dim: int) -> str:
    """The `index_options.type` an index of `dim`-d vectors gets: `requested`, except that a bundle
    too narrow for bbq_hnsw gets int8_hnsw (also quantised and re-scored)."""
    return "int8_hnsw" if requested == "bbq_hnsw" and dim < BBQ_MIN_DIMS else requested


def index_body(settings: Settings, model: str, dim: int, alias: str | None = None) -> dict[str, Any]:
    """`settings` and `mappings` for `indices.create`: the template with dims, HNSW options, shards and
    replicas filled in, and `_meta` recording the bundle and dimension that will fill the index."""
    check_model_name(model)
    if dim <= 0:
        raise ConfigurationError(f"vector dimension must be positive, got {dim}")
    body: dict[str, Any] = copy.deepcopy(load_template()["template"])
    body["settings"]["number_of_shards"] = settings.es_shards
    body["settings"]["number_of_replicas"] = settings.es_replicas
    vector = body["mappings"]["properties"][VECTOR_FIELD]
    vector["dims"] = dim
    index_type = vector_index_type(settings.es_index_options, dim)
    vector["index_options"] = {
        "type": index_type,
        "m": settings.es_hnsw_m,
        "ef_construction": settings.es_hnsw_ef_construction,
    }
    body["mappings"]["_meta"] = {
        "model": model,
        "dim": dim,
        "alias": alias or settings.es_index_alias,
        "template_version": template_version(),
        "index_options": index_type,
        "created_at": datetime.now(UTC).isoformat(),
    }
    return body
