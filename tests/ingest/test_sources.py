from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from jointspace.ingest.sources import open_source

from jointspace.errors import ConfigurationError
from jointspace.settings import Settings
from tests.workers.histogram_bundle import solid_image


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_jsonl_reader_reports_bad_lines_with_numbers(tmp_path: Path, settings: Settings) -> None:
    solid_image(tmp_path / "ok.png", "red")
    jsonl = _write(
        tmp_path / "feed.jsonl",
        [
            json.dumps({"id": "a", "image": "ok.png", "caption": "fine #Red"}),
            "",
            "{not json",
            json.dumps({"id": "b"}),
            json.dumps({"id": "c", "image": "ok.png", "created_at": "soon"}),
            json.dumps({"image": "ok.png", "caption": "no id: hashed"}),
        ],
    )
    items = list(open_source("jsonl", str(jsonl), settings))
    assert [i.origin for i in items] == ["feed.jsonl:1", "feed.jsonl:3", "feed.jsonl:4", "feed.jsonl:5", "feed.jsonl:6"]
    good, bad_json, no_image, bad_time, hashed = items
    assert good.post is not None and good.post.hashtags == ("red",) and good.post.image == str(tmp_path / "ok.png")
    assert bad_json.error is not None and (bad_json.error.line, bad_json.error.field) == (3, "json")
    assert "feed.jsonl:3: json: not valid JSON" in str(bad_json.error)
    assert no_image.error is not None and (no_image.error.line, no_image.error.field) == (4, "image")
    assert bad_time.error is not None and (bad_time.error.line, bad_time.error.field) == (5, "created_at")
    assert hashed.post is not None and len(hashed.post.id) == 16


def test_jsonl_from_stdin_resolves_relative_to_working_dir(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    solid_image(tmp_path / "ok.png", "blue")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps({"id": "s", "image": "ok.png"}) + "\n"))
    (item,) = list(open_source("jsonl", "-", settings))
    assert item.post is not None and item.post.image == str(tmp_path / "ok.png")


def _bytes_feed() -> bytes:
    """A byte-order mark, then a line with a byte that is not UTF-8, then a clean line."""
    first = json.dumps({"id": "s1", "image": "ok.png", "caption": "caf_ au lait"}).encode().replace(b"_", b"\xe9")
    return b"\xef\xbb\xbf" + first + b"\n" + json.dumps({"id": "s2", "image": "ok.png"}).encode() + b"\n"


def _check_bytes_feed(items: list) -> None:
    assert [i.error for i in items] == [None, None]  # the mark is not part of line 1's JSON
    assert items[0].post.caption == "caf\ufffd au lait" and items[1].post.id == "s2"  # one stray byte, one U+FFFD


def test_a_byte_order_mark_and_a_stray_byte_spoil_nothing_in_a_file(tmp_path: Path, settings: Settings) -> None:
    solid_image(tmp_path / "ok.png", "blue")
    (tmp_path / "feed.jsonl").write_bytes(_bytes_feed())
    _check_bytes_feed(list(open_source("jsonl", str(tmp_path / "feed.jsonl"), settings)))


@pytest.mark.parametrize("errors", ["strict", "surrogateescape"])  # a UTF-8 locale, and C/POSIX
def test_stdin_is_read_as_utf8_bytes_whatever_the_locale(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, errors: str
) -> None:
    """stdin's own text layer would die on the stray byte (strict) or hand on a lone surrogate
    that the store cannot write (surrogateescape): the source reads the bytes underneath."""
    solid_image(tmp_path / "ok.png", "blue")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(_bytes_feed()), encoding="utf-8", errors=errors))
    _check_bytes_feed(list(open_source("jsonl", "-", settings)))
    assert not sys.stdin.closed  # the source's wrapper let go of the stream


def test_missing_file_is_a_clear_error(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(ConfigurationError, match="no such JSONL file"):
        open_source("jsonl", str(tmp_path / "nope.jsonl"), settings)


def test_unknown_source_lists_the_choices(settings: Settings) -> None:
    with pytest.raises(ConfigurationError, match="jsonl"):
        open_source("carrier-pigeon", "x", settings)


@pytest.mark.slow
def test_instacities_reader_on_real_fixture(tmp_path: Path, settings: Settings) -> None:
    from jointspace.datasets.fixtures import build_instacities_fixture

    written = build_instacities_fixture(
        tmp_path / "insta", n_per_city=2, cities=("london", "sydney", "miami"), settings=Settings()
    )
    items = list(open_source("instacities", str(tmp_path / "insta"), settings))
    assert all(i.error is None for i in items)
    got = {i.post.id: i.post for i in items if i.post}
    assert set(got) == {w.instagram_id for w in written}
    for w in written:
        post = got[w.instagram_id]
        assert post.city == w.city and post.image == str(w.image) and post.source == "instacities"
        assert post.caption == w.caption.strip()
        assert w.city in post.hashtags  # the fixture tags each caption with its city


def test_instacities_reader_layout_details(tmp_path: Path, settings: Settings) -> None:
    (tmp_path / "img" / "London").mkdir(parents=True)
    (tmp_path / "captions" / "London").mkdir(parents=True)
    solid_image(tmp_path / "img" / "London" / "111.jpg", "red")
    solid_image(tmp_path / "img" / "London" / "222.jpg", "blue")  # no caption file
    (tmp_path / "captions" / "London" / "111.txt").write_text("Big Ben #London #clock", encoding="utf-8")
    posts = {i.post.id: i.post for i in open_source("instacities", str(tmp_path), settings) if i.post}
    assert posts["111"].city == "london" and posts["111"].hashtags == ("london", "clock")
    assert posts["222"].caption == "" and posts["222"].hashtags == ()
    with pytest.raises(ConfigurationError, match="not an InstaCities folder"):
        open_source("instacities", str(tmp_path / "captions"), settings)


def test_watch_source_reads_new_files_once_and_remembers(tmp_path: Path, settings: Settings) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    solid_image(inbox / "r.png", "red")
    _write(
        inbox / "one.jsonl", [json.dumps({"id": "w1", "image": "r.png"}), json.dumps({"id": "w2", "image": "r.png"})]
    )
    # The default poll (2 s), and an idle exit shorter than it: files written during the run are
    # still read (they are settling, not idle). The runs after it poll fast: they test memory, not timing.
    assert settings.watch_poll_s == Settings.model_fields["watch_poll_s"].default
    source = open_source("watch", str(inbox), settings, idle_exit_s=1.0)
    seen = []
    for item in source:
        if item is None:
            continue
        seen.append(item.post.id)
        source.ack([item.token])
        if item.post.id == "w2":  # a second file arrives, and the first one grows, while we run
            _write(inbox / "two.jsonl", [json.dumps({"id": "w3", "image": "r.png"})])
            with (inbox / "one.jsonl").open("a") as handle:
                handle.write(json.dumps({"id": "w4", "image": "r.png"}) + "\n" + '{"id": "w5", "ima')
    assert seen == ["w1", "w2", "w3", "w4"] or seen == ["w1", "w2", "w4", "w3"]
    # A new run remembers what was consumed; the half-written line is still waiting.
    again = open_source("watch", str(inbox), settings, poll_s=0.01, idle_exit_s=0.1)
    assert [i for i in again if i is not None] == []
    with (inbox / "one.jsonl").open("a") as handle:
        handle.write('ge": "r.png"}\n')
    third = open_source("watch", str(inbox), settings, poll_s=0.01, idle_exit_s=0.1)
    items = [i for i in third if i is not None]
    assert [(i.post.id, i.origin) for i in items] == [("w5", "one.jsonl:4")]


def test_watch_source_forgets_nothing_unacked(tmp_path: Path, settings: Settings) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    solid_image(inbox / "r.png", "red")
    _write(inbox / "a.jsonl", [json.dumps({"id": "u1", "image": "r.png"})])
    first = open_source("watch", str(inbox), settings, poll_s=0.01, idle_exit_s=0.1)
    assert [i.post.id for i in first if i is not None] == ["u1"]  # read, never acked (a crash)
    second = open_source("watch", str(inbox), settings, poll_s=0.01, idle_exit_s=0.1)
    assert [i.post.id for i in second if i is not None] == ["u1"]


@pytest.mark.parametrize(
    "line, where",
    [
        ('{"id": "p2", "image": "a.png", "caption": "a caption here" "city": "paris"}', "column 60"),
        ('{"id": "p3", "image": "a.png", "caption": "a caption cut short", "city": "paris"', "the end of the line"),
        ('{"id": "p4"}}', "column 13"),
    ],
)
def test_a_malformed_line_names_its_column_and_a_retry_keeps_the_reason(tmp_path: Path, line: str, where: str) -> None:
    from jointspace.ingest.retry import DeadLetterSource
    from jointspace.ingest.validate import ValidationLimits
    from jointspace.workers.dead_letters import DeadLetter

    (tmp_path / "bad.jsonl").write_text(line + "\n")
    source = open_source("jsonl", str(tmp_path / "bad.jsonl"), Settings(home=tmp_path / "home"))
    (item,) = list(source)
    source.close()
    assert item.error is not None and item.error.reason.endswith(f"at {where})"), item.error.reason
    if where.startswith("column"):  # the character json stopped at: `"city` without a comma, the extra `}`
        assert line[int(where.split()[-1]) - 1] in '"}'
    letter = DeadLetter(
        key=item.origin, stage="validate", reason=item.error.reason, post={"text": item.raw}, origin=item.origin
    )
    (again,) = list(DeadLetterSource([letter], ValidationLimits(100, 1000)))
    assert again.error is not None and again.error.reason == item.error.reason
