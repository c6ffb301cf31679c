"""The page in Debian's chromium, driven by Playwright, against `jointspace serve` in a subprocess.

Screenshots go to test-artifacts/ (gitignored) for people to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import api_settings, index_corpus
from corpus import Corpus
from jointspace.api.container import build_container
from served import serve, share_text_cache

from jointspace.protocols import ModelBundle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, corpus: Corpus, bundle: ModelBundle) -> Iterator[str]:
    """`jointspace serve` over the corpus indexed in an embedded store; yields its base URL."""
    home = tmp_path_factory.mktemp("browser-home")
    settings = api_settings(home, corpus)
    container = build_container(settings, bundle)
    try:
        index_corpus(container, corpus)
    finally:
        container.close()
    share_text_cache(home, bundle.settings.home)
    with serve(
        home,
        {
            "JOINTSPACE_MEDIA_ROOT": str(corpus.root),
            "JOINTSPACE_MODEL": str(bundle.path),
            "JOINTSPACE_API_KEY": "browser-test-key",
        },
    ) as url:
        yield url


@pytest.fixture(scope="module")
def page(server: str, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - playwright's Page
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/setup.sh)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(60_000)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server)
        yield page
        context.close()
        assert not errors, f"JavaScript errors on the page: {errors}"


def card_ids(page) -> list[str]:  # noqa: ANN001
    return page.eval_on_selector_all("#grid .card", "els => els.map(e => e.dataset.id)")


def wait_for_new_results(page, old: list[str]) -> list[str]:  # noqa: ANN001
    page.wait_for_function(
        "old => { const ids = [...document.querySelectorAll('#grid .card')].map(e => e.dataset.id);"
        " return ids.length > 0 && ids.join() !== old"
        " && document.querySelector('#status').textContent.includes('result') }",
        arg=",".join(old),
    )
    return card_ids(page)


def shot(page, name: str) -> None:  # noqa: ANN001
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


def test_search_click_to_add_filter_by_city(page, corpus: Corpus) -> None:  # noqa: ANN001
    page.fill("#q", "dog+park")
    page.press("#q", "Enter")
    first = wait_for_new_results(page, [])
    assert len(first) >= 2
    assert "q=dog%2Bpark" in page.url
    # Thumbnails really load (served by the API from the media root).
    page.wait_for_function(
        "[...document.querySelectorAll('#grid .card img.thumb')].slice(0, 3)"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    assert page.locator("#explain .word").count() > 0
    shot(page, "01-dog-park")

    second = first[1]
    page.locator("#grid .card").nth(1).locator(".cap").click()
    page.wait_for_function("id => document.querySelector('#q').value.includes(`[img:${id}]`)", arg=second)
    after_click = wait_for_new_results(page, first)
    assert after_click != first
    assert page.input_value("#q") == f"dog+park+[img:{second}]"
    assert "%5Bimg%3A" in page.url
    assert page.locator(f'#chips .chip[data-term="[img:{second}]"]').count() == 1
    shot(page, "02-clicked-second-result")

    page.wait_for_selector('#city option[value="paris"]', state="attached")
    page.select_option("#city", "paris")
    page.wait_for_function(
        "() => { const c = [...document.querySelectorAll('#grid .card .city')];"
        " return c.length > 0 && c.every(e => e.textContent === 'paris') }"
    )
    cities = page.eval_on_selector_all("#grid .card .city", "els => els.map(e => e.textContent)")
    assert set(cities) == {"paris"}
    # Every Paris post, bar near-duplicates the search collapses (the corpus has a few same drawings).
    assert 1 < len(cities) <= sum(1 for p in corpus.posts if p["city"] == "paris")
    assert "city=paris" in page.url
    shot(page, "03-city-paris")

    page.go_back()  # the city filter is undone, the query with the image stays
    page.wait_for_function("() => document.querySelector('#city').value === ''")
    page.wait_for_function(
        "() => new Set([...document.querySelectorAll('#grid .card .city')].map(e => e.textContent)).size > 1"
    )
    assert page.input_value("#q") == f"dog+park+[img:{second}]"


def test_chip_removal_and_keyboard(page) -> None:  # noqa: ANN001
    page.fill("#q", "dog+park")
    page.press("#q", "Enter")
    page.wait_for_function("() => document.querySelectorAll('#chips .chip').length === 2")
    before = card_ids(page)
    page.locator('#chips .chip[data-term="park"] button[aria-label="Remove park"]').click()
    page.wait_for_function("() => document.querySelector('#q').value === 'dog'")
    wait_for_new_results(page, before)

    # Keyboard: focus a result, Enter adds it to the query.
    page.locator("#grid .card").first.focus()
    first = card_ids(page)[0]
    page.keyboard.press("Enter")
    page.wait_for_function("id => document.querySelector('#q').value === `dog+[img:${id}]`", arg=first)


def test_detail_view_shows_describing_words(page) -> None:  # noqa: ANN001
    page.fill("#q", "park")
    page.press("#q", "Enter")
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('result')")
    page.locator("#grid .card").first.locator(".info").click()
    page.wait_for_selector("#detail[open]")
    page.wait_for_function("() => document.querySelectorAll('#detail-words .word').length > 0")
    page.wait_for_function(
        "() => { const i = document.querySelector('#detail-image'); return i.complete && i.naturalWidth > 0 }"
    )
    shot(page, "04-detail")
    page.keyboard.press("Escape")
    page.wait_for_selector("#detail[open]", state="detached")


def test_query_error_is_shown_at_its_position(page) -> None:  # noqa: ANN001
    page.fill("#q", "dog+(park")
    page.press("#q", "Enter")
    page.wait_for_selector("#query-error:not([hidden])")
    assert "expected ')'" in page.inner_text("#query-error")
    assert page.get_attribute("#q", "aria-invalid") == "true"
    assert page.inner_text("#query-error mark").strip() == ""  # the caret sits at the end, where ')' is missing
    shot(page, "05-query-error")


def test_search_with_a_picked_photo(page, corpus: Corpus) -> None:  # noqa: ANN001
    page.fill("#q", "")
    page.press("#q", "Enter")
    photo = corpus.root / corpus.posts[0]["image"]
    page.set_input_files("#photo-input", str(photo))
    page.wait_for_selector("#photo-chip:not([hidden])")
    page.wait_for_function("id => document.querySelector('#grid .card')?.dataset.id === id", arg=corpus.posts[0]["id"])
    shot(page, "06-photo-search")
    page.locator("#photo-chip button").click()
    page.wait_for_selector("#photo-chip", state="hidden")


def test_phone_width(page) -> None:  # noqa: ANN001
    page.set_viewport_size({"width": 390, "height": 844})
    page.fill("#q", "dog")
    page.press("#q", "Enter")
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('result')")
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at phone width ({width}px)"
    shot(page, "07-phone")
    page.set_viewport_size({"width": 1280, "height": 900})
