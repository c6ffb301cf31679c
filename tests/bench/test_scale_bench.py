"""CI's run of bench/scale.py: 20,000 real-distribution vectors (the sentence model's embeddings of
distinct texts, cached between runs) on both backends with the defaults a user gets; recall@10
against exact search must be ≥ 0.95 unfiltered and with filters keeping 1/10, 1/100 and 1/1000."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILTERS = ("none", "1/10", "1/100", "1/1000")
pytestmark = pytest.mark.slow


@pytest.mark.timeout(2400)
def test_defaults_keep_recall_on_20k_real_vectors(tmp_path, es_url):
    out = tmp_path / "scale"
    env = {**os.environ, "JOINTSPACE_ES_URL": es_url}
    # The defaults only (no num_candidates sweep) and the default index type, to stay CI-sized.
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "scale.py"),
            "--n",
            "20000",
            "--vectors",
            "real",
            "--queries",
            "50",
            "--num-candidates",
            "--es-configs",
            "bbq_hnsw+rescore",
            "--out",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=2300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((out / "scale.json").read_text())
    table = (out / "scale.md").read_text()
    assert (out / "scale.png").stat().st_size > 10_000 and "| recall@10 |" in table
    rows = {(r["backend"], r["config"], r["num_candidates"], r["filter"]): r for r in report["rows"]}
    wanted = {
        (backend, config, None, f)
        for f in FILTERS
        for backend, config in (
            ("embedded", "default"),
            ("embedded", "graph"),
            ("embedded", "exact"),
            ("elasticsearch", "bbq_hnsw+rescore"),
        )
    }
    assert set(rows) == wanted, sorted(set(rows) ^ wanted)
    recall = {key: rows[key]["recall_at_10"] for key in rows}
    # Exact search is exact; at 20,000 posts the embedded default is exact search (below 50,000 rows).
    assert all(recall[("embedded", c, None, f)] == 1.0 for c in ("exact", "default") for f in FILTERS), table
    # The embedded HNSW graph (forced on at this size) and Elasticsearch's default keep recall@10 ≥ 0.95.
    assert all(recall[("embedded", "graph", None, f)] >= 0.95 for f in FILTERS), table
    assert all(recall[("elasticsearch", "bbq_hnsw+rescore", None, f)] >= 0.95 for f in FILTERS), table
    meta = report["meta"]
    assert meta["n"] == 20000 and meta["vectors"] == "real" and meta["real_corpus_texts"] > 100_000
    assert meta["embedded_graph_bytes"] > 0 and meta["es_bbq_hnsw_disk_bytes"] > 0
