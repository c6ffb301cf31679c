"""The Elasticsearch request bodies, asserted exactly (pure builders: no service needed)."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from jointspace.backends import es_queries
from jointspace.backends.es_documents import document_from_hit, to_source
from jointspace.es_mappings.template import index_body

from jointspace.errors import ConfigurationError
from jointspace.records import Filters
from jointspace.settings import Settings
from tests.backends.backend_corpus import doc

FILTERS = Filters(
    cities=("Paris", "london"),
    hashtags=("#Beach",),
    sources=("Feed",),
    after=datetime(2024, 1, 1),
    before=datetime(2024, 2, 1),
)
FILTER_CLAUSES = [
    {"terms": {"city": ["london", "paris"]}},
    {"terms": {"hashtags": ["beach"]}},
    {"term": {"source": {"value": "feed", "case_insensitive": True}}},  # stored as ingested: any case
    {"range": {"created_at": {"gte": "2024-01-01T00:00:00", "lt": "2024-02-01T00:00:00"}}},
]


def test_filters_become_term_and_range_clauses() -> None:
    assert es_queries.filter_clauses(FILTERS) == FILTER_CLAUSES
    assert es_queries.filter_clauses(Filters()) == []
    assert es_queries.filter_clauses(Filters(before=datetime(2024, 1, 1))) == [
        {"range": {"created_at": {"lt": "2024-01-01T00:00:00"}}}
    ]
    assert es_queries.filter_query(None) == {"match_all": {}}
    assert es_queries.filter_query(FILTERS) == {"bool": {"filter": FILTER_CLAUSES}}
    assert es_queries.filter_clauses(Filters(sources=("b", "A"))) == [
        {
            "bool": {
                "should": [
                    {"term": {"source": {"value": "a", "case_insensitive": True}}},
                    {"term": {"source": {"value": "b", "case_insensitive": True}}},
                ],
                "minimum_should_match": 1,
            }
        }
    ]


def test_knn_clause_keeps_filters_inside_and_rescores_quantised_vectors() -> None:
    body = es_queries.knn_clause(
        np.array([0.6, 0.8], dtype=np.float32), k=5, num_candidates=200, filters=FILTERS, rescore_oversample=3.0
    )
    assert body == {
        "field": "vector",
        "query_vector": [pytest.approx(0.6), pytest.approx(0.8)],
        "k": 5,
        "num_candidates": 200,
        "filter": FILTER_CLAUSES,
        "rescore_vector": {"oversample": 3.0},
    }
    plain = es_queries.knn_clause(np.array([1.0, 0.0]), k=5, num_candidates=200)
    assert "filter" not in plain and "rescore_vector" not in plain


@pytest.mark.parametrize(
    "k, requested, expected",
    [(10, None, 200), (50, None, 500), (10, 30, 30), (10, 3, 10), (2_000, None, 10_000), (10, 50_000, 10_000)],
)
def test_num_candidates(k: int, requested: int | None, expected: int) -> None:
    settings = Settings(num_candidates_factor=10, min_num_candidates=200, max_num_candidates=10_000)
    assert settings.num_candidates(k, requested) == expected


def test_keyword_query_is_bm25_over_caption_and_hashtags() -> None:
    assert es_queries.keyword_query("sunny beach", FILTERS) == {
        "bool": {
            "must": [{"multi_match": {"query": "sunny beach", "fields": ["caption", "caption.std", "hashtags.text"]}}],
            "filter": FILTER_CLAUSES,
        }
    }
    assert "filter" not in es_queries.keyword_query("x")["bool"]


def test_dot_product_score_is_converted_back() -> None:
    assert es_queries.dot_from_score(1.0) == 1.0
    assert es_queries.dot_from_score(0.5) == 0.0
    assert es_queries.dot_from_score(0.25) == -0.5


def test_index_body_fills_dims_options_and_records_the_model() -> None:
    settings = Settings(es_shards=2, es_replicas=1, es_index_options="hnsw", es_hnsw_m=24, es_hnsw_ef_construction=200)
    body = index_body(settings, "minilm-head", 384, alias="posts")
    assert body["settings"]["number_of_shards"] == 2 and body["settings"]["number_of_replicas"] == 1
    vector = body["mappings"]["properties"]["vector"]
    assert vector == {
        "type": "dense_vector",
        "dims": 384,
        "index": True,
        "similarity": "dot_product",
        "index_options": {"type": "hnsw", "m": 24, "ef_construction": 200},
    }
    assert body["mappings"]["_source"] == {"excludes": ["vector"]}
    meta = body["mappings"]["_meta"]
    assert (meta["model"], meta["dim"], meta["alias"], meta["index_options"]) == ("minilm-head", 384, "posts", "hnsw")
    assert index_body(Settings(), "m", 384)["mappings"]["properties"]["vector"]["index_options"]["type"] == "bbq_hnsw"
    assert index_body(Settings(), "m", 8)["mappings"]["properties"]["vector"]["index_options"]["type"] == "int8_hnsw"
    with pytest.raises(ConfigurationError, match="Bad_Name"):
        index_body(settings, "Bad_Name", 384)


def test_bbq_falls_back_to_int8_below_64_dimensions() -> None:
    """Elasticsearch refuses bbq_hnsw under 64 dims: such a bundle's index gets int8_hnsw, and its
    `_meta` records what it got (rescoring follows the recorded type)."""
    bbq = Settings(es_index_options="bbq_hnsw")
    for dim, expected in ((384, "bbq_hnsw"), (64, "bbq_hnsw"), (63, "int8_hnsw"), (16, "int8_hnsw")):
        mappings = index_body(bbq, "m", dim)["mappings"]
        assert mappings["properties"]["vector"]["index_options"]["type"] == expected, dim
        assert mappings["_meta"]["index_options"] == expected, dim
    assert index_body(Settings(es_index_options="hnsw"), "m", 16)["mappings"]["_meta"]["index_options"] == "hnsw"


def test_document_source_round_trip() -> None:
    original = doc(
        "x1",
        np.array([0.6, 0.8], dtype=np.float32),
        caption="hi",
        hashtags=("a", "b"),
        city="Rome",
        created_at=datetime(2024, 3, 4, 5, 6, 7),
        source="feed",
    )
    source = to_source(original)
    assert source["image_ref"] == "/media/x1.jpg" and source["model"] == "test-model"
    hit = {
        "_id": "x1",
        "_source": {k: v for k, v in source.items() if k != "vector"},
        "fields": {"vector": [[0.6000000238418579, 0.800000011920929]]},
    }
    back = document_from_hit(hit, "test-model")
    assert back.post == original.post
    np.testing.assert_array_equal(back.vector, original.vector)


def test_match_set_request_aggregations_and_newest_sort() -> None:
    body = es_queries.match_request(
        np.array([0.6, 0.8], dtype=np.float32),
        depth=1_000,
        num_candidates=10_000,
        filters=FILTERS,
        min_score=0.2,
        rescore_oversample=3.0,
    )
    assert body == {
        "knn": {
            "field": "vector",
            "query_vector": [pytest.approx(0.6), pytest.approx(0.8)],
            "k": 1_000,
            "num_candidates": 10_000,
            "filter": FILTER_CLAUSES,
            "rescore_vector": {"oversample": 3.0},
        },
        "track_total_hits": True,
        "min_score": pytest.approx(0.6),
    }  # _score = (1 + 0.2) / 2
    assert "min_score" not in es_queries.match_request(np.ones(2), 10, 500, None, None)
    assert es_queries.facet_aggregations(["city", "month"], size=5, depth=1_000) == {
        "city": {
            "terms": {"field": "city", "size": 5, "shard_size": 1_000, "order": [{"_count": "desc"}, {"_key": "asc"}]}
        },
        "month": {
            "date_histogram": {
                "field": "created_at",
                "calendar_interval": "month",
                "format": "yyyy-MM",
                "min_doc_count": 1,
            }
        },
    }
    assert es_queries.trend_aggregations("hashtags", "year", size=3, depth=50, include=["a", "b"]) == {
        "values": {
            "terms": {
                "field": "hashtags",
                "size": 2,
                "shard_size": 50,
                "include": ["a", "b"],
                "order": [{"_count": "desc"}, {"_key": "asc"}],
            },
            "aggs": {
                "periods": {
                    "date_histogram": {
                        "field": "created_at",
                        "calendar_interval": "year",
                        "format": "yyyy",
                        "min_doc_count": 1,
                    }
                }
            },
        }
    }
    assert es_queries.values_query(None, "city", ["paris"]) == {"bool": {"filter": [{"terms": {"city": ["paris"]}}]}}
    # Sources: every spelling in the match set (at most `depth`), folded after the search; the
    # totals of chosen keys by one case-insensitive filter a key.
    assert es_queries.facet_aggregations(["source"], size=5, depth=1_000)["source"]["terms"]["size"] == 1_000
    totals = es_queries.trend_aggregations("source", "year", size=3, depth=50, include=["instagram"])["values"]
    assert totals["filters"] == {"filters": {"instagram": es_queries.source_clause(("instagram",))}}
    assert es_queries.values_query(None, "source", ["instagram"]) == {
        "bool": {"filter": [{"term": {"source": {"value": "instagram", "case_insensitive": True}}}]}
    }
    buckets = [{"key": k, "doc_count": n} for k, n in (("Flickr", 2), ("instagram", 2), ("FLICKR", 1))]
    assert es_queries.folded_counts("source", buckets, 5) == [("flickr", 3), ("instagram", 2)]
    assert es_queries.folded_counts("city", [{"key": "paris", "doc_count": 4}], 5) == [("paris", 4)]
    assert es_queries.NEWEST_SORT == [{"created_at": {"order": "desc", "missing": "_last"}}, {"id": "asc"}]


def test_keyword_match_query_excludes_whole_words_and_hashtags() -> None:
    query = es_queries.keyword_match_query("dog park", Filters(cities=("Oslo",)), exclude=("Beach", "sun"))
    assert query == {
        "bool": {
            "must": [{"multi_match": {"query": "dog park", "fields": list(es_queries.KEYWORD_FIELDS)}}],
            "filter": [{"terms": {"city": ["oslo"]}}],
            "must_not": [{"terms": {"caption.std": ["beach", "sun"]}}, {"terms": {"hashtags": ["beach", "sun"]}}],
        }
    }
    assert "must_not" not in es_queries.keyword_match_query("dog", None)["bool"]


def test_rescore_oversample_covers_the_ranked_top_and_every_hit() -> None:
    assert es_queries.rescore_oversample(3.0, 20, None) == 3.0  # the whole page is ranked
    assert es_queries.rescore_oversample(3.0, 20, 20) == 3.0
    assert es_queries.rescore_oversample(3.0, 200, 20) == 1.0  # 60 would be fewer than the 200 hits
    assert es_queries.rescore_oversample(3.0, 200, 100) == 1.5  # 300 candidates re-scored
    assert es_queries.rescore_oversample(0.0, 200, 20) == 0.0  # a float index re-scores nothing
