"""The page in Debian's chromium, driven by Playwright, against `jointspace serve` in a subprocess.

Screenshots go to test-artifacts/ (gitignored) for people to look at.
"""

from __future__ import annotations

import pytest

from tests.api.browser_support import card_ids, shot, wait_for_new_results
from tests.api.corpus import Corpus

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_search_click_to_add_filter_by_city(page, corpus: Corpus) -> None:
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


def test_chip_removal_and_keyboard(page) -> None:
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


def test_detail_view_shows_describing_words(page) -> None:
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


def test_query_error_is_shown_at_its_position(page) -> None:
    page.fill("#q", "dog+(park")
    page.press("#q", "Enter")
    page.wait_for_selector("#query-error:not([hidden])")
    assert "expected ')'" in page.inner_text("#query-error")
    assert page.get_attribute("#q", "aria-invalid") == "true"
    assert page.inner_text("#query-error mark").strip() == ""  # the caret sits at the end, where ')' is missing
    shot(page, "05-query-error")


def test_search_with_a_picked_photo(page, corpus: Corpus) -> None:
    page.fill("#q", "")
    page.press("#q", "Enter")
    photo = corpus.root / corpus.posts[0]["image"]
    page.set_input_files("#photo-input", str(photo))
    page.wait_for_selector("#photo-chip:not([hidden])")
    page.wait_for_function("id => document.querySelector('#grid .card')?.dataset.id === id", arg=corpus.posts[0]["id"])
    shot(page, "06-photo-search")
    page.locator("#photo-chip button").click()
    page.wait_for_selector("#photo-chip", state="hidden")


def test_phone_width(page) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.fill("#q", "dog")
    page.press("#q", "Enter")
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('result')")
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at phone width ({width}px)"
    shot(page, "07-phone")
    page.set_viewport_size({"width": 1280, "height": 900})


def test_the_image_example_names_a_post_of_this_index(page) -> None:
    """The help's `[img:ID]+park` example is a post this index holds, so a first click on it shows
    results (a fixed `[img:42]` was refused with "no indexed image has the id '42'" on the demo)."""
    page.goto(page.url.split("?")[0])
    example = page.locator("#query-help a", has_text="[img:")
    example.wait_for(state="visible")
    term = example.inner_text().split("+")[0]
    page.wait_for_function("() => document.querySelector('#status').textContent.startsWith('Type')")
    example.click()
    page.wait_for_function(
        "() => !document.querySelector('#query-error').hidden"
        " || document.querySelector('#status').textContent.includes('result')"
    )
    assert page.is_hidden("#query-error"), page.inner_text("#query-error")
    assert page.input_value("#q") == f"{term}+park"
    assert len(card_ids(page)) > 0


def test_a_server_failure_is_not_shown_as_a_query_error(page) -> None:
    """A 5xx (a proxy's HTML 502, the backend down) says the server failed, in the status line; the
    query is not marked invalid nor told to be fixed (it was: "Bad Gateway" under the box)."""
    page.fill("#q", "dog")
    page.press("#q", "Enter")
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('result')")
    page.route(
        "**/search?*", lambda route: route.fulfill(status=502, body="<h1>Bad gateway</h1>", content_type="text/html")
    )
    try:
        page.fill("#q", "dog+cat")
        page.press("#q", "Enter")
        page.wait_for_function("() => document.querySelector('#status').textContent.includes('server')")
        status = page.inner_text("#status")
        assert "502" in status and "try again" in status.lower(), status
        assert page.is_hidden("#query-error")
        assert page.get_attribute("#q", "aria-invalid") is None
        assert "Fix the query" not in page.inner_text("#explain")
    finally:
        page.unroute("**/search?*")


def test_keyboard_focus_stays_on_the_results_after_adding_one(page) -> None:
    """Enter on a focused result adds it and runs the search again; the focus then stays in the
    results (on the same post), not thrown back to the top of the page forty Tabs away."""
    page.fill("#q", "park")
    page.press("#q", "Enter")
    before = wait_for_new_results(page, [])
    page.locator("#grid .card").nth(1).focus()
    page.keyboard.press("Enter")
    page.wait_for_function("id => document.querySelector('#q').value === `park+[img:${id}]`", arg=before[1])
    wait_for_new_results(page, before)
    page.wait_for_function("id => document.activeElement?.closest?.('#grid .card')?.dataset.id === id", arg=before[1])
    page.keyboard.press("ArrowRight")  # and the arrows go on from there
    assert page.evaluate("() => document.activeElement.closest('#grid .card') !== null")
