#!/usr/bin/env bash
# Runs the whole suite against real services: the fixtures in tests/conftest.py start a genuine
# Elasticsearch node (and a 3-node cluster), Redis and Celery workers, and stop them afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p test-artifacts
# The services' folders and every test's index live in a throwaway folder. Only caches are shared
# with the user: the sentence model's ONNX export and vocabulary embedding (the user cache,
# JOINTSPACE_CACHE_DIR, as for every home) and the downloaded and unpacked picture packages of
# ~/.jointspace, minutes to remake on two cores (tests/api, tests/datasets).
export JOINTSPACE_TEST_HOME="${JOINTSPACE_TEST_HOME:-$(mktemp -d /tmp/jointspace-test.XXXXXX)}"
# The gates first, each failing the run: ruff (lint, format), mypy, the import layers.
bash scripts/static_checks.sh
python -m pytest -p no:cacheprovider --durations=25 "$@"
