"""Local services the project starts itself: a real Elasticsearch node or cluster, and Redis.

For development and CI on machines without a container engine; production uses `docker/compose.yml`.
"""

from jointspace.services.elasticsearch_local import LocalElasticsearch, NodeState
from jointspace.services.redis_local import LocalRedis

__all__ = ["LocalElasticsearch", "LocalRedis", "NodeState"]
