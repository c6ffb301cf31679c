from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from jointspace.ingest.validate import (
    InvalidPost,
    ValidationLimits,
    normalise_city,
    normalise_hashtags,
    parse_hashtags,
    parse_time,
    real_path,
    validate_post,
)

LIMITS = ValidationLimits(max_caption_chars=50, max_image_bytes=1_000_000)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "a.jpg"
    path.write_bytes(b"\xff\xd8 not really a jpeg, but bytes to hash")
    return path


def test_full_post_is_normalised(image: Path) -> None:
    post = validate_post(
        {
            "id": "x1",
            "image": "a.jpg",
            "caption": "Sunrise at the #Beach with #café #beach",
            "city": "  New   York ",
            "created_at": "2024-05-01T14:00:00+02:00",
            "author": "ann",
            "extra": "ignored",
        },
        image.parent,
        LIMITS,
    )
    assert post.id == "x1"
    assert post.image == str(image)
    assert post.hashtags == ("beach", "café")
    assert post.city == "new york"
    assert post.created_at == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert post.author == "ann" and post.source is None


def test_id_defaults_to_hash_of_image_bytes(image: Path) -> None:
    post = validate_post({"image": str(image)}, None, LIMITS)
    assert post.id == hashlib.sha256(image.read_bytes()).hexdigest()[:16]
    # Same bytes elsewhere, referenced another way: the same id.
    copy = image.parent / "sub" / "b.jpg"
    copy.parent.mkdir()
    copy.write_bytes(image.read_bytes())
    assert validate_post({"image": copy.as_uri()}, None, LIMITS).id == post.id


def test_explicit_hashtags_win_over_caption(image: Path) -> None:
    post = validate_post(
        {"id": "a", "image": str(image), "caption": "#one", "hashtags": ["#Two", "two", "three"]}, None, LIMITS
    )
    assert post.hashtags == ("two", "three")


@pytest.mark.parametrize(
    "raw, field",
    [
        ({"id": "a"}, "image"),
        ({"id": "a", "image": "http://example.com/x.jpg"}, "image"),
        ({"id": "a", "image": "a\x00.jpg"}, "image"),  # found by the OpenAPI fuzzer: was a ValueError (500)
        ({"id": "a", "image": "file:///tmp/a%00.jpg"}, "image"),
        ({"id": "a", "image": "~no-such-user-here/a.jpg"}, "image"),  # also the fuzzer's: a RuntimeError (500)
        ({"image": "x" * 5000 + ".jpg"}, "image"),  # hashing a name too long to open: was an OSError
        ({"id": "a", "image": "missing.jpg"}, "id_or_image"),
        ({"id": "a b", "image": "a.jpg"}, "id"),
        ({"id": "a", "image": "a.jpg", "caption": "x" * 51}, "caption"),
        ({"id": "a", "image": "a.jpg", "caption": 3}, "caption"),
        ({"id": "a", "image": "a.jpg", "created_at": "yesterday"}, "created_at"),
        ({"id": "a", "image": "a.jpg", "city": ["x"]}, "city"),
        ({"id": "a", "image": "a.jpg", "hashtags": [1]}, "hashtags"),
        (["not", "an", "object"], "post"),
    ],
)
def test_bad_posts_name_their_field(image: Path, raw: object, field: str) -> None:
    if field == "id_or_image":  # a given id is trusted; the missing file surfaces at decode time
        assert validate_post(raw, image.parent, LIMITS).id == "a"
        with pytest.raises(InvalidPost) as info:
            validate_post({"image": "missing.jpg"}, image.parent, LIMITS)
        assert info.value.field == "image" and "not found" in info.value.reason
        return
    with pytest.raises(InvalidPost) as info:
        validate_post(raw, image.parent, LIMITS)
    assert info.value.field == field


def test_a_non_string_image_is_named_as_such(image: Path) -> None:
    with pytest.raises(InvalidPost, match="image: must be a string .* not int"):
        validate_post({"id": "a", "image": 123}, image.parent, LIMITS)


def test_lone_surrogates_become_replacement_characters(image: Path) -> None:
    """`\\ud800` in JSON decodes to a lone surrogate, which SQLite and Elasticsearch cannot encode."""
    post = validate_post(
        {"id": "a", "image": "a.jpg", "caption": "x\ud800y #t\udcff", "city": "z\udfff", "hashtags": ["h\ud83d"]},
        image.parent,
        LIMITS,
    )
    assert (post.caption, post.city, post.hashtags) == ("x\ufffdy #t\ufffd", "z\ufffd", ("h\ufffd",))
    for text in (post.caption, post.city, *post.hashtags):
        text.encode("utf-8")  # strict: raises on any surrogate left
    emoji = validate_post({"id": "b", "image": "a.jpg", "caption": "\U0001f600"}, image.parent, LIMITS)
    assert emoji.caption == "\U0001f600"  # a pair is one code point in a str: left alone


def test_control_characters_are_dropped_from_every_text_field(image: Path) -> None:
    """An escape sequence in a caption would retitle or clear the terminal of whoever lists it."""
    caption = "evil \x1b]0;PWNED\x07 \x1b[2J\x1b[31mred\tline\nnext\x00\x7f\x9b"
    raw = dict(id="a", image="a.jpg", caption=caption, city="paris\x1b[5m", author="\x07ann", hashtags=["t\x1b"])
    post = validate_post(raw, image.parent, LIMITS)
    assert post.caption == "evil ]0;PWNED [2J[31mred\tline\nnext"  # tab and newline are text
    assert (post.city, post.author, post.hashtags) == ("paris[5m", "ann", ("t",))


def test_relative_image_without_base_folder_is_refused() -> None:
    with pytest.raises(InvalidPost, match="relative path"):
        validate_post({"id": "a", "image": "a.jpg"}, None, LIMITS)


def test_a_tag_filter_is_normalised_as_stored_hashtags_are() -> None:
    from jointspace.records import Filters

    assert Filters(hashtags=("#Straße", "# Café ")).hashtags == ("café", "strasse")
    assert set(parse_hashtags("#STRASSE #café")) == set(normalise_hashtags(["Straße", "#Café"])) == {"strasse", "café"}


def test_listed_hashtags_are_normalised_as_caption_hashtags_and_never_drop_the_post(image: Path) -> None:
    """A hashtag holds no whitespace: a listed entry with some inside is read as several tags (as
    the same words written `#beach #sunset` in a caption would be); blank entries go; the post stays."""
    raw = {"id": "a", "image": str(image), "hashtags": ["New York", "#Beach \t #SUNSET", "  ", "#", "# x", "beach"]}
    post = validate_post(raw, None, LIMITS)
    assert post.hashtags == ("new", "york", "beach", "sunset", "x")
    assert all(tag == tag.strip() and not any(c.isspace() for c in tag) for tag in post.hashtags)
    assert set(normalise_hashtags("#Beach #Sunset")) == set(parse_hashtags("#Beach #Sunset")) == {"beach", "sunset"}
    assert validate_post({**raw, "hashtags": [" ", "#"]}, None, LIMITS).hashtags == ()


def test_hashtags_are_unicode_aware() -> None:
    assert parse_hashtags("#東京 tower, #ÉTÉ and #summer_2024! not#this &#38; #") == ("東京", "été", "summer_2024")


def test_naive_time_is_utc_and_z_is_accepted() -> None:
    assert parse_time("2024-01-02T03:04:05") == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_time("2024-01-02T03:04:05Z") == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_time("") is None


@given(st.text())
@hsettings(max_examples=200, deadline=None)
def test_city_normalisation_is_idempotent(city: str) -> None:
    once = normalise_city(city)
    assert once is None or (once == once.strip().lower() and normalise_city(once) == once and "  " not in once)


@given(st.lists(st.from_regex(r"[^\W_][\w]{0,10}", fullmatch=True), min_size=1, max_size=5))
@hsettings(max_examples=200, deadline=None)
def test_every_written_hashtag_is_parsed(tags: list[str]) -> None:
    caption = " ".join(f"#{t}" for t in tags) + " end"
    parsed = parse_hashtags(caption)
    assert set(parsed) == {t.casefold() for t in tags}
    assert len(parsed) == len(set(parsed))


@given(
    st.dictionaries(
        st.sampled_from(["id", "caption", "city", "created_at", "hashtags", "author"]),
        st.one_of(st.none(), st.text(max_size=60), st.integers(), st.lists(st.text(max_size=5))),
    )
)
@hsettings(max_examples=300, deadline=None)
def test_any_object_either_validates_or_raises_invalid_post(
    tmp_path_factory: pytest.TempPathFactory, raw: dict
) -> None:
    folder = tmp_path_factory.getbasetemp()
    (folder / "h.jpg").write_bytes(b"bytes")
    raw = {**raw, "image": "h.jpg"}
    try:
        post = validate_post(raw, folder, LIMITS)
    except InvalidPost as exc:
        assert exc.field in {"id", "caption", "city", "created_at", "hashtags", "author"}
    else:
        assert post.id and Path(post.image).is_absolute()


def test_real_path_is_resolve_with_folders_remembered(tmp_path: Path) -> None:
    """The same answer as Path.resolve() through folder links, file links, missing files and '..'."""
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a.jpg").write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "real" / "b.jpg").symlink_to(tmp_path / "real" / "a.jpg")
    cases = [
        tmp_path / "link" / "a.jpg",
        tmp_path / "link" / "b.jpg",
        tmp_path / "link" / "missing.jpg",
        tmp_path / "link" / ".." / "real" / "a.jpg",
        tmp_path / "real" / "..",
    ]
    for path in cases:
        assert real_path(path) == path.resolve()
    assert real_path(tmp_path / "link" / "b.jpg") == tmp_path.resolve() / "real" / "a.jpg"


def test_real_path_follows_a_folder_link_re_pointed_a_second_later(tmp_path: Path) -> None:
    for day in ("monday", "tuesday"):
        (tmp_path / day).mkdir()
        (tmp_path / day / "x.jpg").write_bytes(day.encode())
    (tmp_path / "current").symlink_to(tmp_path / "monday")
    assert real_path(tmp_path / "current" / "x.jpg") == (tmp_path / "monday" / "x.jpg").resolve()
    (tmp_path / "current").unlink()
    (tmp_path / "current").symlink_to(tmp_path / "tuesday")
    time.sleep(1.1)  # the folder's resolution is reused for a second at most
    assert real_path(tmp_path / "current" / "x.jpg") == (tmp_path / "tuesday" / "x.jpg").resolve()
