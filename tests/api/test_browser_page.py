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
