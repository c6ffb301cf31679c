"""End to end without a broker: JSONL → validate → decode → embed → the embedded backend, in-process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from jointspace.ingest.run import IngestRun
from jointspace.ingest.sources import open_source
from jointspace.workers.distributor import InProcessDistributor
from jointspace.workers.runtime import open_context

from jointspace.settings import Settings
from tests.ingest.conftest import BUNDLE_FACTORY
from tests.workers.corpus import make_corpus
from tests.workers.histogram_bundle import COLOURS, IMPORT_ROOT, make_bundle, solid_image


def _run(settings: Settings, target: Path, kind: str = "jsonl"):
    context = open_context(settings)
    try:
        run = IngestRun(
            open_source(kind, str(target), settings),
            InProcessDistributor(settings, context),
            context.dead_letters,
            batch_size=settings.batch_size,
            backend=context.backend,
            progress=False,
        )
        summary = run.run()
        ids = {d.id: d for d in context.backend.iter_documents()}
        letters = {letter.key: letter for letter in context.dead_letters.list()}
        return summary, ids, letters, context
    finally:
        context.close()


@pytest.mark.parametrize(
    "embed_chunk, split",
    [(None, False), (1, False), (3, False), (3, True)],
    ids=["default-chunk", "chunk-1", "chunk-3", "chunk-3-kept-features"],
)
def test_good_posts_indexed_broken_ones_dead_lettered(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, embed_chunk: int | None, split: bool
) -> None:
    """Also with the network taking 1 or 3 pictures at a time (several chunks a batch, broken
    pictures among them), with and without kept features (backbone, then the head once)."""
    if embed_chunk is not None:
        settings = settings.model_copy(update={"embed_chunk": embed_chunk})
    if split:
        monkeypatch.setenv("JOINTSPACE_TEST_SPLIT_ENCODER", "1")
    corpus = make_corpus(tmp_path, n_good=14, with_broken=True)
    summary, docs, letters, _ = _run(settings, corpus.jsonl)
    assert summary.searchable is True
    assert summary.indexed == 14 and set(docs) == set(corpus.good)
    assert set(summary.dead) == set(corpus.broken) == set(letters)
    for key, stage in corpus.broken.items():
        assert letters[key].stage == stage, (key, letters[key])
        assert letters[key].post is not None and letters[key].post["id"] == key
    assert "decompression bomb" in letters["bad-bomb"].reason
    assert "empty file" in letters["bad-empty"].reason
    assert "image_max_bytes" in letters["bad-too-big"].reason
    assert "unsupported pixel mode" in letters["bad-bad-mode"].reason
    # Stored fields are the normalised ones, and vectors are the encoder's: red finds red.
    doc = docs["p00000"]
    assert doc.post.city == "london" and doc.post.hashtags == (corpus.good["p00000"],)
    encoder = make_bundle().image
    for post_id, colour in corpus.good.items():
        from PIL import Image

        expected = encoder.embed_one(Image.new("RGB", (8, 8), COLOURS[colour]))
        assert float(np.dot(docs[post_id].vector, expected)) == pytest.approx(1.0, abs=1e-5)


def test_running_twice_indexes_nothing_twice(tmp_path: Path, settings: Settings) -> None:
    corpus = make_corpus(tmp_path, n_good=9)
    first, docs, _, _ = _run(settings, corpus.jsonl)
    second, again, _, _ = _run(settings, corpus.jsonl)
    assert (first.indexed, first.unchanged) == (9, 0)
    assert (second.indexed, second.unchanged) == (0, 9)
    assert set(docs) == set(again) == set(corpus.good)


def test_same_post_twice_in_one_input_is_one_document(tmp_path: Path, settings: Settings) -> None:
    solid_image(tmp_path / "r.png", "red")
    line = json.dumps({"image": "r.png", "caption": "no id: the image hash is the id"})
    changed = json.dumps({"id": "k", "image": "r.png", "caption": "v1"})
    (tmp_path / "dup.jsonl").write_text(
        "\n".join([line, line, changed, json.dumps({"id": "k", "image": "r.png", "caption": "v2"}), line]) + "\n"
    )
    summary, docs, _, _ = _run(settings, tmp_path / "dup.jsonl")
    # Two exact repeats, and v1 replaced by v2 before its batch was sent: three duplicates.
    assert summary.duplicates == 3 and summary.dead == {} and summary.indexed == 2
    assert summary.read == summary.indexed + summary.unchanged + summary.duplicates + len(summary.dead)
    assert len(docs) == 2 and docs["k"].post.caption == "v2"  # the last copy wins


def test_a_changed_copy_after_its_batch_left_is_an_update_and_counts_add_up(tmp_path: Path, settings: Settings) -> None:
    solid_image(tmp_path / "r.png", "red")
    rows = [{"id": "k", "image": "r.png", "caption": "v1"}]
    rows += [{"id": f"p{n}", "image": "r.png", "caption": f"filler {n}"} for n in range(settings.batch_size)]
    rows += [{"id": "k", "image": "r.png", "caption": "v2"}, {"id": "bad", "image": "missing.png"}]
    (tmp_path / "late.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary, docs, letters, _ = _run(settings, tmp_path / "late.jsonl")
    assert summary.read == len(rows) == summary.indexed + summary.unchanged + summary.duplicates + len(summary.dead)
    assert summary.duplicates == 0 and len(summary.dead) == 1 and docs["k"].post.caption == "v2"


def _cli(args: list[str], home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("JOINTSPACE_")}
    full_env.update(
        JOINTSPACE_HOME=str(home),
        JOINTSPACE_BUNDLE_FACTORY=BUNDLE_FACTORY,
        JOINTSPACE_BATCH_SIZE="4",
        JOINTSPACE_IMAGE_MAX_PIXELS="1000000",
        JOINTSPACE_IMAGE_MAX_BYTES="300000",
        PYTHONPATH=IMPORT_ROOT,
        **env,
    )
    return subprocess.run(
        [shutil.which("jointspace") or "jointspace", *args], capture_output=True, text=True, env=full_env, timeout=120
    )


@pytest.mark.slow
def test_cli_ingest_then_dead_letters_list_retry_purge(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path, n_good=6, with_broken=True)
    home = tmp_path / "home"
    done = _cli(["ingest", str(corpus.jsonl), "--json", "--quiet"], home)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["indexed"] == 6 and summary["dead_lettered"] == len(corpus.broken)
    assert summary["searchable"] is True

    listed = _cli(["dead-letters", "list", "--json"], home)
    letters = {letter["key"]: letter for letter in json.loads(listed.stdout)}
    assert set(letters) == set(corpus.broken)

    # Repair one broken image in place; a retry indexes it and keeps the others with their reasons.
    empty = Path(letters["bad-empty"]["post"]["image"])
    solid_image(empty.with_suffix(".png"), "green")
    empty.write_bytes(empty.with_suffix(".png").read_bytes())
    retried = _cli(["dead-letters", "retry", "--json"], home)
    assert retried.returncode == 0, retried.stderr
    assert json.loads(retried.stdout)["indexed"] == 1
    left = {letter["key"] for letter in json.loads(_cli(["dead-letters", "list", "--json"], home).stdout)}
    assert left == set(corpus.broken) - {"bad-empty"}

    refused = _cli(["dead-letters", "purge", "--json"], home)  # a script must say --yes
    assert refused.returncode == 2 and "add --yes" in json.loads(refused.stdout)["message"]
    assert len(json.loads(_cli(["dead-letters", "list", "--json"], home).stdout)) == len(left)
    purged = _cli(["dead-letters", "purge", "--json", "--yes"], home)
    assert json.loads(purged.stdout) == {"purged": len(left)}
    assert json.loads(_cli(["dead-letters", "list", "--json"], home).stdout) == []


def test_cli_refuses_a_missing_input(tmp_path: Path) -> None:
    done = _cli(["ingest", str(tmp_path / "nothing.jsonl")], tmp_path / "home")
    assert done.returncode != 0 and "no such file" in done.stderr


class _SlowTickets:
    """The real in-process distributor, whose tickets say "not ready" until someone waits on them:
    a slow worker, as seen by the producer. Records what was settled when each batch was sent."""

    def __init__(self, inner: InProcessDistributor) -> None:
        self.inner = inner
        self.sent: list[tuple[list[str], set[int]]] = []  # (ids, indexes of batches settled before)
        self._settled: set[int] = set()

    def stall_reason(self):
        return self.inner.stall_reason()

    def submit_batch(self, posts, on_stall=None):
        self.sent.append(([p.id for p in posts], set(self._settled)))
        ticket = self.inner.submit_batch(posts, on_stall)
        index = len(self.sent) - 1
        distributor = self

        class Slow:
            def __init__(self) -> None:
                self.posts = ticket.posts

            def ready(self) -> bool:
                return index in distributor._settled

            def outcome(self, timeout=None):
                result = ticket.outcome(timeout)
                distributor._settled.add(index)
                return result

        return Slow()

    def close(self) -> None:
        self.inner.close()


def test_a_changed_copy_waits_for_its_earlier_copys_batch(tmp_path: Path, settings: Settings) -> None:
    """With several workers the older copy could be written last; the producer holds the newer copy
    back until the batch with the older one is settled, so the last copy wins on every path."""
    solid_image(tmp_path / "r.png", "red")
    rows = [{"id": "k", "image": "r.png", "caption": "v1"}]
    rows += [{"id": f"p{n}", "image": "r.png", "caption": f"filler {n}"} for n in range(2 * settings.batch_size)]
    rows += [{"id": "k", "image": "r.png", "caption": "v2"}]
    (tmp_path / "late.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    context = open_context(settings)
    try:
        distributor = _SlowTickets(InProcessDistributor(settings, context))
        run = IngestRun(
            open_source("jsonl", str(tmp_path / "late.jsonl"), settings),
            distributor,
            context.dead_letters,
            batch_size=settings.batch_size,
            backend=context.backend,
            progress=False,
        )
        run.run()
        first = next(i for i, (ids, _) in enumerate(distributor.sent) if "k" in ids)
        later = [settled for ids, settled in distributor.sent[first + 1 :] if "k" in ids]
        assert later and first in later[0]  # v1's batch was settled before v2's was sent
        assert distributor.sent[first + 1][1] == set()  # batches without k were not held back
        assert context.backend.get("k").post.caption == "v2"
    finally:
        context.close()


@pytest.mark.slow
def test_cli_search_loads_the_bundle_factory_as_ingest_does(tmp_path: Path) -> None:
    """JOINTSPACE_BUNDLE_FACTORY is one setting for every command: `search` finds what `ingest`
    indexed with the factory's model (the default bundle would not even open that index)."""
    corpus = make_corpus(tmp_path, n_good=12, with_broken=False)
    home = tmp_path / "home"
    done = _cli(["ingest", str(corpus.jsonl), "--json", "--quiet"], home)
    assert done.returncode == 0, done.stderr
    found = _cli(["search", "red", "--json", "-k", "3", "--no-collapse"], home)  # two reds: identical
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)["hits"]
    reds = {post_id for post_id, colour in corpus.good.items() if colour == "red"}
    assert len(reds) >= 2 and hits, (reds, hits)
    assert {h["id"] for h in hits[: len(reds)]} <= reds


def test_a_post_the_store_cannot_write_takes_only_itself_to_dead_letters(tmp_path: Path, settings: Settings) -> None:
    """A batch that fails for a reason that is not transient runs again in halves, down to the one
    post that fails alone: its batch-mates are indexed, not dead-lettered with it."""
    from dataclasses import replace

    corpus = make_corpus(tmp_path, n_good=2 * settings.batch_size)
    posts = [item.post for item in open_source("jsonl", str(corpus.jsonl), settings)]
    # A lone surrogate, as only a caller that skips validation can send: SQLite cannot encode it.
    poisoned = replace(posts[5], caption="a \ud800 b")
    posts[5] = poisoned
    context = open_context(settings)
    try:
        outcome = InProcessDistributor(settings, context).submit_batch(posts).outcome()
        assert sorted(outcome.indexed) == sorted(p.id for p in posts if p is not poisoned)
        assert list(outcome.dead) == [poisoned.id]
        assert outcome.dead[poisoned.id].startswith("write: failed: UnicodeEncodeError"), outcome.dead
        assert [letter.key for letter in context.dead_letters.list()] == [poisoned.id]
        context.backend.refresh()
        assert context.backend.count() == len(posts) - 1
    finally:
        context.close()


def test_json_that_is_no_object_keeps_its_reason_through_a_retry(tmp_path: Path, settings: Settings) -> None:
    from jointspace.ingest.retry import DeadLetterSource
    from jointspace.ingest.validate import ValidationLimits

    (tmp_path / "odd.jsonl").write_text('[1, 2, 3]\n"a string"\n{"id": "x"\n')
    summary, _, letters, _ = _run(settings, tmp_path / "odd.jsonl")
    reasons = {letter.origin: letter.reason for letter in letters.values()}
    assert reasons["odd.jsonl:1"] == "post: must be a JSON object, not list"
    assert reasons["odd.jsonl:2"] == "post: must be a JSON object, not str"
    assert reasons["odd.jsonl:3"].startswith("json: not valid JSON")
    again = {item.origin: item.error for item in DeadLetterSource(list(letters.values()), ValidationLimits(100, 1000))}
    assert {origin: f"{error.field}: {error.reason}" for origin, error in again.items()} == {
        "odd.jsonl:1": "post: must be a JSON object, not list",
        "odd.jsonl:2": "post: must be a JSON object, not str",
        "odd.jsonl:3": reasons["odd.jsonl:3"],
    }


def test_a_picture_given_as_the_posts_file_is_refused_not_dead_lettered_line_by_line(tmp_path: Path) -> None:
    solid_image(tmp_path / "red.png", "red")
    done = _cli(["ingest", str(tmp_path / "red.png")], tmp_path / "home")
    assert done.returncode != 0 and "is not a JSONL file of posts" in done.stderr, done.stderr
    listed = _cli(["dead-letters", "list", "--json"], tmp_path / "home")
    assert json.loads(listed.stdout) == []


def test_a_folder_of_pictures_says_it_is_watched_and_what_posts_are(tmp_path: Path) -> None:
    for colour in ("red", "blue"):
        (tmp_path / "pictures").mkdir(exist_ok=True)
        solid_image(tmp_path / "pictures" / f"{colour}.png", colour)
    done = _cli(["ingest", str(tmp_path / "pictures"), "--idle-exit", "0.5", "--quiet"], tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert "watching" in done.stderr and "stops after 0.5 s without new posts" in done.stderr
    assert "no posts were read" in done.stderr and "holds pictures but no .jsonl file" in done.stderr
