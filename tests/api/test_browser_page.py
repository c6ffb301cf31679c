"""What a user meets on the page beyond the happy path (Debian's chromium, Playwright): a city typed
into the URL, a cut-off that empties the page, a server that went away, and the keyboard's way to
the results. The server and page fixtures are tests/api/conftest.py's (a server of this module's own).
"""

from __future__ import annotations

import pytest

from tests.api.browser_support import card_ids, wait_for_new_results

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def base_url(page) -> str:
    return page.url.split("?")[0]


def test_results_of_an_unreachable_server_are_not_left_under_the_new_query(page) -> None:
    """With serve stopped, the grid must not keep the previous query's results (clickable, as if they
    answered the new one) under a status line saying the server cannot be reached."""
    page.goto(base_url(page))
    page.fill("#q", "dog")
    page.press("#q", "Enter")
    assert wait_for_new_results(page, [])
    page.route("**/search?*", lambda route: route.abort("connectionrefused"))
    try:
        page.fill("#q", "park")
        page.press("#q", "Enter")
        page.wait_for_function("() => document.querySelector('#status').textContent.includes('cannot be reached')")
        assert card_ids(page) == []
        assert page.is_hidden("#more")
        assert page.is_hidden("#facets")
        assert page.locator("#explain h3").count() == 0  # no "Nearest words" of the previous query
    finally:
        page.unroute("**/search?*")


def test_a_city_in_the_url_is_read_as_the_server_reads_it(page) -> None:
    """`?city=Tokyo` is the indexed city `tokyo` (cities are trimmed and lower-cased at ingest): the
    picker shows it once, with its count, not a second "Tokyo" option beside "tokyo (N)"."""
    page.goto(f"{base_url(page)}?q=dog&city=%20Tokyo%20")
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('result')")
    page.wait_for_function("() => [...document.querySelectorAll('#city option')].some(o => o.text.includes('('))")
    options = page.eval_on_selector_all("#city option", "els => els.map(o => [o.value, o.text])")
    tokyo = [(value, text) for value, text in options if value.strip().lower() == "tokyo"]
    assert len(tokyo) == 1 and tokyo[0][0] == "tokyo" and tokyo[0][1].startswith("tokyo ("), options
    assert page.input_value("#city") == "tokyo"
    assert "city=tokyo" in page.url
    cities = page.eval_on_selector_all("#grid .card .city", "els => els.map(e => e.textContent)")
    assert cities and set(cities) == {"tokyo"}


def test_a_cut_off_that_hides_every_result_says_so_and_offers_to_clear_it(page) -> None:
    page.goto(f"{base_url(page)}?q=dog&min_score=0.99")
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('cut-off')")
    status = page.inner_text("#status")
    assert "0.99" in status and "At least" in status, status
    assert card_ids(page) == []
    page.locator("#status button", has_text="Clear").click()
    assert wait_for_new_results(page, [])
    assert page.input_value("#min-score") == ""
    assert "min_score" not in page.url


def test_a_skip_link_takes_the_keyboard_to_the_first_result(page) -> None:
    page.goto(f"{base_url(page)}?q=dog")
    first = wait_for_new_results(page, [])
    page.keyboard.press("Tab")  # the first stop on the page
    assert page.evaluate("() => document.activeElement.textContent.trim()") == "Skip to results"
    assert page.evaluate("() => document.activeElement.getBoundingClientRect().height > 0")  # shown when focused
    page.keyboard.press("Enter")
    page.wait_for_function("id => document.activeElement?.closest?.('#grid .card')?.dataset.id === id", arg=first[0])
